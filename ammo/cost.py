"""CPU time per request, of the service and of PostgreSQL, at a fixed offered rate.

Throughput at saturation swings by a fifth between runs on a shared 2-core box; CPU
seconds per request at a rate both sides can sustain is far steadier, and is what an
optimisation changes. Read from /proc: the gunicorn master and its workers, and the
postmaster and its backends.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """Return ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """Sum user+system CPU of ``pids`` (processes that vanished count as 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def postmaster_pid(database_url: str) -> int | None:
    """Find the postmaster of a local embedded cluster from its socket directory."""
    if "host=/" not in database_url:
        return None
    socket_dir = Path(database_url.split("host=", 1)[1].split("&", 1)[0])
    pid_file = socket_dir / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None
