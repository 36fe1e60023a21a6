"""Strict parsing of JSON request bodies."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from shop.domain.errors import ValidationError


def json_object(*fields: str) -> dict[str, Any]:
    """Return the body as a JSON object holding exactly ``fields``; any Content-Type is fine."""
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("request body must be valid JSON") from None
    except RecursionError:  # nesting deeper than the interpreter's recursion limit
        raise ValidationError("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    missing = [name for name in fields if name not in body]
    if missing:
        raise ValidationError(f"missing field: {missing[0]}")
    unexpected = sorted(set(body) - set(fields))
    if unexpected:
        raise ValidationError(f"unexpected field: {unexpected[0]}")
    return body


def string_field(body: dict[str, Any], name: str) -> str:
    """Return ``body[name]`` if it is a JSON string that UTF-8 can encode."""
    value = body[name]
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    if not value.isascii():
        try:  # JSON may escape a lone surrogate ("\\ud800"), which no text encoding takes
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{name} must be valid Unicode (no lone surrogates)") from None
    return value


def integer_field(body: dict[str, Any], name: str) -> int:
    """Return ``body[name]`` if it is a JSON integer (not a bool, float or string)."""
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer")
    return value
