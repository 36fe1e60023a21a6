"""The open-model capacity: the highest arrival rate whose run meets the SLO.

A probe is one k6 run at a fixed arrival rate; it passes when its p99 is within the target,
nothing was dropped and at most 0.01% of requests failed. Both searches bracket the knee
between a passing and a failing rate and halve the bracket down to ``resolution``.
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
    return bisect(probe, low, high, resolution)


def climb(
    probe: Callable[[float], bool], start: float, step: float, ceiling: float, resolution: float
) -> float | None:
    """Step up from ``start`` by ``step`` until a rate fails, then bisect the last step.

    Gentler than ``search``, which opens with the highest rate: here the service is pushed
    past its knee once, at the end of the climb.
    """
    if not probe(start):
        return None
    passing = start
    while passing + step <= ceiling:
        if not probe(passing + step):
            return bisect(probe, passing, passing + step, resolution)
        passing += step
    return passing


def bisect(
    probe: Callable[[float], bool], passing: float, failing: float, resolution: float
) -> float:
    """Halve the bracket between a passing and a failing rate down to ``resolution``."""
    while failing - passing > resolution:
        middle = round((passing + failing) / 2 / resolution) * resolution
        if middle in (passing, failing):  # the grid cannot split the bracket further
            break
        if probe(middle):
            passing = middle
        else:
            failing = middle
    return passing
