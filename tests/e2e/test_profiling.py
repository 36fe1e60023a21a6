"""/debug of a real two-worker gunicorn: every profile format under load, per pid, all workers."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from observability.stacks import StackProfile
from tests import pprof_reader
from tests.factories import random_username
from tests.helpers import DEBUG_TOKEN, Server, eventually

pytestmark = pytest.mark.e2e
DEBUG = {"Authorization": f"Bearer {DEBUG_TOKEN}"}
# Our request-serving code: a view and the data layer below it.
OWN_CODE = ("shop/api/", "shop/db/")
CPU_FORMATS = ("speedscope", "collapsed", "html", "pprof", "json")
PROFILE = {"seconds": "2", "hz": "250"}


def fresh(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send on a new connection, so the kernel may hand it to either worker."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=30, **kwargs)


def debug(server: Server, path: str, **params: str) -> requests.Response:
    return fresh("GET", f"{server.url}/debug/pprof/{path}", headers=DEBUG, params=params)


def live_pids(server: Server) -> list[int]:
    index = debug(server, "").text
    line = next(line for line in index.splitlines() if line.startswith("workers: "))
    return [int(pid) for pid in line.removeprefix("workers: ").split(", ")]


def socket_dir(server: Server) -> Path:
    """The fixture's PROMETHEUS_MULTIPROC_DIR is ``metrics`` next to the server log."""
    return server.log_path.parent / "metrics" / "debug"


class Load:
    """Keep both workers busy with /api/info on new connections, which spread over them.

    Raw sockets, not requests: the client must not be the bottleneck, or the workers idle
    and a profile holds few samples.
    """

    def __init__(self, server: Server, threads: int = 4) -> None:
        name = random_username()
        reply = fresh("POST", f"{server.url}/api/auth", json={"username": name, "password": "pw"})
        self.request = (
            "GET /api/info HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n"
            f"Authorization: Bearer {reply.json()['token']}\r\n\r\n"
        ).encode()
        host, port = server.url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.stop = threading.Event()
        self.statuses: list[bytes] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop.is_set():
            with socket.create_connection(self.address, timeout=10) as connection:
                connection.sendall(self.request)
                answer = chunk = connection.recv(65536)
                while chunk:
                    chunk = connection.recv(65536)
            self.statuses.append(answer[9:12])

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        assert set(self.statuses) == {b"200"}, set(self.statuses)


def weights_by_file(reply: requests.Response, fmt: str) -> list[tuple[set[str], int]]:
    """Return (files on the stack, weight) per stack, parsed from any CPU format."""
    if fmt == "speedscope":
        document = reply.json()
        frames = document["shared"]["frames"]
        (profile,) = document["profiles"]
        return [
            ({frames[i].get("file", "") for i in sample}, weight)
            for sample, weight in zip(profile["samples"], profile["weights"], strict=True)
        ]
    if fmt == "collapsed":
        stacks = [line.rsplit(" ", 1) for line in reply.text.splitlines()]
        return [({_file_of(label) for label in s.split(";")}, int(w)) for s, w in stacks]
    if fmt == "pprof":
        parsed = pprof_reader.read(reply.content)
        return [({parsed.files[n] for n in names}, v[-1]) for names, v in parsed.samples]
    if fmt == "json":
        profile = StackProfile.from_json(reply.json())
        return [({f.file for f in stack}, v[-1]) for stack, v in profile.samples.items()]
    raise AssertionError(f"no parser for {fmt}")


def _file_of(label: str) -> str:
    return label.rsplit(" (", 1)[1].split(":")[0] if " (" in label else ""


def share_of(stacks: list[tuple[set[str], int]], prefix: str) -> float:
    total = sum(weight for _, weight in stacks)
    mine = sum(w for files, w in stacks if any(f.startswith(prefix) for f in files))
    return mine / total if total else 0.0


class TestAccess:
    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
    @pytest.mark.parametrize(
        "path", ["", "heap", "allocs", "goroutine", "cmdline", "heap?pid=1", "profile?workers=all"]
    )
    def test_refuses_without_the_token(
        self, server: Server, headers: dict[str, str], path: str
    ) -> None:
        reply = fresh("GET", f"{server.url}/debug/pprof/{path}", headers=headers)
        assert reply.status_code == 401 and "errors" in reply.json()

    @pytest.mark.parametrize(
        "query",
        ["seconds=0", "seconds=61", "seconds=x", "format=svg", "workers=2", "pid=x",
         "pid=1&workers=all"],
    )  # fmt: skip
    def test_profile_refuses_bad_parameters(self, server: Server, query: str) -> None:
        reply = fresh("GET", f"{server.url}/debug/pprof/profile?{query}", headers=DEBUG)
        assert reply.status_code == 400 and reply.json()["errors"]

    def test_a_pid_that_is_no_worker_is_404(self, server: Server) -> None:
        reply = debug(server, "heap", pid="1")
        assert reply.status_code == 404 and "no live worker 1" in reply.json()["errors"]


@pytest.fixture(scope="module")
def profiles(server: Server) -> dict[str, requests.Response]:
    """One CPU profile per format (two at once, one per worker), then one of all workers.

    2 s at 250 Hz: enough samples that our frames show up even when the machine is shared
    and the workers get a fraction of a core.
    """
    pids = live_pids(server)
    rounds = [CPU_FORMATS[i : i + 2] for i in range(0, len(CPU_FORMATS), 2)]
    taken: dict[str, requests.Response] = {}
    with Load(server, threads=12), ThreadPoolExecutor(2) as pool:
        for formats in rounds:
            replies = pool.map(
                lambda job: debug(server, "profile", **PROFILE, format=job[0], pid=str(job[1])),
                zip(formats, pids, strict=False),
            )
            taken |= dict(zip(formats, replies, strict=True))
        taken["all"] = debug(server, "profile", **PROFILE, format="collapsed", workers="all")
    return taken


class TestCpuProfileUnderLoad:
    """Profiles taken while both workers serve /api/info, one per format."""

    @pytest.mark.parametrize("fmt", ["speedscope", "collapsed", "pprof", "json"])
    def test_every_format_carries_the_request_frames(
        self, profiles: dict[str, requests.Response], fmt: str
    ) -> None:
        reply = profiles[fmt]
        assert reply.status_code == 200, reply.text
        assert reply.headers["X-Profiled-Pid"].isdigit()
        stacks = weights_by_file(reply, fmt)
        for prefix in OWN_CODE:
            assert share_of(stacks, prefix) > 0, f"no {prefix} frame in the {fmt} profile"

    def test_html_shows_the_request_frames(self, profiles: dict[str, requests.Response]) -> None:
        assert profiles["html"].status_code == 200
        page = profiles["html"].text
        assert page.lstrip().lower().startswith("<!doctype html")
        for prefix in OWN_CODE:
            assert f"({prefix}" in page

    def test_speedscope_is_a_sampled_profile_in_nanoseconds(
        self, profiles: dict[str, requests.Response]
    ) -> None:
        document = profiles["speedscope"].json()
        assert "speedscope" in document["$schema"]
        (profile,) = document["profiles"]
        assert profile["type"] == "sampled" and profile["unit"] == "nanoseconds"
        assert profile["endValue"] == sum(profile["weights"]) > 0

    def test_go_tool_pprof_reads_our_frames(
        self, profiles: dict[str, requests.Response], tmp_path: Path
    ) -> None:
        path = tmp_path / "cpu.pb.gz"
        path.write_bytes(profiles["pprof"].content)
        report = pprof_reader.go_pprof("-top", "-cum", str(path))
        assert "Type: cpu" in report
        assert "shop.api." in report and "shop.db." in report

    def test_all_workers_come_back_rooted_by_pid(
        self, server: Server, profiles: dict[str, requests.Response]
    ) -> None:
        reply = profiles["all"]
        pids = sorted(int(pid) for pid in reply.headers["X-Profiled-Pid"].split(","))
        assert pids == sorted(live_pids(server))
        roots = {line.split(";", 1)[0] for line in reply.text.splitlines()}
        assert {f"pid {pid}" for pid in pids} <= roots
        for pid in pids:
            mine = [line for line in reply.text.splitlines() if line.startswith(f"pid {pid};")]
            assert any("(shop/api/" in line for line in mine), f"no request frames for {pid}"


class TestWorkers:
    def test_the_index_lists_both_workers(self, server: Server) -> None:
        assert len(live_pids(server)) == 2

    def test_pid_reaches_that_worker_whichever_answers(self, server: Server) -> None:
        for pid in live_pids(server):
            for _ in range(4):
                reply = debug(server, "allocs", pid=str(pid), format="json")
                assert reply.status_code == 200
                assert reply.headers["X-Profiled-Pid"] == str(pid)
                assert all(c.startswith(f"pid {pid}:") for c in reply.json()["comments"])

    def test_allocs_counts_from_the_previous_call_of_the_same_worker(self, server: Server) -> None:
        pid = str(live_pids(server)[-1])
        debug(server, "allocs", pid=pid)
        for _ in range(3):  # on new connections, answered by either worker
            text = debug(server, "allocs", pid=pid).text
            assert "first call" not in text and f"pid {pid}:" in text

    def test_one_cpu_profile_at_a_time_per_worker(self, server: Server) -> None:
        pid = str(live_pids(server)[0])
        with ThreadPoolExecutor(2) as pool:
            replies = list(
                pool.map(lambda _: debug(server, "profile", seconds="1", pid=pid), range(2))
            )
        assert sorted(r.status_code for r in replies) == [200, 409]

    def test_all_workers_leave_out_a_busy_one_and_say_so(self, server: Server) -> None:
        busy, other = live_pids(server)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(debug, server, "profile", seconds="2", pid=str(busy))
            eventually(
                lambda: "profiling.cpu_profile" in debug(server, "goroutine", pid=str(busy)).text,
                what="the first profile to start",
            )
            reply = debug(server, "profile", seconds="1", workers="all", format="pprof")
            assert running.result().status_code == 200
        assert reply.status_code == 200
        assert reply.headers["X-Profiled-Pid"] == str(other)
        assert reply.headers["X-Missing-Pids"] == str(busy)
        comments = pprof_reader.read(reply.content).comments
        assert any(c.startswith(f"pid {busy}: left out: a CPU profile is") for c in comments)

    def test_heap_of_all_workers_in_pprof_is_read_by_go(
        self, server: Server, tmp_path: Path
    ) -> None:
        reply = debug(server, "heap", workers="all", format="pprof")
        assert reply.status_code == 200
        parsed = pprof_reader.read(reply.content)
        assert parsed.sample_types == [("inuse_objects", "count"), ("inuse_space", "bytes")]
        for pid in live_pids(server):
            assert any(c.startswith(f"pid {pid}: tracemalloc traces") for c in parsed.comments)
        path = tmp_path / "heap.pb.gz"
        path.write_bytes(reply.content)
        assert "Type: inuse_space" in pprof_reader.go_pprof("-top", str(path))

    def test_heap_stop_reaches_every_worker(self, server: Server) -> None:
        text = debug(server, "heap", workers="all", stop="1").text
        for pid in live_pids(server):
            assert f"tracemalloc stopped in pid {pid}" in text

    def test_cmdline_answers_for_every_worker(self, server: Server) -> None:
        text = debug(server, "cmdline", workers="all").text
        for pid in live_pids(server):
            section = text.split(f"=== pid {pid} ===", 1)[1].split("=== pid", 1)[0]
            assert "gunicorn" in section

    def test_goroutine_counts_every_workers_greenlets_by_stack(self, server: Server) -> None:
        reply = debug(server, "goroutine", workers="all", format="collapsed")
        lines = reply.text.splitlines()
        for pid in live_pids(server):
            mine = [line for line in lines if line.startswith(f"pid {pid};")]
            assert any(line.startswith(f"pid {pid};[greenlet];") for line in mine)
            assert any(line.startswith(f"pid {pid};[thread ") for line in mine)

    def test_a_dead_workers_socket_is_forgotten(self, server: Server) -> None:
        stale = socket_dir(server) / "999999999.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(stale))  # bound, never listening: like a killed worker's socket
        assert 999999999 not in live_pids(server)
        assert not stale.exists()
