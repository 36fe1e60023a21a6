"""wrk at saturation: the closed-loop counterpart of a k6 run, for the framework-floor ratio.

An open model at a fixed rate measures the service at an operating point; a saturated worker
(wrk's keep-alive closed loop) measures the cheapest a request can be, with the event loop
batching work. The figures in issue 11 (242 / ~800 / ~1,225 µs) were taken this way, and on a
2-core box only wrk is cheap enough to saturate a bare worker (k6 costs ~0.4 ms a request).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "info.lua"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(output: str) -> dict[str, float]:
    """Return requests, and p50/p99 in ms, from ``wrk --latency`` output."""
    done = re.search(r"(\d+) requests in", output)
    figures = {"requests": float(done.group(1)) if done else 0.0}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        figures[key] = float(found.group(1)) * UNITS[found.group(2)] if found else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def run(url: str, tokens_file: Path, duration_s: float, connections: int) -> dict[str, float]:
    """Saturate ``url``'s /api/info for ``duration_s``; return wrk's figures and its CPU."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found (Debian: apt-get install wrk)")
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency",
        "-s", str(SCRIPT), f"{url}/api/info",
    ]  # fmt: skip
    env = dict(os.environ, TOKENS_FILE=str(tokens_file))
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
    figures = parse(output)
    figures["wall_seconds"] = time.monotonic() - started
    figures["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return figures
