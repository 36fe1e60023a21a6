"""POST /api/auth."""

from __future__ import annotations

import jwt
import pytest
from flask.testing import FlaskClient

from tests.factories import PASSWORD, random_username
from tests.helpers import Login, body, error_of


class TestSignUpAndLogin:
    def test_first_call_creates_the_user_and_returns_a_token(
        self, client: FlaskClient, jwt_secret: str
    ) -> None:
        reply = client.post("/api/auth", json={"username": random_username(), "password": "pw"})
        assert reply.status_code == 200
        claims = jwt.decode(body(reply)["token"], jwt_secret, algorithms=["HS256"])
        assert claims["sub"].isdigit()
        assert claims["exp"] - claims["iat"] == 3600

    def test_the_same_password_logs_in_as_the_same_user(
        self, client: FlaskClient, jwt_secret: str
    ) -> None:
        credentials = {"username": random_username(), "password": PASSWORD}
        first, second = (client.post("/api/auth", json=credentials) for _ in range(2))
        subjects = [
            jwt.decode(body(r)["token"], jwt_secret, algorithms=["HS256"])["sub"]
            for r in (first, second)
        ]
        assert subjects[0] == subjects[1]

    def test_a_wrong_password_is_401(self, client: FlaskClient, login: Login) -> None:
        user = login()
        reply = client.post("/api/auth", json={"username": user.name, "password": "nope"})
        assert reply.status_code == 401
        assert reply.json == {"errors": "invalid username or password"}

    def test_a_unicode_username_signs_up_and_logs_in(
        self, client: FlaskClient, login: Login
    ) -> None:
        user = login(random_username("Ярослав-张伟-🙂"))
        reply = client.get("/api/info", headers=user.headers)
        assert reply.status_code == 200

    def test_a_body_without_a_json_content_type_is_accepted(self, client: FlaskClient) -> None:
        body = f'{{"username": "{random_username()}", "password": "pw"}}'
        reply = client.post("/api/auth", data=body, content_type="text/plain")
        assert reply.status_code == 200


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("{", "valid JSON"),
            ("[]", "JSON object"),
            ('"x"', "JSON object"),
            ("{}", "missing field: username"),
            ('{"username": "a"}', "missing field: password"),
            ('{"username": "", "password": "p"}', "username must not be empty"),
            ('{"username": "a", "password": ""}', "password must not be empty"),
            ('{"username": 1, "password": "p"}', "username must be a string"),
            ('{"username": "a", "password": null}', "password must be a string"),
            ('{"username": "a", "password": "p", "role": "admin"}', "unexpected field: role"),
            ('{"username": "' + "a" * 65 + '", "password": "p"}', "at most 64"),
            ('{"username": "a", "password": "' + "p" * 257 + '"}', "at most 256"),
        ],
    )
    def test_bad_bodies_are_400_with_a_reason(
        self, client: FlaskClient, body: str, message: str
    ) -> None:
        reply = client.post("/api/auth", data=body, content_type="application/json")
        assert reply.status_code == 400
        assert message in error_of(reply)

    def test_invalid_utf8_is_400(self, client: FlaskClient) -> None:
        reply = client.post("/api/auth", data=b"\xff\xfe", content_type="application/json")
        assert reply.status_code == 400

    def test_oversized_body_is_413_json(self, client: FlaskClient) -> None:
        body = '{"username": "a", "password": "' + "p" * 20_000 + '"}'
        reply = client.post("/api/auth", data=body, content_type="application/json")
        assert reply.status_code == 413
        assert error_of(reply)
