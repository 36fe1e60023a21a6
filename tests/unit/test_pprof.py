"""The hand-written pprof encoder, read back by an independent parser and by ``go tool pprof``."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from observability import pprof
from observability.stacks import Frame, StackProfile, synthetic
from tests import pprof_reader

SERVE = Frame(
    "GeventWorker.handle", "gunicorn.workers.ggevent", "gunicorn/workers/ggevent.py", 9, 5
)
VIEW = Frame("show", "shop.api.info", "shop/api/info.py", 22, 20)
QUERY = Frame("SqlUserRepository.wallet", "shop.db.users", "shop/db/users.py", 41, 33)


def cpu_profile() -> StackProfile:
    profile = StackProfile(
        sample_types=[("samples", "count"), ("cpu", "nanoseconds")],
        period_type=("cpu", "nanoseconds"),
        period=10_000_000,
        time_ns=1_700_000_000_000_000_000,
        duration_ns=2_000_000_000,
        comments=["pid 7: a test profile"],
    )
    profile.add((synthetic("pid 7"), SERVE, VIEW, QUERY), [3, 30_000_000])
    profile.add((synthetic("pid 7"), SERVE, VIEW), [1, 10_000_000])
    return profile


class TestVarint:
    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            (0, b"\x00"),
            (1, b"\x01"),
            (127, b"\x7f"),
            (128, b"\x80\x01"),
            (300, b"\xac\x02"),
            (2**63 - 1, b"\xff" * 8 + b"\x7f"),
            (-1, b"\xff" * 9 + b"\x01"),  # int64 as two's complement: always ten bytes
        ],
    )
    def test_encodes_like_protobuf(self, value: int, encoded: bytes) -> None:
        assert pprof.varint(value) == encoded
        decoded, end = pprof_reader.read_varint(encoded, 0)
        assert pprof_reader.signed(decoded) == value and end == len(encoded)


class TestMessage:
    def test_zero_ints_are_left_out_as_protobuf_defaults(self) -> None:
        assert pprof.Message().add_int(1, 0).build() == b""

    def test_fields_are_keyed_by_number_and_wire_type(self) -> None:
        inner = pprof.Message().add_int(1, 150)
        built = pprof.Message().add_message(3, inner).add_packed(4, [1, 300]).build()
        assert built == b"\x1a\x03\x08\x96\x01" + b"\x22\x03\x01\xac\x02"


class TestEncode:
    def test_the_output_is_gzipped(self) -> None:
        assert pprof.encode(cpu_profile())[:2] == b"\x1f\x8b"

    def test_samples_list_locations_leaf_first_with_their_values(self) -> None:
        parsed = pprof_reader.read(pprof.encode(cpu_profile()))
        assert parsed.sample_types == [("samples", "count"), ("cpu", "nanoseconds")]
        assert parsed.samples == [
            (
                [
                    "shop.db.users.SqlUserRepository.wallet",
                    "shop.api.info.show",
                    "gunicorn.workers.ggevent.GeventWorker.handle",
                    "pid 7",
                ],
                [3, 30_000_000],
            ),
            (
                ["shop.api.info.show", "gunicorn.workers.ggevent.GeventWorker.handle", "pid 7"],
                [1, 10_000_000],
            ),
        ]

    def test_functions_carry_their_files_and_strings_are_stored_once(self) -> None:
        parsed = pprof_reader.read(pprof.encode(cpu_profile()))
        assert parsed.files["shop.db.users.SqlUserRepository.wallet"] == "shop/db/users.py"
        assert parsed.strings[0] == ""
        assert len(parsed.strings) == len(set(parsed.strings))

    def test_period_and_comments_survive(self) -> None:
        parsed = pprof_reader.read(pprof.encode(cpu_profile()))
        assert parsed.period == 10_000_000
        assert parsed.comments == ["pid 7: a test profile"]

    def test_negative_values_survive(self) -> None:
        profile = StackProfile([("growth_space", "bytes")], ("space", "bytes"), 1)
        profile.add((VIEW,), [-4096])
        assert pprof_reader.read(pprof.encode(profile)).samples == [
            (["shop.api.info.show"], [-4096])
        ]

    def test_an_empty_profile_still_parses(self) -> None:
        profile = StackProfile([("cpu", "nanoseconds")], ("cpu", "nanoseconds"), 1)
        assert pprof_reader.read(pprof.encode(profile)).samples == []

    def test_two_lines_of_one_function_are_two_locations_of_one_function(self) -> None:
        profile = StackProfile([("cpu", "nanoseconds")], ("cpu", "nanoseconds"), 1)
        profile.add((VIEW,), [1])
        profile.add((Frame(VIEW.function, VIEW.module, VIEW.file, 23, VIEW.start_line),), [2])
        top = pprof_reader.fields(gzip.decompress(pprof.encode(profile)))
        assert (len(top[4]), len(top[5])) == (2, 1)  # locations, functions


class TestGoToolPprof:
    def test_reads_the_profile_and_names_our_functions(self, tmp_path: Path) -> None:
        path = tmp_path / "cpu.pb.gz"
        path.write_bytes(pprof.encode(cpu_profile()))
        report = pprof_reader.go_pprof("-top", str(path))
        assert "Type: cpu" in report
        assert "Duration: 2s, Total samples = 40ms" in report
        lines = {line.split()[-1]: line for line in report.splitlines() if "%" in line}
        assert lines["shop.db.users.SqlUserRepository.wallet"].split()[0] == "30ms"
        assert lines["shop.api.info.show"].split()[0] == "10ms"

    def test_lists_source_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "cpu.pb.gz"
        path.write_bytes(pprof.encode(cpu_profile()))
        raw = pprof_reader.go_pprof("-raw", str(path))
        assert "shop.db.users.SqlUserRepository.wallet shop/db/users.py:41 s=33" in raw
