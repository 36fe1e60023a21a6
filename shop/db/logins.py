"""SQL for login throttling: failure counts per scope, and each account's known addresses."""

from __future__ import annotations

from typing import Any

from shop.db.statements import Sql, Statements
from shop.domain.logins import KNOWN_ADDRESS_DAYS, LoginAttempt, LoginPolicy, Throttle

# The longest lockout in force for an attempt, if any. A scope with n failures
# (n >= its free allowance) is locked for min(max_lockout, 2^(n - free)) seconds after
# its last failure (domain/logins.py). The account scope does not apply to addresses the
# account has logged in from.
THROTTLE = Sql(
    "WITH login_failures login_known_addresses",
    """
    WITH scopes (scope, username, address, free) AS (
        VALUES ('pair', %(username)s, %(address)s, %(pair_free)s),
               ('account', %(username)s, '', %(account_free)s),
               ('address', '', %(address)s, %(address_free)s)
    ), known AS (
        SELECT EXISTS (
            SELECT 1 FROM users u JOIN login_known_addresses k ON k.user_id = u.id
             WHERE u.username = %(username)s AND k.address = %(address)s
               AND k.last_success > now() - %(known_days)s * interval '1 day'
        ) AS yes
    ), locks AS (
        SELECT s.scope,
               extract(epoch FROM f.last_failure
                       + least(%(max_lockout)s, 2 ^ least(f.failures - s.free, 32))
                         * interval '1 second'
                       - now()) AS seconds
          FROM scopes s
          JOIN login_failures f USING (scope, username, address)
         WHERE f.failures >= s.free
           AND f.last_failure > now() - %(window)s * interval '1 second'
           AND (s.scope <> 'account' OR NOT (SELECT yes FROM known))
    )
    SELECT scope, seconds FROM locks WHERE seconds > 0 ORDER BY seconds DESC LIMIT 1
    """,
    writes=False,
)

# A wrong password counts in all three scopes; a count idle for a whole window restarts.
FAILED = Sql(
    "INSERT login_failures",
    """
    INSERT INTO login_failures AS f (scope, username, address, failures, last_failure)
    VALUES ('pair', %(username)s, %(address)s, 1, now()),
           ('account', %(username)s, '', 1, now()),
           ('address', '', %(address)s, 1, now())
    ON CONFLICT (scope, username, address) DO UPDATE
       SET failures = CASE WHEN f.last_failure < now() - %(window)s * interval '1 second'
                           THEN 1 ELSE f.failures + 1 END,
           last_failure = now()
    """,
    writes=True,
)

# The right password: forget the pair's failures (not the account's or the address's:
# a stranger's guesses stay counted) and remember the address as one this account uses.
SUCCEEDED = Sql(
    "WITH login_failures login_known_addresses",
    """
    WITH pair AS (
        DELETE FROM login_failures
         WHERE scope = 'pair' AND username = %(username)s AND address = %(address)s
    )
    INSERT INTO login_known_addresses (user_id, address, last_success)
    VALUES (%(user_id)s, %(address)s, now())
    ON CONFLICT (user_id, address) DO UPDATE SET last_success = now()
    """,
    writes=True,
)

PURGE = Sql(
    "DELETE login_failures",
    """
    DELETE FROM login_failures
     WHERE last_failure < now() - %(window)s * interval '1 second'
    """,
    writes=True,
)


class SqlLoginRepository:
    """Login attempt counts in PostgreSQL, shared by every worker and replica."""

    def __init__(self, db: Statements, policy: LoginPolicy) -> None:
        self._db = db
        self._policy = policy

    def throttle(self, attempt: LoginAttempt) -> Throttle:
        row = self._db.first(THROTTLE, self._params(attempt))
        return Throttle() if row is None else Throttle(row.scope, float(row.seconds))

    def failed(self, attempt: LoginAttempt) -> None:
        params = {"username": attempt.username, "address": attempt.address}
        self._db.run(FAILED, {**params, "window": self._policy.window})

    def succeeded(self, attempt: LoginAttempt, user_id: int) -> None:
        params = {"username": attempt.username, "address": attempt.address, "user_id": user_id}
        self._db.run(SUCCEEDED, params)

    def _params(self, attempt: LoginAttempt) -> dict[str, Any]:
        policy = self._policy
        return {
            "username": attempt.username,
            "address": attempt.address,
            "pair_free": policy.pair_free,
            "account_free": policy.account_free,
            "address_free": policy.address_free,
            "max_lockout": policy.max_lockout,
            "window": policy.window,
            "known_days": KNOWN_ADDRESS_DAYS,
        }
