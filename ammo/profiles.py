"""Request mixes. Each profile turns a random draw into one raw HTTP request."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

from ammo.loadgen import Request
from ammo.seed import LOAD_PASSWORD, PREFIX

# Cheap items keep seeded users solvent through long write-heavy runs.
ITEMS = ("pen", "socks", "cup")


@dataclass(frozen=True)
class Users:
    """Seeded users the generator may act as: their numbers and bearer tokens."""

    numbers: list[int]
    tokens: list[bytes]
    host: bytes


def _get(users: Users, path: str, i: int) -> bytes:
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + users.host
        + b"\r\nAuthorization: Bearer " + users.tokens[i] + b"\r\n\r\n"
    )  # fmt: skip


def _post(users: Users, path: str, body: dict[str, object], token: bytes | None) -> bytes:
    payload = json.dumps(body).encode()
    auth = b"Authorization: Bearer " + token + b"\r\n" if token else b""
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + users.host + b"\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: " + str(len(payload)).encode()
        + b"\r\n\r\n" + payload
    )  # fmt: skip


def info(users: Users, rng: random.Random) -> Request:
    return "GET /api/info", _get(users, "/api/info", rng.randrange(len(users.tokens)))


def buy(users: Users, rng: random.Random) -> Request:
    item = rng.choice(ITEMS)
    return "GET /api/buy/<item>", _get(users, f"/api/buy/{item}", rng.randrange(len(users.tokens)))


def send(users: Users, rng: random.Random) -> Request:
    sender, recipient = rng.sample(range(len(users.tokens)), 2)
    body = {"toUser": f"{PREFIX}{users.numbers[recipient]}", "amount": 1}
    return "POST /api/sendCoin", _post(users, "/api/sendCoin", body, users.tokens[sender])


def login(users: Users, rng: random.Random) -> Request:
    name = f"{PREFIX}{rng.choice(users.numbers)}"
    body = {"username": name, "password": LOAD_PASSWORD}
    return "POST /api/auth (login)", _post(users, "/api/auth", body, None)


_new_users = count()


def sign_up(users: Users, rng: random.Random) -> Request:
    name = f"signup-{rng.getrandbits(48):012x}-{next(_new_users)}"
    body = {"username": name, "password": "a new user's password"}
    return "POST /api/auth (new)", _post(users, "/api/auth", body, None)


Step = Callable[[Users, random.Random], Request]

PROFILES: dict[str, list[tuple[Step, int]]] = {
    "info-heavy": [(info, 80), (buy, 10), (send, 10)],
    "write-heavy": [(info, 20), (buy, 40), (send, 40)],
    # Logins are argon2id-bound (~18 ms of CPU each): a storm is 20% logins, half new users.
    "auth-storm": [(info, 80), (sign_up, 10), (login, 10)],
    "info-only": [(info, 100)],
}


def request_source(profile: str, users: Users, seed: int = 1) -> Callable[[], Request]:
    """Return a function producing the next request of ``profile``."""
    steps, weights = zip(*PROFILES[profile], strict=True)
    rng = random.Random(seed)  # noqa: S311 - load mix, not security

    def next_request() -> Request:
        step = rng.choices(steps, weights)[0]
        return step(users, rng)

    return next_request
