"""Reading PostgreSQL's diagnostics off SQLAlchemy's wrapped errors."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError


def violated(error: DBAPIError) -> str | None:
    """Return the name of the constraint a statement violated, if PostgreSQL named one."""
    diag = getattr(error.orig, "diag", None)
    name: str | None = getattr(diag, "constraint_name", None)
    return name
