#!/usr/bin/env bash
# Start the shop on :${PORT:-8080}. Creates .venv on first run; uses an embedded
# PostgreSQL under ${DATA_DIR:-./.data} unless DATABASE_URL is set. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/python ]; then
  echo "run.sh: creating .venv and installing the shop (first run only)..."
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet -e '.[embedded]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

exec .venv/bin/python -m shop serve
