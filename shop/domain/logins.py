"""Login throttling: how many failed logins each scope allows before it slows them down.

Three scopes count attempts: the (account, address) pair, the address across accounts,
and the account across addresses. The account scope skips addresses the account has
logged in from before, so a stranger guessing a password from elsewhere cannot lock the
rightful user out of their usual path; from a new address they wait at most the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

# An address the account logged in from within this many days is "known" to it.
KNOWN_ADDRESS_DAYS = 30


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Free failures per scope, then lockouts of 1, 2, 4, ... seconds up to ``max_lockout``."""

    pair_free: int = 5
    account_free: int = 20
    address_free: int = 50
    max_lockout: int = 900

    @property
    def window(self) -> int:
        """Seconds without a failure after which a scope's count starts over."""
        return 4 * self.max_lockout


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """Who tries to log in, from where."""

    username: str
    address: str


@dataclass(frozen=True, slots=True)
class Throttle:
    """The longest lockout in force for an attempt (``scope`` None: none is)."""

    scope: str | None = None
    retry_after: float = 0.0


def lockout_seconds(failures: int, free: int, cap: int) -> float:
    """Return how long a scope with ``failures`` counted failures is locked after the last."""
    if failures < free:
        return 0.0
    return float(min(cap, 2 ** min(failures - free, 32)))
