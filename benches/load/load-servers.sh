# Sourced by the load scripts that run benches/examples/saas-load-server:
# a work directory removed on exit, and every server started through
# start_server stopped on exit, also one whose start or graceful stop timed
# out (cleanup reads the pid files, written at once).
#
# Needs TARGET (the cargo target directory) set by the sourcing script.

work="$(mktemp -d)"
cleanup() { # every server started and not yet seen to exit
  local pid_file
  for pid_file in "$work"/*.pid; do
    [[ -e "$pid_file" ]] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME MODE [ARGS...]: starts saas-load-server MODE ARGS with
# its trail at $work/NAME.jsonl and its log at $work/NAME.log, writes
# $work/NAME.pid, and prints the base URL once it listens (nothing if it
# does not within 10 s).
start_server() {
  local name="$1"; shift
  SAAS_SERVER__ADDR=127.0.0.1:0 SAAS_AUDIT__PATH="$work/$name.jsonl" \
    "$TARGET/release/examples/saas-load-server" "$@" > /dev/null 2> "$work/$name.log" &
  echo $! > "$work/$name.pid"
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.log" 2>/dev/null && break; sleep 0.1; done
  grep -o 'listening on http://[0-9.:]*' "$work/$name.log" | head -1 | sed 's/listening on //'
}
