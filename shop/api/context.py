"""Per-request access to the unit of work, the password hasher and the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine

from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork
from shop.services.passwords import PasswordHasher
from shop.settings import Settings


@dataclass(frozen=True, slots=True)
class Shop:
    """What the app was wired with; stored in ``app.extensions["shop"]``."""

    settings: Settings
    engine: Engine
    hasher: PasswordHasher
    on_retry: Callable[[str], None] | None = None


def shop() -> Shop:
    """Return the wiring of the current app."""
    wired: Shop = current_app.extensions["shop"]
    return wired


def uow() -> SqlUnitOfWork:
    """Return a unit of work on this request's single pooled connection."""
    wired = shop()
    if "db_connections" not in g:
        g.db_connections = ConnectionScope(wired.engine)
    return SqlUnitOfWork(
        g.db_connections,
        retry_attempts=wired.settings.db_retry_attempts,
        on_retry=wired.on_retry,
    )


def hasher() -> PasswordHasher:
    """Return the app's password hasher."""
    return shop().hasher


def _release_connection(_: BaseException | None) -> None:
    connections: ConnectionScope | None = g.pop("db_connections", None)
    if connections is not None:
        connections.release()


def init_app(app: Flask, wired: Shop) -> None:
    """Attach the wiring and return each request's connection to the pool at teardown."""
    app.extensions["shop"] = wired
    app.teardown_appcontext(_release_connection)
