"""Stack samples: the one model every /debug profile format is rendered from.

A profile maps stacks (root first) to values, one value per sample type, so a CPU profile
(nanoseconds) and a heap profile (objects, bytes) share the renderers, the JSON form the
workers exchange, and the merge that roots each worker's stacks under its pid.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from types import FrameType
from typing import Any

Stack = tuple["Frame", ...]
MAX_DEPTH = 128


@dataclass(frozen=True)
class Frame:
    """One Python frame: ``module`` is dotted (``shop.api.info``), ``file`` sys.path-relative."""

    function: str
    module: str
    file: str
    line: int
    start_line: int

    @property
    def qualified(self) -> str:
        """Return ``module.function``, the way ``go tool pprof`` names functions."""
        return f"{self.module}.{self.function}" if self.module else self.function

    @property
    def label(self) -> str:
        """Return ``module.function (file:start_line)``, one name per function."""
        if not self.file:
            return self.qualified
        return f"{self.qualified} ({self.file}:{self.start_line})"


def synthetic(name: str) -> Frame:
    """Return a frame that stands for something other than code (a pid, other threads)."""
    return Frame(function=name, module="", file="", line=0, start_line=0)


CUT = synthetic("[deeper frames cut]")


@dataclass
class StackProfile:
    """Values per stack, plus what pprof needs to say what they measure."""

    sample_types: list[tuple[str, str]]
    period_type: tuple[str, str]
    period: int
    samples: dict[Stack, list[int]] = field(default_factory=dict)
    time_ns: int = 0
    duration_ns: int = 0
    comments: list[str] = field(default_factory=list)

    def add(self, stack: Stack, values: list[int]) -> None:
        """Add ``values`` to the ones already recorded for ``stack``."""
        current = self.samples.get(stack)
        if current is None:
            self.samples[stack] = list(values)
        else:
            self.samples[stack] = [a + b for a, b in zip(current, values, strict=True)]

    def total(self, index: int = 0) -> int:
        return sum(values[index] for values in self.samples.values())

    def rooted(self, name: str) -> StackProfile:
        """Return a copy with every stack under one more root frame called ``name``."""
        root = synthetic(name)
        copy = self.empty_like()
        copy.samples = {(root, *stack): values for stack, values in self.samples.items()}
        copy.comments = list(self.comments)
        return copy

    def empty_like(self) -> StackProfile:
        return StackProfile(
            list(self.sample_types),
            self.period_type,
            self.period,
            {},
            self.time_ns,
            self.duration_ns,
        )

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able form with each frame written once."""
        index: dict[Frame, int] = {}
        for stack in self.samples:
            for frame in stack:
                index.setdefault(frame, len(index))
        return {
            "sample_types": self.sample_types,
            "period_type": list(self.period_type),
            "period": self.period,
            "time_ns": self.time_ns,
            "duration_ns": self.duration_ns,
            "comments": self.comments,
            "frames": [[f.function, f.module, f.file, f.line, f.start_line] for f in index],
            "samples": [[[index[f] for f in s], v] for s, v in self.samples.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackProfile:
        """Rebuild a profile written by :meth:`to_json`."""
        frames = [Frame(str(a), str(b), str(c), int(d), int(e)) for a, b, c, d, e in data["frames"]]
        profile = cls(
            sample_types=[(str(t), str(u)) for t, u in data["sample_types"]],
            period_type=(str(data["period_type"][0]), str(data["period_type"][1])),
            period=int(data["period"]),
            time_ns=int(data["time_ns"]),
            duration_ns=int(data["duration_ns"]),
            comments=[str(c) for c in data["comments"]],
        )
        for indexes, values in data["samples"]:
            profile.add(tuple(frames[i] for i in indexes), [int(v) for v in values])
        return profile


def merge(profiles: list[StackProfile]) -> StackProfile:
    """Sum profiles of one kind; the earliest start and the longest duration win."""
    merged = profiles[0].empty_like()
    merged.time_ns = min(profile.time_ns for profile in profiles)
    merged.duration_ns = max(profile.duration_ns for profile in profiles)
    for profile in profiles:
        if profile.sample_types != merged.sample_types:
            raise ValueError("cannot merge profiles of different sample types")
        for stack, values in profile.samples.items():
            merged.add(stack, values)
        merged.comments.extend(profile.comments)
    return merged


@lru_cache(maxsize=4096)
def short_path(filename: str) -> str:
    """Return ``filename`` relative to the longest sys.path entry holding it."""
    best = filename
    for entry in sys.path:
        prefix = os.path.join(os.path.abspath(entry or "."), "")
        if filename.startswith(prefix) and len(filename) - len(prefix) < len(best):
            best = filename[len(prefix) :]
    return best


def module_of(path: str) -> str:
    """Return the dotted module name for a sys.path-relative file (``a/b.py`` -> ``a.b``)."""
    if not path.endswith(".py") or os.path.isabs(path):
        return path
    dotted = path[:-3].replace(os.sep, ".")
    return dotted.removesuffix(".__init__")


@lru_cache(maxsize=8192)
def code_frame(filename: str, function: str, start_line: int, line: int) -> Frame:
    """Return the (cached) frame for a code location."""
    path = short_path(filename)
    return Frame(function, module_of(path), path, line, start_line)


def frames_of(frame: FrameType | None) -> Stack:
    """Return the stack that ends in ``frame``, root first, at most MAX_DEPTH frames deep."""
    stack: list[Frame] = []
    while frame is not None and len(stack) < MAX_DEPTH:
        code = frame.f_code
        stack.append(
            code_frame(code.co_filename, code.co_qualname, code.co_firstlineno, frame.f_lineno or 0)
        )
        frame = frame.f_back
    if frame is not None:
        stack.append(CUT)
    stack.reverse()
    return tuple(stack)
