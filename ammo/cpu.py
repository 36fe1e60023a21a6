"""CPU time per component, read from /proc: what each request costs the box.

Throughput at saturation swings by a fifth between runs on a shared 2-core box; CPU seconds
per request at a rate every side can sustain is far steadier, and is what a change to the
service changes. Components are process trees (the gunicorn master and its workers, the
postmaster and its backends, the trace sink); k6's own CPU comes from its exit status
(``os.wait4``), the box's from ``/proc/stat`` (with steal time, which a shared VM loses).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: split after its closing one.
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def children_of() -> dict[int, list[int]]:
    """Return every live pid's children."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """Return ``root`` and all its descendants."""
    children = children_of()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """Sum the CPU of ``pids`` and of the children they have reaped.

    A process that exits between two readings takes its own CPU with it, but its parent's
    cumulative children time gains the same amount once it reaps it: counting both keeps a
    process tree's total when PostgreSQL replaces a backend or gunicorn a worker.
    """
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / CLOCK_TICKS


@dataclass(frozen=True)
class BoxTimes:
    """Whole-machine CPU seconds from /proc/stat, summed over cores."""

    busy: float
    idle: float
    steal: float


def box_times(stat: Path = PROC / "stat") -> BoxTimes:
    """Read the ``cpu`` line of /proc/stat."""
    values = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return BoxTimes(
        busy=(user + nice + system + irq + softirq) / CLOCK_TICKS,
        idle=(idle + iowait) / CLOCK_TICKS,
        steal=steal / CLOCK_TICKS,
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
