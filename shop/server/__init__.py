"""The HTTP server around the app: gunicorn's gevent worker, arrival times, admission."""
