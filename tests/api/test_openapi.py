"""The OpenAPI document: valid, complete, true to the task's schema and to what the API answers.

Every request here goes through ``ConformingClient``, which checks each response (status,
media type, headers, body) against the document; the matrix walks every success and
failure path the API has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config as GunicornConfig
from openapi_spec_validator import validate

from shop.api.openapi import document
from shop.api.openapi.components import (
    FAILURES,
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    PROTOCOL,
)
from shop.bootstrap import create_app
from shop.domain import rules
from shop.domain.catalogue import CATALOGUE
from shop.server.protocol_errors import PROTOCOL_STATUSES
from shop.settings import Settings
from tests.contract import ConformingClient, ContractViolation, check
from tests.factories import PASSWORD, random_username
from tests.helpers import ROOT, User, own_app, sign_up

# The task's schema, reduced to what a client generated from it relies on: operations,
# component names, field names and types (prose and descriptions left out).
TASK_OPERATIONS = {
    ("/api/info", "get"),
    ("/api/sendCoin", "post"),
    ("/api/buy/{item}", "get"),
    ("/api/auth", "post"),
}
TASK_FIELDS = {
    "InfoResponse": {"coins": "integer", "inventory": "array", "coinHistory": "object"},
    "ErrorResponse": {"errors": "string"},
    "AuthRequest": {"username": "string", "password": "string"},
    "AuthResponse": {"token": "string"},
    "SendCoinRequest": {"toUser": "string", "amount": "integer"},
}
TASK_REQUIRED = {"AuthRequest": {"username", "password"}, "SendCoinRequest": {"toUser", "amount"}}
TASK_STATUSES = {"200", "400", "401", "500"}


def conforming(app: Flask) -> ConformingClient:
    return ConformingClient(app, app.response_class, use_cookies=False)


@pytest.fixture
def api(app: Flask) -> ConformingClient:
    return conforming(app)


def app_operations(app: Flask) -> set[tuple[str, str]]:
    """Every (path template, method) the app routes, as OpenAPI spells them."""
    found = set()
    for rule in app.url_map.iter_rules():
        template = rule.rule.replace("<", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((template, method.lower()))
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items() for method in item}


class TestDocument:
    def test_document_is_valid_openapi_3(self) -> None:
        validate(document())

    def test_served_document_is_the_built_one(self, api: ConformingClient) -> None:
        reply = api.get("/openapi.json")
        assert (reply.status_code, reply.mimetype) == (200, "application/json")
        assert reply.json == document()

    def test_docs_copy_is_what_the_module_prints(self) -> None:
        printed = subprocess.run(
            [sys.executable, "-m", "shop.api.openapi"], capture_output=True, check=True, cwd=ROOT
        ).stdout
        assert json.loads(printed) == document()
        committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
        assert committed == document(), "run: python -m shop.api.openapi > docs/openapi.json"

    def test_every_route_of_the_app_is_documented(self, app: Flask) -> None:
        assert app_operations(app) - documented_operations() == set()

    def test_every_documented_operation_is_routed(self, app: Flask) -> None:
        assert documented_operations() - app_operations(app) == set()

    def test_the_api_tests_check_every_response_they_see(self, client: FlaskClient) -> None:
        assert isinstance(client, ConformingClient)  # the hook in tests/api/conftest.py


class TestProtocolFailures:
    """What gunicorn answers before routing (shop/server/protocol_errors.py) is documented."""

    @pytest.mark.parametrize(("path", "method"), sorted(documented_operations()))
    def test_every_operation_lists_gunicorns_refusals(self, path: str, method: str) -> None:
        responses = document()["paths"][path][method]["responses"]
        assert {str(status) for status in (*PROTOCOL_STATUSES, 500)} <= set(responses)
        assert list(responses) == sorted(responses)

    @pytest.mark.parametrize("status", PROTOCOL_STATUSES)
    def test_each_refusal_carries_the_error_body(self, status: int) -> None:
        response = document()["components"]["responses"][FAILURES[status][0]]
        assert response["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
        }

    def test_the_server_and_the_document_list_the_same_statuses(self) -> None:
        assert PROTOCOL_STATUSES == PROTOCOL

    def test_the_documented_limits_are_the_ones_gunicorn_runs_with(self) -> None:
        defaults = GunicornConfig()
        assert (
            defaults.limit_request_line,
            defaults.limit_request_fields,
            defaults.limit_request_field_size,
        ) == (LIMIT_REQUEST_LINE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_FIELD_SIZE)
        overridden = (ROOT / "shop" / "gunicorn_conf.py").read_text()
        assert "limit_request" not in overridden, "document the new limits"


class TestTaskSchemaKept:
    def test_the_task_operations_are_kept_without_operation_ids(self) -> None:
        paths = document()["paths"]
        for path, method in TASK_OPERATIONS:
            operation = paths[path][method]
            assert "operationId" not in operation
            assert TASK_STATUSES <= set(operation["responses"])

    @pytest.mark.parametrize("name", sorted(TASK_FIELDS))
    def test_the_task_components_keep_their_fields(self, name: str) -> None:
        schema = document()["components"]["schemas"][name]
        types = {field: spec["type"] for field, spec in schema["properties"].items()}
        assert types == TASK_FIELDS[name]
        assert TASK_REQUIRED.get(name, set()) <= set(schema.get("required", []))

    def test_the_task_inline_shapes_stay_inline(self) -> None:
        info = document()["components"]["schemas"]["InfoResponse"]["properties"]
        assert set(info["inventory"]["items"]["properties"]) == {"type", "quantity"}
        history = info["coinHistory"]["properties"]
        assert set(history["received"]["items"]["properties"]) == {"fromUser", "amount"}
        assert set(history["sent"]["items"]["properties"]) == {"toUser", "amount"}

    def test_bearer_jwt_protects_the_api_except_auth(self) -> None:
        doc = document()
        scheme = doc["components"]["securitySchemes"]["BearerAuth"]
        assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        assert doc["security"] == [{"BearerAuth": []}]
        assert doc["paths"]["/api/auth"]["post"]["security"] == []


class TestChecker:
    """The check has teeth: responses the document does not allow are caught."""

    @pytest.mark.parametrize(
        ("method", "path", "status", "headers", "body"),
        [
            pytest.param("GET", "/api/info", 418, {}, b"", id="undocumented-status"),
            pytest.param("GET", "/nope", 200, {}, b"", id="undocumented-path-not-404"),
            pytest.param("PATCH", "/api/info", 400, {}, b"", id="undocumented-method-not-405"),
            pytest.param(
                "GET", "/api/info", 200, {"Content-Type": "text/html"}, b"{}", id="wrong-media"
            ),
            pytest.param(
                "GET",
                "/api/info",
                200,
                {"Content-Type": "application/json"},
                b'{"coins": 1, "inventory": []}',
                id="missing-field",
            ),
            pytest.param(
                "POST",
                "/api/auth",
                400,
                {"Content-Type": "application/json"},
                b'{"errors": "x", "trace": "y"}',
                id="extra-field",
            ),
            pytest.param(
                "POST",
                "/api/auth",
                503,
                {"Content-Type": "application/json"},
                b'{"errors": "x"}',
                id="503-without-retry-after",
            ),
            pytest.param(
                "DELETE",
                "/api/info",
                405,
                {"Content-Type": "application/json"},
                b'{"errors": "x"}',
                id="405-without-allow",
            ),
        ],
    )
    def test_a_response_the_document_does_not_allow_is_caught(
        self, method: str, path: str, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        with pytest.raises(ContractViolation):
            check(method, path, status, headers, body)

    def test_a_documented_failure_passes(self) -> None:
        headers = {"Content-Type": "application/json", "Retry-After": "1"}
        check("POST", "/api/auth", 503, headers, b'{"errors": "database unavailable"}')


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


TOO_LARGE = b'{"username": "' + b"a" * (16 * 1024) + b'", "password": "p"}'
BAD_LOGINS = [
    pytest.param(b"{", id="malformed-json"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(body(username="a"), id="missing-password"),
    pytest.param(body(username="a", password="p", role="admin"), id="unexpected-field"),
    pytest.param(body(username="", password="p"), id="empty-username"),
    pytest.param(body(username="a" * 65, password="p"), id="username-too-long"),
    pytest.param(body(username=" a", password="p"), id="leading-whitespace"),
    pytest.param(body(username="a\u0000b", password="p"), id="control-character"),
    pytest.param(body(username="a", password=""), id="empty-password"),
    pytest.param(body(username="a", password="p" * 257), id="password-too-long"),
    pytest.param(body(username=1, password="p"), id="username-not-a-string"),
    pytest.param(body(username="a", password=None), id="password-null"),
    pytest.param(nested_arrays(7_000), id="nested-7000-deep"),
    pytest.param(b'{"username": "a", "password": "\\ud800"}', id="lone-surrogate-password"),
]
BAD_TRANSFERS = [
    pytest.param(b"{", id="malformed-json"),
    pytest.param(b"7", id="not-an-object"),
    pytest.param(body(toUser="{recipient}"), id="missing-amount"),
    pytest.param(body(toUser="{recipient}", amount=1, note="x"), id="unexpected-field"),
    pytest.param(body(toUser="{recipient}", amount=0), id="amount-zero"),
    pytest.param(body(toUser="{recipient}", amount=-5), id="amount-negative"),
    pytest.param(body(toUser="{recipient}", amount=1.5), id="amount-float"),
    pytest.param(b'{"toUser": "{recipient}", "amount": 10.0}', id="amount-ten-point-zero"),
    pytest.param(body(toUser="{recipient}", amount="10"), id="amount-string"),
    pytest.param(body(toUser="{recipient}", amount=True), id="amount-bool"),
    pytest.param(body(toUser="{recipient}", amount=rules.MAX_AMOUNT + 1), id="amount-too-large"),
    pytest.param(body(toUser="{recipient}", amount=1001), id="not-enough-coins"),
    pytest.param(body(toUser="", amount=1), id="empty-recipient"),
    pytest.param(body(toUser=["x"], amount=1), id="recipient-not-a-string"),
    pytest.param(body(toUser="nobody-" + "x" * 20, amount=1), id="unknown-recipient"),
    pytest.param(body(toUser="{sender}", amount=1), id="to-yourself"),
    pytest.param(nested_arrays(7_000), id="nested-7000-deep"),
]


class TestShopResponsesConform:
    def test_a_first_and_a_second_login_conform(self, api: ConformingClient) -> None:
        credentials = {"username": random_username(), "password": PASSWORD}
        assert api.post("/api/auth", json=credentials).status_code == 200
        assert api.post("/api/auth", json=credentials).status_code == 200

    def test_a_wrong_password_conforms(self, api: ConformingClient) -> None:
        user = sign_up(api)
        reply = api.post("/api/auth", json={"username": user.name, "password": "wrong"})
        assert reply.status_code == 401

    @pytest.mark.parametrize("raw", BAD_LOGINS)
    def test_a_bad_login_is_a_conforming_400(self, api: ConformingClient, raw: bytes) -> None:
        assert api.post("/api/auth", data=raw).status_code == 400

    @pytest.mark.parametrize("path", ["/api/auth", "/api/sendCoin"])
    def test_a_body_over_the_limit_is_a_conforming_413(
        self, api: ConformingClient, path: str
    ) -> None:
        user = sign_up(api)
        assert api.post(path, data=TOO_LARGE, headers=user.headers).status_code == 413

    def test_info_of_a_new_user_and_of_a_busy_one_conforms(self, api: ConformingClient) -> None:
        alice, bob = sign_up(api), sign_up(api)
        assert api.get("/api/info", headers=alice.headers).status_code == 200
        api.get("/api/buy/cup", headers=alice.headers)
        api.post("/api/sendCoin", json={"toUser": bob.name, "amount": 7}, headers=alice.headers)
        api.post("/api/sendCoin", json={"toUser": alice.name, "amount": 3}, headers=bob.headers)
        reply = api.get("/api/info", headers=alice.headers)
        assert reply.json == {
            "coins": 1000 - 20 - 7 + 3,
            "inventory": [{"type": "cup", "quantity": 1}],
            "coinHistory": {
                "received": [{"fromUser": bob.name, "amount": 3}],
                "sent": [{"toUser": bob.name, "amount": 7}],
            },
        }

    @pytest.mark.parametrize("raw", BAD_TRANSFERS)
    def test_a_refused_transfer_is_a_conforming_400(
        self, api: ConformingClient, raw: bytes
    ) -> None:
        sender, recipient = sign_up(api), sign_up(api)
        raw = raw.replace(b"{recipient}", recipient.name.encode())
        raw = raw.replace(b"{sender}", sender.name.encode())
        assert api.post("/api/sendCoin", data=raw, headers=sender.headers).status_code == 400

    def test_a_transfer_with_an_idempotency_key_conforms(self, api: ConformingClient) -> None:
        sender, recipient = sign_up(api), sign_up(api)
        headers = {**sender.headers, "Idempotency-Key": "transfer-0001"}
        reply = api.post(
            "/api/sendCoin", json={"toUser": recipient.name, "amount": 1}, headers=headers
        )
        assert (reply.status_code, reply.json) == (200, {})

    @pytest.mark.parametrize("item", ["Cup", "unknown", "cup ", "%00", "%ED%A0%80"])
    def test_an_unknown_item_is_a_conforming_400(self, api: ConformingClient, item: str) -> None:
        assert api.get(f"/api/buy/{item}", headers=sign_up(api).headers).status_code == 400

    def test_a_purchase_beyond_the_balance_is_a_conforming_400(self, api: ConformingClient) -> None:
        user = sign_up(api)
        statuses = [api.get("/api/buy/pink-hoody", headers=user.headers).status_code for _ in "abc"]
        assert statuses == [200, 200, 400]

    @pytest.mark.parametrize(
        "authorization",
        [
            pytest.param(None, id="missing"),
            pytest.param("Bearer", id="no-token"),
            pytest.param("Basic dXNlcjpwdw==", id="other-scheme"),
            pytest.param("Bearer not.a.jwt", id="garbage"),
        ],
    )
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/info"), ("GET", "/api/buy/cup"), ("POST", "/api/sendCoin")],
    )
    def test_a_request_without_a_valid_token_is_a_conforming_401(
        self, api: ConformingClient, method: str, path: str, authorization: str | None
    ) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        assert api.open(path, method=method, headers=headers, json={}).status_code == 401

    def test_a_head_of_info_conforms(self, api: ConformingClient) -> None:
        assert api.head("/api/info", headers=sign_up(api).headers).status_code == 200


class TestDocumentedLimitsAreEnforced:
    """The limits the document states are the ones the service enforces, at both edges."""

    def limits(self) -> dict[str, Any]:
        schemas: dict[str, Any] = document()["components"]["schemas"]
        return schemas

    def test_usernames_are_refused_just_past_max_length(self, api: ConformingClient) -> None:
        longest = self.limits()["AuthRequest"]["properties"]["username"]["maxLength"]
        name = random_username()[: longest // 2].ljust(longest, "n")
        ok = api.post("/api/auth", json={"username": name, "password": "p"})
        too_long = api.post("/api/auth", json={"username": name + "n", "password": "p"})
        assert (ok.status_code, too_long.status_code) == (200, 400)

    def test_passwords_are_refused_just_past_max_length(self, api: ConformingClient) -> None:
        longest = self.limits()["AuthRequest"]["properties"]["password"]["maxLength"]
        ok = api.post("/api/auth", json={"username": random_username(), "password": "p" * longest})
        too_long = api.post(
            "/api/auth", json={"username": random_username(), "password": "p" * (longest + 1)}
        )
        assert (ok.status_code, too_long.status_code) == (200, 400)

    def test_the_maximum_amount_passes_validation_and_one_more_does_not(
        self, api: ConformingClient
    ) -> None:
        most = self.limits()["SendCoinRequest"]["properties"]["amount"]["maximum"]
        sender, recipient = sign_up(api), sign_up(api)
        replies = [
            api.post(
                "/api/sendCoin",
                json={"toUser": recipient.name, "amount": amount},
                headers=sender.headers,
            ).json
            for amount in (most, most + 1)
        ]
        assert replies == [
            {"errors": "not enough coins"},
            {"errors": f"amount must be at most {most}"},
        ]

    def test_every_item_of_the_enum_can_be_bought(self, api: ConformingClient) -> None:
        items = document()["components"]["parameters"]["Item"]["schema"]["enum"]
        assert set(items) == set(CATALOGUE)
        statuses = {
            item: api.get(f"/api/buy/{item}", headers=sign_up(api).headers).status_code
            for item in items
        }
        assert set(statuses.values()) == {200}, statuses


class TestOperationalResponsesConform:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/healthz", 200),
            ("HEAD", "/healthz", 200),
            ("GET", "/readyz", 200),
            ("GET", "/metrics", 200),
            ("GET", "/openapi.json", 200),
            ("OPTIONS", "/api/auth", 200),
            ("GET", "/debug/pprof/", 404),
            ("GET", "/debug/pprof/profile", 404),
            ("GET", "/nope", 404),
            ("GET", "/api/buy/", 404),
            ("GET", "/api/buy/cup/extra", 404),
            ("GET", "/api/Info", 404),
            ("GET", "/api/auth", 405),
            ("GET", "/api/sendCoin", 405),
            ("POST", "/api/buy/cup", 405),
            ("DELETE", "/api/info", 405),
            ("POST", "/healthz", 405),
            ("PUT", "/openapi.json", 405),
        ],
    )
    def test_probes_routing_failures_and_methods_conform(
        self, api: ConformingClient, method: str, path: str, status: int
    ) -> None:
        assert api.open(path, method=method).status_code == status


class FailingHasher:
    """Stands in for argon2 to force one failure; the database stays real."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def hash(self, password: str) -> str:
        raise self.error

    verify = needs_rehash = hash


def rewired(app: Flask, **changes: Any) -> ConformingClient:
    """Rewire a test's own app (an unreachable database, a failing hasher...)."""
    wired = app.extensions["shop"]
    app.extensions["shop"] = replace(wired, **changes)
    return conforming(app)


def unreachable_engine() -> sa.Engine:
    return sa.create_engine(
        "postgresql+psycopg://x@127.0.0.1:1/x", connect_args={"connect_timeout": 1}
    )


class TestFaultResponsesConform:
    @pytest.mark.parametrize(("method", "path"), [("POST", "/api/auth"), ("GET", "/api/info")])
    def test_an_unreachable_database_is_a_conforming_503(
        self, fresh_app: Flask, method: str, path: str
    ) -> None:
        user = sign_up(conforming(fresh_app))
        api = rewired(fresh_app, engine=unreachable_engine())
        credentials = {"username": random_username(), "password": "p"}
        reply = api.open(path, method=method, json=credentials, headers=user.headers)
        assert reply.status_code == 503

    def test_readiness_without_a_database_is_a_conforming_503(self, settings: Settings) -> None:
        dead = "postgresql://nobody@127.0.0.1:1/none"
        with own_app(replace(settings, database_url=dead)) as app:
            assert conforming(app).get("/readyz").status_code == 503

    def test_a_full_hash_queue_is_a_conforming_429(self, fresh_app: Flask) -> None:
        from shop.domain.errors import TooManyLogins

        api = rewired(fresh_app, hasher=FailingHasher(TooManyLogins("busy, retry shortly")))
        reply = api.post("/api/auth", json={"username": random_username(), "password": "p"})
        assert reply.status_code == 429

    def test_an_unexpected_fault_is_a_conforming_500(self, fresh_app: Flask) -> None:
        api = rewired(fresh_app, hasher=FailingHasher(RuntimeError("SELECT secret")))
        reply = api.post("/api/auth", json={"username": random_username(), "password": "p"})
        assert (reply.status_code, reply.json) == (500, {"errors": "internal server error"})


DEBUG_TOKEN = "debug-" + "d" * 32


@pytest.fixture
def debug_api(settings: Settings) -> Iterator[ConformingClient]:
    """An app of its own with /debug switched on."""
    app = create_app(replace(settings, debug_token=DEBUG_TOKEN))
    yield conforming(app)
    app.extensions["shop"].engine.dispose()


class TestDebugResponsesConform:
    DEBUG = {"Authorization": f"Bearer {DEBUG_TOKEN}"}

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/debug/pprof/", 200),
            ("/debug/pprof/goroutine", 200),
            ("/debug/pprof/profile?seconds=0", 400),
            ("/debug/pprof/profile?seconds=61", 400),
            ("/debug/pprof/profile?format=svg", 400),
        ],
    )
    def test_debug_endpoints_conform(
        self, debug_api: ConformingClient, path: str, status: int
    ) -> None:
        assert debug_api.get(path, headers=self.DEBUG).status_code == status

    def test_debug_without_the_token_is_a_conforming_401(self, debug_api: ConformingClient) -> None:
        assert debug_api.get("/debug/pprof/").status_code == 401

    def test_a_heap_session_conforms(self, debug_api: ConformingClient) -> None:
        calls = ["/debug/pprof/heap", "/debug/pprof/heap", "/debug/pprof/heap?stop=1"]
        assert [debug_api.get(path, headers=self.DEBUG).status_code for path in calls] == [200] * 3

    def test_a_one_second_profile_conforms(self, debug_api: ConformingClient) -> None:
        reply = debug_api.get("/debug/pprof/profile?seconds=1&format=collapsed", headers=self.DEBUG)
        assert reply.status_code == 200


def wallet(api: ConformingClient, user: User) -> dict[str, Any]:
    document: dict[str, Any] = api.get("/api/info", headers=user.headers).get_json()
    return document


class TestIdempotencyKey:
    def test_a_repeated_transfer_key_replays_the_first_outcome_and_moves_coins_once(
        self, api: ConformingClient
    ) -> None:
        sender, recipient = sign_up(api), sign_up(api)
        headers = {**sender.headers, "Idempotency-Key": random_username("key")}
        send = {"toUser": recipient.name, "amount": 5}
        first, again = (api.post("/api/sendCoin", json=send, headers=headers) for _ in "12")
        assert (again.status_code, again.json) == (first.status_code, first.json) == (200, {})
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert wallet(api, sender)["coins"] == 995

    def test_a_repeated_purchase_key_replays_a_refusal_too(self, api: ConformingClient) -> None:
        user = sign_up(api)
        api.get("/api/buy/pink-hoody", headers=user.headers)
        api.get("/api/buy/pink-hoody", headers=user.headers)
        headers = {**user.headers, "Idempotency-Key": random_username("key")}
        first, again = (api.get("/api/buy/pen", headers=headers) for _ in "12")
        assert (first.status_code, again.status_code) == (400, 400)
        assert again.json == first.json
        assert again.headers.get("Idempotent-Replayed") == "true"

    def test_a_key_reused_for_another_request_is_a_conforming_422(
        self, api: ConformingClient
    ) -> None:
        sender, recipient = sign_up(api), sign_up(api)
        headers = {**sender.headers, "Idempotency-Key": random_username("key")}
        api.post("/api/sendCoin", json={"toUser": recipient.name, "amount": 5}, headers=headers)
        reply = api.post(
            "/api/sendCoin", json={"toUser": recipient.name, "amount": 6}, headers=headers
        )
        assert reply.status_code == 422
        assert wallet(api, sender)["coins"] == 995

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("", id="empty"),
            pytest.param("k" * 256, id="too-long"),
            pytest.param("has space", id="space"),
            pytest.param("caf\xe9", id="not-ascii"),
        ],
    )
    @pytest.mark.parametrize(
        ("method", "path"), [("POST", "/api/sendCoin"), ("GET", "/api/buy/pen")]
    )
    def test_a_malformed_key_is_a_conforming_400_that_changes_nothing(
        self, api: ConformingClient, key: str, method: str, path: str
    ) -> None:
        sender, recipient = sign_up(api), sign_up(api)
        headers = {**sender.headers, "Idempotency-Key": key}
        send = {"toUser": recipient.name, "amount": 5}
        assert api.open(path, method=method, json=send, headers=headers).status_code == 400
        assert wallet(api, sender)["coins"] == 1000
