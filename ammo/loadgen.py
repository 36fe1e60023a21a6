"""An open-model HTTP/1.1 load generator on asyncio.

Requests are sent at fixed arrival times (t0 + i / rate) whatever the server does, and
latency is measured from that intended time, so a slow server cannot hide behind a slow
client (no coordinated omission). Keep-alive connections are reused; when all are busy a
new one is opened, up to ``max_connections``, beyond which requests queue (and the queueing
counts in their latency).
"""

from __future__ import annotations

import asyncio
import resource
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

# A request to send: (endpoint label for the report, raw request bytes).
Request = tuple[str, bytes]


@dataclass
class Outcome:
    """What happened to the requests of one endpoint label."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class RunResult:
    duration: float
    sent: int
    outcomes: dict[str, Outcome]
    generator_cpu_seconds: float
    max_open_connections: int


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._try_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by server"))

    def send(self, payload: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.waiter

    def _try_complete(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        length = content_length(head)
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if b"connection: close" in head:
            self.closed = True
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(status)


class LoadGenerator:
    """Send ``next_request()`` at ``rate`` per second for ``duration`` seconds."""

    def __init__(
        self,
        host: str,
        port: int,
        next_request: Callable[[], Request],
        *,
        max_connections: int = 1024,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.next_request = next_request
        self.max_connections = max_connections
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._open = 0
        self._peak_open = 0
        self._slots: asyncio.Semaphore | None = None

    async def run(self, rate: float, duration: float) -> RunResult:
        self._slots = asyncio.Semaphore(self.max_connections)
        outcomes: dict[str, Outcome] = defaultdict(Outcome)
        cpu_before = _cpu_seconds()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time()
        total = int(rate * duration)
        sent = 0
        while sent < total:
            now = loop.time()
            due = min(total, int((now - start) * rate) + 1)
            while sent < due:
                intended = start + sent / rate
                label, payload = self.next_request()
                task = loop.create_task(self._one(label, payload, intended, outcomes))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 1)
        elapsed = loop.time() - start
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        return RunResult(
            duration=elapsed,
            sent=sent,
            outcomes=dict(outcomes),
            generator_cpu_seconds=_cpu_seconds() - cpu_before,
            max_open_connections=self._peak_open,
        )

    async def _one(
        self, label: str, payload: bytes, intended: float, outcomes: dict[str, Outcome]
    ) -> None:
        loop = asyncio.get_running_loop()
        outcome = outcomes[label]
        assert self._slots is not None
        async with self._slots:
            try:
                connection = await self._connection()
            except OSError as error:
                outcome.errors[f"connect: {type(error).__name__}"] += 1
                return
            try:
                status = await asyncio.wait_for(connection.send(payload), self.timeout)
            except TimeoutError:
                outcome.errors["timeout"] += 1
                self._discard(connection)
                return
            except ConnectionError as error:
                outcome.errors[f"socket: {error}"] += 1
                self._discard(connection)
                return
            outcome.latencies.append(loop.time() - intended)
            outcome.statuses[status] += 1
            if connection.closed:
                self._discard(connection)
            else:
                self._idle.append(connection)

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._discard(connection)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        self._open += 1
        self._peak_open = max(self._peak_open, self._open)
        return connection

    def _discard(self, connection: _Connection) -> None:
        if connection.transport is not None:
            connection.transport.close()
        self._open -= 1


def content_length(head: bytes) -> int:
    """Return the Content-Length of a lower-cased response head (0 if absent)."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    value_end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : value_end if value_end >= 0 else None])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
