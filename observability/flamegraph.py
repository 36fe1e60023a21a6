"""Render a :class:`StackProfile` as collapsed stacks, speedscope JSON, HTML or text.

Every renderer reads the same samples, aggregated by function (``Frame.label``), with the
profile's last sample type as the weight (CPU nanoseconds, bytes), as pprof does.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from observability.stacks import Frame, StackProfile

HTML_MIN_SHARE = 0.001  # nodes under 0.1% of the total are summed up, not drawn
HTML_OPEN_SHARE = 0.05
TEXT_TOP = 30


def by_function(profile: StackProfile) -> dict[tuple[str, ...], int]:
    """Return the weight of each stack of function labels (root first)."""
    weights: dict[tuple[str, ...], int] = {}
    for stack, values in profile.samples.items():
        labels = tuple(frame.label for frame in stack)
        weights[labels] = weights.get(labels, 0) + values[-1]
    return weights


def collapsed(profile: StackProfile) -> str:
    """Return ``root;...;leaf weight`` lines (flamegraph.pl, speedscope, Pyroscope)."""
    lines = [
        f"{';'.join(label.replace(';', ':') for label in stack)} {weight}"
        for stack, weight in by_function(profile).items()
        if weight > 0
    ]
    return "\n".join(sorted(lines)) + "\n"


def speedscope(profile: StackProfile, name: str) -> str:
    """Return a speedscope file with one sampled profile, weights in the profile's unit."""
    frames: dict[str, int] = {}
    shared: list[dict[str, object]] = []
    samples: list[list[int]] = []
    weights: list[int] = []
    for stack, values in profile.samples.items():
        if values[-1] <= 0:
            continue
        samples.append([_frame_index(frame, frames, shared) for frame in stack])
        weights.append(values[-1])
    document = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "exporter": "shop observability",
        "name": name,
        "shared": {"frames": shared},
        "profiles": [
            {
                "type": "sampled",
                "name": "; ".join(profile.comments) or name,
                "unit": _speedscope_unit(profile.sample_types[-1][1]),
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
    }
    return json.dumps(document)


def _frame_index(frame: Frame, index: dict[str, int], shared: list[dict[str, object]]) -> int:
    if frame.label not in index:
        index[frame.label] = len(shared)
        entry: dict[str, object] = {"name": frame.qualified}
        if frame.file:
            entry.update(file=frame.file, line=frame.start_line)
        shared.append(entry)
    return index[frame.label]


def _speedscope_unit(unit: str) -> str:
    return unit if unit in ("nanoseconds", "bytes") else "none"


@dataclass
class _Node:
    total: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(profile: StackProfile) -> _Node:
    root = _Node()
    for stack, weight in by_function(profile).items():
        if weight <= 0:
            continue
        root.total += weight
        node = root
        for label in stack:
            node = node.children.setdefault(label, _Node())
            node.total += weight
    return root


def html_page(profile: StackProfile, title: str) -> str:
    """Return a self-contained page: the call tree, heaviest first, folded below 5%."""
    root = _tree(profile)
    unit = profile.sample_types[-1][1]
    body = "\n".join(_html_children(root, root.total, unit))
    notes = "".join(f"<li>{html.escape(comment)}</li>" for comment in profile.comments)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><ul>{notes}</ul>"
        f"<p>total {_amount(root.total, unit)}; nodes under {HTML_MIN_SHARE:.1%} are left out</p>"
        f"{body or '<p>no samples</p>'}</body></html>\n"
    )


def _html_children(node: _Node, total: int, unit: str) -> Iterator[str]:
    for label, child in sorted(node.children.items(), key=lambda item: -item[1].total):
        share = child.total / total
        if share < HTML_MIN_SHARE:
            continue
        own = child.total - sum(grandchild.total for grandchild in child.children.values())
        summary = (
            f"<span class='share'>{share:.1%}</span> {html.escape(label)}"
            f" <span class='own'>{_amount(child.total, unit)}, self {_amount(own, unit)}</span>"
        )
        inner = "\n".join(_html_children(child, total, unit))
        state = " open" if share >= HTML_OPEN_SHARE else ""
        yield f"<details{state}><summary>{summary}</summary>{inner}</details>"


_CSS = (
    "body{font:13px monospace;margin:1em}details{margin-left:1.2em}"
    "summary{cursor:pointer;white-space:nowrap}.share{display:inline-block;width:4.5em;"
    "text-align:right;font-weight:bold}.own{color:#777}"
)


def _amount(value: int, unit: str) -> str:
    if unit == "nanoseconds":
        return f"{value / 1e6:.1f} ms"
    if unit == "bytes":
        return f"{value / 1024:.1f} KiB"
    return f"{value} {unit}"


def text(profile: StackProfile) -> str:
    """Return the comments and the heaviest stacks (by the last value), leaf first."""
    lines = [f"# {comment}" for comment in profile.comments]
    ranked = sorted(profile.samples.items(), key=lambda item: -abs(item[1][-1]))[:TEXT_TOP]
    for stack, values in ranked:
        amounts = ", ".join(
            _amount(value, unit) if unit != "count" else f"{value} {kind}"
            for value, (kind, unit) in zip(values, profile.sample_types, strict=True)
        )
        lines.append(f"\n{amounts}")
        lines.extend(f"    {_where(frame)}" for frame in reversed(stack))
    lines.append(f"\n{len(profile.samples)} stacks; the {min(TEXT_TOP, len(ranked))} largest shown")
    return "\n".join(lines) + "\n"


def _where(frame: Frame) -> str:
    return f"{frame.qualified}  {frame.file}:{frame.line}" if frame.file else frame.qualified
