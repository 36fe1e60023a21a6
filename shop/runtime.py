"""Start-up guard for the gevent + psycopg pairing."""

from __future__ import annotations


class RuntimeMisconfigured(RuntimeError):
    """The process would serve requests with a blocking database driver."""


def check_gevent_compatible_driver() -> None:
    """Refuse to start if gevent patched the process after psycopg chose a blocking wait.

    psycopg picks its wait function at import time; imported before gevent's
    patching it blocks the whole worker on every query.
    """
    from gevent import monkey

    if not monkey.is_module_patched("select"):
        return
    import psycopg.waiting

    if getattr(psycopg.waiting.wait, "__name__", "") == "wait_c":
        raise RuntimeMisconfigured(
            "psycopg was imported before gevent patched the process; "
            "do not use --preload and do not import psycopg in gunicorn's master"
        )
