"""The open-model capacity: the highest arrival rate whose run meets the SLO.

A probe is one k6 run at a fixed arrival rate; it passes when its p99 is within the target,
nothing was dropped and at most 0.01% of requests failed. The search brackets the knee
between a passing and a failing rate and halves the bracket down to ``resolution``.
"""

from __future__ import annotations

from collections.abc import Callable


def search(
    probe: Callable[[float], bool], low: float, high: float, resolution: float
) -> float | None:
    """Return the highest passing rate found in [low, high] (None if ``low`` fails)."""
    if not probe(low):
        return None
    if probe(high):
        return high
    passing, failing = low, high
    while failing - passing > resolution:
        middle = round((passing + failing) / 2 / resolution) * resolution
        if middle in (passing, failing):  # the grid cannot split the bracket further
            break
        if probe(middle):
            passing = middle
        else:
            failing = middle
    return passing
