"""Run an embedded PostgreSQL (the `pgserver` package) under a data directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shop.settings import SettingsError

log = logging.getLogger(__name__)

DATABASE = "shop"  # created on first start, next to the default "postgres"


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return a ``postgresql://`` URL for the shop database."""
        # pgserver asks platformdirs for a private runtime dir and warns when none is set.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime = self.pgdata.parent / "run"
            runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        try:
            from pgserver.postgres_server import get_server  # only embedded mode needs it
        except ImportError:
            raise SettingsError(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
                "(pip install 'shop[embedded]', as ./run.sh does)"
            ) from None

        self.pgdata.mkdir(parents=True, exist_ok=True)
        mode = "delete" if self._delete_on_stop else "stop"
        self._server = get_server(self.pgdata, cleanup_mode=mode)
        # DATABASE is a constant, not input: nothing to inject.
        exists = self._server.psql("SELECT 1 FROM pg_database WHERE datname = 'shop';")
        if "(1 row)" not in exists:
            self._server.psql("CREATE DATABASE shop;")
        url: str = self._server.get_uri(DATABASE)
        log.info("embedded PostgreSQL ready in %s", self.pgdata)
        return url

    def stop(self) -> None:
        """Stop the server (and delete its data if asked to at construction)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
