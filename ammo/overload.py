"""Graceful overload: find the capacity, then offer multiples of it (1.5x, 2x, 3x).

Capacity is the highest arrival rate whose run meets the SLO (p99 <= --p99-ms, at most
0.01% failed, nothing dropped): the kit steps up by --step until a run misses, then halves
the last step down to --resolution. A shared box's noisy neighbours fail single runs: a rate
that misses is tried --retries more times before it counts as missed, and an overload run
during which the hypervisor stole more than --max-steal of the box is run again as often
(the table keeps the least disturbed one).

Each overload run reports what a client and an operator see: goodput (200s per second), the
p99 of served answers and of refusals (503), answers that never came (k6 status 0), arrivals
k6 dropped (all its VUs busy), the service's own p99 from its access log, its 503s by reason,
CPU per served and per refused request, how much of the box the hypervisor stole meanwhile,
and with --capture the latency on the wire (tcpdump on the loopback device: which side of a
difference between k6's clock and the service's the time lives on).

CPU per served request is the service's CPU over its requests in the run at capacity (where
nothing is refused); CPU per refusal is what the service counts itself
(``shop_admission_refusal_cpu_seconds_total``, from reading a request to writing its 503)
over the requests its workers refused at the door.
"""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ammo import capacity, seed, serverlog, wire
from ammo.bench import Bench
from ammo.commands import groups, seconds, target, url_of
from ammo.plot import plot_overload
from ammo.report import meets_slo
from ammo.service import LocalService

REFUSED = "503"
NO_ANSWER = "0"  # k6's status when the request timed out or the connection broke
DOOR_REASONS = ("event_loop", "in_flight")  # refused by the worker before the app


def default_cpus() -> tuple[str, str]:
    """Split this machine's CPUs: the first half for the service, the rest for k6."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "", ""
    half = len(cpus) // 2
    return ",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:]))


def measure_rate(
    bench: Bench,
    service: LocalService | None,
    url: str,
    users: Path,
    rate: float,
    name: str,
) -> dict[str, Any]:
    """Warm up, then hold ``rate``; add the service's own view (log, 503 reasons)."""
    args = bench.args
    variables = {
        "BASE_URL": url,
        "USERS_FILE": str(users),
        "RATE": f"{rate:g}",
        "SLO_P99_MS": f"{args.p99_ms:g}",
        # Little's law: VUs for --vu-seconds of latency at this rate; a slower service makes
        # k6 drop arrivals (counted) rather than run hundreds of idle VUs, whose scheduling
        # on one core added hundreds of ms to what k6 measured at 2,100 req/s.
        "MAX_VUS": str(max(50, round(rate * args.vu_seconds))),
    }
    if args.warmup:
        bench.k6(f"{args.profile}.js", variables | {"DURATION": seconds(args.warmup)}, "warmup")
    offset = service.log_path.stat().st_size if service else 0
    before = serverlog.scrape(url)
    port = urlsplit(url).port or 80
    capture = None
    if args.capture:
        capture = wire.Capture(port, bench.out / f"{name}.pcap", bench.k6_cpus).start()
    run = bench.measure(
        f"{args.profile}.js",
        variables | {"DURATION": seconds(args.duration)},
        name,
        groups(bench, service),
        args.duration,
    )
    if capture is not None:
        run["capture"] = capture.stop()
        run["wire"] = wire.digest(capture.path, port)
        capture.path.unlink()  # tens of MB per run; the digest is what is kept
    if service is not None:
        run["server"] = serverlog.digest(serverlog.lines_since(service.log_path, offset)[0])
    grown = serverlog.difference(serverlog.scrape(url), before)
    run["unavailable"] = serverlog.unavailable(grown)
    run["queue_buckets"] = grown
    run |= {"profile": args.profile, "rate": rate, "users": args.users, "label": args.label}
    run["invariants"] = bench.invariants()
    return run


def figures(run: dict[str, Any], duration: float, served_cpu_us: float | None) -> dict[str, Any]:
    """The overload figures of one run, from the client's and the service's side."""
    result = run["result"]
    statuses = result.get("statuses", {})
    count = {status: s["requests"] for status, s in statuses.items()}
    refused, lost = count.get(REFUSED, 0), count.get(NO_ANSWER, 0)
    served = result["requests"] - refused - lost
    server = run.get("server", {})
    server_ok = server.get("statuses", {}).get("200", {})
    client_ok = statuses.get("200", {}).get("latency_ms", {})
    found: dict[str, Any] = {
        "offered": run["rate"],
        "goodput": count.get("200", 0) / duration,
        "served_per_s": served / duration,
        "refused_per_s": refused / duration,
        "no_answer": lost,
        "dropped": result["dropped"],
        "seconds": duration,
        "p99_200_ms": client_ok.get("p99"),
        "max_200_ms": client_ok.get("max"),
        "p99_503_ms": statuses.get(REFUSED, {}).get("latency_ms", {}).get("p99"),
        "max_ms": result["latency_ms"]["max"],
        "server_p99_200_ms": server_ok.get("p99"),
        "server_max_ms": server.get("latency_ms", {}).get("max"),
        "queue_p99_ms": server.get("queue_ms", {}).get("p99"),
        # Refusals are not in the access log (a line each would cost the CPU that is short).
        "refused_queue_p99_ms": serverlog.queue_quantile(
            run.get("queue_buckets", {}), "refused", 0.99
        ),
        "unavailable": run.get("unavailable", {}),
        "cpu_us_served": None,
        "cpu_us_refused": None,
        "stolen": steal_share(run),
        "wire_p99_200_ms": run.get("wire", {}).get("200", {}).get("p99"),
        "wire_p99_503_ms": run.get("wire", {}).get("503", {}).get("p99"),
    }
    found["cpu_us_served"] = served_cpu_us
    refused_at_door = sum(v for k, v in found["unavailable"].items() if k in DOOR_REASONS)
    if refused_at_door:
        spent = run.get("queue_buckets", {}).get("refusal_cpu_seconds", 0.0)
        found["cpu_us_refused"] = spent / refused_at_door * 1e6
    return found


def steal_share(run: dict[str, Any]) -> float:
    """Share of the box's CPU time the hypervisor gave to other guests during the run."""
    cpu, wall = run["cpu_seconds"], run.get("wall_seconds") or 0
    cores = os.cpu_count() or 1
    return cpu.get("box_steal", 0.0) / wall / cores if wall else 0.0


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


COLUMNS = (
    "offered req/s", "× capacity", "200/s (goodput)", "% of capacity", "503/s", "no answer",
    "dropped by k6",
    "p99 200s ms", "p99 503s ms", "client max ms", "service p99 200s ms", "service ÷ client",
    "queue p99 ms admitted / refused", "wire p99 ms 200s / 503s", "CPU µs served / refused",
    "503 reasons", "stolen",
)  # fmt: skip


def overload_row(capacity_rate: float, row: dict[str, Any]) -> list[str]:
    """The cells of one run's row (see COLUMNS)."""
    ratio = "–"
    if row["server_p99_200_ms"] and row["p99_200_ms"]:
        ratio = f"{row['server_p99_200_ms'] / row['p99_200_ms']:.2f}"
    served, refused = row["cpu_us_served"], row["cpu_us_refused"]
    cpu = " / ".join("–" if us is None else f"{us:.0f}" for us in (served, refused))
    return [
        f"{row['offered']:g}",
        f"{row['offered'] / capacity_rate:.2f}",
        f"{row['goodput']:.0f}",
        f"{row['goodput'] / capacity_rate:.0%}",
        f"{row['refused_per_s']:.0f}",
        str(row["no_answer"]),
        str(row["dropped"]),
        _ms(row["p99_200_ms"]),
        _ms(row["p99_503_ms"]),
        f"{row['max_ms']:.0f}",
        _ms(row["server_p99_200_ms"]),
        ratio,
        f"{_ms(row['queue_p99_ms'])} / ≤ {_ms(row['refused_queue_p99_ms'])}",
        f"{_ms(row.get('wire_p99_200_ms'))} / {_ms(row.get('wire_p99_503_ms'))}",
        cpu,
        ", ".join(f"{k} {v}" for k, v in row["unavailable"].items()) or "–",
        f"{row['stolen']:.0%}",
    ]


def overload_table(capacity_rate: float, rows: list[dict[str, Any]]) -> str:
    """One row per run: the issue's table, plus the service's side and CPU."""
    lines = [
        f"capacity {capacity_rate:g} req/s (p99 <= SLO, nothing failed or dropped)",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(overload_row(capacity_rate, row)) + " |" for row in rows]
    return "\n".join(lines)


def cmd_overload(args: argparse.Namespace) -> int:
    if args.service_cpus is None and args.k6_cpus is None:
        args.service_cpus, args.k6_cpus = default_cpus()
    with ExitStack() as stack:
        bench = Bench(args, stack)
        service = target(bench, args, **({"source": args.source} if args.source else {}))
        url = url_of(args, service)
        users = bench.users_file(url, args.users)
        pinned = f"service on CPUs {args.service_cpus or 'any'}, k6 on {args.k6_cpus or 'any'}"
        seed.progress(pinned)
        passing: dict[float, dict[str, Any]] = {}

        def probe(rate: float) -> bool:
            for attempt in range(1 + args.retries):
                run = measure_rate(bench, service, url, users, rate, f"climb-{rate:g}-{attempt}")
                run["phase"] = "climb"
                bench.record(run)
                ok = meets_slo(run["result"], args.p99_ms)
                seed.progress(
                    f"{rate:g} req/s: p99 {run['result']['latency_ms']['p99']:.1f} ms, "
                    f"{run['result']['failed']} failed, {run['result']['dropped']} dropped, "
                    f"{steal_share(run):.0%} of the box stolen: "
                    f"{'meets' if ok else 'misses'} the SLO"
                )
                if ok:
                    passing[rate] = run
                    return True
            return False

        if args.capacity:  # the run at the given capacity is the reference, met or not
            found: float | None = args.capacity
            reference = measure_rate(bench, service, url, users, args.capacity, "capacity")
            bench.record(reference | {"phase": "capacity"})
            passing[args.capacity] = reference
        else:
            found = capacity.climb(probe, args.start, args.step, args.ceiling, args.resolution)
        if found is None:
            print(f"no capacity: {args.start:g} req/s already misses the SLO", flush=True)
            return 1
        at_capacity = passing[found]
        served_cpu_us = at_capacity["cpu_us_per_request"].get("service")
        rows = [figures(at_capacity, args.duration, served_cpu_us)]
        for multiple in args.multiples:
            rate = round(found * multiple)
            tries = []
            for attempt in range(1 + args.retries):
                run = measure_rate(bench, service, url, users, rate, f"overload-{multiple:g}x")
                run |= {"phase": "overload", "attempt": attempt}
                run["overload"] = figures(run, args.duration, served_cpu_us)
                bench.record(run)
                tries.append(run["overload"])
                seed.progress(overload_table(found, tries[-1:]).splitlines()[-1])
                if run["overload"]["stolen"] <= args.max_steal:
                    break
            rows.append(min(tries, key=lambda row: row["stolen"]))
        print(overload_table(found, rows), flush=True)
        plot = plot_overload(found, rows, bench.out / "overload.png")
    print(f"plot: {plot}\nresults: {bench.out}", flush=True)
    return 0
