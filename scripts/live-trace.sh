#!/usr/bin/env bash
# One `croupier bench live` run with its latency log and every thread's CPU per 100 ms, then
# the per-100 ms report of scripts/live_trace.py (where slow bets fall, and what ran then).
#
# Usage: scripts/live-trace.sh CROUPIER_BINARY OUT_PREFIX [bench live arguments...]
#   writes OUT_PREFIX.log (the bench's output), .lat (its --latency-log), .cpu (the samples)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
binary="$1"; out="$2"; shift 2
here="$(cd "$(dirname "$0")" && pwd)"
"$binary" bench live --latency-log "$out.lat" "$@" > "$out.log" 2>&1 &
bench=$!
server=""
for _ in $(seq 1 1200); do # the server child starts after the players are seeded
    server="$(pgrep -P "$bench" | head -1 || true)"
    [ -n "$server" ] && break
    sleep 0.1
done
[ -n "$server" ] || { cat "$out.log"; echo "no server process appeared" >&2; exit 1; }
python3 "$here/live_trace.py" sample "$server" "$bench" > "$out.cpu" &
wait "$bench"
wait
grep -E "accepted =|p99|CPU" "$out.log"
python3 "$here/live_trace.py" report "$out.log" "$out.lat" "$out.cpu"
