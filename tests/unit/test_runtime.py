"""The start-up guard against a blocking psycopg under gevent (runs in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PATCH_AFTER_PSYCOPG = """
import psycopg
from gevent import monkey
monkey.patch_all()
from shop.runtime import check_gevent_compatible_driver
check_gevent_compatible_driver()
"""

PATCH_BEFORE_PSYCOPG = """
from gevent import monkey
monkey.patch_all()
import psycopg
from shop.runtime import check_gevent_compatible_driver
check_gevent_compatible_driver()
print(psycopg.waiting.wait.__name__)
"""


class TestGeventGuard:
    @pytest.mark.parametrize(
        ("script", "ok"), [(PATCH_BEFORE_PSYCOPG, True), (PATCH_AFTER_PSYCOPG, False)]
    )
    def test_the_guard_refuses_psycopg_imported_before_gevent_patching(
        self, script: str, ok: bool
    ) -> None:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
        assert (result.returncode == 0) is ok, result.stderr.decode()
        if not ok:
            assert b"RuntimeMisconfigured" in result.stderr
