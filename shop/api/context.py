"""Per-request access to the unit of work, the password hasher and the wiring of the app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine

from shop.db.monitor import DatabaseMonitor
from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork, UnitPolicy
from shop.services.passwords import PasswordHasher
from shop.settings import Settings


@dataclass(frozen=True, slots=True)
class Shop:
    """What the app was wired with; stored in ``app.extensions["shop"]``."""

    settings: Settings
    engine: Engine
    hasher: PasswordHasher
    policy: UnitPolicy
    monitor: DatabaseMonitor


def shop() -> Shop:
    """Return the wiring of the current app."""
    wired: Shop = current_app.extensions["shop"]
    return wired


def uow() -> SqlUnitOfWork:
    """Return a unit of work on this request's single pooled connection, within its budget."""
    wired = shop()
    if "db_connections" not in g:
        g.db_connections = ConnectionScope(wired.engine, wired.policy.on_pool_wait)
    return SqlUnitOfWork(g.db_connections, wired.policy)


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
