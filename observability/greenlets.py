"""Where every greenlet and thread of this worker is now: Go's goroutine profile.

Stacks are grouped, so a thousand requests waiting on the same query show up as one stack
with a count of a thousand.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

from observability.stacks import StackProfile, frames_of, synthetic

SUSPENDED = synthetic("[greenlet]")


def greenlet_profile() -> StackProfile:
    """Return a count per distinct stack: suspended greenlets, then each thread's stack."""
    from greenlet import greenlet

    profile = StackProfile(
        [("greenlets", "count")], ("greenlets", "count"), 1, time_ns=time.time_ns()
    )
    # A suspended greenlet keeps its frame; a running one's stack is its thread's.
    suspended = [g for g in gc.get_objects() if isinstance(g, greenlet) and g.gr_frame is not None]
    for waiting in suspended:
        profile.add((SUSPENDED, *frames_of(waiting.gr_frame)), [1])
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    running = sys._current_frames()
    for ident, frame in running.items():
        profile.add((synthetic(f"[thread {names.get(ident, ident)}]"), *frames_of(frame)), [1])
    profile.comments.append(
        f"pid {os.getpid()}: {len(suspended)} suspended greenlets, {len(running)} threads"
    )
    return profile
