"""gunicorn's gevent worker, plus when each request arrived and admission at the door.

Each connection's socket is wrapped so that a request's arrival is the kernel's receive time
(``shop.server.arrival``); the app gets it in the WSGI environ (``ARRIVED``), so its latency
metrics, access log, span and time budget start when the client's request did. API requests
then pass ``Admission``: a refused one is answered here, before gunicorn builds a WSGI
environ and before Flask, with a prepared 503, for a fraction of a served request's CPU.

It overrides five methods of gunicorn's worker: ``load_wsgi`` (wire up after the app
loads, in the patched worker), ``run`` (the servers accept in batches), ``handle`` (the
connection), ``handle_request`` (one request) and ``handle_error`` (gunicorn's own answers
to requests it cannot parse, made JSON: ``shop.server.protocol_errors``);
tests/e2e/test_admission.py and tests/e2e/test_protocol_errors.py drive them in a real
gunicorn. The module imports only gunicorn, gevent and the standard library at the
top: the gunicorn master imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from gevent.server import StreamServer
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

from shop import waits
from shop.server.admission import Admission
from shop.server.arrival import StampedSocket, stamp_arrivals
from shop.server.protocol_errors import CapturedAnswer, answer, linger, reason_for, status_of

API_PREFIX = "/api/"
# The monotonic instant the request reached the host, for the WSGI app (environ key).
ARRIVED = "shop.arrived"
REFUSAL_BODY = b'{"errors": "server busy, retry shortly"}\n'
ACCEPT_BATCH = 100  # gevent's own default

_arrived: ContextVar[float] = ContextVar("shop_arrived")


def refusal(close: bool, head: bool) -> bytes:
    """Return a whole 503 answer: JSON, Retry-After, and Connection: close if asked."""
    lines = [
        b"HTTP/1.1 503 Service Unavailable",
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(REFUSAL_BODY),
        b"Retry-After: 1",
    ]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head else REFUSAL_BODY)


REFUSALS = {
    (close, head): refusal(close, head) for close in (False, True) for head in (False, True)
}


class BatchAcceptingServer(StreamServer):  # type: ignore[misc]
    """gevent's server, accepting up to gevent's batch of connections per loop turn.

    With several workers gunicorn caps each turn at one, so that no worker takes every
    connection of a queue they share. With SO_REUSEPORT each worker has a queue of its own,
    and under load the cap left a client's pool of new connections (hundreds) waiting in the
    kernel for one loop turn each: the requests on them waited up to 0.7 s.
    """

    @property
    def max_accept(self) -> int:
        return ACCEPT_BATCH

    @max_accept.setter
    def max_accept(self, value: int) -> None:
        pass  # gunicorn's cap of one


class ShopWorker(GeventWorker):  # type: ignore[misc]
    """The shop's gunicorn worker class (``worker_class`` in shop/gunicorn_conf.py)."""

    admission: Admission
    on_refusal: Callable[[str, str, float, str, float], None]
    wsgi: Callable[..., Iterable[bytes]]

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from shop.server.door import wire  # after gevent's patching, like the app

        self.admission, self.on_refusal = wire(self.wsgi)
        self.wsgi = _with_arrival(self.wsgi)

    def run(self) -> None:
        for listener in self.sockets:
            stamp_arrivals(listener)
        if self.cfg.reuse_port:
            from observability.compat import use_gunicorn_gevent_server  # in the worker only

            use_gunicorn_gevent_server(BatchAcceptingServer)
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        super().handle(listener, StampedSocket(client), addr)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        now = time.monotonic()
        arrived = getattr(sock, "arrived", None) or now
        token = _arrived.set(arrived)
        try:
            if not req.path.startswith(API_PREFIX):
                return super().handle_request(listener_name, req, sock, addr)
            reason = self.admission.admit(now - arrived)
            if reason is not None:
                return self._refuse(req, sock, arrived, reason)
            try:
                with waits.parking(self.admission.parked):
                    return super().handle_request(listener_name, req, sock, addr)
            finally:
                self.admission.release()
        finally:
            _arrived.reset(token)
            if isinstance(sock, StampedSocket):
                sock.forget()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer what gunicorn refuses (or fails at) with the house JSON error, not HTML."""
        captured = CapturedAnswer(client)
        # gunicorn picks the status and logs (warning, access line) as it always does.
        super().handle_error(req, captured, addr, exc)
        status = status_of(bytes(captured.written))
        if status is None:
            return
        head = getattr(req, "method", None) == "HEAD"
        try:
            util.write_nonblock(client, answer(status, reason_for(status, exc), head))
        except Exception:
            self.log.debug("Failed to send error message.")
            return
        linger(client)

    def _refuse(self, req: Any, sock: Any, arrived: float, reason: str) -> bool:
        close = bool(req.should_close())
        sock.sendall(REFUSALS[close, req.method == "HEAD"])
        # Nothing yields between reading the request and here: the thread's CPU is its own.
        cpu = time.thread_time() - sock.cpu_at_arrival if isinstance(sock, StampedSocket) else 0
        self.on_refusal(req.method, req.path, time.monotonic() - arrived, reason, cpu)
        if close:
            raise StopIteration  # gunicorn's signal to close the connection
        return True


def _with_arrival(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap the WSGI app so that its environ says when the request arrived."""

    def stamped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[ARRIVED] = _arrived.get(None) or time.monotonic()
        return app(environ, start_response)

    return stamped
