#!/bin/sh
# Scheduled pgBackRest backups (the `backup` service): create the stanza (a no-op once it
# exists), then back up every BACKUP_INTERVAL_SECONDS: full on BACKUP_FULL_WEEKDAY (1-7,
# Monday is 1), differential otherwise; pgBackRest itself turns a differential into a full
# when the repository has none yet, so a new stack is recoverable from its first hour.
# Each outcome is written for node-exporter's textfile collector, so an alert sees a backup
# that is late or failing. `shop-backup --once` takes one backup and exits.
set -eu
stanza="${PGBACKREST_STANZA:-shop}"
interval="${BACKUP_INTERVAL_SECONDS:-86400}"
full_weekday="${BACKUP_FULL_WEEKDAY:-7}"
metrics="${BACKUP_METRICS_DIR:-/var/lib/backup-metrics}"

last_success=0
[ -r "$metrics/last_success" ] && last_success="$(cat "$metrics/last_success")"

# $1: 1 when this backup succeeded, else 0. Renamed into place: never read half-written.
record() {
  if [ "$1" = 1 ]; then
    last_success="$(date +%s)"
    echo "$last_success" >"$metrics/last_success"
  fi
  cat >"$metrics/shop_backup.prom.tmp" <<METRICS
# HELP shop_backup_last_success_timestamp_seconds When a pgBackRest backup last succeeded.
# TYPE shop_backup_last_success_timestamp_seconds gauge
shop_backup_last_success_timestamp_seconds{stanza="$stanza"} $last_success
# HELP shop_backup_last_run_success 1 if the latest pgBackRest backup succeeded, else 0.
# TYPE shop_backup_last_run_success gauge
shop_backup_last_run_success{stanza="$stanza"} $1
METRICS
  mv "$metrics/shop_backup.prom.tmp" "$metrics/shop_backup.prom"
}

until pgbackrest --stanza="$stanza" stanza-create; do
  echo "shop-backup: stanza-create failed; retrying in 10 s" >&2
  sleep 10
done
while :; do
  type=diff
  [ "$(date +%u)" = "$full_weekday" ] && type=full
  status=0
  pgbackrest --stanza="$stanza" --type="$type" backup || status=$?
  if [ "$status" = 0 ]; then record 1; else record 0; fi
  if [ "${1:-}" = "--once" ]; then exit "$status"; fi
  sleep "$interval"
done
