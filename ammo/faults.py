"""Measurements under faults and attacks (issue 8): a hot row, and password guessing.

    python -m ammo hot-row --rate 300 --duration 20      # one row locked, others under load
    python -m ammo brute-force --duration 10             # guesses allowed per second

Each prints a table and appends its record to ``runs.jsonl`` in the session's directory.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import requests

from ammo import seed
from ammo.bench import Bench
from ammo.commands import groups, seconds

# As in the measurement: 41 requests queued on the one locked row.
HAMMERS = 40


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def hammer(
    url: str, headers: dict[str, str], body: dict[str, Any], stop: threading.Event
) -> list[tuple[int, float]]:
    """Send the same transfer back to back until ``stop``; return (status, seconds) pairs."""
    session, seen = requests.Session(), []
    while not stop.is_set():
        started = time.monotonic()
        try:
            status = session.post(f"{url}/api/sendCoin", json=body, headers=headers, timeout=30)
            code = status.status_code
        except requests.RequestException:
            code = 0
        seen.append((code, time.monotonic() - started))
    return seen


def cmd_hot_row(args: argparse.Namespace) -> int:
    """Unrelated users' latency (k6, open model) with and without one user's row locked."""
    with ExitStack() as stack:
        bench = Bench(args, stack)
        service = bench.start_service("hot-row", workers=args.workers, tracing=False)
        assert bench.engine is not None, "hot-row needs the database (not --url alone)"
        ids = seed.seed_users(bench.engine, args.users + 1, bench.settings())
        users = bench.users_file(service.url, args.users)  # k6 acts as load-1 .. load-N only
        hot_token = seed.mint_tokens(bench.settings(), [ids[args.users + 1]])[0]
        variables = {"BASE_URL": service.url, "USERS_FILE": str(users), "RATE": f"{args.rate:g}"}
        variables["DURATION"] = seconds(args.duration)
        if args.warmup:
            bench.k6("info-heavy.js", variables | {"DURATION": seconds(args.warmup)}, "warmup")
        measure = bench.measure
        runs = {"free": measure("info-heavy.js", variables, "free", groups(bench, service),
                                args.duration)}  # fmt: skip
        stop = threading.Event()
        with bench.engine.connect() as locker, locker.begin():
            locker.exec_driver_sql(
                "SELECT 1 FROM users WHERE id = %(id)s FOR UPDATE", {"id": ids[args.users + 1]}
            )
            headers = {"Authorization": f"Bearer {hot_token}"}
            body = {"toUser": f"{seed.PREFIX}1", "amount": 1}
            with ThreadPoolExecutor(HAMMERS) as pool:
                loops = [
                    pool.submit(hammer, service.url, headers, body, stop) for _ in range(HAMMERS)
                ]
                runs["locked"] = bench.measure(
                    "info-heavy.js", variables, "locked", groups(bench, service), args.duration
                )
                stop.set()
                hot = [answer for loop in loops for answer in loop.result()]
            waiting = waiting_on_locks(bench)
        record = {
            "name": "hot-row",
            "rate": args.rate,
            "duration_s": args.duration,
            "unrelated": {name: run["result"] for name, run in runs.items()},
            "hot": hot_summary(hot),
            "backends_waiting_on_locks_before_unlock": waiting,
            "invariants": bench.invariants(),
        }
        bench.record(record)
        print_hot_row(record)
    print(f"results: {bench.out}", flush=True)
    return 0


def waiting_on_locks(bench: Bench) -> int:
    """Count the service's backends still waiting on a lock (the hammers have stopped)."""
    assert bench.engine is not None
    time.sleep(1.5)  # client_connection_check_interval is 1 s
    with bench.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'shop' AND wait_event_type = 'Lock'"
            ).scalar_one()
        )


def hot_summary(answers: list[tuple[int, float]]) -> dict[str, Any]:
    latencies = [seconds for _, seconds in answers]
    return {
        "requests": len(answers),
        "statuses": dict(Counter(status for status, _ in answers)),
        "p50_s": round(percentile(latencies, 0.50), 3),
        "p99_s": round(percentile(latencies, 0.99), 3),
        "max_s": round(max(latencies, default=0.0), 3),
    }


def print_hot_row(record: dict[str, Any]) -> None:
    print("| run | requests | p50 ms | p99 ms | max ms | failed | dropped |")
    print("|---|---|---|---|---|---|---|")
    for name, result in record["unrelated"].items():
        latency = result["latency_ms"]
        print(
            f"| unrelated users, row {name} | {result['requests']} | {latency['p50']:.1f} | "
            f"{latency['p99']:.1f} | {latency['max']:.1f} | {result['failed']} | "
            f"{result['dropped']} |"
        )
    hot = record["hot"]
    print(
        f"\nhot user ({HAMMERS} loops): {hot['requests']} answers {hot['statuses']}, "
        f"p50 {hot['p50_s']} s, p99 {hot['p99_s']} s, max {hot['max_s']} s; backends still "
        f"waiting on locks: {record['backends_waiting_on_locks_before_unlock']}"
    )


def cmd_brute_force(args: argparse.Namespace) -> int:
    """Guess one user's password from 48 connections: how many guesses get checked?"""
    with ExitStack() as stack:
        bench = Bench(args, stack)
        # One trusted proxy hop: X-Forwarded-For names the guessing "client" address.
        service = bench.start_service(
            "brute-force", workers=args.workers, tracing=False, env={"TRUSTED_PROXY_HOPS": "1"}
        )
        password, home = "right password", "10.0.0.1"
        record: dict[str, Any] = {"name": "brute-force", "duration_s": args.duration}
        for scenario, address in (
            ("one address", lambda: "203.0.113.5"),
            ("a new address per guess", random_address),
        ):
            victim = f"victim-{uuid.uuid4().hex[:8]}"  # one per scenario: counts stay apart
            assert login(service.url, victim, password, home) == 200  # home is now known
            record[scenario] = guess(service.url, victim, password, home, address, args.duration)
        bench.record(record)
        print_brute_force(record)
    print(f"results: {bench.out}", flush=True)
    return 0


def login(url: str, name: str, password: str, address: str) -> int:
    body = {"username": name, "password": password}
    headers = {"X-Forwarded-For": address, "Connection": "close"}
    try:
        return requests.post(f"{url}/api/auth", json=body, headers=headers, timeout=30).status_code
    except requests.RequestException:
        return 0


def random_address() -> str:
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"  # noqa: S311


def guess(
    url: str,
    victim: str,
    password: str,
    home: str,
    address: Callable[[], str],
    duration: float,
) -> dict[str, Any]:
    """48 guessing loops for ``duration`` s while the owner logs in from home each second."""
    deadline = time.monotonic() + duration

    def guesser() -> Counter[int]:
        seen: Counter[int] = Counter()
        while time.monotonic() < deadline:
            seen[login(url, victim, uuid.uuid4().hex, address())] += 1
        return seen

    def owner() -> list[int]:
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(login(url, victim, password, home))
            time.sleep(1)
        return statuses

    with ThreadPoolExecutor(49) as pool:
        guessers = [pool.submit(guesser) for _ in range(48)]
        owner_run = pool.submit(owner)
        statuses: Counter[int] = sum((g.result() for g in guessers), Counter())
        owner_statuses = owner_run.result()
    return {
        "statuses": dict(statuses),
        "checked_per_s": round(statuses[401] / duration, 2),
        "owner": dict(Counter(owner_statuses)),
    }


def print_brute_force(record: dict[str, Any]) -> None:
    print("| guesses from | 401 (checked) | 429 (refused) | checked/s | owner from home |")
    print("|---|---|---|---|---|")
    for scenario in ("one address", "a new address per guess"):
        run = record[scenario]
        statuses = run["statuses"]
        print(
            f"| {scenario} | {statuses.get(401, 0)} | {statuses.get(429, 0)} | "
            f"{run['checked_per_s']} | {run['owner']} |"
        )
