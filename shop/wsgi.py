"""The one module-level app, for gunicorn (``shop.wsgi:app``)."""

from shop import create_app

app = create_app()
