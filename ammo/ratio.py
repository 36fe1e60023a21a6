"""CPU per ``/api/info`` request of one worker, per build, in one run on one box.

Every variant (see ``ammo.variants``) runs as its own one-worker server at the same time; the
rounds then drive each in turn, in a rotating order, at the same fixed arrival rate, so slow
drifts of a shared machine fall on every variant alike. A worker's CPU while idle (timers,
heartbeats, background checks) is measured first and reported apart: at a low rate it is a
visible share of the per-request figure.

Two generators, two questions: ``k6`` (default) offers a fixed arrival rate, the service's
cost at an operating point; ``wrk`` saturates each worker with a keep-alive closed loop, the
cheapest a request gets (the event loop batches work), which is how the framework-floor
figures of issue 11 were taken. Ratios differ between the two: compare like with like.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ammo import seed, wrkrun
from ammo.bench import Bench
from ammo.commands import groups, seconds, variants_of
from ammo.cpu import CpuMeter, per_request_us
from ammo.service import LocalService
from ammo.variants import rotated


@dataclass
class Tally:
    """One variant's measurements over the rounds."""

    idle_cpu_per_s: float = 0.0
    us_per_request: list[float] = field(default_factory=list)
    net_us_per_request: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)


def idle_cpu_per_second(pids: list[int], seconds_: float) -> float:
    """CPU seconds per second the processes use with no requests at all."""
    meter = CpuMeter({"idle": lambda: pids})
    meter.start()
    time.sleep(seconds_)
    return meter.stop()["idle"] / seconds_


def cmd_ratio(args: argparse.Namespace) -> int:
    variants = variants_of(args, ("bare", "untraced", "traced"))
    tallies = {v.label: Tally() for v in variants}
    with ExitStack() as stack:
        bench = Bench(args, stack)
        services = {
            v.label: bench.start_service(
                v.label, workers=1, bare=v.bare, tracing=v.tracing, source=v.source, env=v.env
            )
            for v in variants
        }
        shop = next((s for s in services.values() if not s.bare), None)
        users = bench.users_file((shop or next(iter(services.values()))).url, args.users)
        for label, service in services.items():
            drive(bench, args, service, users, f"warmup-{label}", args.warmup)
        for label, service in services.items():
            tallies[label].idle_cpu_per_s = idle_cpu_per_second(service.worker_pids(), args.idle)
        for number in range(args.rounds):
            for variant in rotated(variants, number):
                service, tally = services[variant.label], tallies[variant.label]
                name = f"{variant.label}-round{number}"
                run = drive(bench, args, service, users, name, args.duration)
                requests = max(1, run["result"]["requests"])
                idle_us = tally.idle_cpu_per_s * args.duration / requests * 1e6
                run |= {
                    "profile": "info-only",
                    "generator": args.generator,
                    "rate": args.rate if args.generator == "k6" else None,
                    "variant": variant.label,
                    "round": number,
                    "label": args.label,
                    "worker_idle_cpu_per_s": tally.idle_cpu_per_s,
                    "worker_net_us_per_request": run["cpu_us_per_request"]["worker"] - idle_us,
                }
                bench.record(run)
                tally.us_per_request.append(run["cpu_us_per_request"]["worker"])
                tally.net_us_per_request.append(run["worker_net_us_per_request"])
                tally.p99_ms.append(run["result"]["latency_ms"]["p99"])
                seed.progress(f"round {number} {variant.label}: {tally.us_per_request[-1]:.0f} µs")
    print(ratio_table(tallies), flush=True)
    print(f"results: {bench.out}", flush=True)
    return 0


def drive(
    bench: Bench,
    args: argparse.Namespace,
    service: LocalService,
    users: Path,
    name: str,
    duration: float,
) -> dict[str, Any]:
    """Load one service's /api/info with the chosen generator; return the measured run."""
    meters = {"worker": service.worker_pids, **groups(bench, service)}
    if args.generator == "k6":
        variables = {"BASE_URL": service.url, "USERS_FILE": str(users),
                     "RATE": f"{args.rate:g}", "DURATION": seconds(duration)}  # fmt: skip
        return bench.measure("info-only.js", variables, name, meters, duration)
    tokens = users.with_suffix(".tokens")
    if not tokens.exists():
        tokens.write_text("\n".join(u["token"] for u in json.loads(users.read_text())["users"]))
    meter = CpuMeter(meters)
    meter.start()
    figures = wrkrun.run(service.url, tokens, duration, args.connections)
    cpu = meter.stop() | {"wrk": figures["cpu_seconds"]}
    requests = int(figures["requests"])
    nan = float("nan")
    result = {
        "requests": requests, "achieved_rate": requests / duration, "failed": 0, "dropped": 0,
        "non_2xx": int(figures["non_2xx"]),
        "latency_ms": {"p50": figures["p50"], "p90": nan, "p99": figures["p99"],
                       "p99.9": nan, "max": nan},
    }  # fmt: skip
    return {"name": name, "result": result, "cpu_seconds": cpu,
            "cpu_us_per_request": per_request_us(cpu, requests)}  # fmt: skip


def ratio_table(tallies: dict[str, Tally]) -> str:
    """Median worker CPU per request of each variant, and its ratios to the others."""
    net = {label: statistics.median(t.net_us_per_request) for label, t in tallies.items()}
    first = next(iter(net))
    lines = [
        f"| variant | worker µs/request | each round | net of idle | idle CPU | × {first} "
        "(net) | × previous row (net) | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    previous = None
    for label, tally in tallies.items():
        rounds = " / ".join(f"{v:.0f}" for v in tally.us_per_request)
        vs_previous = f"{net[label] / net[previous]:.2f}" if previous else ""
        lines.append(
            f"| {label} | {statistics.median(tally.us_per_request):.0f} | {rounds} | "
            f"{net[label]:.0f} | {tally.idle_cpu_per_s:.1%} | {net[label] / net[first]:.2f} | "
            f"{vs_previous} | {statistics.median(tally.p99_ms):.1f} |"
        )
        previous = label
    return "\n".join(lines)
