"""Keep the load generator off the service's cores.

Past the knee an unpinned k6 competes with the service for the CPU that is short, so the
service would seem to collapse sooner than it does. ``--service-cpus`` pins the service and
its PostgreSQL, ``--k6-cpus`` pins k6 and this kit's own process (it parses logs and reads
CPU meters while k6 runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def parse_cpus(text: str | None) -> frozenset[int] | None:
    """Parse '0', '0,2' or '0-3' (as taskset's list form); None or '' means not pinned."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"not a CPU list: {text!r} (examples: 0 / 0,2 / 0-3)")
        cpus.update(range(int(first), int(last or first) + 1))
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        raise ValueError(f"CPUs {sorted(cpus - available)} are not available here")
    return frozenset(cpus)


def pin(pids: Iterable[int], cpus: frozenset[int] | None) -> None:
    """Move running processes onto ``cpus``; processes they fork later inherit it."""
    if cpus is None:
        return
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:
            continue  # ended meanwhile


def before_exec(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that pins a child (and every thread it starts) to ``cpus``."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)
