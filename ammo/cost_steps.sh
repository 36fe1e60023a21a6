#!/usr/bin/env bash
# What each change bought: CPU per /api/info request of one worker for several builds, all in
# one run on this box (each build a git worktree, rounds alternating the builds), wrk at
# saturation as for the framework floor. Usage: ammo/cost_steps.sh REV [REV...]
#   ammo/cost_steps.sh d200099 afe90ab HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REV [REV...]"; exit 2; }
trees=$(mktemp -d)
trap 'for t in "$trees"/*; do git worktree remove --force "$t"; done; rm -rf "$trees"' EXIT
variants=(--variant bare)
for rev in "$@"; do
  git worktree add -q "$trees/$rev" "$rev"
  variants+=(--variant "$rev:SOURCE=$trees/$rev,TRACING=0")
done
.venv/bin/python -m ammo ratio --generator wrk --duration 20 --rounds 3 "${variants[@]}"
