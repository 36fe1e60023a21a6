#!/usr/bin/env bash
# What each change bought: CPU per /api/info request of one worker for several builds, all in
# one run on this box (each build exported with git archive, rounds alternating the builds),
# wrk at saturation as for the framework floor; no OTLP endpoint, so tracing is out of it.
#   ammo/cost_steps.sh d200099 afe90ab HEAD        # DURATION=20 ROUNDS=3 by default
# Old builds run against the current schema (the kit migrates the database to its own head).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REV [REV...]"; exit 2; }
trees=$(mktemp -d)
trap 'rm -rf "$trees"' EXIT
variants=(--variant bare)
for rev in "$@"; do
  mkdir "$trees/$rev"
  git archive "$rev" | tar -x -C "$trees/$rev"
  variants+=(--variant "$rev:SOURCE=$trees/$rev,TRACING=0")
done
.venv/bin/python -m ammo ratio --generator wrk --duration "${DURATION:-20}" \
  --rounds "${ROUNDS:-3}" "${variants[@]}"
