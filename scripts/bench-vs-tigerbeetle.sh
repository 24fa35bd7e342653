#!/usr/bin/env bash
# Croupier against TigerBeetle on TigerBeetle's own benchmark workload, side by side.
#
# For each distribution (uniform, zipf, hot) it runs, alternately A B A B ...:
#   A: `tigerbeetle benchmark` (its load client in one process, a fresh durable one-replica
#      cluster in another, data file in the work dir);
#   B: `croupier serve` on a fresh data dir in the work dir, driven by
#      `croupier bench ledger --server ...` from a second process;
# with the same transfer count, account count, batch size (8189) and client count, then prints
# every run, the ratio of the sums of `load accepted`, and the worst p99/p100 batch latency.
#
# Usage: scripts/bench-vs-tigerbeetle.sh [--transfers N] [--accounts N] [--repeats N]
#            [--clients N] [--distributions "uniform zipf hot"] [--encoding binary|json]
#            [--replicas N]
# --replicas 3 compares replicated clusters on this machine: three `tigerbeetle start` replicas
# (formatted with --replica-count=3) driven by `tigerbeetle benchmark --addresses=...`, against
# three `croupier serve` members of one cluster driven through the leader's HTTP address.
# Environment (flags win): TRANSFERS (10000000), ACCOUNTS (10000), REPEATS (2), CLIENTS (1), REPLICAS (1),
#   DISTRIBUTIONS, ENCODING (binary), TIGERBEETLE (path), CROUPIER (path; default: build
#   target/release/croupier), BENCH_DIR (parent of the work dir; default $TMPDIR or /tmp),
#   KEEP_LOGS=1 (keep the work dir's logs).
# Without a tigerbeetle binary (TIGERBEETLE, PATH, or shared/anchors/bin above the repo) it
# says so and exits 0.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
transfers="${TRANSFERS:-10000000}"
accounts="${ACCOUNTS:-10000}"
repeats="${REPEATS:-2}"
clients="${CLIENTS:-1}"
distributions="${DISTRIBUTIONS:-uniform zipf hot}"
encoding="${ENCODING:-binary}"
replicas="${REPLICAS:-1}"
batch=8189
server_ready_timeout_s=60

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --transfers) transfers="$2"; shift 2 ;;
        --accounts) accounts="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --distributions) distributions="$2"; shift 2 ;;
        --encoding) encoding="$2"; shift 2 ;;
        --replicas) replicas="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done

find_tigerbeetle() {
    if [ -n "${TIGERBEETLE:-}" ]; then echo "$TIGERBEETLE"; return; fi
    if command -v tigerbeetle >/dev/null 2>&1; then command -v tigerbeetle; return; fi
    # ../shared/anchors/bin next to the repo (or next to the directory of its worktrees).
    local dir="$repo"
    for _ in 1 2 3; do
        dir="$(dirname "$dir")"
        if [ -x "$dir/shared/anchors/bin/tigerbeetle" ]; then
            echo "$dir/shared/anchors/bin/tigerbeetle"; return
        fi
    done
}
tigerbeetle="$(find_tigerbeetle)"
if [ -z "$tigerbeetle" ] || [ ! -x "$tigerbeetle" ]; then
    echo "tigerbeetle not found (TIGERBEETLE, PATH, or shared/anchors/bin above the repo): skipping the comparison"
    exit 0
fi

if [ -n "${CROUPIER:-}" ]; then
    croupier="$CROUPIER"
else
    echo "==> cargo build --release -p croupier" >&2
    (cd "$repo" && cargo build --release --quiet -p croupier)
    croupier="${CARGO_TARGET_DIR:-$repo/target}/release/croupier"
fi

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-vs-tigerbeetle.XXXXXX")"
server_pid=""
tigerbeetle_pid=""
replica_pids=""
cleanup() {
    # Only the processes this script started, by their ids.
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$tigerbeetle_pid" ]; then kill "$tigerbeetle_pid" 2>/dev/null || true; wait "$tigerbeetle_pid" 2>/dev/null || true; fi
    stop_replicas
    if [ "${KEEP_LOGS:-0}" = 1 ]; then
        find "$work" -mindepth 1 -not -name '*.log' -delete 2>/dev/null || true
        echo "logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

tigerbeetle_flags() {
    case "$1" in
        uniform) echo "" ;;
        zipf) echo "--account-distribution=zipfian" ;;
        hot) echo "--account-count-hot=1 --transfer-hot-percent=100" ;;
        *) echo "unknown distribution $1" >&2; exit 2 ;;
    esac
}

# `field LOG PATTERN`: the number after "PATTERN = " in a benchmark's output.
field() { sed -n "s/^$2 *= *\([0-9][0-9]*\).*/\1/p" "$1" | tail -1; }

results="$work/results.tsv"
: > "$results"
record() { # tool distribution run log
    local load p50 p99 p100
    load="$(field "$4" 'load accepted')"
    p50="$(field "$4" 'batch latency p50')"
    p99="$(field "$4" 'batch latency p99')"
    p100="$(field "$4" 'batch latency p100')"
    if [ -z "$load" ]; then
        echo "no 'load accepted' line from $1 ($2, run $3); its output:" >&2
        tail -20 "$4" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$1" "$load" "$p50" "$p99" "$p100" >> "$results"
    printf '%-8s run %s %-11s load accepted = %s tx/s, batch latency p50 %s ms, p99 %s ms, p100 %s ms\n' \
        "$2" "$3" "$1" "$load" "$p50" "$p99" "$p100"
}

stop_replicas() {
    local pid
    for pid in $replica_pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $replica_pids; do wait "$pid" 2>/dev/null || true; done
    replica_pids=""
}

run_tigerbeetle_cluster() { # distribution run: $replicas replicas, the benchmark as their client
    local dir="$work/tb-$1-$2" log="$work/tigerbeetle-$1-$2.log" addresses="" i port
    mkdir -p "$dir"
    for i in $(seq 0 $((replicas - 1))); do
        port="$(free_port)"
        addresses="${addresses:+$addresses,}127.0.0.1:$port"
        "$tigerbeetle" format --cluster=0 --replica="$i" --replica-count="$replicas" "$dir/0_$i.tigerbeetle" \
            >> "$work/tigerbeetle-replicas-$1-$2.log" 2>&1
    done
    for i in $(seq 0 $((replicas - 1))); do
        "$tigerbeetle" start --addresses="$addresses" "$dir/0_$i.tigerbeetle" \
            >> "$work/tigerbeetle-replicas-$1-$2.log" 2>&1 &
        replica_pids="$replica_pids $!"
    done
    # shellcheck disable=SC2046  # the flags are meant to split
    (cd "$dir" && exec "$tigerbeetle" benchmark --addresses="$addresses" --transfer-count="$transfers" \
        --account-count="$accounts" --transfer-batch-count="$batch" --clients="$clients" --query-count=0 \
        $(tigerbeetle_flags "$1")) > "$log" 2>&1 &
    tigerbeetle_pid=$!
    wait "$tigerbeetle_pid" || { echo "tigerbeetle benchmark failed; see below" >&2; tail -20 "$log" >&2; exit 1; }
    tigerbeetle_pid=""
    stop_replicas
    rm -rf "$dir"
    record tigerbeetle "$1" "$2" "$log"
}

run_croupier_cluster() { # distribution run: $replicas members, the benchmark through the leader
    local dir="$work/croupier-$1-$2" log="$work/croupier-$1-$2.log" i api leader=""
    mkdir -p "$dir"
    : > "$dir/cluster.toml"
    for i in $(seq 1 "$replicas"); do
        printf '[[node]]\nid = %s\napi = "127.0.0.1:%s"\npeer = "127.0.0.1:%s"\n\n' \
            "$i" "$(free_port)" "$(free_port)" >> "$dir/cluster.toml"
    done
    for i in $(seq 1 "$replicas"); do
        "$croupier" serve --node-id "$i" --cluster-config "$dir/cluster.toml" --data-dir "$dir/node-$i" \
            2> "$work/croupier-serve-$1-$2-node-$i.log" &
        replica_pids="$replica_pids $!"
    done
    api="$(sed -n 's/^api = "\(.*\)"/\1/p' "$dir/cluster.toml" | head -1)"
    for _ in $(seq 1 600); do
        leader="$(curl -s "http://$api/v1/cluster/status" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(next((n["api_addr"] for n in s["nodes"] if n["node_id"] == s["leader_id"]), ""))' 2>/dev/null || true)"
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || { echo "the croupier cluster elected no leader" >&2; exit 1; }
    if ! "$croupier" bench ledger --server "http://$leader" --transfers "$transfers" \
        --accounts "$accounts" --batch "$batch" --clients "$clients" --distribution "$1" \
        --encoding "$encoding" > "$log" 2>&1; then
        echo "croupier bench ledger failed (a transfer not ok, or an error); its output:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    stop_replicas
    rm -rf "$dir"
    record croupier "$1" "$2" "$log"
}

run_tigerbeetle() { # distribution run
    local dir="$work/tb-$1-$2" log="$work/tigerbeetle-$1-$2.log"
    mkdir -p "$dir"
    # shellcheck disable=SC2046  # the flags are meant to split
    (cd "$dir" && exec "$tigerbeetle" benchmark --transfer-count="$transfers" --account-count="$accounts" \
        --transfer-batch-count="$batch" --clients="$clients" --query-count=0 $(tigerbeetle_flags "$1")) \
        > "$log" 2>&1 &
    tigerbeetle_pid=$!
    wait "$tigerbeetle_pid" || { echo "tigerbeetle benchmark failed; see below" >&2; tail -20 "$log" >&2; exit 1; }
    tigerbeetle_pid=""
    rm -rf "$dir"
    record tigerbeetle "$1" "$2" "$log"
}

run_croupier() { # distribution run
    local dir="$work/croupier-$1-$2" log="$work/croupier-$1-$2.log" port
    port="$(free_port)"
    "$croupier" serve --data-dir "$dir" --listen "127.0.0.1:$port" 2> "$work/croupier-serve-$1-$2.log" &
    server_pid=$!
    # The client waits for GET /healthz itself; the server must answer within its timeout.
    if ! "$croupier" bench ledger --server "http://127.0.0.1:$port" --transfers "$transfers" \
        --accounts "$accounts" --batch "$batch" --clients "$clients" --distribution "$1" \
        --encoding "$encoding" > "$log" 2>&1; then
        echo "croupier bench ledger failed (a transfer not ok, or an error); its output:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    rm -rf "$dir"
    record croupier "$1" "$2" "$log"
}

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tigerbeetle: $tigerbeetle ($("$tigerbeetle" version 2>/dev/null | head -1 || echo unknown version))"
echo "croupier: $croupier"
echo "work dir (both tools' data): $work ($(df -P "$work" | awk 'NR==2 {print $1}'))"
echo "workload: $transfers transfers, $accounts accounts, batches of $batch, $clients client(s), repeats $repeats, croupier encoding $encoding, replicas $replicas"
echo "commands:"
if [ "$replicas" -gt 1 ]; then
    echo "  A: tigerbeetle format --cluster=0 --replica=I --replica-count=$replicas FILE_I; tigerbeetle start --addresses=A0,A1,.. FILE_I & (x$replicas)"
    echo "     tigerbeetle benchmark --addresses=A0,A1,.. --transfer-count=$transfers --account-count=$accounts --transfer-batch-count=$batch --clients=$clients --query-count=0 [distribution flags]"
    echo "  B: croupier serve --node-id I --cluster-config cluster.toml --data-dir DIR_I & (x$replicas)"
    echo "     croupier bench ledger --server http://LEADER --transfers $transfers --accounts $accounts --batch $batch --clients $clients --distribution D --encoding $encoding"
else
    echo "  A: tigerbeetle benchmark --transfer-count=$transfers --account-count=$accounts --transfer-batch-count=$batch --clients=$clients --query-count=0 [distribution flags]"
    echo "  B: croupier serve --data-dir DIR --listen 127.0.0.1:PORT &"
    echo "     croupier bench ledger --server http://127.0.0.1:PORT --transfers $transfers --accounts $accounts --batch $batch --clients $clients --distribution D --encoding $encoding"
fi
echo "  distribution flags: uniform: none; zipf: $(tigerbeetle_flags zipf); hot: $(tigerbeetle_flags hot)"
echo

for distribution in $distributions; do
    tigerbeetle_flags "$distribution" > /dev/null
    for run in $(seq 1 "$repeats"); do
        if [ "$replicas" -gt 1 ]; then
            run_tigerbeetle_cluster "$distribution" "$run"
            run_croupier_cluster "$distribution" "$run"
        else
            run_tigerbeetle "$distribution" "$run"
            run_croupier "$distribution" "$run"
        fi
    done
done

echo
printf '%-12s %-4s %-12s %16s %8s %8s %9s\n' distribution run tool 'load (tx/s)' 'p50 ms' 'p99 ms' 'p100 ms'
awk -F'\t' '{ printf "%-12s %-4s %-12s %16s %8s %8s %9s\n", $1, $2, $3, $4, $5, $6, $7 }' "$results"
echo
printf '%-12s %16s %16s %10s %14s %14s\n' distribution 'sum tigerbeetle' 'sum croupier' 'ratio C/T' 'p99 max T/C' 'p100 max T/C'
for distribution in $distributions; do
    awk -F'\t' -v d="$distribution" '
        $1 == d && $3 == "tigerbeetle" { t += $4; if ($6 > t99) t99 = $6; if ($7 > t100) t100 = $7 }
        $1 == d && $3 == "croupier"    { c += $4; if ($6 > c99) c99 = $6; if ($7 > c100) c100 = $7 }
        END { printf "%-12s %16d %16d %10.2f %14s %14s\n", d, t, c, (t > 0 ? c / t : 0), t99 "/" c99, t100 "/" c100 }
    ' "$results"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
