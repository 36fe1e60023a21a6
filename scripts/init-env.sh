#!/bin/sh
# Write .env for `docker compose up` (or the file named by $1) from .env.example: each empty
# secret gets a fresh random value, and the stack's URLs are filled in:
#   GRAFANA_URL, PROMETHEUS_URL, ALERTMANAGER_URL  from the environment if set, else
#       http://$STACK_HOST:3000 / :9090 / :9093 (STACK_HOST: localhost unless set);
#   RUNBOOK_URL  from the environment if set, else derived from a GitHub `origin` remote;
#       with neither, nothing is written and the script says what to set.
# Never overwrites: PostgreSQL keeps the password it was first started with in its data
# volume, so a new one would lock the app out.
set -eu
root="$(dirname "$0")/.."
example="$root/.env.example"
target="${1:-$root/.env}"

if [ -e "$target" ]; then
  echo "init-env: $target already exists; left unchanged (remove it to generate new secrets)" >&2
  exit 1
fi
secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# $1: variable name, $2: port. Prints the URL, or fails on one that is not absolute.
stack_url() {
  value="$(printenv "$1" || true)"
  [ -n "$value" ] || value="http://${STACK_HOST:-localhost}:$2"
  absolute "$1" "$value"
}

absolute() {
  case "$2" in
    http://?*|https://?*) printf '%s' "${2%/}" ;;
    *) echo "init-env: $1 must be an absolute http(s) URL, not '$2'" >&2; return 1 ;;
  esac
}

# The runbooks directory on GitHub, from the origin remote (never its credentials).
github_runbooks() {
  remote="$(git -C "$root" remote get-url origin 2>/dev/null || true)"
  case "$remote" in
    git@github.com:*) path="${remote#git@github.com:}" ;;
    ssh://git@github.com/*) path="${remote#ssh://git@github.com/}" ;;
    https://github.com/*) path="${remote#https://github.com/}" ;;
    https://*@github.com/*) path="${remote#https://*@github.com/}" ;;
    *) return 1 ;;
  esac
  path="${path%/}"
  path="${path%.git}"
  branch="$(git -C "$root" symbolic-ref --short refs/remotes/origin/HEAD 2>/dev/null || true)"
  branch="${branch#origin/}"
  # Else the branch checked out here; else (a detached HEAD) main.
  [ -n "$branch" ] || branch="$(git -C "$root" symbolic-ref --short HEAD 2>/dev/null || true)"
  [ -n "$branch" ] || branch=main
  printf 'https://github.com/%s/blob/%s/docs/runbooks' "$path" "$branch"
}

grafana_url="$(stack_url GRAFANA_URL 3000)"
prometheus_url="$(stack_url PROMETHEUS_URL 9090)"
alertmanager_url="$(stack_url ALERTMANAGER_URL 9093)"
if [ -n "${RUNBOOK_URL:-}" ]; then
  runbook_url="$(absolute RUNBOOK_URL "$RUNBOOK_URL")"
elif ! runbook_url="$(github_runbooks)"; then
  echo "init-env: set RUNBOOK_URL to where docs/runbooks can be read in a browser (alerts link" >&2
  echo "  to \$RUNBOOK_URL/<runbook>.md), e.g." >&2
  echo "  RUNBOOK_URL=https://git.example.com/shop/-/blob/main/docs/runbooks $0" >&2
  echo "  (it is derived by itself only from a GitHub 'origin' remote); nothing written" >&2
  exit 1
fi

umask 077
tmp="$target.tmp.$$"
trap 'rm -f "$tmp"' EXIT
{
  echo "# Written by scripts/init-env.sh from .env.example. Keep it secret and keep it: PostgreSQL"
  echo "# remembers POSTGRES_PASSWORD from its first start (see docs/operations/README.md, \"The bundled stack\")."
  header=1
  while IFS= read -r line || [ -n "$line" ]; do
    case "$header$line" in 1\#*) continue ;; esac  # the example's own instructions
    header=0
    case "$line" in
      GRAFANA_URL=*) echo "GRAFANA_URL=$grafana_url" ;;
      PROMETHEUS_URL=*) echo "PROMETHEUS_URL=$prometheus_url" ;;
      ALERTMANAGER_URL=*) echo "ALERTMANAGER_URL=$alertmanager_url" ;;
      RUNBOOK_URL=*) echo "RUNBOOK_URL=$runbook_url" ;;
      [A-Z]*=) printf '%s%s\n' "$line" "$(secret)" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$example"
} >"$tmp"
# A link, unlike a rename, fails if $target appeared meanwhile.
ln "$tmp" "$target"
echo "init-env: wrote $target with generated secrets; runbooks: $runbook_url"
