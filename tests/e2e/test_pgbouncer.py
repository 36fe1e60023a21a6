"""Two service instances behind a real PgBouncer in transaction mode: money stays safe.

PgBouncer (Debian's package) hands each transaction any server connection, so the service
must not rely on session state: DB_POOLER=pgbouncer turns off psycopg's prepared
statements and the startup options; PgBouncer's connect_query sets the timeouts and the
read-only default on each server connection instead.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import requests
from sqlalchemy.engine import Engine, make_url

from shop.launcher import GUNICORN
from tests.factories import assert_money_invariants, random_username
from tests.helpers import (
    ROOT,
    free_port,
    require_binary,
    server_env,
    shared_tmp_dir,
    stop,
    wait_until_up,
)

pytestmark = pytest.mark.e2e

# What the service's own connections would carry as startup options (db/engine.py).
CONNECT_QUERY = (
    "SET statement_timeout = 2000; SET lock_timeout = 500; SET default_transaction_read_only = on"
)


@pytest.fixture(scope="module")
def pgbouncer(database_url: str) -> Iterator[str]:
    """Start PgBouncer in front of the test database; return a URL that goes through it."""
    binary = require_binary("pgbouncer", "pgbouncer")
    target = make_url(database_url)
    workdir = shared_tmp_dir("shop-test-pgbouncer-")
    port = free_port()
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"shop = host={target.query['host']} dbname={target.database} user={target.username}"
        f" connect_query='{CONNECT_QUERY}'\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\ndefault_pool_size = 16\n"
        "max_client_conn = 200\nignore_startup_parameters = extra_float_digits\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    user = _unprivileged_user()  # PgBouncer refuses to run as root
    if user is not None:
        workdir.chmod(0o777)
    process = subprocess.Popen(
        [binary, str(workdir / "pgbouncer.ini")], user=user, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process)
        yield f"postgresql://{target.username}@127.0.0.1:{port}/shop"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root, and no unprivileged user to run PgBouncer as")


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen in time")


@pytest.fixture(scope="module")
def instances(
    pgbouncer: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two independent service instances (two workers each), both through PgBouncer."""
    urls, processes = [], []
    try:
        for index in range(2):
            env = server_env(DATABASE_URL=pgbouncer, JWT_SECRET=jwt_secret, DB_POOLER="pgbouncer")
            log = tmp_path_factory.mktemp(f"bounced-{index}") / "server.log"
            with log.open("wb") as out:
                process = subprocess.Popen(GUNICORN, env=env, cwd=ROOT, stdout=out, stderr=out)
            processes.append(process)
            urls.append(f"http://127.0.0.1:{env['PORT']}")
            wait_until_up(urls[-1], process)
        yield urls
    finally:
        for process in processes:
            stop(process)


def test_the_bank_invariant_holds_through_pgbouncer(
    instances: list[str], engine: Engine, jwt_secret: str
) -> None:
    # Enough users that eight clients rarely queue on one row: the pooler is under test here,
    # row contention is tests/e2e/test_faults.py's.
    names = [random_username() for _ in range(32)]
    tokens = {}
    for name in names:  # each user signs up on one instance and is served by both
        reply = requests.post(
            f"{random.choice(instances)}/api/auth",
            json={"username": name, "password": "pw"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        tokens[name] = {"Authorization": f"Bearer {reply.json()['token']}"}

    unanswered: list[str] = []

    def answered(call: Callable[[], requests.Response]) -> int:
        """Send until the answer is not a 503 (a client's retry; writes carry their key).

        A client's patience, not a count of tries: on a box shared with the rest of the
        suite, 503s came for more than 3 s in a row.
        """
        deadline = time.monotonic() + 60
        while True:
            reply = call()
            if reply.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if reply.status_code == 503:
            unanswered.append(reply.text)
        return reply.status_code

    def client(seed: int) -> list[int]:
        """Random buys and transfers on either instance, each followed by a read."""
        rng, session, statuses = random.Random(seed), requests.Session(), []
        for _ in range(40):
            sender, recipient = rng.sample(names, 2)
            headers = {**tokens[sender], "Idempotency-Key": str(uuid.uuid4())}
            body = {"toUser": recipient, "amount": rng.randint(1, 40)}
            if rng.random() < 0.3:
                url = f"{rng.choice(instances)}/api/buy/pen"
                write = partial(session.get, url, headers=headers, timeout=10)
            else:
                url = f"{rng.choice(instances)}/api/sendCoin"
                write = partial(session.post, url, json=body, headers=headers, timeout=10)
            statuses.append(answered(write))
            url = f"{rng.choice(instances)}/api/info"
            statuses.append(answered(partial(session.get, url, headers=tokens[sender], timeout=10)))
        return statuses

    with ThreadPoolExecutor(8) as pool:
        statuses = [status for run in pool.map(client, range(8)) for status in run]

    # 400: not enough coins. A 503 (a lock or pooler wait past its budget on this busy box)
    # is retried above, writes with their key, so every request ends answered and every
    # write is applied at most once.
    assert unanswered == []
    assert set(statuses) <= {200, 400}, statuses
    assert statuses.count(200) > len(statuses) // 2
    with engine.connect() as conn:
        ids = list(
            conn.exec_driver_sql(
                "SELECT id FROM users WHERE username = ANY(%(names)s)", {"names": names}
            ).scalars()
        )
    assert_money_invariants(engine, ids)


def test_readiness_works_through_pgbouncer(instances: list[str]) -> None:
    for url in instances:
        assert requests.get(f"{url}/readyz", timeout=5).json() == {"status": "ready"}


def test_the_service_refuses_session_options_unless_told_it_is_behind_pgbouncer(
    pgbouncer: str,
) -> None:
    """Without DB_POOLER=pgbouncer the startup options are sent and PgBouncer refuses them:
    the setting is what makes the difference, not luck."""
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(pgbouncer, options="-c lock_timeout=500", connect_timeout=5).close()
