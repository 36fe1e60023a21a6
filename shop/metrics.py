"""The shop's business counters: what was bought and sent, who signed up, what was refused.

Served on /metrics with the service's technical metrics (``observability.metrics``), which
are imported first: under gunicorn they set up the multiprocess value class every metric of
the worker must be created with.
"""

from __future__ import annotations

from prometheus_client import Counter

import observability.metrics  # noqa: F401 - before any metric here is created
from shop.domain.errors import LoginThrottled, ShopError

PURCHASES = Counter("shop_purchases", "Items bought, by item.", ["item"])
COINS_SPENT = Counter("shop_coins_spent", "Coins spent on merch.")
TRANSFERS = Counter("shop_coin_transfers", "Successful coin transfers.")
COINS_TRANSFERRED = Counter("shop_coins_transferred", "Coins moved between users.")
USERS_CREATED = Counter("shop_users_created", "Users created by their first login.")
AUTH_FAILURES = Counter("shop_auth_failures", "Refused logins and tokens, by reason.", ["reason"])
REJECTIONS = Counter(
    "shop_business_rejections", "Requests refused by a business rule, by reason.", ["reason"]
)
LOGIN_THROTTLED = Counter(
    "shop_login_throttled", "Logins refused by the failed-login throttle, by scope.", ["scope"]
)
IDEMPOTENT_REPLAYS = Counter(
    "shop_idempotent_replays",
    "Requests answered with the stored outcome of an earlier one (Idempotency-Key).",
    ["operation"],
)

AUTH_REASONS = frozenset({"invalid_credentials", "unknown_user", "missing_token", "invalid_token"})


def record_purchase(item: str, price: int, replayed: bool = False) -> None:
    """Count one purchase and its coins, or a replay of an earlier one."""
    if replayed:
        IDEMPOTENT_REPLAYS.labels("buy").inc()
        return
    PURCHASES.labels(item).inc()
    COINS_SPENT.inc(price)


def record_transfer(amount: int, replayed: bool = False) -> None:
    """Count one transfer and its coins, or a replay of an earlier one."""
    if replayed:
        IDEMPOTENT_REPLAYS.labels("sendCoin").inc()
        return
    TRANSFERS.inc()
    COINS_TRANSFERRED.inc(amount)


def record_sign_up() -> None:
    """Count a user created by their first login."""
    USERS_CREATED.inc()


def record_refusal(error: ShopError) -> None:
    """Count a refused request under auth failures, throttled logins or business rejections."""
    if isinstance(error, LoginThrottled):
        LOGIN_THROTTLED.labels(error.scope).inc()
    elif error.reason in AUTH_REASONS:
        AUTH_FAILURES.labels(error.reason).inc()
    else:
        REJECTIONS.labels(error.reason).inc()
