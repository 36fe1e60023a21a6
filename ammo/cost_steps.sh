#!/usr/bin/env bash
# What each performance change bought: CPU per request of the service and of PostgreSQL,
# measured at every step of the work (git worktrees of the commits), info-heavy at
# 600 req/s, 100,000 users, traces exported to a local OTLP sink unless a row says otherwise.
# Appends to ammo/results/cost.jsonl; about 10 minutes.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
run() {
  rev=$1; label=$2; shift 2
  tree=$(mktemp -d)/shop-$rev
  git worktree add -q "$tree" "$rev"
  data=$(mktemp -d)
  $PY -m ammo --data-dir "$data" "$@" cost --source "$tree" --rate 600 --duration 20 --warmup 5 \
    --label "$label" 2>&1 | tail -n 1
  git worktree remove --force "$tree"
  rm -rf "$data"
}
run d200099 "before (3 round trips, flask-jwt-extended)"
run 9625473 "+ autocommit, one round trip"
run 9bf70cb "+ PyJWT verify, verified-token cache"
run 153f2f5 "+ direct access logger, no gunicorn access atoms"
run 163a252 "+ exec_driver_sql, no reset on check-in"
run b62946d "+ first attempt outside tenacity"
run afe90ab "+ gc.freeze, gen-0 threshold 20000"
run 49c19eb "+ attempt ids and purchase ledger (exactly-once retries)"
run HEAD "+ usernames on per-pair totals, hash admission"
run HEAD "HEAD, traces sampled 10%" \
  --env OTEL_TRACES_SAMPLER=parentbased_traceidratio --env OTEL_TRACES_SAMPLER_ARG=0.1
run HEAD "HEAD, no OTLP endpoint" --no-tracing
