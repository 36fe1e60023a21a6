"""The one module-level app, for gunicorn (``shop.wsgi:app``)."""

import gc

from shop.bootstrap import create_app

app = create_app()

# Everything built so far lives as long as the worker: keep the collector from rescanning
# it, and collect the young generation less often (a request allocates a few thousand
# objects; the default threshold of 700 ran a collection several times per request).
gc.freeze()
gc.set_threshold(20_000, 20, 20)
