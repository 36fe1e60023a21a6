"""gunicorn's own answers, to requests it cannot parse, in the house shape: JSON ``errors``.

gunicorn refuses a request whose head it cannot parse before any app sees it: a malformed
request line, method, HTTP version or header field (400), a request line over
``limit_request_line`` (414), an ``Expect`` other than ``100-continue`` (417), too many or
too large header fields (431), an unknown ``Transfer-Encoding`` (501); a fault outside the
app is a 500 there too. gunicorn writes those as HTML. ``ShopWorker.handle_error`` lets
gunicorn pick the status and log as it does, then sends ``answer(...)`` instead.

The body never repeats what the client sent (gunicorn's page quotes the request line or
header; its log still does). Standard library and gunicorn only: the master imports this.
"""

from __future__ import annotations

import json
import socket
import time
from http import HTTPStatus
from typing import Any

from gunicorn.http import errors

# The statuses gunicorn answers by itself in this service's configuration (no PROXY
# protocol, no TLS: its 403s cannot happen). The OpenAPI document lists them on every
# operation, next to the 500 every operation has.
PROTOCOL_STATUSES = (400, 414, 417, 431, 501)

# How long, and for how many bytes, a refused client's unread request is drained.
LINGER_SECONDS = 1.0
LINGER_BYTES = 256 * 1024

# Most specific first: gunicorn's header errors subclass one another.
_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (errors.InvalidRequestLine, "malformed request line"),
    (errors.InvalidRequestMethod, "invalid request method"),
    (errors.InvalidHTTPVersion, "unsupported HTTP version"),
    (errors.ObsoleteFolding, "folded header field"),
    (errors.InvalidHeaderName, "invalid header field name"),
    (errors.InvalidHeader, "invalid header field"),
    (errors.InvalidSchemeHeaders, "contradictory forwarded scheme headers"),
    (errors.LimitRequestLine, "request line too long"),
    (errors.LimitRequestHeaders, "too many or too large header fields"),
    (errors.ExpectationFailed, "unsupported Expect header (only 100-continue)"),
    (errors.UnsupportedTransferCoding, "unsupported transfer coding"),
)
_BY_STATUS = {
    400: "bad request",
    414: "request line too long",
    431: "too many or too large header fields",
    500: "internal server error",
}


def status_of(written: bytes) -> int | None:
    """Return the status code of an HTTP/1.x answer, or None if it has no status line."""
    parts = written.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def reason_for(status: int, exc: BaseException) -> str:
    """Return the ``errors`` text for a refused request: the kind of fault, no input."""
    if status == 500:  # gunicorn's own 500s carry nothing the client should see
        return _BY_STATUS[500]
    for kind, reason in _CAUSES:
        if isinstance(exc, kind):
            return reason
    return _BY_STATUS.get(status) or _phrase(status).lower()


def answer(status: int, reason: str, head: bool = False) -> bytes:
    """Return a whole answer: the JSON error body, its length, and Connection: close."""
    body = json.dumps({"errors": reason}).encode() + b"\n"
    lines = [
        b"HTTP/1.1 %d %s" % (status, _phrase(status).encode()),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head else body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def linger(sock: Any, seconds: float = LINGER_SECONDS, limit: int = LINGER_BYTES) -> None:
    """Half-close, then read and drop what the client still sends, for a bounded while.

    Closing a socket with unread bytes in it sends a reset, and a reset makes the client's
    kernel drop the answer it has not read yet: a client refused for a 9000-byte request
    line would see "connection reset" instead of the 414.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        while limit > 0 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(min(limit, 65536))
            if not chunk:
                return
            limit -= len(chunk)
    except OSError:
        return  # gone, reset or timed out: nothing more to do


class CapturedAnswer:
    """A client socket whose writes are kept instead of sent: what gunicorn would answer."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.written = bytearray()

    def sendall(self, data: bytes) -> None:
        self.written += data

    def send(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
