"""Heap profiles from tracemalloc: live memory (``heap``) and its growth (``allocs``).

tracemalloc records every allocation's stack while it runs (it slows every allocation, so
the first call starts it unless ``PYTHONTRACEMALLOC`` started it at boot). It cannot see
memory that was allocated and freed again, so ``allocs`` is the net growth of live memory
per stack since this worker's previous ``allocs`` call, not Go's count of every allocation.

A snapshot of a warm worker holds hundreds of thousands of traces: grouping them takes
seconds of CPU, so it runs in a native thread while the event loop keeps serving, and
only the largest stacks get frames; the rest are summed into one ``[smaller stacks]``.
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from collections.abc import Callable
from functools import lru_cache
from types import CodeType, FunctionType, ModuleType
from typing import Any, TypeVar

from observability.stacks import Frame, Stack, StackProfile, code_frame, synthetic

NFRAMES = 16
MAX_STACKS = 1000
SMALLER = synthetic("[smaller stacks]")
TRUNCATED = synthetic("[older frames cut]")
T = TypeVar("T")
RawTraceback = tuple[tuple[str, int], ...]  # most recent frame first, as tracemalloc keeps it
Groups = dict[RawTraceback, list[int]]  # traceback -> [objects, bytes]
_baseline: dict[str, Groups] = {}


def heap_profile() -> StackProfile:
    """Return live memory by allocating stack: objects and bytes."""
    return _off_the_event_loop(_heap)


def allocs_profile() -> StackProfile:
    """Return the growth of live memory by stack since the previous call."""
    return _off_the_event_loop(_allocs)


def stop_tracing() -> None:
    """Stop tracemalloc and forget the baseline: tracing costs CPU on every allocation."""
    tracemalloc.stop()
    _baseline.clear()


def _heap() -> StackProfile:
    started = _ensure_tracing()
    profile = _empty([("inuse_objects", "count"), ("inuse_space", "bytes")], started)
    _fill(profile, _groups())
    return profile


def _allocs() -> StackProfile:
    started = _ensure_tracing()
    profile = _empty([("growth_objects", "count"), ("growth_space", "bytes")], started)
    current, previous = _groups(), _baseline.get("allocs")
    _baseline["allocs"] = current
    if previous is None:
        profile.comments.append(f"pid {os.getpid()}: first call: growth is counted from now on")
        return profile
    growth: Groups = {}
    for traceback in current.keys() | previous.keys():
        now, then = current.get(traceback, [0, 0]), previous.get(traceback, [0, 0])
        if now != then:
            growth[traceback] = [now[0] - then[0], now[1] - then[1]]
    _fill(profile, growth)
    return profile


def _off_the_event_loop(work: Callable[[], T]) -> T:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        return work()
    import gevent

    result: T = gevent.get_hub().threadpool.apply(work)
    return result


def _ensure_tracing() -> bool:
    if tracemalloc.is_tracing():
        return False
    tracemalloc.start(NFRAMES)
    return True


def _groups() -> Groups:
    """Return objects and bytes per traceback of the live traced memory."""
    snapshot = tracemalloc.take_snapshot()
    groups: Groups = {}
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:  # Snapshot.statistics() is the public way, five times slower
        for stat in snapshot.statistics("traceback"):
            frames = tuple((f.filename, f.lineno) for f in reversed(stat.traceback))
            groups[frames] = [stat.count, stat.size]
        return groups
    for trace in raw:  # (domain, size, traceback, ...): unpacking with * would allocate
        size, traceback = trace[1], trace[2]
        group = groups.get(traceback)
        if group is None:
            groups[traceback] = [1, size]
        else:
            group[0] += 1
            group[1] += size
    return groups


def _fill(profile: StackProfile, groups: Groups) -> None:
    ranked = sorted(groups.items(), key=lambda item: -abs(item[1][1]))
    modules = {getattr(m, "__file__", None): m for m in list(sys.modules.values())}
    for traceback, values in ranked[:MAX_STACKS]:
        profile.add(_stack(traceback, modules), values)
    rest = ranked[MAX_STACKS:]
    if rest:
        profile.add((SMALLER,), [sum(v[0] for _, v in rest), sum(v[1] for _, v in rest)])


def _empty(sample_types: list[tuple[str, str]], started: bool) -> StackProfile:
    profile = StackProfile(sample_types, ("space", "bytes"), 1)
    traced, peak = tracemalloc.get_traced_memory()
    profile.comments.append(
        f"pid {os.getpid()}: tracemalloc traces {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f}"
        f" MiB) and uses {tracemalloc.get_tracemalloc_memory() / 2**20:.1f} MiB itself, "
        f"{tracemalloc.get_traceback_limit()} frames per stack"
    )
    if started:
        profile.comments.append(
            f"pid {os.getpid()}: tracing started just now; call again after some traffic"
        )
    return profile


def _stack(traceback: RawTraceback, modules: dict[Any, ModuleType]) -> Stack:
    frames = tuple(_frame(file, line, modules.get(file)) for file, line in reversed(traceback))
    return (TRUNCATED, *frames) if len(traceback) >= tracemalloc.get_traceback_limit() else frames


@lru_cache(maxsize=65536)
def _frame(filename: str, line: int, module: ModuleType | None) -> Frame:
    function, start_line = "<module>", 1  # or a function no module attribute leads to
    for code in _functions(filename, module):  # latest start first: the innermost wins
        if code.co_firstlineno <= line <= _last_line(code):
            function, start_line = code.co_qualname, code.co_firstlineno
            break
    return code_frame(filename, function, start_line, line)


@lru_cache(maxsize=4096)
def _functions(filename: str, module: ModuleType | None) -> tuple[CodeType, ...]:
    """Return the code objects of the functions of ``filename``, latest start first.

    tracemalloc keeps only file and line: the names come from the code objects the loaded
    module holds (parsing the source would allocate, and be traced, far more).
    """
    if module is None:
        return ()
    return tuple(sorted(_code_objects(module, filename), key=lambda c: -c.co_firstlineno))


@lru_cache(maxsize=65536)
def _last_line(code: CodeType) -> int:
    return max((line for _, _, line in code.co_lines() if line is not None), default=0)


def _code_objects(module: ModuleType, filename: str) -> list[CodeType]:
    codes: list[CodeType] = []
    seen: set[int] = set()
    todo: list[Any] = list(vars(module).values())
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, CodeType):
            if item.co_filename == filename:
                codes.append(item)
                todo.extend(c for c in item.co_consts if isinstance(c, CodeType))
        elif isinstance(item, FunctionType):
            todo += [item.__code__, getattr(item, "__wrapped__", None)]
        elif isinstance(item, staticmethod | classmethod):
            todo.append(item.__func__)
        elif isinstance(item, property):
            todo += [item.fget, item.fset, item.fdel]
        elif isinstance(item, type) and item.__module__ == module.__name__:
            todo.extend(vars(item).values())
    return codes
