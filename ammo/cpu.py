"""CPU time per component, read through psutil: what each request costs the box.

Throughput at saturation swings by a fifth between runs on a shared 2-core box; CPU seconds
per request at a rate every side can sustain is far steadier, and is what a change to the
service changes. Components are process trees (the gunicorn master and its workers, the
postmaster and its backends, the trace sink); k6's own CPU comes from its exit status
(``os.wait4``), the box's from ``psutil.cpu_times()`` (with steal time, which a shared VM
loses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil


def process_tree(root: int) -> list[int]:
    """Return ``root`` and all its descendants."""
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return [root]
    return [root, *(child.pid for child in children)]


def cpu_seconds(pids: list[int]) -> float:
    """Sum the CPU of ``pids`` and of the children they have reaped.

    A process that exits between two readings takes its own CPU with it, but its parent's
    cumulative children time gains the same amount once it reaps it: counting both keeps a
    process tree's total when PostgreSQL replaces a backend or gunicorn a worker.
    """
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass(frozen=True)
class BoxTimes:
    """Whole-machine CPU seconds, summed over cores."""

    busy: float
    idle: float
    steal: float


def box_times(times: Mapping[str, float] | None = None) -> BoxTimes:
    """Read the machine's CPU times (``psutil.cpu_times()`` unless given as a mapping)."""
    t = psutil.cpu_times()._asdict() if times is None else times
    busy = ("user", "nice", "system", "irq", "softirq")
    return BoxTimes(
        busy=sum(t.get(name, 0.0) for name in busy),
        idle=t.get("idle", 0.0) + t.get("iowait", 0.0),
        steal=t.get("steal", 0.0),
    )


class CpuMeter:
    """CPU seconds used by named process groups between ``start()`` and ``stop()``.

    A group is a function returning its pids (a process tree), re-evaluated at both ends; a
    process of the tree that ended mid-run is counted through its parent (``cpu_seconds``).
    """

    def __init__(self, groups: Mapping[str, Callable[[], list[int]]]) -> None:
        self.groups = dict(groups)
        self._before: dict[str, float] = {}
        self._box: BoxTimes | None = None

    def start(self) -> None:
        self._before = {name: cpu_seconds(pids()) for name, pids in self.groups.items()}
        self._box = box_times()

    def stop(self) -> dict[str, float]:
        """Return CPU seconds per group, plus ``box_busy`` and ``box_steal``."""
        assert self._box is not None, "start() first"
        used = {
            name: max(0.0, cpu_seconds(pids()) - self._before[name])
            for name, pids in self.groups.items()
        }
        box = box_times()
        used["box_busy"] = box.busy - self._box.busy
        used["box_steal"] = box.steal - self._box.steal
        return used


def postmaster_pid(database_url: str) -> int | None:
    """Find the postmaster of a local cluster from its Unix socket directory, if any."""
    if "host=/" not in database_url:
        return None
    socket_dir = Path(database_url.split("host=", 1)[1].split("&", 1)[0])
    pid_file = socket_dir / "postmaster.pid"
    if pid_file.exists():
        return int(pid_file.read_text().split()[0])
    return None


def per_request_us(cpu: Mapping[str, float], requests: int) -> dict[str, float]:
    """Turn CPU seconds per component into microseconds per request."""
    if requests <= 0:
        return {}
    return {name: seconds / requests * 1e6 for name, seconds in cpu.items()}
