"""Read a gzipped pprof profile back, with a protobuf parser independent of the writer.

Only what the tests check: sample types, samples, locations, functions, strings.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass

import pytest


def fields(data: bytes) -> dict[int, list[int | bytes]]:
    """Split one protobuf message into its fields (varints as ints, the rest as bytes)."""
    found: dict[int, list[int | bytes]] = defaultdict(list)
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, offset = read_varint(data, offset)
            found[number].append(value)
        elif wire_type == 2:
            size, offset = read_varint(data, offset)
            found[number].append(data[offset : offset + size])
            offset += size
        else:
            raise ValueError(f"wire type {wire_type} is not used by profile.proto writers here")
    return found


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def packed(blob: int | bytes) -> list[int]:
    assert isinstance(blob, bytes)
    values, offset = [], 0
    while offset < len(blob):
        value, offset = read_varint(blob, offset)
        values.append(signed(value))
    return values


def first(message: dict[int, list[int | bytes]], number: int, default: int = 0) -> int:
    value = message.get(number, [default])[0]
    assert isinstance(value, int)
    return value


@dataclass
class Profile:
    sample_types: list[tuple[str, str]]
    samples: list[tuple[list[str], list[int]]]  # function names leaf first, values
    files: dict[str, str]  # function name -> file
    strings: list[str]
    period: int
    comments: list[str]


def read(blob: bytes) -> Profile:
    """Parse a gzipped ``Profile`` into names, so tests can assert on them."""
    top = fields(gzip.decompress(blob))
    strings = [s.decode() for s in top[6] if isinstance(s, bytes)]
    functions = {}
    for raw in top[5]:
        assert isinstance(raw, bytes)
        function = fields(raw)
        functions[first(function, 1)] = (strings[first(function, 2)], strings[first(function, 4)])
    locations = {}
    for raw in top[4]:
        assert isinstance(raw, bytes)
        location = fields(raw)
        (line,) = location[4]
        assert isinstance(line, bytes)
        locations[first(location, 1)] = functions[first(fields(line), 1)][0]
    samples = []
    for raw in top[2]:
        assert isinstance(raw, bytes)
        sample = fields(raw)
        names = [locations[i] for i in packed(sample[1][0])]
        samples.append((names, packed(sample[2][0])))
    sample_types = []
    for raw in top[1]:
        assert isinstance(raw, bytes)
        value_type = fields(raw)
        sample_types.append((strings[first(value_type, 1)], strings[first(value_type, 2)]))
    comments = [strings[i] for i in packed(top[13][0])] if 13 in top else []
    return Profile(
        sample_types=sample_types,
        samples=samples,
        files=dict(functions.values()),
        strings=strings,
        period=first(top, 12),
        comments=comments,
    )


def go_pprof(*args: str) -> str:
    """Run ``go tool pprof`` and return its report, or skip loudly if Go is missing."""
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "SKIPPED CHECK: `go` is not installed, so `go tool pprof` did not read our profile. "
            "Install Debian's `golang-go` package (.ci/run does) to run it."
        )
    done = subprocess.run(  # noqa: S603 - a fixed tool on a file this test wrote
        [go, "tool", "pprof", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
