#!/usr/bin/env bash
# Create .venv, or bring it up to date, from requirements/dev.txt (every file checked against
# its locked sha256) and install the project into it in editable mode. Needs only python3 3.11+
# and the package index; a no-op while the lock and pyproject.toml are unchanged.
# `--uv-only` stops once uv is there (scripts/lock.sh: a lock that lags pyproject.toml
# cannot be synced, but can be regenerated).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/uv ]; then
  echo "bootstrap: creating .venv (first run only)..."
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
    --no-deps -r requirements/bootstrap.txt
fi
[ "${1:-}" != --uv-only ] || exit 0
stamp=.venv/.synced-$(cat requirements/dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: syncing .venv with requirements/dev.txt..."
  uv=(.venv/bin/uv pip --quiet --no-config)
  # Compiled now, as pip would: with PYTHONDONTWRITEBYTECODE set, every process start (each
  # gunicorn worker in the e2e tests) would otherwise compile its imports again.
  "${uv[@]}" sync --python .venv/bin/python --require-hashes --compile-bytecode requirements/dev.txt
  # The build backend is in the lock, so the editable install needs no unlocked download.
  "${uv[@]}" install --python .venv/bin/python --no-deps --no-build-isolation -e .
  # A lock edited by hand, or not regenerated after pyproject.toml changed, fails here.
  if ! report=$(.venv/bin/uv pip check --no-config --python .venv/bin/python 2>&1); then
    printf '%s\nbootstrap: requirements/dev.txt does not satisfy pyproject.toml: run scripts/lock.sh\n' \
      "$report" >&2
    exit 1
  fi
  rm -f .venv/.synced-* && touch "$stamp"
fi
