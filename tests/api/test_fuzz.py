"""Fuzz the API in-process from its OpenAPI document: no input gets a 5xx, every answer conforms.

schemathesis generates valid and invalid requests for each documented operation (examples,
boundary values, then random cases), sends them to the real app on the real database, and
checks each response against the document, as ``tests.contract`` does too. Bounded and
derandomized: a fixed number of cases per operation, the same ones on every run;
``FUZZ_SCALE=20`` multiplies the counts for a deeper hunt.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.datastructures import Headers

from shop.api.openapi import document
from tests.contract import ConformingClient, check
from tests.helpers import sign_up

# The document /openapi.json serves (TestDocument checks they are the same). Not loaded
# through a fixture: schemathesis.pytest.from_fixture breaks on pytest 9.2 (Node._nodeid).
SCHEMA = schemathesis.openapi.from_dict(document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # what breaks the documented limits is refused
    ignored_auth,  # the API refuses requests without a valid token
]
FuzzCase = schemathesis.Case[Any]
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=60 * SCALE,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def sender_and_recipient(app: Flask) -> tuple[str, str]:
    """Return the sender's token and the recipient's name, for one operation's whole fuzz."""
    sender, recipient = sign_up(app.test_client()), sign_up(app.test_client())
    return sender.token, recipient.name


@SCHEMA.parametrize()
@FUZZ
def test_no_generated_request_gets_a_5xx_or_a_nonconforming_answer(
    case: FuzzCase,
    app: Flask,
    sender_and_recipient: tuple[str, str],
) -> None:
    token, recipient = sender_and_recipient
    # In-process WSGI calls, for the case and for the checks' own probes.
    case.operation.app = case.operation.schema.app = app
    if case.operation.label == "POST /api/sendCoin" and is_positive(case):
        assert isinstance(case.body, dict)
        case.body["toUser"] = recipient  # a real colleague: transfers that can succeed
    response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
    headers = Headers(
        [(name, value) for name, values in response.headers.items() for value in values]
    )
    check(case.method.upper(), case.formatted_path, response.status_code, headers, response.content)


def is_positive(case: FuzzCase) -> bool:
    """Whether schemathesis meant this case to be valid (then it stays valid after our edit)."""
    return (
        case.meta is not None
        and case.meta.generation.mode.is_positive
        and isinstance(case.body, dict)
    )


def nested(opening: str, closing: str, depth: int, inner: str = "") -> bytes:
    return (opening * depth + inner + closing * depth).encode()


NESTED_BODIES = [
    pytest.param(nested("[", "]", 7_000), id="arrays-7000"),
    pytest.param(nested('{"a":', "}", 2_500, "1"), id="objects-2500"),
    pytest.param(nested('[{"a":', "}]", 1_500, "1"), id="mixed-3000"),
    pytest.param(
        b'{"username": ' + nested("[", "]", 7_000) + b', "password": "p"}', id="field-7000"
    ),
    pytest.param(
        b'{"toUser": "x", "amount": ' + nested('{"a":', "}", 2_500, "1") + b"}",
        id="amount-2500",
    ),
]


class TestNestedJson:
    """A body nested thousands deep made json.loads raise RecursionError, answered 500."""

    @pytest.mark.parametrize("raw", NESTED_BODIES)
    @pytest.mark.parametrize("path", ["/api/auth", "/api/sendCoin"])
    def test_a_deeply_nested_body_is_a_conforming_400(
        self, app: Flask, path: str, raw: bytes
    ) -> None:
        token = sign_up(app.test_client()).token
        api = ConformingClient(app, app.response_class, use_cookies=False)
        reply = api.post(path, data=raw, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 400

    @pytest.mark.parametrize("path", ["/api/auth", "/api/sendCoin"])
    def test_nesting_too_deep_for_the_size_limit_is_a_conforming_413(
        self, app: Flask, path: str
    ) -> None:
        token = sign_up(app.test_client()).token
        api = ConformingClient(app, app.response_class, use_cookies=False)
        raw = nested("[", "]", 100_000)
        reply = api.post(path, data=raw, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 413


# Characters that have broken text handling somewhere: lone surrogates (valid JSON, no
# text), NUL, bidi and format characters, a BOM, a combining mark, one that NFC expands.
AWKWARD = [
    "\ud800",
    "\udfff",
    "\x00",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u0301",
    "\u0958",
    "\U0001f600",
]
# (st.text would filter the surrogates out again.)
ANY_TEXT = st.lists(st.characters() | st.sampled_from(AWKWARD), max_size=80).map("".join)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def encoded(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[bytes]:
    return strategy.map(json.dumps).map(str.encode)


GOOD_NAME = st.from_regex(r"\Afuzz-[a-z0-9]{1,16}\Z")
FIELD = GOOD_NAME | ANY_TEXT | st.integers() | ANY_JSON


def bodies(**plausible: st.SearchStrategy[object]) -> st.SearchStrategy[bytes]:
    """Raw bytes, any JSON, the fields with any values, or with plausible (awkward) values."""
    anything = st.fixed_dictionaries(dict.fromkeys(plausible, FIELD))
    return (
        st.binary(max_size=300)
        | encoded(ANY_JSON)
        | encoded(anything)
        | encoded(st.fixed_dictionaries(plausible))
    )


AUTH_BODIES = bodies(username=GOOD_NAME | ANY_TEXT, password=ANY_TEXT)
TRANSFER_BODIES = bodies(toUser=GOOD_NAME | ANY_TEXT, amount=st.integers())


class TestRawBodies:
    """Bodies schemathesis does not write: raw bytes, any JSON, right keys with any values."""

    @pytest.mark.parametrize(
        ("path", "strategy"),
        [("/api/auth", AUTH_BODIES), ("/api/sendCoin", TRANSFER_BODIES)],
        ids=["auth", "sendCoin"],
    )
    def test_no_body_gets_a_5xx_or_a_nonconforming_answer(
        self, app: Flask, path: str, strategy: st.SearchStrategy[bytes]
    ) -> None:
        token = sign_up(app.test_client()).token
        api = ConformingClient(app, app.response_class, use_cookies=False)

        @given(raw=strategy)
        @settings(max_examples=200 * SCALE, derandomize=True, database=None, deadline=None)
        def post(raw: bytes) -> None:
            reply = api.post(path, data=raw, headers={"Authorization": f"Bearer {token}"})
            assert reply.status_code < 500

        post()
