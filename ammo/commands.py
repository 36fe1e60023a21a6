"""What each ``python -m ammo`` command does (the parser is in ``__main__``)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ammo import capacity, seed
from ammo.bench import Bench
from ammo.cpu import process_tree
from ammo.report import meets_slo, step_table, table
from ammo.service import LocalService
from ammo.variants import Variant, parse_variant


def parse_rates(text: str) -> list[float]:
    """'500,1000' or 'start:stop:step' (inclusive)."""
    if ":" in text:
        start, stop, step = (float(x) for x in text.split(":"))
        count = int((stop - start) / step + 1e-9) + 1
        return [start + i * step for i in range(count)]
    return [float(x) for x in text.split(",")]


def seconds(value: float) -> str:
    return f"{value:g}s"


def groups(bench: Bench, service: LocalService | None) -> dict[str, Any]:
    """CPU groups of a run: the service's processes, PostgreSQL, the trace sink."""
    found: dict[str, Any] = {"postgres": bench.postgres_pids} if bench.postgres_pids() else {}
    if service is not None:
        found |= {"service": service.server_pids, "trace_sink": service.sink_pids}
    elif getattr(bench.args, "service_pid", None):
        found["service"] = lambda: process_tree(bench.args.service_pid)
    return found


def target(bench: Bench, args: argparse.Namespace, **options: Any) -> LocalService | None:
    """Start the service unless --url names a running one."""
    if args.url:
        return None
    return bench.start_service(tracing=not args.no_tracing, workers=args.workers, **options)


def url_of(args: argparse.Namespace, service: LocalService | None) -> str:
    """The service to drive: --url, else the one ``target`` started."""
    if args.url:
        return str(args.url)
    assert service is not None, "target() starts a service when --url is not given"
    return service.url


def profile_run(
    bench: Bench,
    url: str,
    users: Path,
    rate: float,
    args: Any,
    service: LocalService | None,
    label: str = "",
) -> dict[str, Any]:
    """Warm up, then measure ``profile`` at ``rate``; check invariants; record and print."""
    profile = args.profile
    variables = {"BASE_URL": url, "USERS_FILE": str(users), "RATE": f"{rate:g}"}
    if getattr(args, "p99_ms", None):
        variables["SLO_P99_MS"] = f"{args.p99_ms:g}"
    if args.warmup:
        bench.k6(f"{profile}.js", variables | {"DURATION": seconds(args.warmup)}, "warmup")
    name = "-".join(filter(None, [label, profile, f"{rate:g}"]))
    run = bench.measure(
        f"{profile}.js",
        variables | {"DURATION": seconds(args.duration)},
        name,
        groups(bench, service),
        args.duration,
    )
    run |= {"profile": profile, "rate": rate, "users": args.users, "label": label or args.label}
    run["invariants"] = bench.invariants()
    bench.record(run)
    print(table(run), flush=True)
    return run


def cmd_run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        bench = Bench(args, stack)
        service = target(bench, args)
        url = url_of(args, service)
        users = bench.users_file(url, args.users)
        for rate in parse_rates(args.rates):
            profile_run(bench, url, users, rate, args, service)
    print(f"results: {bench.out}", flush=True)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    args.url = args.url or "http://127.0.0.1:8080"
    with ExitStack() as stack:
        bench = Bench(args, stack)
        print(bench.users_file(args.url, args.users))
    return 0


def cmd_stepup(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        bench = Bench(args, stack)
        service = target(bench, args)
        url = url_of(args, service)
        users = bench.users_file(url, args.users)
        variables = {
            "BASE_URL": url,
            "USERS_FILE": str(users),
            "MIX": args.profile,
            "STEPS": args.steps,
            "HOLD": seconds(args.hold),
            "RAMP": seconds(args.ramp),
        }
        steps = parse_rates(args.steps)
        total = len(steps) * (args.hold + args.ramp)
        run = bench.measure(
            "step-up.js", variables, f"stepup-{args.profile}", groups(bench, service), total
        )
        run |= {
            "profile": f"step-up {args.profile}",
            "rate": max(steps),
            "hold_s": args.hold,
            "users": args.users,
            "label": args.label,
        }
        run["invariants"] = bench.invariants()
        bench.record(run)
        print(step_table(run, args.hold), flush=True)
    print(f"results: {bench.out}", flush=True)
    return 0


def variants_of(args: argparse.Namespace, default: tuple[str, ...]) -> list[Variant]:
    return [parse_variant(v) for v in (args.variant or default)]


def cmd_capacity(args: argparse.Namespace) -> int:
    found: dict[str, float | None] = {}
    with ExitStack() as stack:
        bench = Bench(args, stack)
        for variant in variants_of(args, ("untraced", "traced")):
            with ExitStack() as per_variant:
                service = bench.start_service(
                    variant.label,
                    env=variant.env,
                    stack=per_variant,
                    tracing=variant.tracing,
                    workers=args.workers,
                    bare=variant.bare,
                    source=variant.source,
                )
                users = bench.users_file(service.url, args.users)

                def probe(
                    rate: float,
                    label: str = variant.label,
                    service: LocalService = service,
                    users: Path = users,
                ) -> bool:
                    run = profile_run(bench, service.url, users, rate, args, service, label)
                    return meets_slo(run["result"], args.p99_ms)

                found[variant.label] = capacity.search(probe, args.low, args.high, args.resolution)
                seed.progress(f"capacity of {variant.label}: {found[variant.label]} req/s")
    for label, rate in found.items():
        print(
            f"{label}: capacity {rate if rate is not None else f'< {args.low:g}'} req/s "
            f"({args.profile}, p99 <= {args.p99_ms:g} ms, nothing dropped)"
        )
    first = next(iter(found.values()))
    for label, rate in list(found.items())[1:]:
        if first and rate:
            print(f"{label} / {next(iter(found))}: {rate / first:.2f}")
    print(f"results: {bench.out}", flush=True)
    return 0
