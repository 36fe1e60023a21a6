"""Run a write at most once per Idempotency-Key, replaying its first outcome to retries."""

from __future__ import annotations

from collections.abc import Callable

from shop.domain.errors import ShopError
from shop.domain.idempotency import SUCCEEDED, Replay, RequestKey, check_replay
from shop.services.unit_of_work import UnitOfWork, with_retries


def run_once(
    uow: UnitOfWork,
    key: RequestKey | None,
    write: Callable[[], None],
    refusal: Callable[[str], ShopError],
) -> bool:
    """Run ``write`` in one unit of work, retried whole; return whether this was a replay.

    ``write`` raises a domain error to refuse. With a key, the outcome (success or the
    refusal's reason) is stored in the same transaction as the write's effects; a later
    request with the key gets that outcome again (a refusal rebuilt by ``refusal``).
    """

    def work() -> tuple[str, Replay | None]:
        with uow:
            replay = None if key is None else uow.idempotency.claim(key)
            if replay is not None:
                return replay.outcome, replay
            outcome = _attempt(write)
            if key is not None:
                uow.idempotency.record(key, outcome)
            uow.commit()
            return outcome, None

    outcome, replay = with_retries(uow, work)
    if key is not None and replay is not None:
        check_replay(key, replay)
    if outcome != SUCCEEDED:
        error = refusal(outcome)
        error.replayed = replay is not None
        raise error
    return replay is not None


def _attempt(write: Callable[[], None]) -> str:
    try:
        write()
    except ShopError as refused:
        return refused.reason
    return SUCCEEDED
