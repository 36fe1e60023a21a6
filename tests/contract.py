"""Check real responses against the OpenAPI document: status, media type, headers and body.

``check_response`` takes a Flask test-client response; ``ConformingClient`` is a test client
that checks every response it gets. Rules beyond the document's operations: an undocumented
path must answer 404, an undocumented method on a documented path 405 with ``Allow``, both
with the ``ErrorResponse`` body; Flask answers HEAD like GET (without a body) and OPTIONS
by itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from openapi_schema_validator import OAS30ReadValidator
from werkzeug.datastructures import Headers
from werkzeug.test import TestResponse

from shop.api.openapi import document

Json = dict[str, Any]
HeaderMap = Mapping[str, str] | Headers


class ContractViolation(AssertionError):
    """A response the OpenAPI document does not allow."""


def check_response(response: TestResponse) -> None:
    """Raise ``ContractViolation`` unless the document allows this response to its request."""
    request = response.request
    body = b"" if request.method == "HEAD" else response.get_data()
    check(request.method, request.path, response.status_code, response.headers, body)


def check(method: str, path: str, status: int, headers: HeaderMap, body: bytes) -> None:
    """Raise ``ContractViolation`` unless the document allows this exchange."""
    where = f"{method} {path} -> {status}"
    template = template_of(path)
    if template is None:
        _expect(status == 404, f"{where}: an undocumented path must answer 404")
        _check_against(_component("responses", "NotFound"), headers, body, where)
        return
    operation = _operation(template, method)
    if operation is None:
        _check_unlisted_method(template, method, status, headers, body, where)
        return
    response = operation["responses"].get(str(status))
    _expect(response is not None, f"{where}: status {status} is not documented for {template}")
    _check_against(response, headers, body if method != "HEAD" else None, where)


class ConformingClient(FlaskClient):
    """A Flask test client that checks every response against the OpenAPI document."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        check_response(response)
        return response


def template_of(path: str) -> str | None:
    """Return the documented path template that ``path`` matches, if any."""
    for template, pattern in _templates():
        if pattern.fullmatch(path):
            return template
    return None


@cache
def _templates() -> tuple[tuple[str, re.Pattern[str]], ...]:
    def pattern(template: str) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", template)
        return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))

    return tuple((template, pattern(template)) for template in document()["paths"])


def _operation(template: str, method: str) -> Json | None:
    path_item = document()["paths"][template]
    operation: Json | None = path_item.get(method.lower())
    if operation is None and method == "HEAD":
        operation = path_item.get("get")
    return operation


def _check_unlisted_method(
    template: str, method: str, status: int, headers: HeaderMap, body: bytes, where: str
) -> None:
    if method == "OPTIONS" and status == 200:  # Flask's own answer: the methods, no body
        _expect("Allow" in headers, f"{where}: OPTIONS must list Allow")
        return
    if method == "OPTIONS":  # refused before Flask answers (/debug switched off): documented?
        documented = [
            op["responses"][str(status)]
            for op in document()["paths"][template].values()
            if str(status) in op["responses"]
        ]
        _expect(bool(documented), f"{where}: status {status} is documented for no method here")
        _check_against(documented[0], headers, body, where)
        return
    _expect(status == 405, f"{where}: an undocumented method must answer 405")
    _check_against(_component("responses", "MethodNotAllowed"), headers, body, where)


def _check_against(response: Json, headers: HeaderMap, body: bytes | None, where: str) -> None:
    response = _resolve(response)
    for name, header in response.get("headers", {}).items():
        _check_header(name, _resolve(header), headers, where)
    content: Json | None = response.get("content")
    if content is None:
        _expect(not body, f"{where}: no body is documented, got {body!r:.80}")
        return
    media_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    _expect(media_type in content, f"{where}: media type {media_type!r} not in {list(content)}")
    if body is None:
        return
    if media_type == "application/json":
        _validate(json.loads(body), content[media_type]["schema"], f"{where}: body")
    else:
        body.decode("utf-8")  # text bodies must at least be UTF-8


def _check_header(name: str, header: Json, headers: HeaderMap, where: str) -> None:
    value = headers.get(name)
    if value is None:
        _expect(not header.get("required", False), f"{where}: header {name} is missing")
        return
    schema = header.get("schema", {})
    typed: Any = value
    if schema.get("type") == "integer":
        _expect(value.isdigit(), f"{where}: header {name}={value!r} is not an integer")
        typed = int(value)
    _validate(typed, schema, f"{where}: header {name}")


def _validate(instance: Any, schema: Json, where: str) -> None:
    # A root that carries the components lets "#/components/..." references resolve.
    root = {"components": document()["components"], "allOf": [schema]}
    errors = sorted(OAS30ReadValidator(root).iter_errors(instance), key=str)
    _expect(not errors, f"{where}: {errors[0].message if errors else ''} in {instance!r:.200}")


def _resolve(node: Json) -> Json:
    while "$ref" in node:
        _, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = _component(kind, name)
    return node


def _component(kind: str, name: str) -> Json:
    component: Json = document()["components"][kind][name]
    return component


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)
