# syntax=docker/dockerfile:1
# The shop service: gunicorn + gevent workers, talking to PostgreSQL via DATABASE_URL.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies come from the project's own metadata (pyproject.toml), not a second list.
COPY pyproject.toml README.md ./
COPY shop ./shop
COPY observability ./observability
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/shop-metrics
RUN groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid shop --home-dir /app --no-create-home shop
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz\", timeout=2)"]
# `shop serve` validates the settings, then execs gunicorn (gevent workers, shop/gunicorn_conf.py).
# Each worker waits for PostgreSQL and applies migrations before it serves a request.
CMD ["python", "-m", "shop", "serve"]
