#!/usr/bin/env bash
# The PostgreSQL audit bench (benches/benches/audit_postgres.rs) against a
# throwaway cluster: initdb into a temporary directory, one server on a free
# 127.0.0.1 port (fsync on, synchronous_commit on), stopped and removed at
# exit. PostgreSQL refuses to run as root: as root the server runs as
# `nobody`.
#
#   benches/load/postgres.sh [criterion arguments…]
#
# Environment: AUDIT_PG_ROUNDS (default 5) and AUDIT_PG_EVENTS (default
# 50000) size the throughput rounds.
#
# Needs: the PostgreSQL server binaries (initdb, pg_ctl, postgres) on the
# PATH or under /usr/lib/postgresql/<version>/bin (.ci/setup-external
# installs them), python3 (to find a free port).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=""
if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
  bin="$(dirname "$(command -v initdb)")"
else
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then bin="$dir"; break; fi
  done
fi
[[ -n "$bin" ]] || { echo "no PostgreSQL server binaries found (see .ci/setup-external)" >&2; exit 1; }

work="$(mktemp -d)"
run=()
if [[ "$(id -u)" == 0 ]]; then
  chown nobody "$work"
  run=(runuser -u nobody --)
fi
started=""
cleanup() {
  if [[ -n "$started" ]]; then
    "${run[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"${run[@]}" "$bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
mkdir "$work/sock"
[[ ${#run[@]} -gt 0 ]] && chown nobody "$work/sock"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Set before the start: a start that times out may leave a server running.
started=1
"${run[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 \
  -o "-p $port -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" \
  start >/dev/null || { cat "$work/server.log" >&2; exit 1; }
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync=on, synchronous_commit=on)" >&2

export GUARDRAILS_BENCH_POSTGRES_URL="host=127.0.0.1 port=$port user=postgres dbname=postgres"
cargo bench -p guardrails-benches --bench audit_postgres -- "$@"
