"""The wiring in shop/bootstrap.py: what gunicorn's master imports, and the build's gauge."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine

import observability
from observability import scrape
from observability.service import service_version
from shop import bootstrap
from shop.settings import Settings
from tests.helpers import ROOT

# Must not be imported before gevent patches a worker (psycopg would block it), nor be
# worth the master's memory in every forked worker.
WORKER_ONLY = ("flask", "sqlalchemy", "psycopg", "prometheus_client", "gevent", "shop.api")
MASTER = f"""
import runpy, sys
runpy.run_path({str(ROOT / "shop" / "gunicorn_conf.py")!r})
print(" ".join(m for m in {WORKER_ONLY!r} if m in sys.modules))
"""
# Two workers of one build publish the gauge, then a third process serves /metrics.
WORKER = "from observability import metrics; metrics.publish_build_info('1.2.3', 'abc123')"
SCRAPE = """
from flask import Flask
from observability import scrape
app = Flask("scrape")
app.register_blueprint(scrape.bp)
print(app.test_client().get("/metrics").get_data(as_text=True))
"""


def run(script: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def build_info_lines(exposition: str) -> list[str]:
    return [line for line in exposition.splitlines() if line.startswith("shop_build_info{")]


class TestGunicornMaster:
    def test_the_config_imports_nothing_that_must_wait_for_gevent(self, tmp_path: Path) -> None:
        loaded = run(MASTER, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
        assert loaded.split() == []


class TestBuildRevision:
    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({}, "unknown"),
            ({"SHOP_BUILD_REVISION": " "}, "unknown"),
            ({"SHOP_BUILD_REVISION": "f00d"}, "f00d"),
        ],
    )
    def test_comes_from_the_build_argument_else_unknown(
        self, env: dict[str, str], expected: str
    ) -> None:
        assert bootstrap.build_revision(env) == expected


class TestVersion:
    def test_comes_from_the_build_argument(self) -> None:
        assert service_version({"SHOP_VERSION": "1.4.1"}) == "1.4.1"

    @pytest.mark.parametrize("env", [{}, {"SHOP_VERSION": " "}])
    def test_is_the_installed_package_s_without_it(self, env: dict[str, str]) -> None:
        assert service_version(env) == metadata.version("shop")


class TestBuildInfo:
    def test_the_app_publishes_its_version_and_revision_on_metrics(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SHOP_BUILD_REVISION", "cafe42")
        monkeypatch.setenv("SHOP_VERSION", "1.4.1")
        monkeypatch.setattr(observability, "init_observability", lambda app, settings, engine: None)
        app = Flask(__name__)
        app.register_blueprint(scrape.bp)
        settings = Settings(
            database_url="postgresql://unused/shop", jwt_secret=secrets.token_hex(32)
        )
        bootstrap.install_observability(app, settings, create_engine("sqlite://"))
        text = app.test_client().get("/metrics").get_data(as_text=True)
        expected = 'shop_build_info{revision="cafe42",version="1.4.1"} 1.0'
        assert expected in build_info_lines(text)

    def test_workers_of_one_build_show_one_series_in_multiprocess_mode(
        self, tmp_path: Path
    ) -> None:
        env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        for _ in range(2):
            run(WORKER, env)
        lines = build_info_lines(run(SCRAPE, env))
        assert lines == ['shop_build_info{revision="abc123",version="1.2.3"} 1.0']
