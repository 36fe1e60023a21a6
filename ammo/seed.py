"""Seed load-test users straight into PostgreSQL, with real argon2id hashes, and mint tokens.

Seeding mode: every seeded user ``load-<n>`` shares the password ``LOAD_PASSWORD``; its
argon2id hash (production parameters) is computed once and stored for all of them, so
100,000 users take seconds, and logging in as any of them costs a real verify.
"""

from __future__ import annotations

import sys
import time
import uuid

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


def mint_tokens(settings: Settings, user_ids: list[int]) -> list[bytes]:
    """Issue the very tokens the service would (same claims, secret and TTL)."""
    ttl = settings.jwt_ttl_seconds
    return [encode_token(uid, settings.jwt_secret, ttl).encode() for uid in user_ids]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
