#!/usr/bin/env bash
# Runs syncd in the foreground on a demo tree and shows changes made in one directory appear
# in the other. On a terminal it then keeps running so you can try your own changes; Ctrl-C
# stops it. Usage: examples/demo.sh [path/to/syncd]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
syncd=${1:-$here/../build/syncd}
export SYNCD_DEMO_DIR=${SYNCD_DEMO_DIR:-/tmp/syncd-demo}
active=$SYNCD_DEMO_DIR/active
standby=$SYNCD_DEMO_DIR/standby

rm -rf "$SYNCD_DEMO_DIR"
mkdir -p "$active/sessions" "$active/spool/jobs"
echo "user|s:5:\"alice\";" > "$active/sessions/sess_alice"
chmod 600 "$active/sessions/sess_alice"
echo "job 1" > "$active/spool/jobs/job-0001"
ln -s jobs/job-0001 "$active/spool/latest"
echo "not replicated: excluded by '.*'" > "$active/.swap"

now_ms() { date +%s%3N; }
# Waits until `test` holds for the standby, then says how long the change took to appear.
appeared() {
  local what=$1 start=$2; shift 2
  for _ in $(seq 1 500); do
    if "$@"; then
      echo "demo: $what -> on the standby after $(( $(now_ms) - start )) ms"
      return 0
    fi
    sleep 0.01
  done
  echo "demo: $what -> did NOT reach the standby" >&2
  return 1
}

echo "demo: syncd -nodaemon $here/demo.lua   ($active -> $standby)"
"$syncd" -nodaemon "$here/demo.lua" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

t=$(now_ms); appeared "startup copy of the demo tree" "$t" test -f "$standby/spool/jobs/job-0001"
t=$(now_ms); echo "user|s:3:\"bob\";" > "$active/sessions/sess_bob"
appeared "new session file sess_bob" "$t" grep -q bob "$standby/sessions/sess_bob"
t=$(now_ms); echo "cart|a:1:{}" >> "$active/sessions/sess_alice"
appeared "append to sess_alice" "$t" grep -q cart "$standby/sessions/sess_alice"
t=$(now_ms); chmod 640 "$active/spool/jobs/job-0001"
appeared "chmod 640 job-0001" "$t" test "$(stat -c %a "$standby/spool/jobs/job-0001" 2>/dev/null)" = 640
t=$(now_ms); rm "$active/sessions/sess_bob"
appeared "delete sess_bob" "$t" test ! -e "$standby/sessions/sess_bob"

echo "demo: the two trees now (the dot-file stays on the active side):"
(cd "$SYNCD_DEMO_DIR" && find active standby | sort | sed 's/^/  /')

if [ -t 0 ]; then
  echo "demo: syncd keeps running. Change files in $active and watch $standby. Ctrl-C stops it."
  wait $pid || true
else
  kill -TERM $pid
  wait $pid && echo "demo: syncd stopped cleanly (exit 0)"
fi
trap - EXIT
