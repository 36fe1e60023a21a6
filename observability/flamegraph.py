"""Collapsed stacks ("a;b;c weight" lines) from a pyinstrument frame tree.

speedscope, flamegraph.pl and Pyroscope all read this format.
"""

from __future__ import annotations

from typing import Any


def collapsed_stacks(root: Any) -> str:
    """Return one line per stack; weights are self time in microseconds."""
    lines: list[str] = []
    if root is not None:
        _walk(root, [], lines)
    return "\n".join(lines) + "\n"


def _walk(frame: Any, path: list[str], lines: list[str]) -> None:
    name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
    stack = [*path, name.replace(";", ":")]
    self_time = frame.time - sum(child.time for child in frame.children)
    if self_time > 0:
        lines.append(f"{';'.join(stack)} {max(1, round(self_time * 1_000_000))}")
    for child in frame.children:
        _walk(child, stack, lines)
