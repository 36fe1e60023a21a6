"""The other commands: long-history latency, the pgbench ceiling, tank ammo, reports."""

from __future__ import annotations

import argparse
import json
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ammo import seed
from ammo.bench import Bench
from ammo.commands import groups, seconds, target, url_of
from ammo.report import step_table, table


def cmd_history(args: argparse.Namespace) -> int:
    """/api/info of a user with a long history against a fresh user's, same run, same box."""
    with ExitStack() as stack:
        bench = Bench(args, stack)
        assert bench.engine is not None, "history seeds through the database"
        ids = seed.seed_users(bench.engine, max(args.peers + 1, 1001), bench.settings())
        heavy = seed.seed_heavy_history(bench.engine, ids, args.transfers, args.peers)
        service = target(bench, args, source=Path(args.source).resolve())
        url = url_of(args, service)
        fresh = max(ids)
        rows: dict[str, dict[str, Any]] = {}
        for label, user_id, name in (
            ("fresh user", ids[fresh], f"{seed.PREFIX}{fresh}"),
            ("heavy history", heavy, seed.HEAVY_USER),
        ):
            token = seed.mint_tokens(bench.settings(), [user_id])
            users = seed.write_users_file(bench.out / f"{label}.json", [name], token)
            variables = {"BASE_URL": url, "USERS_FILE": str(users), "RATE": f"{args.rate:g}"}
            bench.k6("info-only.js", variables | {"DURATION": "5s"}, "warmup")
            variables["DURATION"] = seconds(args.duration)
            run = bench.measure(
                "info-only.js",
                variables,
                label.replace(" ", "-"),
                groups(bench, service),
                args.duration,
            )
            run |= {
                "profile": f"info, {label}",
                "rate": args.rate,
                "label": label,
                "build": args.label,
            }
            bench.record(run)
            rows[label] = run["result"]["latency_ms"]
            print(table(run), flush=True)
        for p in ("p50", "p99"):
            ratio = rows["heavy history"][p] / rows["fresh user"][p]
            print(f"heavy/fresh latency ratio {p}: {ratio:.2f}x", flush=True)
    return 0


def cmd_pgbench(args: argparse.Namespace) -> int:
    from ammo.pgbench import run_pgbench

    with ExitStack() as stack:
        bench = Bench(args, stack)
        assert bench.engine is not None and bench.database_url, "pgbench needs the database"
        ids = seed.seed_users(bench.engine, args.users, bench.settings())
        seeded = range(min(ids.values()), max(ids.values()) + 1)
        if len(seeded) != args.users:
            raise SystemExit("seeded user ids are not contiguous; use a fresh --data-dir")
        report = run_pgbench(bench.database_url, args.users, args.clients, args.duration, seeded)
        print(report, flush=True)
        tps = re.search(r"tps = ([\d.]+)", report)
        bench.record(
            {
                "pgbench_tps": float(tps.group(1)) if tps else None,
                "clients": args.clients,
                "users": args.users,
                "duration_s": args.duration,
                "invariants": bench.invariants(),
            }
        )
    return 0


def cmd_tank_ammo(args: argparse.Namespace) -> int:
    """Phantom ammo whose tokens the service at --url accepts (checked before writing)."""
    from ammo.tank import write_ammo

    args.url = args.url or "http://127.0.0.1:8080"
    with ExitStack() as stack:
        bench = Bench(args, stack)
        users = json.loads(bench.users_file(args.url, args.users).read_text())["users"]
        host = args.host or args.url.split("://", 1)[1].rstrip("/")
        path = write_ammo(args.profile, host, users, args.count, Path(args.ammo))
        print(f"wrote {args.count:,} requests of {args.profile} for {host} to {path}")
    return 0


def load_runs(paths: list[str]) -> list[dict[str, Any]]:
    """Read runs.jsonl files (or directories holding one)."""
    runs = []
    for given in paths:
        path = Path(given)
        path = path / "runs.jsonl" if path.is_dir() else path
        runs += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return runs


def cmd_report(args: argparse.Namespace) -> int:
    """Markdown tables of recorded runs and, with --plot, a latency-vs-rate PNG."""
    runs = [run for run in load_runs(args.paths) if "result" in run]
    for run in runs:
        if "hold_s" in run:  # a step-up: one row per step
            print(f"{run['profile']}\n{step_table(run, run['hold_s'])}\n", flush=True)
        else:
            print(table(run) + "\n", flush=True)
    if args.plot and runs:
        from ammo.plot import plot_runs

        print(plot_runs(runs, Path(args.plot)))
    return 0
