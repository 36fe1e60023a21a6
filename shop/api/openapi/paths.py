"""The ``paths`` of the OpenAPI document: the task's four operations, then ops and /debug."""

from __future__ import annotations

from shop.api.openapi.components import Json, failures, json_content, ref, with_protocol_failures

PUBLIC: list[Json] = []  # security requirement of endpoints that need no token
DEBUG: list[Json] = [{"DebugToken": []}]
MAX_PROFILE_SECONDS = 60
# observability/targets.py: every /debug profile comes in each of these.
PROFILE_FORMATS = {
    "speedscope": "application/json",
    "collapsed": "text/plain",
    "html": "text/html",
    "pprof": "application/octet-stream",
    "text": "text/plain",
    "json": "application/json",
}


def paths() -> Json:
    """Return the ``paths`` section; every operation lists gunicorn's protocol failures."""
    every = {**_api(), **_operations(), **_debug()}
    for item in every.values():
        for operation in item.values():
            operation["responses"] = with_protocol_failures(operation["responses"])
    return every


def _ok(description: str, schema: Json) -> Json:
    return {"description": description, "content": json_content(schema)}


def _replayable(response: Json) -> Json:
    """Mark a response that a repeated Idempotency-Key may replay."""
    return {**response, "headers": {"Idempotent-Replayed": ref("headers", "IdempotentReplayed")}}


def _api() -> Json:
    bad_request = _replayable(
        {
            "description": "Malformed, or refused.",
            "content": json_content(ref("schemas", "ErrorResponse")),
        }
    )
    done = _replayable(_ok("Done; nothing else to say.", ref("schemas", "Empty")))
    idempotency = ref("parameters", "IdempotencyKey")
    return {
        "/api/info": {
            "get": {
                "summary": "Balance, inventory and coin history grouped by colleague.",
                "tags": ["shop"],
                "responses": {
                    "200": _ok("The caller's wallet.", ref("schemas", "InfoResponse")),
                    "400": {
                        "description": (
                            "Only for a malformed request line or header field (listed in"
                            " the task's schema; the API itself never answers 400 here)."
                        ),
                        "content": json_content(ref("schemas", "ErrorResponse")),
                    },
                    **failures(401, 500, 503),
                },
            }
        },
        "/api/sendCoin": {
            "post": {
                "summary": "Send coins to a colleague; a failed call changes nothing.",
                "description": (
                    "400 for an unknown recipient (never created on the fly), yourself,"
                    " too few coins, or any malformed body."
                ),
                "tags": ["shop"],
                "parameters": [idempotency],
                "requestBody": {
                    "required": True,
                    "content": json_content(ref("schemas", "SendCoinRequest")),
                },
                "responses": {
                    "200": done,
                    "400": bad_request,
                    **failures(401, 413, 422, 500, 503),
                },
            }
        },
        "/api/buy/{item}": {
            "get": {
                "summary": "Buy one item; a failed call changes nothing.",
                "description": "400 for an unknown item or too few coins.",
                "tags": ["shop"],
                "parameters": [ref("parameters", "Item"), idempotency],
                "responses": {
                    "200": done,
                    "400": bad_request,
                    **failures(401, 422, 500, 503),
                },
            }
        },
        "/api/auth": {
            "post": {
                "summary": "Log in and get a JWT; the first call for a username signs it up.",
                "description": (
                    "A new username gets an account with 1000 coins; later calls need the"
                    " same password (else 401). 429 when logins are throttled."
                ),
                "tags": ["shop"],
                "security": PUBLIC,
                "requestBody": {
                    "required": True,
                    "content": json_content(ref("schemas", "AuthRequest")),
                },
                "responses": {
                    "200": _ok("Logged in.", ref("schemas", "AuthResponse")),
                    **failures(400, 401, 413, 429, 500, 503),
                },
            }
        },
    }


def _status(value: str) -> Json:
    return {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": {"type": "string", "enum": [value]}},
    }


def _text(description: str) -> Json:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _ops(summary: str, responses: Json) -> Json:
    return {
        "get": {
            "summary": summary,
            "tags": ["operations"],
            "security": PUBLIC,
            "responses": responses,
        }
    }


def _operations() -> Json:
    not_ready = {
        "description": "Not ready: database unreachable or schema behind.",
        "content": json_content(ref("schemas", "ErrorResponse")),
    }
    return {
        "/healthz": _ops(
            "Liveness: the process answers (no database call).",
            {"200": _ok("Alive.", _status("ok")), **failures(500)},
        ),
        "/readyz": _ops(
            "Readiness, from a state a background check keeps; never waits on the database.",
            {"200": _ok("Ready.", _status("ready")), "503": not_ready, **failures(500)},
        ),
        "/metrics": _ops(
            "Prometheus exposition, summed over every worker; never touches the database.",
            {"200": _text("Prometheus text format."), **failures(500)},
        ),
        "/openapi.json": _ops(
            "This document.",
            {"200": _ok("OpenAPI 3 document.", {"type": "object"}), **failures(500)},
        ),
    }


def _debug_get(summary: str, responses: Json, parameters: list[Json] | None = None) -> Json:
    operation: Json = {
        "summary": summary,
        "description": "404 unless DEBUG_TOKEN is set; answered by one worker (its pid is named).",
        "tags": ["debug"],
        "security": DEBUG,
        "responses": {**responses, **failures(401, 404, 500)},
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _query(name: str, schema: Json, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _debug() -> Json:
    profile = {
        "description": "The profile, in the format asked for.",
        "headers": {
            "X-Profiled-Pid": {
                "schema": {"type": "string"},
                "description": "The pid(s) profiled, comma-separated (not on ?stop=1).",
            },
            "X-Missing-Pids": {
                "schema": {"type": "string"},
                "description": "Workers that could not take part (workers=all).",
            },
        },
        "content": {media: {"schema": {}} for media in PROFILE_FORMATS.values()},
    }
    seconds = {"type": "integer", "minimum": 1, "maximum": MAX_PROFILE_SECONDS, "default": 10}
    faults = failures(400, 409, 502)

    def fmt(default: str) -> Json:
        return _query(
            "format",
            {"type": "string", "enum": list(PROFILE_FORMATS), "default": default},
            "speedscope JSON, collapsed stacks, an HTML flame graph, gzipped pprof protobuf "
            "(go tool pprof), a text table, or the samples as JSON.",
        )

    targets = [
        _query("pid", {"type": "integer"}, "Answer for this worker (any worker forwards)."),
        _query("workers", {"type": "string", "enum": ["all"]}, "Every worker, in one profile."),
    ]
    return {
        "/debug/pprof/": _debug_get("Index of /debug.", {"200": _text("The index.")}),
        "/debug/pprof/profile": _debug_get(
            "Sample the CPU of every greenlet for N seconds (SIGPROF).",
            {"200": profile, **faults, **failures(501)},
            [
                _query("seconds", seconds, "How long to sample."),
                _query("hz", {"type": "integer", "minimum": 1, "maximum": 1000}, "Samples/s."),
                fmt("speedscope"),
                *targets,
            ],
        ),
        "/debug/pprof/heap": _debug_get(
            "Live memory by allocating stack (tracemalloc).",
            {"200": profile, **faults},
            [fmt("text"), _query("stop", {"type": "string"}, "Any value: stop tracing."), *targets],
        ),
        "/debug/pprof/allocs": _debug_get(
            "Growth of live memory by stack since this worker's previous call.",
            {"200": profile, **faults},
            [fmt("text"), *targets],
        ),
        "/debug/pprof/goroutine": _debug_get(
            "Greenlets and threads of the worker, counted by stack.",
            {"200": profile, **faults},
            [fmt("text"), *targets],
        ),
        "/debug/pprof/cmdline": _debug_get(
            "The worker's command line.",
            {"200": _text("The command line."), **faults},
            targets,
        ),
    }
