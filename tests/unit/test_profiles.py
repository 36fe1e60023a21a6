"""The sample model, its renderers, the SIGPROF sampler and the tracemalloc profiles, in-process.

The sampler runs for real in pytest's main thread (signals need it); gevent is not patched
here, so heap work runs inline instead of in gevent's thread pool (the e2e tests cover that).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from types import FrameType

import greenlet
import pytest

from observability import flamegraph, heap
from observability.cpu import OTHER_THREADS, CpuSampler
from observability.greenlets import greenlet_profile
from observability.stacks import (
    Frame,
    StackProfile,
    code_frame,
    merge,
    module_of,
    short_path,
    synthetic,
)

VIEW = Frame("show", "shop.api.info", "shop/api/info.py", 22, 20)
QUERY = Frame("wallet", "shop.db.users", "shop/db/users.py", 41, 33)
ROOT = Frame("handle", "gunicorn.workers.ggevent", "gunicorn/workers/ggevent.py", 9, 5)


def cpu(*stacks: tuple[tuple[Frame, ...], int]) -> StackProfile:
    profile = StackProfile([("cpu", "nanoseconds")], ("cpu", "nanoseconds"), 10_000_000)
    for stack, weight in stacks:
        profile.add(stack, [weight])
    return profile


def spin_for(seconds: float) -> int:
    """Burn this thread's CPU in Python for ``seconds``."""
    total, end = 0, time.thread_time() + seconds
    while time.thread_time() < end:
        total += sum(range(200))
    return total


class TestStackProfile:
    def test_adding_a_stack_twice_sums_its_values(self) -> None:
        profile = cpu(((ROOT, VIEW), 5), ((ROOT, VIEW), 7))
        assert profile.samples == {(ROOT, VIEW): [12]}

    def test_json_round_trip_keeps_everything(self) -> None:
        profile = cpu(((ROOT, VIEW, QUERY), 30), ((ROOT, VIEW), 10))
        profile.comments.append("pid 1: note")
        again = StackProfile.from_json(json.loads(json.dumps(profile.to_json())))
        assert again == profile

    def test_merge_roots_each_worker_under_its_pid(self) -> None:
        first, second = cpu(((ROOT, VIEW), 3)), cpu(((ROOT, VIEW), 4))
        merged = merge([first.rooted("pid 1"), second.rooted("pid 2")])
        assert merged.samples == {
            (synthetic("pid 1"), ROOT, VIEW): [3],
            (synthetic("pid 2"), ROOT, VIEW): [4],
        }

    def test_merge_refuses_profiles_of_different_kinds(self) -> None:
        heap_kind = StackProfile([("inuse_space", "bytes")], ("space", "bytes"), 1)
        with pytest.raises(ValueError, match="different sample types"):
            merge([cpu(), heap_kind])


class TestNames:
    def test_paths_become_relative_to_sys_path(self) -> None:
        assert short_path(os.path.abspath(__file__)) == "tests/unit/test_profiles.py"
        assert short_path(json.__file__) == "json/__init__.py"

    @pytest.mark.parametrize(
        ("path", "module"),
        [
            ("shop/api/info.py", "shop.api.info"),
            ("json/__init__.py", "json"),
            ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
        ],
    )
    def test_module_names_come_from_paths(self, path: str, module: str) -> None:
        assert module_of(path) == module

    def test_frames_read_like_go_functions(self) -> None:
        frame = code_frame(os.path.abspath(__file__), "TestNames.test", 80, 82)
        assert frame.qualified == "tests.unit.test_profiles.TestNames.test"
        assert (
            frame.label
            == "tests.unit.test_profiles.TestNames.test (tests/unit/test_profiles.py:80)"
        )
        assert synthetic("pid 9").label == "pid 9"


class TestRenderers:
    def test_collapsed_stacks_merge_lines_of_one_function(self) -> None:
        other_line = Frame(VIEW.function, VIEW.module, VIEW.file, 25, VIEW.start_line)
        text = flamegraph.collapsed(cpu(((ROOT, VIEW), 3), ((ROOT, other_line), 4)))
        assert text == f"{ROOT.label};{VIEW.label} 7\n"

    def test_collapsed_stacks_escape_semicolons_and_skip_non_positive_weights(self) -> None:
        odd = synthetic("a;b")
        text = flamegraph.collapsed(cpu(((odd,), 2), ((VIEW,), -1)))
        assert text == "a:b 2\n"

    def test_speedscope_shares_frames_and_weighs_samples(self) -> None:
        document = json.loads(flamegraph.speedscope(cpu(((ROOT, VIEW), 3), ((ROOT,), 1)), "t"))
        frames = [frame["name"] for frame in document["shared"]["frames"]]
        assert frames == [ROOT.qualified, VIEW.qualified]
        (profile,) = document["profiles"]
        assert profile["samples"] == [[0, 1], [0]] and profile["weights"] == [3, 1]
        assert profile["endValue"] == 4 and profile["unit"] == "nanoseconds"

    def test_html_escapes_names_and_leaves_out_tiny_nodes(self) -> None:
        lam = Frame("<lambda>", "m", "m.py", 1, 1)
        page = flamegraph.html_page(cpu(((ROOT, lam), 10_000), ((ROOT, VIEW), 1)), "t <1>")
        assert "&lt;lambda&gt;" in page and "<lambda>" not in page
        assert "t &lt;1&gt;" in page
        assert VIEW.qualified not in page  # 0.01% of the total

    def test_text_lists_the_largest_stacks_leaf_first(self) -> None:
        profile = StackProfile(
            [("inuse_objects", "count"), ("inuse_space", "bytes")], ("space", "bytes"), 1
        )
        profile.add((ROOT, VIEW), [1, 1024])
        profile.add((ROOT, QUERY), [2, -4096])
        text = flamegraph.text(profile)
        assert text.index("-4.0 KiB") < text.index("1.0 KiB")
        assert text.index("shop.db.users.wallet  shop/db/users.py:41") < text.index(ROOT.qualified)


class TestCpuSampler:
    def test_cpu_goes_to_the_function_that_burns_it(self) -> None:
        sampler = CpuSampler(hz=250)
        sampler.start()
        try:
            spin_for(0.4)
        finally:
            profile = sampler.stop()
        total = profile.total(1)
        mine = sum(
            v[1] for s, v in profile.samples.items() if any("spin_for" in f.function for f in s)
        )
        assert total > 0.3e9
        assert mine / total > 0.8, flamegraph.text(profile)
        # 100 ticks of CPU time; the kernel delivers fewer when the box is oversubscribed
        # (24 beside three CPU hogs), but each carries the CPU time since the last.
        assert profile.total(0) >= 10

    def test_other_threads_cpu_is_counted_apart(self) -> None:
        stop = threading.Event()

        def hash_in_a_thread() -> None:  # hashlib releases the GIL for large inputs
            while not stop.is_set():
                hashlib.sha256(b"x" * 2**20).digest()

        worker = threading.Thread(target=hash_in_a_thread)
        sampler = CpuSampler(hz=250)
        sampler.start()
        worker.start()
        try:
            spin_for(0.3)
        finally:
            stop.set()
            worker.join()
            profile = sampler.stop()
        assert profile.samples[(OTHER_THREADS,)][1] > 0.01e9

    def test_stop_restores_a_python_handler(self) -> None:
        def mine(signum: int, frame: FrameType | None) -> None:
            return None

        previous = signal.signal(signal.SIGPROF, mine)
        try:
            sampler = CpuSampler()
            sampler.start()
            sampler.stop()
            assert signal.getsignal(signal.SIGPROF) is mine
        finally:
            signal.signal(signal.SIGPROF, previous)

    def test_stop_ignores_sigprof_rather_than_restoring_the_default(self) -> None:
        sampler = CpuSampler()
        sampler.start()
        sampler.stop()
        assert signal.getsignal(signal.SIGPROF) == signal.SIG_IGN  # SIG_DFL would kill

    def test_refuses_off_the_main_thread(self) -> None:
        errors: list[BaseException] = []
        thread = threading.Thread(target=lambda: _start_catching(errors))
        thread.start()
        thread.join()
        assert len(errors) == 1 and isinstance(errors[0], ValueError)


def _start_catching(errors: list[BaseException]) -> None:
    try:
        CpuSampler().start()
    except ValueError as error:
        errors.append(error)


kept: list[bytearray] = []


def hold_memory(blocks: int) -> None:
    for _ in range(blocks):
        kept.append(bytearray(1024))


class Holder:
    def method(self) -> list[int]:
        def inner() -> list[int]:
            return list(range(10))

        return inner()


@pytest.fixture
def tracing() -> Iterator[None]:
    assert not tracemalloc.is_tracing()
    yield
    heap.stop_tracing()
    kept.clear()


class TestHeap:
    def test_the_first_call_starts_tracing_and_says_so(self, tracing: None) -> None:
        profile = heap.heap_profile()
        assert tracemalloc.is_tracing()
        assert any("tracing started just now" in c for c in profile.comments)

    def test_live_memory_is_found_at_its_allocating_function(self, tracing: None) -> None:
        heap.heap_profile()
        hold_memory(2000)
        profile = heap.heap_profile()
        assert profile.sample_types == [("inuse_objects", "count"), ("inuse_space", "bytes")]
        mine = {s: v for s, v in profile.samples.items() if s[-1].function == "hold_memory"}
        assert sum(v[1] for v in mine.values()) > 2000 * 1024
        for stack in mine:
            assert stack[-1].module == "tests.unit.test_profiles"
            assert (
                stack[-2].function
                == "TestHeap." + self.test_live_memory_is_found_at_its_allocating_function.__name__
            )

    def test_allocs_shows_growth_then_shrinkage(self, tracing: None) -> None:
        first = heap.allocs_profile()
        assert any("first call" in comment for comment in first.comments)
        hold_memory(1000)
        grown = heap.allocs_profile()
        kept.clear()
        shrunk = heap.allocs_profile()

        def growth_of(profile: StackProfile) -> int:
            return sum(v[1] for s, v in profile.samples.items() if s[-1].function == "hold_memory")

        assert growth_of(grown) > 1000 * 1024
        assert growth_of(shrunk) < -1000 * 1024

    def test_stop_tracing_stops(self, tracing: None) -> None:
        heap.heap_profile()
        heap.stop_tracing()
        assert not tracemalloc.is_tracing()

    def test_lines_resolve_to_the_innermost_function(self) -> None:
        module = sys.modules[__name__]
        method = Holder.method.__code__
        inner_line = method.co_firstlineno + 2
        after_inner = method.co_firstlineno + 4
        assert heap._frame(__file__, inner_line, module).function == "Holder.method.<locals>.inner"
        assert heap._frame(__file__, after_inner, module).function == "Holder.method"
        assert heap._frame(__file__, 1, module).function == "<module>"


def parked() -> None:
    greenlet.getcurrent().parent.switch()


class TestGreenlets:
    def test_suspended_greenlets_are_counted_by_stack(self) -> None:
        waiting = [greenlet.greenlet(parked) for _ in range(3)]
        for each in waiting:
            each.switch()
        profile = greenlet_profile()
        found = {s: v for s, v in profile.samples.items() if s[-1].function == "parked"}
        assert [(stack[0].function, values) for stack, values in found.items()] == [
            ("[greenlet]", [3])
        ]

    def test_each_thread_shows_where_it_runs(self) -> None:
        profile = greenlet_profile()
        mine = [s for s in profile.samples if s[0].function == "[thread MainThread]"]
        assert len(mine) == 1
        assert any(f.function == "greenlet_profile" for f in mine[0])
