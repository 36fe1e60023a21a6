"""Limits on names, passwords and amounts, checked before any database work."""

from __future__ import annotations

import unicodedata

from shop.domain.errors import ValidationError

STARTING_BALANCE = 1000
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 256
MAX_AMOUNT = 1_000_000_000


def normalize_username(raw: str, field: str = "username") -> str:
    """Return the NFC form of a username, or raise if it breaks the limits.

    NFC makes a composed and a decomposed "é" the same account; control and
    format characters are refused because they hide in logs and UIs.
    """
    name = unicodedata.normalize("NFC", raw)
    if not name:
        raise ValidationError(f"{field} must not be empty")
    if len(name) > MAX_USERNAME_LENGTH:
        raise ValidationError(f"{field} must be at most {MAX_USERNAME_LENGTH} characters")
    if name != name.strip():
        raise ValidationError(f"{field} must not start or end with whitespace")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name):
        raise ValidationError(f"{field} must not contain control characters")
    return name


def check_password(password: str) -> str:
    """Return the password if it is within the documented limits."""
    if not password:
        raise ValidationError("password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_amount(amount: int) -> int:
    """Return a transfer amount if it is between 1 and ``MAX_AMOUNT`` coins."""
    if amount < 1:
        raise ValidationError("amount must be at least 1")
    if amount > MAX_AMOUNT:
        raise ValidationError(f"amount must be at most {MAX_AMOUNT}")
    return amount
