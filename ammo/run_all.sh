#!/usr/bin/env bash
# Every measurement in ammo/RESULTS.md, in order (about 35 minutes on a 2-core box).
# Uses a fresh embedded PostgreSQL under .data-bench and starts the service itself,
# with the production observability (metrics, JSON logs, OTLP traces to a local sink).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run ./run.sh or ./run_tests.sh once first (creates .venv)"; exit 1; }
.venv/bin/pip install --quiet -e '.[bench]'
# Only what this script writes: cost.jsonl (cost_steps.sh) and the archived
# auth-storm-before-fix.jsonl that RESULTS.md cites stay.
rm -rf .data-bench
rm -f ammo/results/{info-heavy,write-heavy,auth-storm,users-1k,history,pgbench}.jsonl \
  ammo/results/stepup-*.jsonl ammo/results/*.png

for profile in info-heavy write-heavy auth-storm; do
  $PY -m ammo run --profile "$profile" --rates 500,1000,1500 --duration 60 --warmup 10
done
$PY -m ammo run --profile info-heavy --rates 250:2500:250 --duration 20 --warmup 5 --name stepup-info-heavy
$PY -m ammo run --profile write-heavy --rates 250:2500:250 --duration 20 --warmup 5 --name stepup-write-heavy
$PY -m ammo run --profile auth-storm --rates 100:1000:100 --duration 20 --warmup 5 --name stepup-auth-storm
$PY -m ammo run --profile info-heavy --rates 1000 --duration 60 --warmup 10 --users 1000 --name users-1k
$PY -m ammo history
$PY -m ammo --data-dir .data-bench-pgbench pgbench --duration 30
rm -rf .data-bench-pgbench
$PY -m ammo plot
