"""A load-test session: the database, seeded users with tokens, the service, k6 runs, records.

Everything a session writes goes under its ``--out`` directory (default
``.data-bench/results/<date-time>-<command>``, git-ignored): the users file k6 reads, k6's
summaries and logs, the service's log and ``runs.jsonl`` with one record per measured run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ammo import k6run, pinning, seed
from ammo.cpu import CpuMeter, per_request_us, postmaster_pid, process_tree
from ammo.invariants import check_money
from ammo.report import digest
from ammo.service import ROOT, LocalService
from shop.db.embedded import EmbeddedPostgres
from shop.db.engine import sqlalchemy_url
from shop.db.migrate import upgrade
from shop.launcher import embedded_jwt_secret
from shop.settings import Settings

DATA_DIR = ROOT / ".data-bench"


def default_out(command: str) -> Path:
    return DATA_DIR / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}"


class Bench:
    """What one ``python -m ammo`` command works with; closes everything on ``stack``."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args, self.stack = args, stack
        # Absolute: k6 resolves a relative path (the users file) against its script's folder.
        self.out = (Path(args.out) if args.out else default_out(args.command)).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.engine: sa.Engine | None = None
        self.database_url: str | None = args.database_url
        self.jwt_secret: str | None = args.jwt_secret
        self.service_cpus = pinning.parse_cpus(getattr(args, "service_cpus", None))
        self.k6_cpus = pinning.parse_cpus(getattr(args, "k6_cpus", None))
        pinning.pin([os.getpid()], self.k6_cpus)  # the kit's own work stays off the service
        if args.url and not args.database_url:
            return  # a running service we only reach over HTTP
        if not self.database_url:
            data_dir = Path(args.data_dir)
            database = EmbeddedPostgres(data_dir)
            self.database_url = database.start()
            stack.callback(database.stop)
            # Backends fork from the postmaster later and inherit its CPUs.
            pinning.pin(self.postgres_pids(), self.service_cpus)
            self.jwt_secret = self.jwt_secret or embedded_jwt_secret(data_dir)
        elif not args.url and not self.jwt_secret:
            self.jwt_secret = secrets.token_hex(32)  # for the service the kit starts
        self.engine = sa.create_engine(sqlalchemy_url(self.database_url))
        stack.callback(self.engine.dispose)
        upgrade(self.engine)

    @functools.cached_property
    def native_histograms(self) -> bool:
        """Whether --prometheus stores native histograms (checked once, on first use)."""
        if not self.args.prometheus:
            return False
        native = k6run.prometheus_features(self.args.prometheus)
        if not native:
            seed.progress("Prometheus lacks --enable-feature=native-histograms: k6 trends go as "
                          "statistics over the whole run (the dashboard's last row)")  # fmt: skip
        return native

    def settings(self) -> Settings:
        assert self.database_url and self.jwt_secret, "needs the database and the secret"
        return Settings(database_url=self.database_url, jwt_secret=self.jwt_secret)

    def start_service(
        self,
        label: str = "service",
        *,
        env: dict[str, str] | None = None,
        stack: ExitStack | None = None,
        **options: Any,
    ) -> LocalService:
        """Start the shop (or with bare=True the floor app) on the session's database.

        ``env`` adds to the ``--env`` settings; the service stops with ``stack`` (default:
        the session's).
        """
        settings = self.settings()
        extra_env = dict(item.split("=", 1) for item in self.args.env) | (env or {})
        service = LocalService(
            settings.database_url,
            settings.jwt_secret,
            self.out / f"{label}.log",
            extra_env=extra_env,
            cpus=self.service_cpus,
            sink_cpus=self.k6_cpus,
            **options,
        ).start()
        (stack or self.stack).callback(service.stop)
        seed.progress(f"{label} up at {service.url} (log: {service.log_path})")
        return service

    def users_file(self, url: str, count: int) -> Path:
        """Seed ``count`` users and write the tokens ``url`` accepts for k6."""
        numbers = list(range(1, count + 1))
        if self.engine is not None and self.jwt_secret:
            ids = seed.seed_users(self.engine, count, self.settings())
            tokens = seed.mint_tokens(self.settings(), [ids[n] for n in numbers])
        else:
            tokens = seed.login_tokens(url, numbers)
        seed.check_token_accepted(url, tokens[0])
        names = [f"{seed.PREFIX}{n}" for n in numbers]
        return seed.write_users_file(self.out / "users.json", names, tokens)

    def postgres_pids(self) -> list[int]:
        root = postmaster_pid(self.database_url) if self.database_url else None
        return process_tree(root) if root else []

    def k6(
        self, script: str, variables: dict[str, str], name: str, k6_pids: list[int] | None = None
    ) -> k6run.K6Outcome:
        """Run one k6 script, streaming to --prometheus if given."""
        run = k6run.K6Run(
            script,
            variables,
            self.out / f"{name}.summary.json",
            testid=f"{self.out.name}-{name}",
            prometheus_url=self.args.prometheus,
            native_histograms=self.native_histograms,
            cpus=self.k6_cpus,
        )
        return k6run.run(run, self.out / "k6.log")

    def measure(
        self,
        script: str,
        variables: dict[str, str],
        name: str,
        groups: dict[str, Any],
        duration_s: float,
    ) -> dict[str, Any]:
        """Run k6 once with CPU meters on ``groups``; return the digested record."""
        meter = CpuMeter(groups)
        meter.start()
        outcome = self.k6(script, variables, name)
        cpu = meter.stop()
        cpu["k6"] = outcome.cpu_seconds
        result = digest(outcome.summary, duration_s)
        return {
            "name": name,
            "script": script,
            "variables": {k: v for k, v in variables.items() if k != "USERS_FILE"},
            "result": result,
            "cpu_seconds": cpu,
            "cpu_us_per_request": per_request_us(cpu, result["requests"]),
            "k6_exit_code": outcome.returncode,
            "wall_seconds": outcome.wall_seconds,
        }

    def invariants(self) -> str | None:
        """Check the money invariants when the database is reachable."""
        if self.engine is None:
            return None
        summary = check_money(self.engine)
        seed.progress(f"invariants: {summary}")
        return summary

    def record(self, run: dict[str, Any]) -> None:
        """Append one run to ``runs.jsonl`` in the session's directory."""
        with (self.out / "runs.jsonl").open("a") as out:
            out.write(json.dumps(run) + "\n")
