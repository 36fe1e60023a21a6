#!/usr/bin/env bash
# Regenerate the lock files in requirements/ from pyproject.toml (run after changing a dependency):
#   scripts/lock.sh            keep the locked versions the bounds still allow, add what is new
#   scripts/lock.sh --upgrade  move every package to the newest version the bounds allow
# One resolution for Python 3.11 on every platform (Linux x86_64 and aarch64 included), with
# the sha256 of every file, so pip and uv install nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --uv-only
compile=(.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
         --no-config --custom-compile-command scripts/lock.sh "$@")

# The dev venv: every extra plus the build backend, so that even the editable install of the
# project (done without build isolation) uses only locked files.
.venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))
                     ["build-system"]["requires"], sep="\n")' |
  "${compile[@]}" pyproject.toml - --all-extras -o requirements/dev.txt
# The image: runtime dependencies only, at the versions the dev venv tests.
"${compile[@]}" pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
# The bootstrap: uv itself, at the dev venv's version.
echo uv | "${compile[@]}" - -c requirements/dev.txt -o requirements/bootstrap.txt
echo "lock.sh: wrote requirements/dev.txt, runtime.txt and bootstrap.txt"
