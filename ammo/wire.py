"""Latency on the wire: each request's packet to its response's, from a tcpdump capture.

k6 and the service each measure with their own clock, in their own process; under load both
add time of their own (k6 waits for its one core, the service's first look at a request
waits for its event loop). A capture on the loopback device stamps both packets in the
kernel, so it says which side a difference lives on. tcpdump (Debian package ``tcpdump``)
writes the capture; this module reads the pcap format itself.
"""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ammo import pinning
from ammo.serverlog import percentile

METHODS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"PATC", b"OPTI")
STATUS_LINE = b"HTTP/1."
# Link-layer header lengths: Ethernet (tcpdump -i lo), Linux cooked v1 and v2 (-i any).
LINK_HEADERS = {1: 14, 113: 16, 276: 20}
SNAPLEN = 192  # headers and the first bytes of the payload: enough to tell what a packet is


@dataclass
class Capture:
    """tcpdump on the loopback device for one TCP port, while a run lasts."""

    port: int
    path: Path
    cpus: frozenset[int] | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Capture:
        binary = shutil.which("tcpdump")
        if binary is None:
            raise SystemExit("--capture needs tcpdump (Debian: apt-get install tcpdump)")
        command = [binary, "-i", "lo", "-n", "-s", str(SNAPLEN), "-U", "-w", str(self.path)]
        self._process = subprocess.Popen(
            [*command, f"tcp port {self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pinning.before_exec(self.cpus),
        )
        return self

    def stop(self) -> str:
        """Stop capturing; return tcpdump's own account (packets dropped by the kernel)."""
        assert self._process is not None, "start() first"
        self._process.send_signal(signal.SIGINT)
        _, errors = self._process.communicate(timeout=30)
        return errors.decode(errors="replace").strip().splitlines()[-1:][0] if errors else ""


def packets(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    """Yield (seconds, source port, destination port, TCP payload) of each IPv4 packet."""
    data = path.read_bytes()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    fraction = 1e9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
    link = struct.unpack(order + "I", data[20:24])[0]
    if link not in LINK_HEADERS:
        raise ValueError(f"{path}: link type {link} is not one this reader knows")
    at = 24
    record = struct.Struct(order + "IIII")
    while at + record.size <= len(data):
        seconds, part, length, _ = record.unpack_from(data, at)
        at += record.size
        frame = data[at : at + length]
        at += length
        ip = frame[LINK_HEADERS[link] :]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:  # IPv4 carrying TCP only
            continue
        tcp = ip[(ip[0] & 0x0F) * 4 :]
        if len(tcp) < 20:
            continue
        source, destination = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4 :]
        if payload:
            yield seconds + part / fraction, source, destination, payload


def latencies(path: Path, port: int) -> dict[str, list[float]]:
    """Pair each request sent to ``port`` with the next answer on its connection; return
    the milliseconds between the two packets, by answer status."""
    asked: dict[int, deque[float]] = defaultdict(deque)
    found: dict[str, list[float]] = defaultdict(list)
    for stamp, source, destination, payload in packets(path):
        if destination == port and payload.startswith(METHODS):
            asked[source].append(stamp)
        elif source == port and payload.startswith(STATUS_LINE) and asked[destination]:
            status = payload[9:12].decode(errors="replace")
            found[status].append((stamp - asked[destination].popleft()) * 1000)
    return dict(found)


def digest(path: Path, port: int) -> dict[str, dict[str, float]]:
    """p50, p99 and max on the wire, by status."""
    return {
        status: {
            "count": len(found),
            "p50": percentile(found, 0.5),
            "p99": percentile(found, 0.99),
            "max": max(found),
        }
        for status, found in sorted(latencies(path, port).items())
    }
