#!/usr/bin/env bash
# Load test of guardrails-auth in the example app: requests/s of a protected
# route (ES256 token from an independent IdP, verified-token cache on) against
# the public /healthz, on loopback, with wrk.
#
#   benches/load/auth.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Needs: wrk, python3 with pyjwt[crypto] (.ci/setup-external).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
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
public="$(run "$APP/healthz")"
protected="$(run -H "Authorization: Bearer $TOKEN" "$APP/v1/tenants/acme/invoices")"
python3 - "$public" "$protected" <<'PY'
import sys
public, protected = map(float, sys.argv[1:3])
print(f"public /healthz:                        {public:10.0f} req/s")
print(f"protected /v1/tenants/acme/invoices:    {protected:10.0f} req/s (ES256, cache on)")
print(f"ratio protected/public:                 {protected / public:10.2f}")
PY
