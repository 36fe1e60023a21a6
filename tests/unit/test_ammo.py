"""The load-test kit: request building, HTTP parsing, statistics, pgbench and tank files."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from ammo.loadgen import LoadGenerator, Outcome, content_length
from ammo.pgbench import scripts
from ammo.profiles import PROFILES, Users, request_source
from ammo.report import percentile, summarize
from ammo.summary import rate_table
from ammo.tank import phantom_record

USERS = Users(numbers=[1, 2, 3], tokens=[b"t1", b"t2", b"t3"], host=b"localhost:8080")


def parse(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return first, headers, body


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_request_of_every_profile_is_well_formed_http(profile: str) -> None:
    next_request = request_source(profile, USERS)
    for _ in range(200):
        label, raw = next_request()
        first, headers, body = parse(raw)
        method, path, version = first.split(" ")
        assert version == "HTTP/1.1" and headers["Host"] == "localhost:8080"
        assert label.startswith(method)
        if method == "POST":
            assert int(headers["Content-Length"]) == len(body)
            json.loads(body)
        if "auth" not in path:
            assert re.fullmatch(r"Bearer t[123]", headers["Authorization"])


def test_profile_mix_follows_its_weights() -> None:
    next_request = request_source("write-heavy", USERS)
    labels = [next_request()[0] for _ in range(5000)]
    assert 0.15 < labels.count("GET /api/info") / 5000 < 0.25
    assert 0.35 < labels.count("POST /api/sendCoin") / 5000 < 0.45


def test_transfers_never_target_the_sender() -> None:
    next_request = request_source("write-heavy", USERS)
    for _ in range(500):
        label, raw = next_request()
        if label == "POST /api/sendCoin":
            _, headers, body = parse(raw)
            sender = int(headers["Authorization"][-1])
            assert json.loads(body)["toUser"] != f"load-{sender}"


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"http/1.1 200 ok\r\ncontent-type: a\r\ncontent-length: 123\r\nserver: g", 123),
        (b"http/1.1 200 ok\r\ncontent-length: 7", 7),
        (b"http/1.1 204 no content", 0),
    ],
)
def test_content_length_is_read_from_the_head(head: bytes, length: int) -> None:
    assert content_length(head) == length


def test_percentiles_and_share_under_50ms() -> None:
    outcome = Outcome(latencies=[i / 1000 for i in range(1, 101)])  # 1..100 ms
    outcome.statuses[200] = 99
    outcome.statuses[503] = 1
    summary = summarize(outcome)
    assert summary["p50_ms"] == pytest.approx(51)
    assert summary["p99_ms"] == pytest.approx(100)
    assert summary["under_50ms"] == pytest.approx(0.5)
    assert summary["5xx"] == 1
    assert percentile([], 50) != percentile([], 50)  # NaN when nothing completed


def test_pgbench_scripts_bind_every_placeholder_of_the_services_sql() -> None:
    for name, text in scripts().items():
        assert "%(" not in text, name
        assert text.count("\n") == 3  # two \set lines and one statement line
    assert "WITH already AS" in scripts()["send"]


def test_phantom_records_carry_their_exact_size() -> None:
    raw = b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n"
    record = phantom_record("GET /api/info", raw)
    size, tag = record.split(b"\n", 1)[0].split(b" ")
    assert int(size) == len(raw) and tag == b"GET_/api/info"
    assert record.endswith(raw + b"\n")


def test_generator_keeps_its_rate_against_a_real_server() -> None:
    """A real asyncio HTTP server on loopback answers; the generator paces and measures."""

    async def scenario() -> tuple[int, dict[int, int], int]:
        writers: list[asyncio.StreamWriter] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    await writer.drain()
            except asyncio.IncompleteReadError:
                pass

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        request = ("GET /", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        generator = LoadGenerator("127.0.0.1", port, lambda: request)
        result = await generator.run(rate=200, duration=1.0)
        server.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
        outcome = result.outcomes["GET /"]
        return result.sent, dict(outcome.statuses), len(outcome.latencies)

    sent, statuses, measured = asyncio.run(scenario())
    assert sent == 200
    assert statuses == {200: 200} and measured == 200


def _run(rate: float, p50: float, **names: str) -> dict[str, object]:
    overall = {
        "p50_ms": p50,
        "p90_ms": p50,
        "p99_ms": p50,
        "p99.9_ms": p50,
        "max_ms": p50,
        "under_50ms": 1.0,
        "5xx": 0,
        "errors": {},
        "statuses": {"200": 10},
    }
    return {
        "offered_rate": rate,
        "achieved_rate": rate,
        "generator_cpu_share": 0.1,
        "overall": overall,
        **names,
    }


def test_rate_table_names_runs_only_when_they_carry_a_name() -> None:
    plain = rate_table([_run(1000, 2.0), _run(500, 1.0)]).splitlines()
    assert plain[0].startswith("| offered req/s") and plain[2].startswith("| 500 |")

    named = rate_table(
        [_run(200, 3.0, build="before", label="heavy"), _run(200, 1.0, build="after", label="")]
    ).splitlines()
    assert named[0].startswith("| run | offered req/s")
    assert named[1].count("|---") == 13
    assert named[2].startswith("| before heavy | 200 |")
    assert named[3].startswith("| after | 200 |")  # file order kept within one rate
