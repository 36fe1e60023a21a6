"""Phantom-format ammo for yandex-tank (the load tool the original project used).

Each request is written as ``<size> <tag>`` on a line, then ``size`` bytes of raw HTTP: that
format carries POST bodies and per-user Authorization headers, which URI-style ammo cannot.
The mixes are the k6 scripts' own (``ammo/k6/mixes.json``); the tokens are ones the target
service accepted (see ``ammo.seed``), valid for its JWT lifetime (an hour by default).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

from ammo.k6run import SCRIPTS
from ammo.seed import LOAD_PASSWORD

AMMO = Path(__file__).resolve().parent / "ammo.txt"
ITEMS = ("pen", "socks", "cup")  # as ammo/k6/lib.js: cheap, so users stay solvent


def mixes() -> dict[str, dict[str, int]]:
    loaded: dict[str, dict[str, int]] = json.loads((SCRIPTS / "mixes.json").read_text())
    return loaded


def request(host: str, method: str, path: str, token: str | None, body: object = None) -> bytes:
    """Return one raw HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + payload


Users = list[dict[str, str]]  # [{"name": ..., "token": ...}], as in the k6 users file
Build = Callable[[str, Users, random.Random], tuple[str, bytes]]
_signups = count()


def _info(host: str, users: Users, rng: random.Random) -> tuple[str, bytes]:
    return "info", request(host, "GET", "/api/info", rng.choice(users)["token"])


def _buy(host: str, users: Users, rng: random.Random) -> tuple[str, bytes]:
    path = f"/api/buy/{rng.choice(ITEMS)}"
    return "buy", request(host, "GET", path, rng.choice(users)["token"])


def _send(host: str, users: Users, rng: random.Random) -> tuple[str, bytes]:
    sender, recipient = rng.sample(users, 2)
    body = {"toUser": recipient["name"], "amount": 1}
    return "send", request(host, "POST", "/api/sendCoin", sender["token"], body)


def _login(host: str, users: Users, rng: random.Random) -> tuple[str, bytes]:
    body = {"username": rng.choice(users)["name"], "password": LOAD_PASSWORD}
    return "login", request(host, "POST", "/api/auth", None, body)


def _signup(host: str, users: Users, rng: random.Random) -> tuple[str, bytes]:
    name = f"signup-{rng.getrandbits(40):010x}-{next(_signups)}"
    body = {"username": name, "password": LOAD_PASSWORD}
    return "signup", request(host, "POST", "/api/auth", None, body)


OPERATIONS: dict[str, Build] = {
    "info": _info,
    "buy": _buy,
    "send": _send,
    "login": _login,
    "signup": _signup,
}


def requests_of(
    profile: str, host: str, users: Users, seed: int = 1
) -> Iterator[tuple[str, bytes]]:
    """Yield (operation, raw request) drawn by the profile's weights, forever."""
    weights = mixes()[profile]
    ops = [OPERATIONS[op] for op in weights]
    rng = random.Random(seed)
    while True:
        yield rng.choices(ops, list(weights.values()))[0](host, users, rng)


def phantom_record(tag: str, raw: bytes) -> bytes:
    """Return one phantom ammo record."""
    return f"{len(raw)} {tag}\n".encode() + raw + b"\n"


def read_phantom(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield (tag, raw request) from phantom ammo, as yandex-tank reads it."""
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        size, _, tag = data[at:end].decode().partition(" ")
        raw = data[end + 1 : end + 1 + int(size)]
        yield tag, raw
        at = end + 1 + int(size) + 1


def write_ammo(profile: str, host: str, users: Users, count: int, target: Path = AMMO) -> Path:
    """Write ``count`` requests of ``profile`` to ``target``."""
    with target.open("wb") as out:
        for _, (tag, raw) in zip(range(count), requests_of(profile, host, users), strict=False):
            out.write(phantom_record(tag, raw))
    return target
