"""gunicorn settings: gevent workers, one per core, balanced with SO_REUSEPORT.

Nothing here imports psycopg or the app: the master must stay free of them so
each worker imports psycopg only after gevent has patched it (no --preload).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = 1000
# Without it one worker accepts most keep-alive connections and sets the tail latency.
reuse_port = True
keepalive = 75
timeout = 30
graceful_timeout = 20
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# The control socket lives at one fixed path per user; several servers would fight over it.
control_socket_disable = True
