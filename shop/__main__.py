"""Command line: ``python -m shop serve`` and ``python -m shop migrate``."""

from __future__ import annotations

import argparse
import os
import sys

from observability.logs import configure_logging
from shop.settings import SettingsError


def migrate() -> int:
    """Apply migrations to ``DATABASE_URL`` and exit."""
    import sqlalchemy as sa

    from shop.db.engine import sqlalchemy_url, wait_for_database
    from shop.db.migrate import upgrade

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SettingsError("DATABASE_URL is not set")
    engine = sa.create_engine(sqlalchemy_url(database_url))
    wait_for_database(engine, float(os.environ.get("DB_STARTUP_TIMEOUT", "60")))
    upgrade(engine)
    print("database is at the newest revision")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch a sub-command."""
    parser = argparse.ArgumentParser(prog="shop", description=__doc__)
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    configure_logging(
        os.environ.get("LOG_FORMAT", "console"), os.environ.get("LOG_LEVEL", "INFO").upper()
    )
    try:
        if args.command == "migrate":
            return migrate()
        from shop.launcher import serve

        return serve()
    except SettingsError as error:
        print(f"shop: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
