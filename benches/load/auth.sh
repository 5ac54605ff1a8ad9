#!/usr/bin/env bash
# Load test of guardrails-auth in the example app: requests/s of a protected
# route (ES256 token from an independent IdP, verified-token cache on) against
# the public /healthz, on loopback, with wrk.
#
#   benches/load/auth.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS]
#
# The two routes are measured alternately, ROUNDS times each, and the median
# of the per-round ratios is reported: the machine is shared and noisy.
#
# Needs: wrk, python3 with pyjwt[crypto] (.ci/setup-external).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-5}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release -p saas-api >&2
work="$(mktemp -d)"
cleanup() {
  [[ -n "${APP_PID:-}" ]] && kill "$APP_PID" 2>/dev/null || true
  [[ -n "${IDP_PID:-}" ]] && kill "$IDP_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The identity provider: PyJWT-signed tokens, JWKS over http.server.
mkfifo "$work/idp.in"
python3 guardrails-auth/tests/interop/jose_idp.py < "$work/idp.in" > "$work/idp.out" &
IDP_PID=$!
exec 7> "$work/idp.in"
for _ in $(seq 50); do grep -q PORT "$work/idp.out" 2>/dev/null && break; sleep 0.1; done
IDP_PORT="$(awk '/PORT/ {print $2}' "$work/idp.out")"
IDP="http://127.0.0.1:$IDP_PORT"

SAAS_SERVER__ADDR=127.0.0.1:0 SAAS_AUTH__ISSUER="$IDP" SAAS_AUTH__JWKS_URL="$IDP/jwks.json" \
  SAAS_AUDIT__PATH="$work/audit.jsonl" RUST_LOG=warn,saas_api=info \
  "$TARGET/release/saas-api" 2> "$work/app.log" &
APP_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$work/app.log" 2>/dev/null && break; sleep 0.1; done
APP="$(grep -o 'listening on http://[0-9.:]*' "$work/app.log" | head -1 | sed 's/listening on //')"
TOKEN="$(curl -s "$IDP/token?alg=ES256&scope=invoices:read&ttl=3600")"

status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$APP/v1/tenants/acme/invoices")"
[[ "$status" == 200 ]] || { echo "protected route answered $status" >&2; exit 1; }

run() {
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$@" | awk '/Requests\/sec/ {print $2}'
}
results=()
for _ in $(seq "$ROUNDS"); do
  public="$(run "$APP/healthz")"
  protected="$(run -H "Authorization: Bearer $TOKEN" "$APP/v1/tenants/acme/invoices")"
  results+=("$public $protected")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rounds = [tuple(map(float, r.split())) for r in sys.argv[1:]]
for i, (public, protected) in enumerate(rounds, 1):
    print(f"round {i}: public {public:8.0f} req/s, protected {protected:8.0f} req/s, ratio {protected / public:.2f}")
public = statistics.median(p for p, _ in rounds)
protected = statistics.median(q for _, q in rounds)
ratio = statistics.median(q / p for p, q in rounds)
print(f"median public /healthz:                     {public:8.0f} req/s")
print(f"median protected /v1/tenants/acme/invoices: {protected:8.0f} req/s (ES256, cache on)")
print(f"median ratio protected/public:              {ratio:8.2f}")
PY
