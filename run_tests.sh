#!/usr/bin/env bash
# Run every test: lint, types, then pytest with branch coverage of shop/ and observability/.
# Creates .venv on first run and starts a throwaway embedded PostgreSQL (or uses
# TEST_DATABASE_URL if set); never touches the database the service uses.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/python ]; then
  echo "run_tests.sh: creating .venv..."
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=.venv/.installed-test-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "run_tests.sh: installing the shop with its test extras..."
  .venv/bin/pip install --quiet -e '.[test]'
  rm -f .venv/.installed-test-* && touch "$stamp"
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -n auto --dist worksteal --cov --cov-report=term "$@"
