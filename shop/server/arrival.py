"""When a request reached this host: the kernel's receive timestamp of its first bytes.

A request can wait before the worker reads it (in the listen backlog, in the socket's
buffer, while the event loop runs other greenlets), and a clock started by the app misses
that wait: under overload it was most of what clients saw. The kernel stamps each segment
as it arrives (``SO_TIMESTAMPNS``); reading with ``recvmsg`` hands the stamp over with the
data. Standard library only: the gunicorn master imports this module.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

# Linux's value, for Pythons built without the constant.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")  # struct timespec: seconds, nanoseconds
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
# The stamp is wall-clock time: a clock stepped forward between the stamp and the read
# would show as a wait. No request waits longer than gunicorn lets a worker hang.
MAX_PLAUSIBLE_WAIT = 30.0


def stamp_arrivals(listener: socket.socket) -> None:
    """Have the kernel stamp what reaches a listening socket's connections.

    On the listener, not only on each accepted connection: a request that arrived before
    its connection was accepted (it waited in the backlog) carries a stamp only if stamping
    was on when it arrived; accepted connections inherit the option.
    """
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        pass  # no stamps: requests start when the worker reads them


class StampedSocket:
    """A connected socket whose reads note when the kernel received the first new bytes.

    ``arrived`` is the ``time.monotonic()`` instant the first bytes read since the last
    ``forget()`` reached the host, or None; ``cpu_at_arrival`` the thread's CPU time when
    they were read (what a request costs from then on is measurable where no other greenlet
    runs in between). Everything else is the wrapped socket's.
    """

    __slots__ = ("_sock", "arrived", "cpu_at_arrival", "stamped")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.arrived: float | None = None
        self.cpu_at_arrival = 0.0
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.stamped = True
        except OSError:  # not a kernel that stamps (or not a socket that can be)
            self.stamped = False

    def recv(self, size: int) -> bytes:
        if not self.stamped or self.arrived is not None:
            return self._sock.recv(size)
        data, ancillary, _, _ = self._sock.recvmsg(size, _ANCILLARY_SPACE)
        if data:
            self.arrived = _arrival(ancillary)
            self.cpu_at_arrival = time.thread_time()
        return data

    def forget(self) -> None:
        """Start over: the next read belongs to the next request."""
        self.arrived = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """Turn the kernel's wall-clock stamp into a ``time.monotonic()`` instant."""
    wall, mono = time.time(), time.monotonic()
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
            waited: float = wall - (seconds + nanoseconds / 1e9)
            return mono - min(max(0.0, waited), MAX_PLAUSIBLE_WAIT)
    return mono  # no stamp came with the data: it is being read now
