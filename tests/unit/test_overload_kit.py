"""The overload kit's own logic: CPU lists, the climb, the service's log and metrics, the
wire capture reader and the overload table (the full loop runs in tests/e2e/test_load_kit.py)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from ammo import capacity, pinning, serverlog, wire
from ammo.overload import figures, overload_table

FIRST = min(os.sched_getaffinity(0))


class TestCpuLists:
    @pytest.mark.parametrize("form", ["{0}", "{0},{0}", "{0}-{0}"])
    def test_read_as_taskset_writes_them(self, form: str) -> None:
        assert pinning.parse_cpus(form.format(FIRST)) == frozenset({FIRST})

    def test_nothing_means_not_pinned(self) -> None:
        assert pinning.parse_cpus("") is None and pinning.parse_cpus(None) is None

    @pytest.mark.parametrize("text", ["x", "0-", "-1", "0;1"])
    def test_a_malformed_list_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a CPU list"):
            pinning.parse_cpus(text)

    def test_a_cpu_this_process_may_not_use_is_refused(self) -> None:
        beyond = max(os.sched_getaffinity(0)) + 1
        with pytest.raises(ValueError, match="not available"):
            pinning.parse_cpus(str(beyond))


class TestClimb:
    @pytest.mark.parametrize("knee", [300, 333, 950])
    def test_steps_up_then_bisects_the_last_step(self, knee: float) -> None:
        probed: list[float] = []

        def probe(rate: float) -> bool:
            probed.append(rate)
            return rate <= knee

        found = capacity.climb(probe, 100, 100, 3000, 25)
        assert found is not None and found <= knee < found + 25
        steps = [rate for rate in probed if rate % 100 == 0]
        assert steps == sorted(steps), "upwards only, until the first miss"

    def test_nothing_when_the_first_rate_misses(self) -> None:
        assert capacity.climb(lambda rate: False, 100, 100, 3000, 25) is None

    def test_stops_at_the_ceiling(self) -> None:
        assert capacity.climb(lambda rate: True, 100, 100, 450, 25) == 400


def access(status: int, duration_ms: float, queue_ms: float = 0.0) -> str:
    return json.dumps({"logger": "shop.access", "event": "request", "status": status,
                       "duration_ms": duration_ms, "queue_ms": queue_ms})  # fmt: skip


class TestServiceLog:
    def test_reads_only_what_was_written_after_the_offset(self, tmp_path: Path) -> None:
        log = tmp_path / "service.log"
        log.write_text(access(200, 1.0) + "\n")
        offset = log.stat().st_size
        with log.open("a") as out:
            out.write("[2026-12-04 gunicorn] Booting worker\n" + access(200, 2.0) + '\n{"part')
        records, after = serverlog.lines_since(log, offset)
        assert [r["duration_ms"] for r in records] == [2.0]
        assert after == log.stat().st_size - len('{"part'), "a partial line waits"

    def test_digests_latency_per_status_the_wait_and_the_warnings(self) -> None:
        records = [json.loads(access(200, ms, ms / 10)) for ms in range(1, 101)]
        records += [json.loads(access(400, 5.0))]
        records += [{"level": "warning", "event": "server saturated"}] * 3
        found = serverlog.digest(records)
        assert found["requests"] == 101
        assert found["statuses"]["200"] | {} == {"count": 100, "p50": 51, "p99": 100, "max": 100}
        assert found["queue_ms"]["p99"] == 9.9  # 101 waits: the 400's 0 ms among them
        assert found["events"] == {"warning: server saturated": 3}


class TestServiceMetrics:
    GROWN = {
        "unavailable:event_loop": 90.0,
        "unavailable:deadline": 2.0,
        "queue:refused:0.005": 50.0,
        "queue:refused:0.01": 99.0,
        "queue:refused:0.025": 100.0,
        "queue:refused:+Inf": 100.0,
        "refusal_cpu_seconds": 0.009,
    }

    def test_a_difference_keeps_what_grew(self) -> None:
        grown = serverlog.difference({"a": 5.0, "b": 1.0, "c": 0.5}, {"a": 2.0, "b": 1.0})
        assert grown == {"a": 3.0, "c": 0.5}

    def test_503s_by_reason(self) -> None:
        assert serverlog.unavailable(self.GROWN) == {"event_loop": 90, "deadline": 2}

    def test_a_quantile_is_the_upper_edge_of_its_bucket(self) -> None:
        assert serverlog.queue_quantile(self.GROWN, "refused", 0.5) == 5.0
        assert serverlog.queue_quantile(self.GROWN, "refused", 0.99) == 10.0
        assert serverlog.queue_quantile(self.GROWN, "admitted", 0.99) is None


def frame(source: int, destination: int, payload: bytes) -> bytes:
    """An Ethernet + IPv4 + TCP frame, as tcpdump captures on the loopback device."""
    tcp = struct.pack("!HHIIBBHHH", source, destination, 0, 0, 5 << 4, 0x18, 65535, 0, 0)
    length = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))  # fmt: skip
    return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload


def pcap(packets: list[tuple[float, bytes]]) -> bytes:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = b""
    for stamp, data in packets:
        seconds, micros = int(stamp), round((stamp % 1) * 1e6)
        records += struct.pack("<IIII", seconds, micros, len(data), len(data)) + data
    return header + records


class TestWire:
    def test_pairs_each_request_with_the_next_answer_on_its_connection(
        self, tmp_path: Path
    ) -> None:
        capture = tmp_path / "run.pcap"
        capture.write_bytes(
            pcap(
                [
                    (10.000, frame(50001, 8080, b"GET /api/info HTTP/1.1\r\n")),
                    (10.001, frame(50002, 8080, b"POST /api/sendCoin HTTP/1.1\r\n")),
                    (10.002, frame(8080, 50002, b"HTTP/1.1 503 Service Unavailable\r\n")),
                    (10.003, frame(50001, 8080, b"")),  # a bare ACK
                    (10.010, frame(8080, 50001, b"HTTP/1.1 200 OK\r\n")),
                    (10.011, frame(8080, 50001, b'{"coins": 1000}')),  # the rest of it
                    (10.020, frame(50001, 8080, b"GET /api/info HTTP/1.1\r\n")),
                    (10.024, frame(8080, 50001, b"HTTP/1.1 200 OK\r\n")),
                ]
            )
        )
        found = wire.latencies(capture, 8080)
        assert sorted(found) == ["200", "503"]
        assert [round(ms, 3) for ms in found["200"]] == [10.0, 4.0]
        assert [round(ms, 3) for ms in found["503"]] == [1.0]
        assert wire.digest(capture, 8080)["200"]["max"] == pytest.approx(10.0)

    def test_a_link_type_it_does_not_know_is_refused(self, tmp_path: Path) -> None:
        capture = tmp_path / "odd.pcap"
        capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105))
        with pytest.raises(ValueError, match="link type 105"):
            list(wire.packets(capture))


def overload_run(served: int, refused: int, lost: int = 0) -> dict[str, Any]:
    def status(count: int, p99: float) -> dict[str, Any]:
        return {"requests": count, "latency_ms": {"p99": p99, "max": p99 * 2}}

    return {
        "rate": 300.0,
        "result": {
            "requests": served + refused + lost,
            "dropped": 0,
            "latency_ms": {"max": 80.0},
            "statuses": {
                "200": status(served, 20.0),
                "503": status(refused, 8.0),
                "0": status(lost, 10_000.0),
            },  # fmt: skip
        },
        "server": {
            "statuses": {"200": {"p99": 19.0}},
            "latency_ms": {"max": 70.0},
            "queue_ms": {"p99": 4.0},
        },  # fmt: skip
        "unavailable": {"event_loop": refused},
        "queue_buckets": {"refusal_cpu_seconds": refused * 100e-6},
        "cpu_seconds": {"box_steal": 0.4},
        "wall_seconds": 10.0,
        "wire": {"200": {"p99": 19.5}, "503": {"p99": 6.0}},
    }


class TestOverloadFigures:
    def test_goodput_refusals_and_the_two_clocks(self) -> None:
        found = figures(overload_run(served=1000, refused=2000, lost=3), 10.0, 900.0)
        assert found["goodput"] == 100 and found["refused_per_s"] == 200
        assert found["no_answer"] == 3
        assert (found["p99_200_ms"], found["server_p99_200_ms"]) == (20.0, 19.0)
        assert (found["wire_p99_200_ms"], found["wire_p99_503_ms"]) == (19.5, 6.0)
        assert found["cpu_us_served"] == 900.0
        assert found["cpu_us_refused"] == pytest.approx(100.0)
        assert found["stolen"] == pytest.approx(0.4 / 10 / (os.cpu_count() or 1))

    def test_the_table_has_a_cell_per_column_and_rates_against_capacity(self) -> None:
        row = figures(overload_run(served=1000, refused=2000), 10.0, 900.0)
        table = overload_table(100, [row])
        head, rule, line = table.splitlines()[1:]
        assert head.count("|") == rule.count("|") == line.count("|")
        assert "| 300 | 3.00 | 100 | 100% | 200 |" in line
        assert "| 0.95 |" in line  # the service's p99 of 200s over the client's
