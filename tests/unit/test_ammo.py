"""The load kit's own logic: rates, variants, the capacity search, k6 summaries, CPU, ammo.

The k6 scripts themselves are checked with the real k6 binary (``k6 inspect`` evaluates a
script's options without sending a request); the full loop runs in tests/e2e/test_load_kit.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ammo import capacity, cpu, plot, tank, wrkrun
from ammo.bench import Bench
from ammo.commands import parse_rates
from ammo.k6run import SCRIPTS, K6Run, k6_binary
from ammo.pgbench import scripts
from ammo.ratio import Tally, ratio_table
from ammo.report import crossed_thresholds, digest, meets_slo, step_table
from ammo.variants import parse_variant, rotated

USERS = [{"name": f"load-{n}", "token": f"t{n}"} for n in (1, 2, 3)]


class TestRates:
    @pytest.mark.parametrize(
        ("text", "rates"),
        [("500,1000", [500, 1000]), ("200:1000:200", [200, 400, 600, 800, 1000]), ("7", [7])],
    )
    def test_rates_are_a_list_or_an_inclusive_range(self, text: str, rates: list[float]) -> None:
        assert parse_rates(text) == rates


class TestVariants:
    @pytest.mark.parametrize(
        ("text", "bare", "tracing", "env"),
        [
            ("bare", True, False, {}),
            ("untraced", False, False, {}),
            ("traced", False, True, {}),
            ("ten:OTEL_TRACES_SAMPLER_ARG=0.1,A=b", False, True,
             {"OTEL_TRACES_SAMPLER_ARG": "0.1", "A": "b"}),
            ("off:TRACING=0,X=1", False, False, {"X": "1"}),
        ],
    )  # fmt: skip
    def test_a_variant_names_a_build_and_its_environment(
        self, text: str, bare: bool, tracing: bool, env: dict[str, str]
    ) -> None:
        variant = parse_variant(text)
        assert (variant.bare, variant.tracing, variant.env) == (bare, tracing, env)

    def test_source_points_a_variant_at_another_checkout(self, tmp_path: Path) -> None:
        assert parse_variant(f"old:SOURCE={tmp_path}").source == tmp_path

    @pytest.mark.parametrize("text", [":A=b", "x:novalue"])
    def test_a_malformed_variant_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_variant(text)

    def test_rounds_rotate_which_variant_runs_first(self) -> None:
        variants = [parse_variant(v) for v in ("bare", "untraced", "traced")]
        firsts = [rotated(variants, n)[0].label for n in range(3)]
        assert firsts == ["bare", "untraced", "traced"]


class TestCapacitySearch:
    @pytest.mark.parametrize("knee", [200, 333, 1000, 1999])
    def test_finds_the_highest_passing_rate_within_the_resolution(self, knee: float) -> None:
        probed: list[float] = []

        def probe(rate: float) -> bool:
            probed.append(rate)
            return rate <= knee

        found = capacity.search(probe, 200, 2000, 25)
        assert found is not None and found <= knee < found + 25
        assert len(probed) <= 9  # a bisection, not a sweep

    def test_reports_nothing_when_even_the_lowest_rate_fails(self) -> None:
        assert capacity.search(lambda rate: False, 200, 2000, 25) is None

    def test_stops_at_the_highest_rate_when_it_passes(self) -> None:
        assert capacity.search(lambda rate: True, 200, 2000, 25) == 2000


def trend(p99: float, count: int) -> dict[str, Any]:
    return {"med": p99 / 4, "p(90)": p99 / 2, "p(99)": p99, "p(99.9)": p99, "max": p99,
            "count": count}  # fmt: skip


def k6_summary(p99: float = 12.0, dropped: int = 0, failed: int = 0) -> dict[str, Any]:
    """A summary in the shape ``k6 run --summary-export`` writes (k6 v1.1)."""
    return {
        "metrics": {
            "http_reqs": {"count": 1000, "rate": 99.0},
            "http_req_duration": trend(p99, 1000) | {"thresholds": {"p(99)<=50": p99 > 50}},
            "http_req_duration{op:info}": trend(p99, 800) | {"thresholds": {"max>=0": False}},
            "http_req_failed{op:info}": {"passes": failed, "fails": 800 - failed, "value": 0},
            "checks{op:info}": {"passes": 800, "fails": 0, "value": 1},
            "http_req_duration{step:200}": trend(p99, 3900),
            "iterations{step:200}": {"count": 3900, "rate": 10},
            "http_req_duration{step:ramp}": trend(p99, 100),
            "http_req_failed": {"passes": failed, "fails": 1000 - failed, "value": 0},
            "checks": {"passes": 1000, "fails": 0, "value": 1},
            "dropped_iterations": {"count": dropped, "rate": 0},
            "vus_max": {"value": 20, "min": 20, "max": 20},
        }
    }


class TestSummaryDigest:
    def test_digest_reads_totals_latency_and_slices(self) -> None:
        result = digest(k6_summary(), duration_s=10)
        assert result["requests"] == 1000 and result["achieved_rate"] == 100
        assert result["latency_ms"]["p99"] == 12.0 and result["latency_ms"]["p50"] == 3.0
        assert result["ops"]["info"]["requests"] == 800
        assert list(result["steps"]) == ["200", "ramp"]
        assert result["steps"]["200"]["iterations"] == 3900

    def test_crossed_thresholds_are_the_ones_marked_true(self) -> None:
        metrics = k6_summary(p99=80)["metrics"]
        assert crossed_thresholds(metrics) == ["http_req_duration: p(99)<=50"]

    @pytest.mark.parametrize(
        ("p99", "dropped", "failed", "met"),
        [(12, 0, 0, True), (50, 0, 0, True), (50.1, 0, 0, False), (12, 1, 0, False),
         (12, 0, 1, False)],
    )  # fmt: skip
    def test_the_slo_needs_p99_drops_and_failures_within_bounds(
        self, p99: float, dropped: int, failed: int, met: bool
    ) -> None:
        assert meets_slo(digest(k6_summary(p99, dropped, failed))) is met

    def test_step_table_counts_arrivals_a_step_could_not_start(self) -> None:
        run = {"result": digest(k6_summary())}
        [row] = [
            line for line in step_table(run, hold_s=20).splitlines() if line.startswith("| 200")
        ]
        assert row.endswith("| ~100 |")  # 200/s x 20 s planned, 3,900 started


# Waits for a line, runs a child that burns 0.3 s of CPU and reaps it, says so, then waits.
SPAWN_BUSY_CHILD = """
import subprocess, sys
burn = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass"
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", burn], check=True)
print("reaped", flush=True)
sys.stdin.readline()
"""
BUSY_THEN_IDLE = "import time\nt = time.time()\nwhile time.time() - t < 0.3: pass\ntime.sleep(5)"


class TestCpu:
    def test_box_times_split_the_machine_into_busy_idle_and_stolen(self) -> None:
        times = {"user": 1.0, "nice": 0.0, "system": 1.0, "idle": 3.0, "iowait": 1.0}
        assert cpu.box_times(times | {"steal": 1.0}) == cpu.BoxTimes(2.0, 4.0, 1.0)
        assert cpu.box_times(times).steal == 0.0  # a machine that does not report steal

    def test_box_times_read_this_machine(self) -> None:
        box = cpu.box_times()
        assert box.busy > 0 and box.idle >= 0 and box.steal >= 0

    def test_a_process_tree_holds_children_and_their_cpu_counts(self) -> None:
        child = subprocess.Popen(["python3", "-c", BUSY_THEN_IDLE])
        try:
            assert child.pid in cpu.process_tree(os.getpid())
            meter = cpu.CpuMeter({"child": lambda: [child.pid]})
            meter.start()
            time.sleep(0.5)
            used = meter.stop()
        finally:
            child.kill()
            child.wait()
        assert used["child"] > 0 and {"box_busy", "box_steal"} <= set(used)

    def test_a_tree_keeps_the_cpu_of_a_child_that_ended_mid_run(self) -> None:
        # A backend or worker replaced during a run: its CPU must not leave the total.
        with subprocess.Popen(
            ["python3", "-c", SPAWN_BUSY_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        ) as parent:
            assert parent.stdin is not None and parent.stdout is not None
            assert parent.stdout.readline() == b"ready\n"
            meter = cpu.CpuMeter({"tree": lambda: cpu.process_tree(parent.pid)})
            meter.start()
            parent.stdin.write(b"go\n")
            parent.stdin.flush()
            assert parent.stdout.readline() == b"reaped\n"
            used = meter.stop()
            parent.kill()
        assert used["tree"] >= 0.25

    def test_cpu_per_request_is_in_microseconds(self) -> None:
        assert cpu.per_request_us({"service": 0.5}, 1000) == {"service": 500.0}
        assert cpu.per_request_us({"service": 0.5}, 0) == {}


def test_a_relative_out_directory_is_made_absolute_for_k6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(
        out="results/here", command="run", database_url=None, jwt_secret=None, url="http://x"
    )
    with ExitStack() as stack:
        bench = Bench(args, stack)
    assert bench.out == tmp_path / "results" / "here" and bench.out.is_dir()


class TestPlot:
    FIXED = {
        "profile": "info-heavy",
        "rate": 500,
        "result": {"latency_ms": {"p50": 2.0, "p99": 9.0}, "achieved_rate": 499.0},
    }
    STEPS = {
        "profile": "info-heavy",
        "hold_s": 10,
        "result": {
            "steps": {
                "200": {"requests": 2000, "latency_ms": {"p50": 1.0, "p99": 5.0}},
                "400": {"requests": 3500, "latency_ms": {"p50": 30.0, "p99": 900.0}},
                "ramp": {"requests": 10, "latency_ms": {"p50": 1.0, "p99": 1.0}},
            }
        },
    }

    def test_a_step_up_gives_a_point_per_held_step(self) -> None:
        assert plot.points(self.STEPS) == [
            plot.Point(200, 1.0, 5.0, 200.0),
            plot.Point(400, 30.0, 900.0, 350.0),
        ]
        assert plot.points(self.FIXED) == [plot.Point(500, 2.0, 9.0, 499.0)]

    def test_fixed_runs_and_step_ups_plot_to_one_png(self, tmp_path: Path) -> None:
        target = plot.plot_runs([self.FIXED, self.STEPS], tmp_path / "latency.png")
        assert target.read_bytes().startswith(b"\x89PNG")


class TestRatioTable:
    def test_ratios_are_of_the_medians_net_of_idle(self) -> None:
        tallies = {
            "bare": Tally(0.0, [250, 240, 260], [250, 240, 260], [2, 2, 2]),
            "untraced": Tally(0.0, [800, 790, 810], [800, 790, 810], [5, 5, 5]),
        }
        rows = ratio_table(tallies).splitlines()
        assert "| 800 | 800 / 790 / 810 | 800 | 0.0% | 3.20 | 3.20 |" in rows[3]


class TestK6Scripts:
    def test_the_command_never_phones_home_and_streams_only_when_asked(self) -> None:
        quiet = K6Run("info-heavy.js", {"RATE": "10"}, Path("s.json"), "t1")
        assert "--no-usage-report" in quiet.command() and "--out" not in quiet.command()
        assert quiet.environment()["K6_NO_USAGE_REPORT"] == "true"
        streamed = K6Run("info-heavy.js", {}, Path("s.json"), "t1", "http://127.0.0.1:9090/")
        assert "experimental-prometheus-rw" in streamed.command()
        env = streamed.environment()
        assert env["K6_PROMETHEUS_RW_SERVER_URL"] == "http://127.0.0.1:9090/api/v1/write"

    @pytest.mark.parametrize(
        ("script", "executor"),
        [("info-heavy.js", "constant-arrival-rate"), ("write-heavy.js", "constant-arrival-rate"),
         ("auth-storm.js", "constant-arrival-rate"), ("info-only.js", "constant-arrival-rate"),
         ("step-up.js", "ramping-arrival-rate")],
    )  # fmt: skip
    def test_every_profile_is_an_open_model_with_the_slo_as_thresholds(
        self, script: str, executor: str, tmp_path: Path
    ) -> None:
        users = tmp_path / "users.json"
        users.write_text(json.dumps({"users": USERS}))
        inspected = subprocess.run(
            [k6_binary(), "inspect", "-e", f"USERS_FILE={users}", "-e", "RATE=500",
             "-e", "STEPS=100:300:100", str(SCRIPTS / script)],
            capture_output=True, text=True, check=True,
            env=dict(os.environ, K6_NO_USAGE_REPORT="true"),
        )  # fmt: skip
        options = json.loads(inspected.stdout)
        [scenario] = options["scenarios"].values()
        assert scenario["executor"] == executor
        thresholds = options["thresholds"]
        assert thresholds["http_req_duration"] == ["p(99)<=50"]
        assert thresholds["http_req_failed"] == ["rate<=0.0001"]
        assert thresholds["dropped_iterations"] == ["count==0"]
        # A drop must mean MAX_VUS in flight, not a VU still starting (k6 drops, then starts one).
        expected_vus = 200 if script == "step-up.js" else 250  # rate / 2, at least 200
        assert scenario["preAllocatedVUs"] == scenario["maxVUs"] == expected_vus
        if script == "step-up.js":
            assert [s["target"] for s in scenario["stages"]] == [100, 100, 200, 200, 300, 300]
        else:
            assert scenario["rate"] == 500

    def test_every_mix_uses_operations_both_k6_and_the_tank_ammo_know(self) -> None:
        library = (SCRIPTS / "lib.js").read_text()
        known_in_js = set(re.findall(r"^  (\w+)\(\) \{", library, re.MULTILINE))
        for name, weights in tank.mixes().items():
            assert sum(weights.values()) == 100, name
            assert set(weights) <= known_in_js & set(tank.OPERATIONS), name


def parse_http(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    return first, dict(line.split(": ", 1) for line in lines), body


class TestTankAmmo:
    @pytest.mark.parametrize("profile", sorted(tank.mixes()))
    def test_every_request_of_every_profile_is_well_formed_http(self, profile: str) -> None:
        requests = tank.requests_of(profile, "localhost:8080", USERS)
        for _ in range(200):
            op, raw = next(requests)
            first, headers, body = parse_http(raw)
            method, path, version = first.split(" ")
            assert version == "HTTP/1.1" and headers["Host"] == "localhost:8080"
            if method == "POST":
                assert int(headers["Content-Length"]) == len(body)
                json.loads(body)
            if op not in ("login", "signup"):
                assert re.fullmatch(r"Bearer t[123]", headers["Authorization"])

    def test_the_mix_follows_its_weights(self) -> None:
        requests = tank.requests_of("write-heavy", "h", USERS)
        ops = [next(requests)[0] for _ in range(5000)]
        assert 0.15 < ops.count("info") / 5000 < 0.25
        assert 0.35 < ops.count("send") / 5000 < 0.45

    def test_transfers_never_target_the_sender(self) -> None:
        requests = tank.requests_of("write-heavy", "h", USERS)
        for op, raw in (next(requests) for _ in range(500)):
            if op == "send":
                _, headers, body = parse_http(raw)
                assert json.loads(body)["toUser"] != f"load-{headers['Authorization'][-1]}"

    def test_phantom_records_read_back_as_written(self) -> None:
        raws = [b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n", b"POST / HTTP/1.1\r\n\r\n{}\n"]
        ammo = b"".join(tank.phantom_record(f"op{i}", raw) for i, raw in enumerate(raws))
        assert list(tank.read_phantom(ammo)) == [("op0", raws[0]), ("op1", raws[1])]


WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:1/api/info
  Latency Distribution
     50%  812.00us
     75%    1.10ms
     90%    1.62ms
     99%    4.31ms
  26601 requests in 4.00s, 9.1MB read
  Non-2xx or 3xx responses: 3
"""


def test_wrk_output_gives_requests_and_percentiles() -> None:
    figures = wrkrun.parse(WRK_OUTPUT)
    assert figures["requests"] == 26601 and figures["non_2xx"] == 3
    assert math.isclose(figures["p50"], 0.812) and math.isclose(figures["p99"], 4.31)


def test_pgbench_scripts_bind_every_placeholder_of_the_services_sql() -> None:
    for name, text in scripts().items():
        assert "%(" not in text, name
        assert text.count("\n") == 3  # two \\set lines and one statement line
    assert "WITH already AS" in scripts()["send"]
