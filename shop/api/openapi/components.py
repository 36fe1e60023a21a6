"""Reusable parts of the OpenAPI document: schemas, parameters, headers, failure responses.

The task's component names and field names are kept, and its inline shapes stay inline (a
client generated from the task's schema names its types after them); the limits come from
``shop.domain`` so the document cannot drift from what the service enforces.
"""

from __future__ import annotations

from typing import Any

from shop.domain import rules
from shop.domain.catalogue import CATALOGUE

Json = dict[str, Any]

IDEMPOTENCY_KEY_MAX_LENGTH = 255
# gunicorn's limits on a request head (its defaults; shop/gunicorn_conf.py keeps them).
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
# status -> (component name, description); every failure carries the ErrorResponse body.
FAILURES = {
    400: (
        "BadRequest",
        "Malformed request (its request line or header fields too), broken limit, or refused"
        " by a business rule.",
    ),
    401: ("Unauthorized", "Missing, malformed, expired, forged or unknown credentials."),
    404: ("NotFound", "No such route (and every /debug route while it is switched off)."),
    405: ("MethodNotAllowed", "The route exists but not with this method; `Allow` lists them."),
    409: ("Conflict", "A CPU profile is already running in that worker."),
    413: ("PayloadTooLarge", "The body is larger than MAX_CONTENT_LENGTH (16 KiB by default)."),
    414: (
        "URITooLong",
        f"The request line is over {LIMIT_REQUEST_LINE} bytes (gunicorn's limit_request_line).",
    ),
    417: ("ExpectationFailed", "An `Expect` header other than `100-continue`."),
    422: ("UnprocessableEntity", "This Idempotency-Key was already used for another request."),
    429: ("TooManyRequests", "Too many logins (per account, per address, or queued); retry later."),
    431: (
        "RequestHeaderFieldsTooLarge",
        f"Over {LIMIT_REQUEST_FIELDS} header fields, or one over {LIMIT_REQUEST_FIELD_SIZE}"
        " bytes (gunicorn's limit_request_fields and limit_request_field_size).",
    ),
    500: ("InternalServerError", "Unexpected fault; the body never carries internals."),
    501: (
        "NotImplemented",
        "An unknown `Transfer-Encoding`; on /debug/pprof/profile also: CPU profiles need"
        " a gunicorn worker's main thread.",
    ),
    502: ("BadGateway", "The worker a /debug call was forwarded to did not answer."),
    503: (
        "ServiceUnavailable",
        "Database unavailable, request deadline passed or server busy; retry later.",
    ),
}
RETRY_LATER = frozenset({429, 503})
# What gunicorn itself answers, on any path, to a request head it cannot parse (each with
# the ErrorResponse body: shop/server/protocol_errors.py); 500 is on every operation anyway.
PROTOCOL = (400, 414, 417, 431, 501)


def ref(kind: str, name: str) -> Json:
    """Return a ``$ref`` to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def json_content(schema: Json) -> Json:
    """Return a ``content`` map with one ``application/json`` entry."""
    return {"application/json": {"schema": schema}}


def failures(*statuses: int) -> Json:
    """Return the ``responses`` entries of these failure statuses."""
    return {str(status): ref("responses", FAILURES[status][0]) for status in statuses}


def with_protocol_failures(responses: Json) -> Json:
    """Return ``responses`` plus the protocol failures it lacks, ordered by status."""
    merged = {**failures(*PROTOCOL), **responses}
    return dict(sorted(merged.items()))


def components() -> Json:
    """Return the ``components`` section."""
    return {
        "securitySchemes": {
            "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "DebugToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The DEBUG_TOKEN the service was started with.",
            },
        },
        "schemas": _schemas(),
        "parameters": _parameters(),
        "headers": _headers(),
        "responses": {name: _failure(status) for status, (name, _) in FAILURES.items()},
    }


def _failure(status: int) -> Json:
    response: Json = {
        "description": FAILURES[status][1],
        "content": json_content(ref("schemas", "ErrorResponse")),
    }
    if status in RETRY_LATER:
        response["headers"] = {"Retry-After": ref("headers", "RetryAfter")}
    if status == 405:
        response["headers"] = {"Allow": ref("headers", "Allow")}
    return response


def _username(description: str) -> Json:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": rules.MAX_USERNAME_LENGTH,
        "description": description,
    }


def _strict(required: list[str], properties: Json, **extra: Any) -> Json:
    """An object with exactly these fields (an unknown field is refused, or never sent)."""
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


def _counterparty(name_field: str, description: str) -> Json:
    total = {"type": "integer", "minimum": 1, "description": "Total coins ever, this direction."}
    return _strict([name_field, "amount"], {name_field: _username(description), "amount": total})


def _schemas() -> Json:
    inventory_item = _strict(
        ["type", "quantity"],
        {
            "type": {"type": "string", "enum": list(CATALOGUE)},
            "quantity": {"type": "integer", "minimum": 1},
        },
    )
    history = _strict(
        ["received", "sent"],
        {
            "received": {"type": "array", "items": _counterparty("fromUser", "The sender.")},
            "sent": {"type": "array", "items": _counterparty("toUser", "The recipient.")},
        },
        description="One entry per colleague and direction, sorted by username (code points).",
    )
    info = {
        "coins": {"type": "integer", "minimum": 0, "description": "Current balance."},
        "inventory": {
            "type": "array",
            "items": inventory_item,
            "description": "One entry per item owned, sorted by item name; `[]` if none.",
        },
        "coinHistory": history,
    }
    username_rules = (
        "1-64 characters after Unicode NFC normalisation; no leading or trailing"
        " whitespace, no control or format characters."
    )
    password = {
        "type": "string",
        "format": "password",
        "minLength": 1,
        "maxLength": rules.MAX_PASSWORD_LENGTH,
    }
    amount = {
        "type": "integer",
        "minimum": 1,
        "maximum": rules.MAX_AMOUNT,
        "description": 'A JSON integer (`1.5`, `10.0`, `"10"` and `true` are refused).',
    }
    token = {"type": "string", "description": "HS256 JWT for `Authorization: Bearer <token>`."}
    return {
        "InfoResponse": _strict(["coins", "inventory", "coinHistory"], info),
        "ErrorResponse": _strict(["errors"], {"errors": {"type": "string"}}),
        "AuthRequest": _strict(
            ["username", "password"], {"username": _username(username_rules), "password": password}
        ),
        "AuthResponse": _strict(["token"], {"token": token}),
        "SendCoinRequest": _strict(
            ["toUser", "amount"],
            {"toUser": _username("An existing colleague, not yourself."), "amount": amount},
        ),
        "Empty": {"type": "object", "maxProperties": 0, "description": "Always `{}`."},
    }


def _parameters() -> Json:
    return {
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": (
                "Retry safely: the same key from the same user within 24 h replays the first"
                " outcome (same status and body, `Idempotent-Replayed: true`) and changes"
                " nothing; the same key with a different request is 422."
            ),
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
                "pattern": "^[!-~]+$",
            },
        },
        "Item": {
            "name": "item",
            "in": "path",
            "required": True,
            "description": "A catalogue item; exact, case-sensitive name.",
            "schema": {"type": "string", "enum": list(CATALOGUE)},
        },
    }


def _headers() -> Json:
    return {
        "RetryAfter": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        },
        "IdempotentReplayed": {
            "description": "Present when this answer replays the first outcome of this key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
        "Allow": {
            "description": "The methods the route accepts.",
            "required": True,
            "schema": {"type": "string"},
        },
    }
