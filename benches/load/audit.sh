#!/usr/bin/env bash
# Load test of guardrails-audit in the example app: requests/s with the audit
# trail on (the app as it ships: best effort, SHA-256 JSON-lines file, fsync
# per batch) against the same app without the audit layer, on loopback, with
# wrk, on the public /healthz and on a protected route (HS256 development
# token, verified-token cache on).
#
#   benches/load/audit.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS]
#
# Both servers (benches/examples/saas-load-server.rs) run at once; the
# rounds alternate between them (and which one goes first), so both see the
# same background load, and the median of the per-round ratios is reported:
# the machine is shared and noisy.
#
# Needs: wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-5}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-7}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release -p saas-api >&2
cargo build --release -p guardrails-benches --example saas-load-server >&2
source benches/load/load-servers.sh
PLAIN="$(start_server plain plain)"
PLAIN_PID="$(cat "$work/plain.pid")"
AUDITED="$(start_server audited audited)"
AUDITED_PID="$(cat "$work/audited.pid")"
[[ -n "$PLAIN" && -n "$AUDITED" ]] || { cat "$work"/*.log >&2; exit 1; }

TOKEN="$("$TARGET/release/saas-api" token --sub load --tenant acme --scope invoices:read 2> /dev/null)"
ROUTE=/v1/tenants/acme/invoices
for base in "$PLAIN" "$AUDITED"; do
  status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$base$ROUTE")"
  [[ "$status" == 200 ]] || { echo "$base$ROUTE answered $status" >&2; exit 1; }
done

run() { # URL [wrk options...] -> "requests/s requests"
  local url="$1"; shift
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url" |
    awk '/requests in/ {n=$1} /Requests\/sec/ {r=$2} END {print r, n}'
}
results=()
audited_requests=0
for round in $(seq "$ROUNDS"); do
  line=""
  for route in public protected; do
    if [[ "$route" == public ]]; then path=/healthz; args=(); else path="$ROUTE"; args=(-H "Authorization: Bearer $TOKEN"); fi
    if (( round % 2 )); then
      read -r p _ <<< "$(run "$PLAIN$path" "${args[@]}")"
      read -r a n <<< "$(run "$AUDITED$path" "${args[@]}")"
    else
      read -r a n <<< "$(run "$AUDITED$path" "${args[@]}")"
      read -r p _ <<< "$(run "$PLAIN$path" "${args[@]}")"
    fi
    audited_requests=$((audited_requests + n))
    line="$line $p $a"
  done
  results+=("$line")
done

# Stop the audited server (SIGTERM: graceful, flushes the trail and closes
# it with an audit.stopped record) and count its records: one per request,
# or reported lost in an audit.dropped record (best effort drops and counts
# when the queue is full).
kill "$AUDITED_PID"
for _ in $(seq 300); do kill -0 "$AUDITED_PID" 2>/dev/null || break; sleep 0.1; done
# Gone: nothing for cleanup to stop. Still running: cleanup stops it.
kill -0 "$AUDITED_PID" 2>/dev/null || rm -f "$work/audited.pid"
grep -q '"action":"audit.stopped"' "$work/audited.jsonl" ||
  { echo "the audited server did not close its trail" >&2; cat "$work/audited.log" >&2; exit 1; }
read -r records dropped <<< "$(python3 - "$work/audited.jsonl" <<'PY'
import json, sys
records = dropped = 0
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record["action"] == "http.request":
        records += 1
    elif record["action"] == "audit.dropped":
        dropped += record["details"]["count"]
print(records, dropped)
PY
)"

python3 - "$records" "$dropped" "$audited_requests" "${results[@]}" <<'PY'
import statistics, sys
records, dropped, answered = map(int, sys.argv[1:4])
rounds = [tuple(map(float, r.split())) for r in sys.argv[4:]]
for i, (pp, pa, qp, qa) in enumerate(rounds, 1):
    print(f"round {i}: /healthz plain {pp:7.0f} audited {pa:7.0f} ({pa / pp:.3f}); "
          f"protected plain {qp:7.0f} audited {qa:7.0f} ({qa / qp:.3f})")
for name, k in (("public /healthz", 0), ("protected /v1/tenants/acme/invoices", 2)):
    plain = statistics.median(r[k] for r in rounds)
    audited = statistics.median(r[k + 1] for r in rounds)
    ratio = statistics.median(r[k + 1] / r[k] for r in rounds)
    print(f"median {name}: plain {plain:8.0f} req/s, audited {audited:8.0f} req/s, "
          f"ratio of medians {audited / plain:.3f}, median of per-round ratios {ratio:.3f}")
print(f"audit trail: {records} http.request records and {dropped} events reported "
      f"dropped (audit.dropped, best effort with a full queue) for {answered} requests "
      f"answered to wrk (plus the curl checks; requests in flight when wrk stops are "
      f"served and recorded but not counted by wrk)")
PY
