"""Every protected endpoint refuses missing and bad tokens with a JSON 401."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time

from shop.api.tokens import verified
from shop.domain.errors import InvalidToken
from tests.helpers import Login, User, error_of

PROTECTED = [
    ("GET", "/api/info", None),
    ("GET", "/api/buy/pen", None),
    ("POST", "/api/sendCoin", {"toUser": "x", "amount": 1}),
]


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


TOKEN_TTL = 60


def forge(secret: str, **claims: object) -> str:
    """Sign a token with our secret (or another), valid for a minute unless ``claims`` say
    otherwise."""
    now = int(time.time())
    payload = {"sub": "1", "iat": now, "nbf": now, "exp": now + TOKEN_TTL, "type": "access"}
    return jwt.encode({**payload, **claims}, secret, algorithm="HS256")


def subject_of(user: User, secret: str) -> str:
    token = user.token
    subject = jwt.decode(token, secret, algorithms=["HS256"])["sub"]
    assert isinstance(subject, str)
    return subject


BAD_TOKEN_CASES = [
    "missing",
    "not bearer",
    "bearer without token",
    "garbage",
    "wrong secret",
    "expired",
    "alg none",
    "HS512",
    "tampered",
    "non-numeric subject",
]


def bad_tokens(secret: str, valid: str) -> dict[str, str]:
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return {
        "missing": "",
        "not bearer": f"Token {valid}",
        "bearer without token": "Bearer ",
        "garbage": "Bearer not.a.jwt",
        "wrong secret": "Bearer " + forge("another-secret-of-sufficient-length-0123456789"),
        "expired": "Bearer " + forge(secret, exp=int(time.time()) - 10),
        "alg none": "Bearer " + b64({"alg": "none", "typ": "JWT"}) + "." + payload + ".",
        "HS512": "Bearer " + jwt.encode(claims, secret, algorithm="HS512"),
        "tampered": "Bearer " + header + "." + b64({**claims, "sub": "2"}) + "." + signature,
        "non-numeric subject": "Bearer " + forge(secret, sub="alice"),
    }


class TestRefusals:
    @pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
    @pytest.mark.parametrize("case", BAD_TOKEN_CASES)
    def test_a_bad_token_is_401_json_on_every_protected_endpoint(
        self,
        client: FlaskClient,
        login: Login,
        jwt_secret: str,
        method: str,
        path: str,
        body: dict[str, object] | None,
        case: str,
    ) -> None:
        valid = login().token
        header = bad_tokens(jwt_secret, valid)[case]
        headers = {"Authorization": header} if header else {}
        reply = client.open(path, method=method, json=body, headers=headers)
        assert reply.status_code == 401, reply.json
        assert error_of(reply)

    def test_a_token_of_a_user_that_does_not_exist_is_401(
        self, client: FlaskClient, jwt_secret: str
    ) -> None:
        token = forge(jwt_secret, sub="999999999")
        reply = client.get("/api/info", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401

    def test_a_refresh_token_is_not_an_access_token(
        self, client: FlaskClient, jwt_secret: str
    ) -> None:
        token = forge(jwt_secret, type="refresh")
        reply = client.get("/api/info", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401


class TestRememberedTokens:
    def test_a_remembered_token_is_refused_once_it_expires(
        self, client: FlaskClient, login: Login, jwt_secret: str
    ) -> None:
        user_id = subject_of(login(), jwt_secret)
        headers = {"Authorization": f"Bearer {forge(jwt_secret, sub=user_id)}"}
        assert client.get("/api/info", headers=headers).status_code == 200  # verified, remembered
        hits = verified.cache_info().hits
        # A clock past the token's expiry, not a sleep: nothing else in the request reads it.
        with freeze_time(timedelta(seconds=TOKEN_TTL + 1)):
            reply = client.get("/api/info", headers=headers)
        assert verified.cache_info().hits == hits + 1, "the token was not remembered"
        assert reply.status_code == 401
        assert reply.json == {"errors": "token has expired"}

    def test_a_token_remembered_under_one_secret_is_refused_under_another(
        self, login: Login, jwt_secret: str
    ) -> None:
        token = login().token
        verified(token, jwt_secret)
        with pytest.raises(InvalidToken):
            verified(token, "another-secret-of-sufficient-length-0123456789")
