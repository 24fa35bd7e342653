#!/usr/bin/env bash
# Prints the HTTP port of a `croupier serve` started with --listen 127.0.0.1:0, read from the
# start-up line (`addr=127.0.0.1:PORT`) in its log; waits up to 10 s. Exits 1 (showing the log)
# if the node never says it is up.
# Usage: port="$(bash scripts/serve-port.sh SERVE.LOG)"
set -euo pipefail
log="$1"
for _ in $(seq 1 100); do
    port="$(grep -o 'addr=127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)"
    [ -n "$port" ] && { echo "$port"; exit 0; }
    sleep 0.1
done
{ echo "croupier serve did not start:"; cat "$log"; } >&2
exit 1
