#!/usr/bin/env bash
# Two croupier binaries side by side on one single-node workload, alternated A B A B: for each,
# a durable `croupier serve` on a fresh data dir, driven by `croupier bench ledger --server`
# from a second process; prints each run's throughput and p99 batch latency.
#
# Usage: scripts/bench-ab.sh A_BINARY B_BINARY [TRANSFERS (5000000)] [ROUNDS (2)]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
a="$1"; b="$2"; transfers="${3:-5000000}"; rounds="${4:-2}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-ab.XXXXXX")"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for round in $(seq 1 "$rounds"); do
    for tool in A B; do
        bin="$a"; [ "$tool" = B ] && bin="$b"
        port="$(free_port)"
        "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" 2> "$work/serve.log" &
        pid=$!
        result="$("$bin" bench ledger --server "http://127.0.0.1:$port" --transfers "$transfers" \
            | grep -E 'load accepted|batch latency p99' | tr -s ' ' | paste -sd ' ')"
        echo "round $round $tool ($bin): $result"
        kill -TERM "$pid"; wait "$pid" || true; pid=""
        rm -rf "$work/data"
    done
done
