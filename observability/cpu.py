"""CPU profile of one worker: a SIGPROF per 1/hz s of CPU (10 ms), as Go's runtime/pprof does.

Why a signal: the handler runs in the main thread between two bytecodes of whatever
greenlet holds the CPU, so short request bursts are seen where they happen. A sampling
thread would only get the GIL when the event loop releases it (mostly while it waits for
I/O) and would see the gevent hub instead; pyinstrument's tree under gevent splits into
hundreds of one-sample subtrees that its renderers drop as "irrelevant".

Each sample is weighted by the CPU the main thread used since the previous one (its own
clock), so the profile adds up to the thread's real CPU time. CPU that other threads used
(the password-hash pool, gevent's thread pool) goes to one ``[other threads]`` frame: Python runs
signal handlers in the main thread only, so it cannot say where those threads were.
"""

from __future__ import annotations

import os
import signal
import time
from types import CodeType, FrameType
from typing import Any

from observability.stacks import CUT, MAX_DEPTH, Frame, StackProfile, code_frame, synthetic

HZ = 100
OTHER_THREADS = synthetic("[other threads]")
RawStack = tuple[tuple[CodeType, int], ...]
# Stands for the frames past MAX_DEPTH in a raw stack (code objects are cheap to keep).
TRUNCATED_CODE = compile("", "<truncated>", "exec")


class CpuSampler:
    """Sample the main thread's stack on SIGPROF from :meth:`start` to :meth:`stop`."""

    def __init__(self, hz: int = HZ) -> None:
        self.interval = 1 / hz
        self._cpu: dict[RawStack, list[int]] = {}
        self._other_threads = 0
        self._overhead = 0
        self._previous: Any = None

    def start(self) -> None:
        """Arm the timer; raise ValueError off the main thread (signals need it)."""
        self._previous = signal.signal(signal.SIGPROF, self._on_tick)
        signal.siginterrupt(signal.SIGPROF, False)  # restart system calls it interrupts
        self._started_ns, self._wall_ns = time.time_ns(), time.monotonic_ns()
        self._thread_ns, self._process_ns = time.thread_time_ns(), time.process_time_ns()
        self._first_thread_ns, self._first_process_ns = self._thread_ns, self._process_ns
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def _on_tick(self, _signum: int, frame: FrameType | None) -> None:
        thread_ns, process_ns = time.thread_time_ns(), time.process_time_ns()
        own = thread_ns - self._thread_ns
        self._other_threads += max(0, process_ns - self._process_ns - own)
        if own > 0:
            counts = self._cpu.setdefault(_raw_stack(frame), [0, 0])
            counts[0] += 1
            counts[1] += own
        # Reading the clocks again keeps the handler's own cost out of every sample.
        self._thread_ns, self._process_ns = time.thread_time_ns(), time.process_time_ns()
        self._overhead += self._thread_ns - thread_ns

    def stop(self) -> StackProfile:
        """Disarm the timer and return the samples, weighted in CPU nanoseconds."""
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        # SIG_DFL would let a SIGPROF still in flight terminate the worker.
        restore = self._previous if callable(self._previous) else signal.SIG_IGN
        signal.signal(signal.SIGPROF, restore)
        return self._profile()

    def _profile(self) -> StackProfile:
        period = round(self.interval * 1e9)
        profile = StackProfile(
            sample_types=[("samples", "count"), ("cpu", "nanoseconds")],
            period_type=("cpu", "nanoseconds"),
            period=period,
            time_ns=self._started_ns,
            duration_ns=time.monotonic_ns() - self._wall_ns,
        )
        for raw, values in self._cpu.items():
            profile.add(_frames(raw), values)
        if self._other_threads:
            profile.add((OTHER_THREADS,), [0, self._other_threads])
        profile.comments.append(self._summary(profile))
        return profile

    def _summary(self, profile: StackProfile) -> str:
        main_ms = (time.thread_time_ns() - self._first_thread_ns) / 1e6
        process_ms = (time.process_time_ns() - self._first_process_ns) / 1e6
        return (
            f"pid {os.getpid()}: {profile.total(0)} samples at {round(1 / self.interval)} Hz"
            f" over {profile.duration_ns / 1e9:.1f} s; CPU {process_ms:.0f} ms"
            f" (main thread {main_ms:.0f} ms, of which the profiler {self._overhead / 1e6:.1f} ms)"
        )


def _raw_stack(frame: FrameType | None) -> RawStack:
    stack: list[tuple[CodeType, int]] = []
    while frame is not None and len(stack) < MAX_DEPTH:
        stack.append((frame.f_code, frame.f_lineno or 0))
        frame = frame.f_back
    if frame is not None:
        stack.append((TRUNCATED_CODE, 0))
    stack.reverse()
    return tuple(stack)


def _frames(raw: RawStack) -> tuple[Frame, ...]:
    return tuple(
        CUT
        if code is TRUNCATED_CODE
        else code_frame(code.co_filename, code.co_qualname, code.co_firstlineno, line)
        for code, line in raw
    )
