"""The pprof format (github.com/google/pprof, proto/profile.proto), written by hand.

A gzipped ``Profile`` message: ``go tool pprof`` reads it. Only the few protobuf wire
rules the message needs are here: varints (int64 as two's complement), length-delimited
fields and packed repeated integers.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable

from observability.stacks import Frame, StackProfile

# profile.proto field numbers.
PROFILE_SAMPLE_TYPE, PROFILE_SAMPLE, PROFILE_MAPPING, PROFILE_LOCATION = 1, 2, 3, 4
PROFILE_FUNCTION, PROFILE_STRING_TABLE, PROFILE_TIME_NANOS, PROFILE_DURATION_NANOS = 5, 6, 9, 10
PROFILE_PERIOD_TYPE, PROFILE_PERIOD, PROFILE_COMMENT, PROFILE_DEFAULT_SAMPLE_TYPE = 11, 12, 13, 14
VARINT, LENGTH_DELIMITED = 0, 2
MAPPING_ID = 1


def varint(value: int) -> bytes:
    """Encode an int64 or uint64 as a protobuf varint."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Message:
    """A protobuf message under construction; fields go out in the order they are added."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def add_int(self, field: int, value: int) -> Message:
        """Add a varint field; zero is the default and is left out."""
        if value:
            self._parts += [varint(field << 3 | VARINT), varint(value)]
        return self

    def add_bytes(self, field: int, data: bytes) -> Message:
        self._parts += [varint(field << 3 | LENGTH_DELIMITED), varint(len(data)), data]
        return self

    def add_packed(self, field: int, values: Iterable[int]) -> Message:
        return self.add_bytes(field, b"".join(varint(v) for v in values))

    def add_message(self, field: int, message: Message) -> Message:
        return self.add_bytes(field, message.build())

    def build(self) -> bytes:
        return b"".join(self._parts)


class _Strings:
    """The string table: index 0 is the empty string, each string stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))


def encode(profile: StackProfile) -> bytes:
    """Return ``profile`` as a gzipped pprof ``Profile``."""
    strings, out = _Strings(), Message()
    for kind, unit in profile.sample_types:
        out.add_message(PROFILE_SAMPLE_TYPE, _value_type(strings(kind), strings(unit)))
    functions: dict[tuple[str, str, int], int] = {}
    locations: dict[tuple[int, int], int] = {}
    for stack, values in profile.samples.items():
        ids = [_location(frame, functions, locations) for frame in reversed(stack)]  # leaf first
        out.add_message(PROFILE_SAMPLE, Message().add_packed(1, ids).add_packed(2, values))
    out.add_message(PROFILE_MAPPING, _mapping(strings))
    for (function_id, line), location_id in locations.items():
        out.add_message(PROFILE_LOCATION, _location_message(location_id, function_id, line))
    for (name, file, start_line), function_id in functions.items():
        function = Message().add_int(1, function_id).add_int(2, strings(name))
        function.add_int(3, strings(name)).add_int(4, strings(file)).add_int(5, start_line)
        out.add_message(PROFILE_FUNCTION, function)
    out.add_int(PROFILE_TIME_NANOS, profile.time_ns)
    out.add_int(PROFILE_DURATION_NANOS, profile.duration_ns)
    period_kind, period_unit = profile.period_type
    out.add_message(PROFILE_PERIOD_TYPE, _value_type(strings(period_kind), strings(period_unit)))
    out.add_int(PROFILE_PERIOD, profile.period)
    if profile.comments:
        out.add_packed(PROFILE_COMMENT, [strings(comment) for comment in profile.comments])
    out.add_int(PROFILE_DEFAULT_SAMPLE_TYPE, strings(profile.sample_types[-1][0]))
    for text in strings.index:  # last: every other field has added its strings by now
        out.add_bytes(PROFILE_STRING_TABLE, text.encode())
    return gzip.compress(out.build(), mtime=0)


def _value_type(kind: int, unit: int) -> Message:
    return Message().add_int(1, kind).add_int(2, unit)


def _mapping(strings: _Strings) -> Message:
    """Return the one mapping: every location already names its function, file and line."""
    mapping = Message().add_int(1, MAPPING_ID).add_int(5, strings("python"))
    # has_functions, has_filenames, has_line_numbers: nothing left to symbolize.
    return mapping.add_int(7, 1).add_int(8, 1).add_int(9, 1)


def _location(
    frame: Frame, functions: dict[tuple[str, str, int], int], locations: dict[tuple[int, int], int]
) -> int:
    key = (frame.qualified, frame.file, frame.start_line)
    function_id = functions.setdefault(key, len(functions) + 1)
    return locations.setdefault((function_id, frame.line), len(locations) + 1)


def _location_message(location_id: int, function_id: int, line: int) -> Message:
    line_message = Message().add_int(1, function_id).add_int(2, line)
    return Message().add_int(1, location_id).add_int(2, MAPPING_ID).add_message(4, line_message)
