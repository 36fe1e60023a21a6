"""Load-test kit. Run ``python -m ammo --help`` from the repository root (inside .venv).

python -m ammo run --profile info-heavy --rates 500,1000,1500 --duration 60
python -m ammo run --profile write-heavy --rates 200:2000:200 --duration 20   # step-up
python -m ammo history        # /api/info: 10,000-transfer user vs a fresh one
python -m ammo pgbench        # the same SQL straight into PostgreSQL: the ceiling
python -m ammo plot           # ammo/results/*.jsonl -> ammo/results/*.png
python -m ammo tank-ammo      # phantom ammo for yandex-tank (ammo/load.yaml)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ammo import seed
from ammo.invariants import check_money
from ammo.loadgen import LoadGenerator
from ammo.profiles import PROFILES, Users, request_source
from ammo.report import table, to_json
from ammo.service import ROOT, LocalService
from shop.db.embedded import EmbeddedPostgres
from shop.db.engine import sqlalchemy_url
from shop.db.migrate import upgrade
from shop.launcher import embedded_jwt_secret
from shop.settings import Settings

RESULTS = ROOT / "ammo" / "results"


def parse_rates(text: str) -> list[float]:
    """'500,1000' or 'start:stop:step' (inclusive)."""
    if ":" in text:
        start, stop, step = (float(x) for x in text.split(":"))
        rates = []
        while start <= stop + 1e-9:
            rates.append(start)
            start += step
        return rates
    return [float(x) for x in text.split(",")]


class Bench:
    """The database, settings, seeded users and (unless --url) the service for a session."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack, migrate: bool = True) -> None:
        self.args = args
        data_dir = Path(args.data_dir)
        if args.database_url:
            self.database_url = args.database_url
        else:
            database = EmbeddedPostgres(data_dir)
            self.database_url = database.start()
            stack.callback(database.stop)
        secret = args.jwt_secret or embedded_jwt_secret(data_dir)
        self.settings = Settings(database_url=self.database_url, jwt_secret=secret)
        self.engine = sa.create_engine(sqlalchemy_url(self.database_url))
        stack.callback(self.engine.dispose)
        if migrate:  # else the service under test migrates to its own head
            upgrade(self.engine)
        self.stack = stack

    def users(self, count: int) -> dict[int, int]:
        return seed.seed_users(self.engine, count, self.settings)

    def acting_users(self, count: int, host: str) -> Users:
        """Seed ``count`` users and mint a token for each, for requests to ``host``."""
        ids = self.users(count)
        numbers = sorted(ids)
        tokens = seed.mint_tokens(self.settings, [ids[n] for n in numbers])
        return Users(numbers, tokens, host.encode())

    def service_url(self) -> str:
        if self.args.url:
            return str(self.args.url)
        service = LocalService(
            self.database_url,
            self.settings.jwt_secret,
            RESULTS / "service.log",
            tracing=not self.args.no_tracing,
            extra_env=service_env(self.args),
            source=Path(getattr(self.args, "source", ROOT)).resolve(),
        ).start()
        self.stack.callback(service.stop)
        seed.progress(f"service up at {service.url} (log: {RESULTS / 'service.log'})")
        return service.url


def service_env(args: argparse.Namespace) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.env)


def drive(url: str, profile: str, users: Users, rate: float, duration: float) -> Any:
    host, port = url.removeprefix("http://").split(":")
    generator = LoadGenerator(host, int(port), request_source(profile, users))
    return asyncio.run(generator.run(rate, duration))


def record(run: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / f"{name}.jsonl").open("a") as out:
        out.write(json.dumps(run) + "\n")


def cmd_run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        bench = Bench(args, stack)
        url = bench.service_url()
        users = bench.acting_users(args.users, url.removeprefix("http://"))
        for rate in parse_rates(args.rates):
            if args.warmup:
                drive(url, args.profile, users, rate, args.warmup)
            result = drive(url, args.profile, users, rate, args.duration)
            run = to_json(args.profile, rate, result) | {"users": args.users, "label": args.label}
            print(table(run), flush=True)
            print("invariants:", check_money(bench.engine), flush=True)
            record(run, args.name or args.profile)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from ammo.cost import cpu_seconds, postmaster_pid, process_tree

    with ExitStack() as stack:
        bench = Bench(args, stack, migrate=False)
        service = LocalService(
            bench.database_url,
            bench.settings.jwt_secret,
            RESULTS / "service.log",
            tracing=not args.no_tracing,
            source=Path(args.source).resolve(),
            extra_env=service_env(args),
        ).start()
        stack.callback(service.stop)
        users = bench.acting_users(args.users, service.url.removeprefix("http://"))
        drive(service.url, args.profile, users, args.rate, args.warmup)
        app_pids = process_tree(service.pid)
        db_root = postmaster_pid(bench.database_url)
        db_pids = process_tree(db_root) if db_root else []
        app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
        result = drive(service.url, args.profile, users, args.rate, args.duration)
        app_cpu = cpu_seconds(process_tree(service.pid)) - app_before
        db_cpu = cpu_seconds(process_tree(db_root) if db_root else []) - db_before
        run = to_json(args.profile, args.rate, result)
        done = run["overall"]["count"]
        cost = {
            "label": args.label,
            "source": args.source,
            "app_cpu_us_per_request": app_cpu / done * 1e6,
            "db_cpu_us_per_request": db_cpu / done * 1e6,
        }
        print(table(run), flush=True)
        print(
            f"{args.label}: service {cost['app_cpu_us_per_request']:.0f} us CPU/request, "
            f"PostgreSQL {cost['db_cpu_us_per_request']:.0f} us CPU/request",
            flush=True,
        )
        record(run | cost, "cost")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        bench = Bench(args, stack)
        ids = bench.users(max(args.peers + 1, 1001))
        heavy = seed.seed_heavy_history(bench.engine, ids, args.transfers, args.peers)
        fresh_n = max(ids)
        url = bench.service_url()
        host = url.removeprefix("http://").encode()
        rows = {}
        for label, uid, n in (("fresh user", ids[fresh_n], fresh_n), ("heavy history", heavy, 0)):
            users = Users([n], seed.mint_tokens(bench.settings, [uid]), host)
            drive(url, "info-only", users, args.rate, 5)
            run = to_json(
                f"info, {label}",
                args.rate,
                drive(url, "info-only", users, args.rate, args.duration),
            )
            rows[label] = run
            print(table(run), flush=True)
            record(run | {"label": label, "build": args.label}, "history")
        ratio = rows["heavy history"]["overall"]["p50_ms"] / rows["fresh user"]["overall"]["p50_ms"]
        ratio99 = (
            rows["heavy history"]["overall"]["p99_ms"] / rows["fresh user"]["overall"]["p99_ms"]
        )
        print(f"heavy/fresh latency ratio: p50 {ratio:.2f}x, p99 {ratio99:.2f}x", flush=True)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ammo.plot import plot_all

    for path in plot_all(RESULTS):
        print(path)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ammo.summary import summary

    print(summary(RESULTS))
    return 0


def cmd_pgbench(args: argparse.Namespace) -> int:
    from ammo.pgbench import run_pgbench

    with ExitStack() as stack:
        bench = Bench(args, stack)
        ids = bench.users(args.users)
        seeded = range(min(ids.values()), max(ids.values()) + 1)
        if len(seeded) != args.users:
            raise SystemExit("seeded user ids are not contiguous; use a fresh --data-dir")
        report = run_pgbench(bench.database_url, args.users, args.clients, args.duration, seeded)
        print(report, flush=True)
        tps = re.search(r"tps = ([\d.]+)", report)
        record(
            {
                "pgbench_tps": float(tps.group(1)) if tps else None,
                "clients": args.clients,
                "users": args.users,
                "duration_s": args.duration,
            },
            "pgbench",
        )
        print("invariants:", check_money(bench.engine), flush=True)
    return 0


def cmd_tank_ammo(args: argparse.Namespace) -> int:
    from ammo.tank import write_ammo

    with ExitStack() as stack:
        bench = Bench(args, stack)
        path = write_ammo(bench.acting_users(args.users, args.host), args.profile, args.count)
        print(f"wrote {args.count:,} requests to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ammo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        default=str(ROOT / ".data-bench"),
        help="embedded PostgreSQL for the benchmark (default .data-bench)",
    )
    parser.add_argument("--database-url", help="use this PostgreSQL instead of an embedded one")
    parser.add_argument("--jwt-secret", help="the service's secret (needed with --url)")
    parser.add_argument("--url", help="drive an already running service instead of starting one")
    parser.add_argument(
        "--no-tracing",
        action="store_true",
        help="start the service without an OTLP endpoint (default: with one)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service it starts (repeatable)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="drive a profile at fixed arrival rates")
    run.add_argument("--profile", choices=sorted(PROFILES), default="info-heavy")
    run.add_argument("--rates", default="500,1000,1500", help="'500,1000' or 'start:stop:step'")
    run.add_argument("--duration", type=float, default=60)
    run.add_argument("--warmup", type=float, default=10)
    run.add_argument("--users", type=int, default=100_000)
    run.add_argument("--name", help="results file name (default: the profile)")
    run.add_argument("--label", default="", help="free text stored with each result")
    run.set_defaults(func=cmd_run)

    history = commands.add_parser("history", help="info latency: long-history user vs fresh")
    history.add_argument("--transfers", type=int, default=10_000)
    history.add_argument("--peers", type=int, default=1_000)
    history.add_argument("--rate", type=float, default=200)
    history.add_argument("--duration", type=float, default=30)
    history.add_argument("--source", default=str(ROOT), help="a checkout of the service to measure")
    history.add_argument("--label", default="current", help="names the build in the results")
    history.set_defaults(func=cmd_history)

    cost = commands.add_parser("cost", help="CPU per request of service and PostgreSQL")
    cost.add_argument("--profile", choices=sorted(PROFILES), default="info-heavy")
    cost.add_argument("--rate", type=float, default=600)
    cost.add_argument("--duration", type=float, default=30)
    cost.add_argument("--warmup", type=float, default=10)
    cost.add_argument("--users", type=int, default=100_000)
    cost.add_argument("--source", default=str(ROOT), help="a checkout of the service to measure")
    cost.add_argument("--label", default="current")
    cost.set_defaults(func=cmd_cost)

    pgbench = commands.add_parser("pgbench", help="the service's SQL straight into PostgreSQL")
    pgbench.add_argument("--users", type=int, default=100_000)
    pgbench.add_argument("--clients", type=int, default=16)
    pgbench.add_argument("--duration", type=int, default=30)
    pgbench.set_defaults(func=cmd_pgbench)

    plot = commands.add_parser("plot", help="latency-vs-rate PNGs from ammo/results")
    plot.set_defaults(func=cmd_plot)

    summary = commands.add_parser("summary", help="markdown tables of ammo/results")
    summary.set_defaults(func=cmd_summary)

    tank = commands.add_parser("tank-ammo", help="write phantom ammo for yandex-tank")
    tank.add_argument("--profile", choices=sorted(PROFILES), default="info-heavy")
    tank.add_argument("--count", type=int, default=200_000)
    tank.add_argument("--users", type=int, default=100_000)
    tank.add_argument("--host", default="app:8080", help="Host header the ammo carries")
    tank.set_defaults(func=cmd_tank_ammo)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
