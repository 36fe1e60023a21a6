"""Readiness: can we reach the database, and is its schema at this code's head revision?"""

from __future__ import annotations

from functools import cache

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from shop.db.migrate import current_revision, head_revision


@cache
def _head() -> str | None:
    return head_revision()


def schema_status(engine: Engine) -> str | None:
    """Return None when ready, else a reason fit for an operator."""
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
    except sa_exc.SQLAlchemyError:
        return "database unreachable"
    if current != _head():
        return f"database schema at {current}, code expects {_head()}"
    return None
