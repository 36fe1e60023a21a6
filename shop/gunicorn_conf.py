"""gunicorn settings, from the one ``Settings``: gevent workers balanced with SO_REUSEPORT.

Loaded by file path in gunicorn's master; the hooks and the metrics directory are wired in
``shop.bootstrap``, which imports nothing that must wait for gevent's patching (psycopg is
imported only in each patched worker, hence also no --preload).
"""

from shop import bootstrap
from shop.settings import Settings

SETTINGS = Settings.from_env()
# Before any process imports prometheus_client.
METRICS_DIR = bootstrap.use_metrics_dir()

bind = f"0.0.0.0:{SETTINGS.port}"
workers = SETTINGS.web_concurrency
worker_class = "shop.server.worker.ShopWorker"
worker_connections = 1000
# Without it one worker accepts most keep-alive connections and sets the tail latency.
reuse_port = True
keepalive = 75
# A worker whose event loop stops answering this long is killed; the request budget
# (REQUEST_TIMEOUT) ends ordinary requests long before.
timeout = max(30, int(SETTINGS.request_timeout * 4))
graceful_timeout = 20
# The app writes its own access log (with route, user and trace ids).
accesslog = None
errorlog = "-"
loglevel = SETTINGS.log_level.lower()
logconfig_dict = bootstrap.gunicorn_logging(SETTINGS)
logger_class = bootstrap.NoAccessLogLogger
# The control socket lives at one fixed path per user; several servers would fight over it.
control_socket_disable = True

on_starting = bootstrap.on_starting
on_exit = bootstrap.on_exit
child_exit = bootstrap.child_exit
