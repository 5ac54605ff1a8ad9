#!/usr/bin/env bash
# Calibration of the audit load run (benches/load/audit.sh): what a given
# amount of added CPU work per request costs in requests/s on this machine,
# whatever the work is, next to what auditing costs.
#
#   benches/load/calibrate.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS] [INLINE_NS] [THREAD_NS]
#
# Seven servers (benches/examples/saas-load-server.rs) on loopback, all
# serving GET /healthz of the example app:
#   plain        app::router
#   inline 0     app::router behind one more layer that does nothing
#   inline N     the same layer spinning the CPU for INLINE_NS per request
#   thread N     a message per request to a thread that spins THREAD_NS per
#                message in batches (the shape of the audit writer's work)
#   audited-none the app's audit layer with every route at level None (no
#                event; the layer alone)
#   audited-null events built and queued as in audited, discarded by the
#                writer (no canonical JSON, hash or file)
#   audited      the app with its audit trail (as in audit.sh)
# wrk (2 threads) drives each in turn for DURATION seconds per round, in an
# order that rotates every round; the medians of the per-round ratios to
# plain are reported. The defaults are the audit's own costs measured in
# process (benches/README.md): about 1 µs on the request path and 1.85 µs
# of writer work per event.
#
# Needs: wrk, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-5}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-5}"
INLINE_NS="${4:-1000}"
THREAD_NS="${5:-1850}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release -p guardrails-benches --example saas-load-server >&2
source benches/load/load-servers.sh
names=(plain inline-0 "inline-$INLINE_NS" "thread-$THREAD_NS" audited-none audited-null audited)
urls=()
urls+=("$(start_server plain plain)")
urls+=("$(start_server inline0 inline 0)")
urls+=("$(start_server inline inline "$INLINE_NS")")
urls+=("$(start_server thread thread "$THREAD_NS")")
urls+=("$(start_server none audited-none)")
urls+=("$(start_server null audited-null)")
urls+=("$(start_server audited audited)")
for i in "${!urls[@]}"; do
  [[ -n "${urls[$i]}" ]] || { echo "server ${names[$i]} did not start" >&2; cat "$work"/*.log >&2; exit 1; }
done

results=()
for round in $(seq "$ROUNDS"); do
  rates=()
  for k in "${!urls[@]}"; do rates+=(0); done
  for step in "${!urls[@]}"; do
    k=$(( (step + round) % ${#urls[@]} ))
    rates[k]="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "${urls[$k]}/healthz" |
      awk '/Requests\/sec/ {print $2}')"
  done
  results+=("${rates[*]}")
done

python3 - "${names[*]}" "${results[@]}" <<'PY'
import statistics, sys
names = sys.argv[1].split()
rounds = [list(map(float, r.split())) for r in sys.argv[2:]]
for i, rates in enumerate(rounds, 1):
    print(f"round {i}: " + ", ".join(f"{n} {r:.0f}" for n, r in zip(names, rates)))
plain = statistics.median(r[0] for r in rounds)
print(f"median plain: {plain:.0f} req/s")
for k, name in enumerate(names[1:], 1):
    ratio = statistics.median(r[k] / r[0] for r in rounds)
    rate = statistics.median(r[k] for r in rounds)
    print(f"{name:>14}: median {rate:8.0f} req/s, median ratio to plain {ratio:.3f}")
PY
