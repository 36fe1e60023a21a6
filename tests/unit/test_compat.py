"""The private names of libraries the service relies on (observability/compat.py) still work.

A failure here after an upgrade names what moved: fix observability/compat.py, or pin the
library back, before anything else.
"""

from __future__ import annotations

import importlib
import inspect
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Request, g, request
from opentelemetry import context
from sqlalchemy.pool import QueuePool

from observability import compat
from observability.compat import SEAMS, Seam


def sqlite_connection() -> Any:
    return sqlite3.connect(":memory:")


def located(seam: Seam) -> Any:
    where = f"{seam.module}.{seam.name}"
    try:
        module = importlib.import_module(seam.module)
    except ImportError as error:
        pytest.fail(f"{seam.module} is gone ({error}); needed for: {seam.why}")
    found: Any = module
    for part in seam.name.split("."):
        assert hasattr(found, part), f"{where} is gone; needed for: {seam.why}"
        found = getattr(found, part)
    return found


class TestSeamsExist:
    @pytest.mark.parametrize("seam", SEAMS, ids=lambda seam: f"{seam.module}.{seam.name}")
    def test_the_name_is_there_with_the_parameters_we_pass(self, seam: Seam) -> None:
        found = located(seam)
        if seam.params is None:
            return
        where = f"{seam.module}.{seam.name}"
        assert callable(found), f"{where} is no longer callable; needed for: {seam.why}"
        params = tuple(inspect.signature(found).parameters)
        assert params[: len(seam.params)] == seam.params, (
            f"{where} now takes {params}, observability/compat.py passes {seam.params}"
        )


class TestSeamsBehave:
    def test_the_agnostic_context_manager_works_with_and_as_a_decorator(self) -> None:
        entered: list[str] = []

        @compat.agnostic_contextmanager
        def scope(name: str) -> Iterator[str]:
            entered.append(name)
            yield name

        with scope("with") as value:
            assert value == "with"

        @scope("decorator")
        def work() -> int:
            return 1

        assert work() == 1
        assert entered == ["with", "decorator"]

    def test_the_suppression_key_is_a_context_key(self) -> None:
        token = context.attach(context.set_value(compat.SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            assert context.get_value(compat.SUPPRESS_INSTRUMENTATION_KEY) is True
        finally:
            context.detach(token)

    def test_the_pool_queue_is_swapped_and_still_lends_connections(self) -> None:
        class Marked(compat.PoolQueue[Any]):
            pass

        pool = QueuePool(sqlite_connection, pool_size=3, use_lifo=True)
        compat.swap_pool_queue(pool, Marked)
        assert isinstance(pool._pool, Marked)
        assert (pool._pool.maxsize, pool._pool.use_lifo) == (3, True)
        connection = pool.connect()
        connection.close()
        assert pool.checkedin() == 1

    def test_a_pool_holding_connections_is_not_swapped(self) -> None:
        pool = QueuePool(sqlite_connection, pool_size=1)
        pool.connect().close()
        with pytest.raises(RuntimeError, match="before it holds"):
            compat.swap_pool_queue(pool, compat.PoolQueue)

    def test_multiprocess_values_use_the_given_pid(self, tmp_path: Path) -> None:
        script = (
            "from observability import compat\n"
            "compat.use_multiprocess_values(lambda: 4242)\n"
            "from prometheus_client import Counter\n"
            "Counter('compat_probe', 'probe').inc()\n"
        )
        env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert [path.name for path in tmp_path.iterdir()] == ["counter_4242.db"]

    def test_the_current_object_is_the_request_itself(self) -> None:
        app = Flask(__name__)
        with app.test_request_context("/"):
            g.marker = 1
            assert type(compat.current_object(request)) is Request
            assert compat.current_object(g).marker == 1

    def test_the_embedded_postgres_programs_are_where_pgserver_keeps_them(self) -> None:
        assert (compat.postgres_bin_path() / "pg_ctl").exists()
