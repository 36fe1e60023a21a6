#!/usr/bin/env bash
# Run every test: lint, types, then pytest with branch coverage of shop/ and observability/,
# in parallel (one worker per core) and in random order. Creates .venv from the lock file on
# first run; each pytest worker starts a throwaway embedded PostgreSQL (or uses a database of
# its own next to TEST_DATABASE_URL, if set); never touches the database the service uses.
set -euo pipefail
cd "$(dirname "$0")"

scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -n auto --dist worksteal --cov --cov-report=term "$@"
