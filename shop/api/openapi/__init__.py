"""GET /openapi.json: the OpenAPI 3 document of this API, built once per process."""

from __future__ import annotations

import json
from functools import cache

from flask import Blueprint, Response

from shop.api.openapi.components import (
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    Json,
    components,
)
from shop.api.openapi.paths import paths

OPENAPI_VERSION = "3.0.3"  # the task's schema is 3.0; 3.0.3 is its last revision
API_VERSION = "1.1.0"  # 1.0.0 is the task's; 1.1 adds limits, statuses and operations
DESCRIPTION = f"""\
The contract in prose is docs/SPEC.md. Every JSON body, request or response, is UTF-8 JSON;
a request body is accepted with any Content-Type. Every failure, on every route (including
404 for an unknown route and 405 with `Allow` for a wrong method), is
`{{"errors": "<reason>"}}` with `Content-Type: application/json`. 429 and 503 carry
`Retry-After`. A response may carry `X-Request-Id` (echoed or generated) and `X-Trace-Id`.
A request whose head cannot be parsed is refused before routing, on any path, with the same
body and `Connection: close`: 400 (malformed request line, method, HTTP version or header
field), 414 (request line over {LIMIT_REQUEST_LINE} bytes), 417 (`Expect` other than
`100-continue`), 431 (over {LIMIT_REQUEST_FIELDS} header fields or one over \
{LIMIT_REQUEST_FIELD_SIZE} bytes), 501 (unknown `Transfer-Encoding`).
"""

bp = Blueprint("openapi", __name__)


@cache
def document() -> Json:
    """Return the document (built on first use; treat it as read-only)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Merch shop API", "version": API_VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "tags": [
            {"name": "shop", "description": "The task's API: log in, look, buy, send."},
            {"name": "operations", "description": "Probes, metrics and this document."},
            {"name": "debug", "description": "Profiling, off unless DEBUG_TOKEN is set."},
        ],
        "paths": paths(),
        "components": components(),
    }


@cache
def _serialized() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()


@bp.get("/openapi.json")
def serve() -> Response:
    return Response(_serialized(), mimetype="application/json")
