"""The merch shop service. The app is built by ``shop.bootstrap.create_app``; this package's
import stays free of Flask and psycopg, so gunicorn's master can read ``shop.settings``."""
