"""Domain errors: each carries a message for the client, never an HTTP status."""

from __future__ import annotations


class ShopError(Exception):
    """Base of every error the shop reports to a client."""

    reason = "error"
    # Seconds after which a retry may succeed (refusals that are about load or pace).
    retry_after: float | None = None
    # True when this outcome is the stored answer to an earlier request (Idempotency-Key).
    replayed = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ShopError):
    """The request is malformed or breaks a documented limit."""

    reason = "validation"


class UnknownItem(ShopError):
    """The item is not in the catalogue."""

    reason = "unknown_item"


class UnknownRecipient(ShopError):
    """Coins were sent to a username that does not exist."""

    reason = "unknown_recipient"


class SelfTransfer(ShopError):
    """A user tried to send coins to themselves."""

    reason = "self_transfer"


class InsufficientFunds(ShopError):
    """The balance does not cover the purchase or transfer."""

    reason = "insufficient_funds"


class InvalidCredentials(ShopError):
    """The password does not match the stored hash."""

    reason = "invalid_credentials"


class MissingToken(ShopError):
    """The request carries no bearer token."""

    reason = "missing_token"


class InvalidToken(ShopError):
    """The bearer token is malformed, forged, of another algorithm, or expired."""

    reason = "invalid_token"


class UnknownUser(ShopError):
    """A valid token names a user that no longer exists."""

    reason = "unknown_user"


class TooManyLogins(ShopError):
    """More logins are waiting for a password hash than this worker will queue."""

    reason = "too_many_logins"
    retry_after = 1.0


class LoginThrottled(ShopError):
    """Too many failed logins in one scope (account, address or both): wait, then retry."""

    reason = "login_throttled"

    def __init__(self, scope: str, retry_after: float) -> None:
        super().__init__("too many failed logins, retry later")
        self.scope = scope
        self.retry_after = retry_after


class IdempotencyConflict(ShopError):
    """An Idempotency-Key was reused for a request other than its first one."""

    reason = "idempotency_conflict"
