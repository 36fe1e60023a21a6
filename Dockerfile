# syntax=docker/dockerfile:1
# The shop service: gunicorn + gevent workers, talking to PostgreSQL via DATABASE_URL.

FROM python:3.11.11-slim-bookworm AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Dependencies come from the lock alone (scripts/lock.sh writes it), in a layer of their own
# that only a change to the lock rebuilds. Every file must match its locked sha256, and only
# wheels are taken, so no compiler is needed; tests/stack/test_lock.py downloads this same set
# for this platform.
COPY requirements/runtime.txt /tmp/runtime.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps \
        -r /tmp/runtime.txt

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/shop-metrics
# The metrics directory must exist before `python -m shop` imports prometheus_client.
RUN groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid shop --home-dir /app --no-create-home shop \
    && install --directory --owner shop --group shop --mode 0700 "$PROMETHEUS_MULTIPROC_DIR"
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# The code runs from source (PYTHONPATH): no build step, nothing installed that is not locked.
COPY shop ./shop
COPY observability ./observability
# Compiled once here: the user below cannot write here, and workers should not compile at start.
RUN python -m compileall -q shop observability
# Which build this is (docker-compose.yml passes both; docs/operations/stack.md): read by the
# service for its build-info metric and shown as OCI labels, so a rollback can be followed.
# Last, so a new commit rebuilds only these layers.
ARG SHOP_VERSION=dev
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="shop" \
      org.opencontainers.image.version="$SHOP_VERSION" \
      org.opencontainers.image.revision="$GIT_SHA"
ENV SHOP_VERSION=$SHOP_VERSION \
    SHOP_BUILD_REVISION=$GIT_SHA
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz\", timeout=2)"]
# `shop serve` validates the settings, then execs gunicorn (gevent workers, shop/gunicorn_conf.py).
CMD ["python", "-m", "shop", "serve"]
