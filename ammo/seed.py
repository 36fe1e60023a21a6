"""Load-test users and tokens the service under test accepts.

Two ways, for the two situations:

- **We own the database** (the kit started it, or ``--database-url``): users ``load-<n>`` are
  inserted straight into PostgreSQL, all with the password ``LOAD_PASSWORD`` and one argon2id
  hash of it (production parameters, computed once), so 100,000 users take seconds and a login
  as any of them costs a real verify; tokens are signed with the service's own JWT secret.
- **Only the service's URL is known** (``--url`` without ``--jwt-secret``): tokens come from the
  service itself, one ``POST /api/auth`` per user (which signs the user up on first use).

Either way one token is tried on ``GET /api/info`` before a run: a token the service rejects
stops the kit with a clear message instead of a run full of 401s.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shop.api.tokens import encode_token
from shop.db.transfers import TRANSFER
from shop.domain.rules import STARTING_BALANCE
from shop.security.passwords import Argon2Hasher
from shop.settings import Settings

LOAD_PASSWORD = "load-test-password"  # noqa: S105 - a throwaway test account password
PREFIX = "load-"
HEAVY_USER = "load-heavy-history"


def seed_users(engine: Engine, count: int, settings: Settings) -> dict[int, int]:
    """Ensure users load-1..load-N exist; return {n: user id}."""
    started = time.perf_counter()
    hasher = Argon2Hasher(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    with engine.begin() as conn:
        present = conn.execute(
            sa.text("SELECT count(*) FROM users WHERE username LIKE 'load-%' AND username <> :h"),
            {"h": HEAVY_USER},
        ).scalar_one()
        if present < count:
            conn.execute(
                sa.text(
                    "INSERT INTO users (username, password_hash, balance) "
                    "SELECT 'load-' || n, :hash, :balance FROM generate_series(1, :count) AS n "
                    "ON CONFLICT (username) DO NOTHING"
                ),
                {"hash": hasher.hash(LOAD_PASSWORD), "balance": STARTING_BALANCE, "count": count},
            )
        rows = conn.execute(
            sa.text(
                "SELECT id, substr(username, 6)::int AS n FROM users "
                "WHERE username ~ '^load-[0-9]+$' AND substr(username, 6)::int <= :count"
            ),
            {"count": count},
        )
        ids = {row.n: row.id for row in rows}
    progress(f"seeded {count:,} users in {time.perf_counter() - started:.1f} s")
    return ids


def seed_heavy_history(engine: Engine, ids: dict[int, int], transfers: int, peers: int) -> int:
    """Give one user ``transfers`` transfers with ``peers`` peers, through the service's SQL."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (username, password_hash, balance) VALUES (:u, 'x', :b) "
                "ON CONFLICT (username) DO NOTHING"
            ),
            {"u": HEAVY_USER, "b": STARTING_BALANCE},
        )
        heavy = conn.execute(
            sa.text("SELECT id FROM users WHERE username = :u"), {"u": HEAVY_USER}
        ).scalar_one()
        done = conn.execute(
            sa.text("SELECT count(*) FROM transfers WHERE from_user_id = :h OR to_user_id = :h"),
            {"h": heavy},
        ).scalar_one()
    started = time.perf_counter()
    with engine.connect() as conn:
        for i in range(done, transfers):
            peer = f"{PREFIX}{i % peers + 1}"
            if i % 2:  # half received, half sent, so both lists have `peers` entries
                params = {"sender_id": ids[i % peers + 1], "recipient": HEAVY_USER, "amount": 1}
            else:
                params = {"sender_id": heavy, "recipient": peer, "amount": 1}
            params["attempt"] = uuid.uuid4()
            conn.exec_driver_sql(TRANSFER.text, params)
            conn.commit()
            if i and i % 2000 == 0:
                progress(f"  heavy history: {i:,}/{transfers:,} transfers")
    progress(
        f"heavy history ready ({transfers:,} transfers) in {time.perf_counter() - started:.1f} s"
    )
    return int(heavy)


def mint_tokens(settings: Settings, user_ids: list[int]) -> list[str]:
    """Issue the very tokens the service would (same claims, secret and TTL)."""
    ttl = settings.jwt_ttl_seconds
    return [encode_token(uid, settings.jwt_secret, ttl) for uid in user_ids]


def login_token(url: str, username: str, session: requests.Session, attempts: int = 20) -> str:
    """Return a token from the service's own ``POST /api/auth`` (waiting out 429s)."""
    body = {"username": username, "password": LOAD_PASSWORD}
    for _ in range(attempts):
        reply = session.post(f"{url}/api/auth", json=body, timeout=30)
        if reply.status_code == 429:  # the hashing queue is full: come back as told
            time.sleep(float(reply.headers.get("Retry-After", "1")))
            continue
        reply.raise_for_status()
        token: str = reply.json()["token"]
        return token
    raise RuntimeError(f"{url}/api/auth kept answering 429 for {username}")


def login_tokens(url: str, numbers: list[int], workers: int = 4) -> list[str]:
    """Log users ``load-<n>`` in (signing them up if new) through the running service."""
    started = time.perf_counter()
    sessions = [requests.Session() for _ in range(workers)]

    def one(i_n: tuple[int, int]) -> str:
        return login_token(url, f"{PREFIX}{i_n[1]}", sessions[i_n[0] % workers])

    with ThreadPoolExecutor(workers) as pool:
        tokens = list(pool.map(one, enumerate(numbers)))
    progress(f"{len(tokens):,} tokens from {url}/api/auth in {time.perf_counter() - started:.1f} s")
    return tokens


def check_token_accepted(url: str, token: str) -> None:
    """Raise unless the service answers ``GET /api/info`` with 200 for ``token``."""
    reply = requests.get(
        f"{url}/api/info", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if reply.status_code != 200:
        raise SystemExit(
            f"{url} answers {reply.status_code} to a seeded user's token ({reply.text.strip()}): "
            "the token is signed with another secret or the user is not in the service's "
            "database. Pass the service's --jwt-secret and --database-url, or only --url to "
            "take tokens from its /api/auth."
        )


def write_users_file(path: Path, names: list[str], tokens: list[str]) -> Path:
    """Write the users the k6 scripts act as: ``{"users": [{"name", "token"}]}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    users = [{"name": n, "token": t} for n, t in zip(names, tokens, strict=True)]
    path.write_text(json.dumps({"users": users}))
    return path


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
