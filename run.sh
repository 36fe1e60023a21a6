#!/usr/bin/env bash
# Start the shop on :${PORT:-8080}. Creates .venv from the lock file on first run; uses an
# embedded PostgreSQL under ${DATA_DIR:-./.data} unless DATABASE_URL is set. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"

scripts/bootstrap.sh
exec .venv/bin/python -m shop serve
