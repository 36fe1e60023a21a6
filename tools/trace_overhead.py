"""CPU per request of one gevent worker under each tracing variant, runs alternated.

Starts one embedded PostgreSQL, a sink that accepts OTLP/HTTP and throws it away, and one
single-worker gunicorn per variant (all at once, on their own ports), seeds a user, then
runs ``wrk -t1 -c<n> -d<s>`` against ``GET /api/info`` on keep-alive, variant after
variant, ``--repeats`` times. Each run reads the worker's user+system CPU time from
``/proc/<pid>/stat`` before and after and prints CPU per request; the summary gives the
median and the spread (min-max) per variant. With ``--lag-probe`` each worker also runs a
greenlet that sleeps 5 ms in a loop and records how late it wakes: the longest event-loop
block during each run (the probe costs CPU, so use it in separate runs).

A variant is ``label=tree:VAR=value,VAR=value``: the source tree to run (empty: this one),
and extra environment; ``{sink}`` is replaced by the sink's URL. Example::

    .venv/bin/python tools/trace_overhead.py --repeats 5 \\
      --variant 'untraced=:' \\
      --variant 'default=:OTEL_EXPORTER_OTLP_ENDPOINT={sink}'
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import requests

ROOT = Path(__file__).resolve().parents[1]
TOOLS = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Sink(BaseHTTPRequestHandler):
    """Accept OTLP/HTTP exports and count their bytes, as a trace backend would."""

    protocol_version = "HTTP/1.1"
    exports = 0
    bytes = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Sink.exports += 1
        Sink.bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Variant:
    label: str
    tree: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    worker: int = 0
    lag_file: Path | None = None
    cpu_per_request: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    late_5: list[int] = field(default_factory=list)
    late_10: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def parse_variant(text: str, sink: str) -> Variant:
    label, rest = text.split("=", 1)
    tree, _, pairs = rest.partition(":")
    env = {}
    for pair in filter(None, pairs.split(",")):
        key, value = pair.split("=", 1)
        env[key] = value.replace("{sink}", sink)
    return Variant(label, Path(tree).resolve() if tree else ROOT, env)


def worker_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def start(variant: Variant, base_env: dict[str, str], workdir: Path, probe: bool) -> None:
    env = {**base_env, **variant.env, "PORT": str(variant.port), "WEB_CONCURRENCY": "1"}
    env["PYTHONPATH"] = f"{variant.tree}:{TOOLS}"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / f"metrics-{variant.label}")
    app = "shop.wsgi:app"
    if probe:
        variant.lag_file = workdir / f"lag-{variant.label}.jsonl"
        env["LAG_PROBE_FILE"] = str(variant.lag_file)
        app = "lag_probe:app"
    conf = variant.tree / "shop" / "gunicorn_conf.py"
    command = [sys.executable, "-m", "gunicorn", "-c", str(conf), app]
    log = (workdir / f"server-{variant.label}.log").open("wb")
    variant.process = subprocess.Popen(  # noqa: S603 - our own command line
        command, env=env, cwd=variant.tree, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{variant.url}/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass  # still booting
        time.sleep(0.3)
    workers = children(variant.process.pid)
    if len(workers) != 1:
        raise RuntimeError(f"{variant.label}: expected one worker, found {workers}")
    variant.worker = workers[0]


def seed(url: str) -> str:
    """Create two users with some history; return the first one's bearer token."""
    names = [f"bench-{secrets.token_hex(4)}" for _ in range(2)]
    tokens = [
        requests.post(f"{url}/api/auth", json={"username": n, "password": "pw"}, timeout=30).json()[
            "token"
        ]
        for n in names
    ]
    auth = {"Authorization": f"Bearer {tokens[0]}"}
    for item in ("cup", "pen", "book"):
        requests.get(f"{url}/api/buy/{item}", headers=auth, timeout=10)
    requests.post(
        f"{url}/api/sendCoin", json={"toUser": names[1], "amount": 5}, headers=auth, timeout=10
    )
    return tokens[0]


def wrk(url: str, token: str, seconds: int, connections: int) -> int:
    reply = subprocess.run(  # noqa: S603 - our own command line
        [  # noqa: S607 - wrk from PATH, as installed by Debian
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            f"{url}/api/info",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"(\d+) requests in", reply.stdout)
    if match is None or "Non-2xx" in reply.stdout:
        raise RuntimeError(reply.stdout)
    return int(match.group(1))


def loop_lag(variant: Variant, since: float, until: float) -> tuple[float, int, int]:
    """Return the worst wake-up delay (ms) and the counts over 5 and 10 ms in a window."""
    worst, over_5, over_10 = 0.0, 0, 0
    if variant.lag_file is None:
        return worst, over_5, over_10
    for line in variant.lag_file.read_text().splitlines():
        entry = json.loads(line)
        if since < entry["t"] <= until + 1:
            worst = max(worst, entry["max_ms"])
            over_5 += entry["over_5"]
            over_10 += entry["over_10"]
    return worst, over_5, over_10


def run_once(variant: Variant, token: str, seconds: int, connections: int) -> None:
    before, started = worker_cpu(variant.worker), time.time()
    count = wrk(variant.url, token, seconds, connections)
    after, ended = worker_cpu(variant.worker), time.time()
    variant.cpu_per_request.append((after - before) / count * 1e6)
    variant.rates.append(count / seconds)
    line = (
        f"{variant.label:>12}: {variant.cpu_per_request[-1]:7.0f} us/req"
        f" {count / seconds:7.0f} req/s"
    )
    if variant.lag_file is not None:
        time.sleep(1.5)  # the probe writes once a second
        worst, over_5, over_10 = loop_lag(variant, started, ended)
        variant.lags.append(worst)
        variant.late_5.append(over_5)
        variant.late_10.append(over_10)
        line += f"  probe late: max {worst:6.1f} ms, >5 ms {over_5:4d}x, >10 ms {over_10:4d}x"
    print(line, flush=True)


def summary(variants: list[Variant]) -> None:
    """Print medians, and each variant's ratio to the first one run by run (paired)."""
    first = variants[0].cpu_per_request
    print(
        "\nvariant        median us/req  (min-max)   paired ratio (min-max)   req/s"
        "   probe late (medians)"
    )
    for v in variants:
        median = statistics.median(v.cpu_per_request)
        spread = f"({min(v.cpu_per_request):.0f}-{max(v.cpu_per_request):.0f})"
        ratios = [mine / theirs for mine, theirs in zip(v.cpu_per_request, first, strict=True)]
        paired = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        lag = "-"
        if v.lags:
            lag = (
                f"max {statistics.median(v.lags):.1f} ms, >5 ms {statistics.median(v.late_5):.0f}x,"
                f" >10 ms {statistics.median(v.late_10):.0f}x"
            )
        print(
            f"{v.label:>12}  {median:10.0f}  {spread:>11}   {paired:>22}"
            f"  {statistics.median(v.rates):6.0f}   {lag}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--lag-probe", action="store_true")
    args = parser.parse_args()

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    variants = [parse_variant(text, sink_url) for text in args.variant]

    workdir = Path(tempfile.mkdtemp(prefix="trace-overhead-"))
    sys.path.insert(0, str(ROOT))
    from shop.db.embedded import EmbeddedPostgres

    database = EmbeddedPostgres(workdir, delete_on_stop=True)
    base_env = {
        **os.environ,
        "DATABASE_URL": database.start(),
        "JWT_SECRET": secrets.token_hex(32),
        "LOG_FORMAT": "json",
        "OTEL_SERVICE_NAME": "shop-bench",
    }
    try:
        migrate = [sys.executable, "-m", "shop", "migrate"]
        subprocess.run(  # noqa: S603 - our own command line
            migrate, env=base_env, cwd=ROOT, check=True, capture_output=True
        )
        for variant in variants:
            start(variant, base_env, workdir, args.lag_probe)
        token = seed(variants[0].url)
        for variant in variants:  # warm up: imports, pools, caches
            wrk(variant.url, token, 2, args.connections)
        for _ in range(args.repeats):
            for variant in variants:
                run_once(variant, token, args.seconds, args.connections)
        summary(variants)
        print(f"\nsink received {Sink.exports} exports, {Sink.bytes / 1e6:.1f} MB")
    finally:
        for variant in variants:
            if variant.process is not None:
                variant.process.send_signal(signal.SIGTERM)
                variant.process.wait(timeout=30)
        database.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
