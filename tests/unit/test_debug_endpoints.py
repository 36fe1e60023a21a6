"""/debug on a bare Flask app in this process: no gevent, so no peer sockets (one worker).

The real two-worker server is exercised in tests/e2e/test_profiling.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from observability import heap, profiling
from tests import pprof_reader

TOKEN = "unit-debug-token"
DEBUG = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    app = Flask(__name__)
    profiling.init_app(app, TOKEN)
    yield app.test_client()
    heap.stop_tracing()


class TestGuard:
    def test_everything_is_404_without_a_token(self) -> None:
        app = Flask(__name__)
        profiling.init_app(app, None)
        assert app.test_client().get("/debug/pprof/", headers=DEBUG).status_code == 404

    @pytest.mark.parametrize("given", ["", "Bearer nope", TOKEN, f"Bearer {TOKEN}x"])
    def test_a_wrong_token_is_401(self, client: FlaskClient, given: str) -> None:
        reply = client.get("/debug/pprof/", headers={"Authorization": given})
        assert reply.status_code == 401


class TestTargets:
    def test_the_index_names_this_process_as_the_only_worker(self, client: FlaskClient) -> None:
        text = client.get("/debug/pprof/", headers=DEBUG).get_data(as_text=True)
        assert f"answered by worker pid {os.getpid()}\nworkers: {os.getpid()}\n" in text

    def test_own_pid_is_answered_here(self, client: FlaskClient) -> None:
        reply = client.get(f"/debug/pprof/heap?pid={os.getpid()}&format=json", headers=DEBUG)
        assert reply.status_code == 200 and reply.headers["X-Profiled-Pid"] == str(os.getpid())

    def test_another_pid_is_404(self, client: FlaskClient) -> None:
        assert client.get("/debug/pprof/heap?pid=1", headers=DEBUG).status_code == 404

    @pytest.mark.parametrize("query", ["workers=some", "pid=-1", "pid=1&workers=all", "format=x"])
    def test_bad_targets_are_400(self, client: FlaskClient, query: str) -> None:
        assert client.get(f"/debug/pprof/allocs?{query}", headers=DEBUG).status_code == 400

    def test_all_workers_is_this_one_rooted_by_pid(self, client: FlaskClient) -> None:
        reply = client.get("/debug/pprof/heap?workers=all&format=pprof", headers=DEBUG)
        assert reply.headers["Content-Disposition"] == "attachment; filename=heap.pb.gz"
        parsed = pprof_reader.read(reply.data)
        assert {names[-1] for names, _ in parsed.samples} == {f"pid {os.getpid()}"}

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("cmdline", " ".join(sys.argv)),  # pytest's, or an xdist worker's
            ("heap?stop=1", "stopped"),
        ],
    )
    def test_text_endpoints_of_all_workers_are_sectioned_by_pid(
        self, client: FlaskClient, path: str, expected: str
    ) -> None:
        sep = "&" if "?" in path else "?"
        text = client.get(f"/debug/pprof/{path}{sep}workers=all", headers=DEBUG).get_data(True)
        assert text.startswith(f"=== pid {os.getpid()} ===") and expected in text


class TestCpuProfile:
    def test_a_second_profile_in_the_same_worker_is_409(self, client: FlaskClient) -> None:
        with profiling._profile_lock:
            reply = client.get("/debug/pprof/profile?seconds=1", headers=DEBUG)
        assert reply.status_code == 409

    @pytest.mark.parametrize("query", ["hz=0", "hz=1001", "seconds=61", "seconds=1.5"])
    def test_bad_numbers_are_400(self, client: FlaskClient, query: str) -> None:
        assert client.get(f"/debug/pprof/profile?{query}", headers=DEBUG).status_code == 400

    def test_a_profile_in_html_is_one_page(self, client: FlaskClient) -> None:
        reply = client.get("/debug/pprof/profile?seconds=1&format=html", headers=DEBUG)
        assert reply.status_code == 200 and reply.content_type.startswith("text/html")
        assert f"pid {os.getpid()}" in reply.get_data(as_text=True)
