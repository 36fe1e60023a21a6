#!/bin/sh
# Write .env for `docker compose up` (or the file named by $1): .env.example with each empty
# value filled by a fresh random secret. Never overwrites: PostgreSQL keeps the password it
# was first started with in its data volume, so a new one would lock the app out.
set -eu
example="$(dirname "$0")/../.env.example"
target="${1:-$(dirname "$0")/../.env}"

if [ -e "$target" ]; then
  echo "init-env: $target already exists; left unchanged (remove it to generate new secrets)" >&2
  exit 1
fi
secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

umask 077
tmp="$target.tmp.$$"
trap 'rm -f "$tmp"' EXIT
{
  echo "# Written by scripts/init-env.sh from .env.example. Keep it secret and keep it: PostgreSQL"
  echo "# remembers POSTGRES_PASSWORD from its first start (see README, \"The bundled stack\")."
  header=1
  while IFS= read -r line || [ -n "$line" ]; do
    case "$header$line" in 1\#*) continue ;; esac  # the example's own instructions
    header=0
    case "$line" in
      [A-Z]*=) printf '%s%s\n' "$line" "$(secret)" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$example"
} >"$tmp"
# A link, unlike a rename, fails if $target appeared meanwhile.
ln "$tmp" "$target"
echo "init-env: wrote $target with generated secrets"
