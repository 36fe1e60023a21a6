"""Phantom-format ammo for yandex-tank (the load tool the original project used).

Each request is written as ``<size> <tag>`` on a line, then ``size`` bytes of raw HTTP:
that format carries POST bodies and per-user Authorization headers, which URI-style ammo
cannot.
"""

from __future__ import annotations

from pathlib import Path

from ammo.profiles import Users, request_source

AMMO = Path(__file__).resolve().parent / "ammo.txt"


def phantom_record(tag: str, raw: bytes) -> bytes:
    """Return one phantom ammo record."""
    safe_tag = tag.replace(" ", "_")
    return f"{len(raw)} {safe_tag}\n".encode() + raw + b"\n"


def write_ammo(users: Users, profile: str, count: int, target: Path = AMMO) -> Path:
    """Write ``count`` requests of ``profile`` to ``target``."""
    next_request = request_source(profile, users)
    with target.open("wb") as out:
        for _ in range(count):
            tag, raw = next_request()
            out.write(phantom_record(tag, raw))
    return target
