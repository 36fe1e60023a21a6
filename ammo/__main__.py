"""Load-test kit on k6. Run ``python -m ammo --help`` from the repository root (in .venv).

python -m ammo run --profile info-heavy --rates 500,1000 --duration 60   # fixed open-model rates
python -m ammo stepup --profile write-heavy --steps 200:2000:200 --hold 20
python -m ammo capacity --profile info-heavy --variant untraced --variant traced
python -m ammo overload --profile info-heavy    # knee, then 1.5x, 2x, 3x; service and k6 pinned
python -m ammo ratio --rate 300 --rounds 3      # CPU/request: bare Flask, untraced, traced
python -m ammo history                          # /api/info: 10,000-transfer user vs a fresh one
python -m ammo pgbench                          # the same SQL straight into PostgreSQL
python -m ammo seed --url http://127.0.0.1:8080 # a users file for k6 run by hand
python -m ammo tank-ammo --url http://127.0.0.1:8080   # phantom ammo for yandex-tank
python -m ammo report .data-bench/results/<dir> --plot latency.png

Without --url the kit starts an embedded PostgreSQL under --data-dir and the service itself
(production observability: metrics, JSON logs, traces to a local OTLP sink unless
--no-tracing). Results go to --out (default .data-bench/results/<date-time>-<command>).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ammo import commands, faults, tools
from ammo.bench import DATA_DIR
from ammo.k6run import SCRIPTS
from ammo.overload import cmd_overload
from ammo.ratio import cmd_ratio
from ammo.tank import AMMO, mixes

PROFILES = sorted(mixes())


def common(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--data-dir", default=str(DATA_DIR), help="embedded PostgreSQL (default .data-bench)")
    add("--database-url", help="use this PostgreSQL instead of an embedded one")
    add(
        "--jwt-secret",
        help="with --database-url: sign tokens with the service's secret "
        "(without both, tokens come from the service's own /api/auth)",
    )
    add("--url", help="drive an already running service instead of starting one")
    add("--service-pid", type=int, help="with --url: the running server's pid, for its CPU")
    add("--out", help="directory for this session's results (default under .data-bench)")
    add("--prometheus", help="stream k6 metrics to this Prometheus (remote-write receiver on)")
    add(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the services the kit starts (repeatable)",
    )
    add("--label", default="", help="free text stored with each run")
    add("--service-cpus", help="pin the service and its PostgreSQL to these CPUs (e.g. 0)")
    add("--k6-cpus", help="pin k6, the trace sink and the kit itself to these CPUs (e.g. 1)")


def load(parser: argparse.ArgumentParser, users: int = 100_000) -> None:
    add = parser.add_argument
    add("--profile", choices=PROFILES, default="info-heavy")
    add("--duration", type=float, default=60, help="seconds measured per rate")
    add("--warmup", type=float, default=10, help="seconds of unmeasured load before each rate")
    add("--users", type=int, default=users)
    add("--workers", type=int, default=2, help="gunicorn workers of a service the kit starts")
    add("--no-tracing", action="store_true", help="start the service without an OTLP endpoint")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m ammo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="a profile at fixed arrival rates, CPU per component")
    run.add_argument("--rates", default="500,1000", help="'500,1000' or 'start:stop:step'")
    step = sub.add_parser("stepup", help="one k6 run ramping through arrival-rate steps")
    step.add_argument("--steps", default="200:1600:200", help="'start:stop:step' req/s")
    step.add_argument("--hold", type=float, default=20, help="seconds each step is held")
    step.add_argument("--ramp", type=float, default=2, help="seconds between steps")
    cap = sub.add_parser("capacity", help="highest rate with p99 within target, none dropped")
    cap.add_argument("--low", type=float, default=200)
    cap.add_argument("--high", type=float, default=2000)
    cap.add_argument("--resolution", type=float, default=25)
    cap.add_argument("--p99-ms", type=float, default=50)
    over = sub.add_parser("overload", help="capacity by stepping up, then 1.5x, 2x, 3x of it")
    over.add_argument("--start", type=float, default=100, help="first rate of the climb")
    over.add_argument("--step", type=float, default=100, help="req/s added per climb step")
    over.add_argument("--ceiling", type=float, default=3000, help="highest rate climbed to")
    over.add_argument("--resolution", type=float, default=25)
    over.add_argument("--p99-ms", type=float, default=50)
    over.add_argument("--retries", type=int, default=1, help="more tries of a missed rate")
    over.add_argument(
        "--max-steal",
        type=float,
        default=0.03,
        help="share of the box the hypervisor may steal before a run is tried again",
    )
    over.add_argument(
        "--source", type=Path, help="a checkout of the service to measure (another build)"
    )
    over.add_argument(
        "--capture", action="store_true", help="also time each request on the wire (tcpdump)"
    )
    over.add_argument(
        "--vu-seconds",
        type=float,
        default=0.15,
        help="k6 VUs per req/s offered (default 0.15: 315 VUs at 2,100 req/s)",
    )
    over.add_argument("--capacity", type=float, help="skip the climb: the capacity (req/s)")
    over.add_argument(
        "--multiples",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[1.5, 2.0, 3.0],
        help="offered load as multiples of the capacity (default 1.5,2,3)",
    )
    ratio = sub.add_parser("ratio", help="CPU per /api/info request of one worker, per build")
    ratio.add_argument("--rate", type=float, default=300)
    ratio.add_argument("--rounds", type=int, default=3)
    ratio.add_argument("--idle", type=float, default=5, help="seconds of idle CPU measured")
    ratio.add_argument(
        "--generator",
        choices=["k6", "wrk"],
        default="k6",
        help="k6: fixed --rate (open model); wrk: saturate each worker",
    )
    ratio.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    for command in (cap, ratio):
        command.add_argument(
            "--variant",
            action="append",
            metavar="LABEL[:KEY=VALUE,...]",
            help="bare, untraced, traced, or LABEL:env (see ammo/variants.py)",
        )
    history = sub.add_parser("history", help="info latency: long-history user vs fresh")
    history.add_argument("--transfers", type=int, default=10_000)
    history.add_argument("--peers", type=int, default=1_000)
    history.add_argument("--rate", type=float, default=200)
    history.add_argument("--source", default=".", help="a checkout of the service to measure")
    hot = sub.add_parser("hot-row", help="others' latency while one user's row is locked")
    hot.add_argument("--rate", type=float, default=300)
    brute = sub.add_parser("brute-force", help="password guesses checked per second")
    for command in (run, step, cap, over, ratio, history, hot, brute):
        common(command)
        load(command, users=1_000 if command in (over, ratio, history, hot) else 100_000)
    over.set_defaults(duration=20, warmup=5)
    ratio.set_defaults(duration=30, warmup=10)
    history.set_defaults(duration=30)
    hot.set_defaults(duration=20, warmup=5)
    brute.set_defaults(duration=10)

    pgbench = sub.add_parser("pgbench", help="the service's SQL straight into PostgreSQL")
    pgbench.add_argument("--users", type=int, default=100_000)
    pgbench.add_argument("--clients", type=int, default=16)
    pgbench.add_argument("--duration", type=int, default=30)
    seed = sub.add_parser("seed", help="write a users file (names and tokens) for k6")
    seed.add_argument("--users", type=int, default=1_000)
    tank = sub.add_parser("tank-ammo", help="phantom ammo for yandex-tank (ammo/load.yaml)")
    tank.add_argument("--profile", choices=PROFILES, default="info-heavy")
    tank.add_argument("--count", type=int, default=200_000)
    tank.add_argument("--users", type=int, default=1_000)
    tank.add_argument("--host", help="Host header (default: --url's host:port)")
    tank.add_argument("--ammo", default=str(AMMO), help=f"output file (default {AMMO})")
    for command in (pgbench, seed, tank):
        common(command)
    report = sub.add_parser("report", help="tables (and --plot PNG) of recorded runs")
    report.add_argument("paths", nargs="+", help="runs.jsonl files or result directories")
    report.add_argument("--plot", help="write a latency-vs-rate PNG here")

    handlers = {
        "run": commands.cmd_run,
        "stepup": commands.cmd_stepup,
        "capacity": commands.cmd_capacity,
        "overload": cmd_overload,
        "ratio": cmd_ratio,
        "seed": commands.cmd_seed,
        "history": tools.cmd_history,
        "hot-row": faults.cmd_hot_row,
        "brute-force": faults.cmd_brute_force,
        "pgbench": tools.cmd_pgbench,
        "tank-ammo": tools.cmd_tank_ammo,
        "report": tools.cmd_report,
    }
    for name, command in sub.choices.items():
        command.set_defaults(func=handlers[name])
    top.epilog = f"k6 scripts: {SCRIPTS}"
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
