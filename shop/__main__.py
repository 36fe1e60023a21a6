"""Command line: ``python -m shop serve`` and ``python -m shop migrate``."""

from __future__ import annotations

import argparse
import sys

from shop.bootstrap import configure_cli_logging
from shop.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Dispatch a sub-command; report a bad start in one line, without a traceback."""
    parser = argparse.ArgumentParser(prog="shop", description=__doc__)
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    from shop.db.migrate import DatabaseUnreachable, prepare_database
    from shop.launcher import CannotStart, Interrupted, serve

    try:
        settings = Settings.from_env()
        configure_cli_logging(settings)
        if args.command == "migrate":
            settings.require_database()
            prepare_database(
                settings.database_url, settings.db_startup_timeout, settings.db_connect_timeout
            )
            print("database is at the newest revision")
            return 0
        return serve(settings)
    except SettingsError as error:
        print(f"shop: configuration error: {error}", file=sys.stderr)
        return 2
    except (DatabaseUnreachable, CannotStart) as error:
        print(f"shop: {error}", file=sys.stderr)
        return 1
    except Interrupted:
        return 130


if __name__ == "__main__":
    sys.exit(main())
