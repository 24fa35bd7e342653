#!/usr/bin/env bash
# Two croupier binaries side by side on one workload, alternated A B A B: for each, durable
# server(s) on fresh data dirs, driven by `croupier bench ledger --server` from another process;
# prints each run's throughput and p99 batch latency.
#
# Usage: scripts/bench-ab.sh A_BINARY B_BINARY [TRANSFERS (5000000)] [ROUNDS (2)] [NODES (1)]
#   NODES=1: one `croupier serve`; NODES=3: `croupier cluster local --nodes 3`, benchmark
#   through the leader.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
a="$1"; b="$2"; transfers="${3:-5000000}"; rounds="${4:-2}"; nodes="${5:-1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-ab.XXXXXX")"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_single() { # binary -> sets pid, url
    local port; port="$(free_port)"
    "$1" serve --data-dir "$work/data" --listen "127.0.0.1:$port" 2> "$work/serve.log" &
    pid=$!
    url="http://127.0.0.1:$port"
}

start_cluster() { # binary -> sets pid, url (the leader's)
    local base leader="" i attempt
    for attempt in 1 2 3 4 5; do # a random base port may collide with a port in use
        base=$(( 20000 + RANDOM % 20000 ))
        "$1" cluster local --nodes "$nodes" --data-dir "$work/data" --base-port "$base" \
            > "$work/cluster.log" 2>&1 &
        pid=$!
        sleep 1
        kill -0 "$pid" 2>/dev/null && break
        rm -rf "$work/data"
    done
    for _ in $(seq 1 300); do
        for i in $(seq 0 $(( nodes - 1 ))); do
            leader="$(curl -s "http://127.0.0.1:$(( base + i ))/v1/cluster/status" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(next((n["api_addr"] for n in s["nodes"] if n["node_id"] == s["leader_id"]), ""))' 2>/dev/null || true)"
            [ -n "$leader" ] && break 2
        done
        sleep 0.1
    done
    [ -n "$leader" ] || { echo "the cluster elected no leader" >&2; cat "$work/cluster.log" >&2; exit 1; }
    url="http://$leader"
}

for round in $(seq 1 "$rounds"); do
    for tool in A B; do
        bin="$a"; [ "$tool" = B ] && bin="$b"
        if [ "$nodes" = 1 ]; then start_single "$bin"; else start_cluster "$bin"; fi
        result="$("$bin" bench ledger --server "$url" --transfers "$transfers" \
            | grep -E 'load accepted|batch latency p99' | tr -s ' ' | paste -sd ' ')"
        echo "round $round $tool ($bin): $result"
        kill -INT "$pid"; wait "$pid" || true; pid=""
        rm -rf "$work/data"
    done
done
