#!/usr/bin/env bash
# Installs what Croupier's tests need on a fresh Debian machine and runs every test.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(dieharder procps)  # procps: kill(1), which the cluster tools and tests use
# libxml2-utils: xmllint, which validates goAML reports against the UNODC schema.
apt_packages+=(libxml2-utils)
# OpenSSL 3's headers and pkg-config: the payments crate signs PS256 with the system's OpenSSL.
apt_packages+=(libssl-dev pkg-config)
# The web UI's browser test: headless chromium, driven from node by playwright-core.
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
# schemathesis (PyPI) runs in a virtual environment; Debian's python3 needs python3-venv for it.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_packages+=(python3 python3-venv)
fi
missing=()
for package in "${apt_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install the Rust toolchain (rustup, stable >= 1.85) first" >&2
    exit 2
fi

# The OpenAPI fuzzer, pinned with everything it pulls in; installed again only when the pins change.
schemathesis_venv=.venv-schemathesis
schemathesis_requirements=scripts/schemathesis-requirements.txt
if ! cmp -s "$schemathesis_requirements" "$schemathesis_venv/requirements.txt"; then
    echo "==> installing schemathesis into $schemathesis_venv"
    rm -rf "$schemathesis_venv"
    python3 -m venv "$schemathesis_venv"
    "$schemathesis_venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$schemathesis_requirements"
    cp "$schemathesis_requirements" "$schemathesis_venv/requirements.txt"
fi

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "==> installing rustfmt and clippy"
    rustup component add rustfmt clippy
fi

# A clean CI clone gains nothing from incremental compilation, which doubles what the debug
# build writes to disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# One build serves every step: the deterministic simulation needs `--cfg tokio_unstable` (so
# turmoil can seed tokio's own scheduling randomness), and building everything with it lets
# the simulator come out of the test build instead of a second, release build of the world.
# The flag only makes tokio's unstable APIs available; nothing else uses them.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg tokio_unstable"
started_s=$SECONDS
phase() { echo "==> [$(( (SECONDS - started_s) / 60 ))m$(( (SECONDS - started_s) % 60 ))s] $*"; }

phase "formatting (cargo fmt --check)"
cargo fmt --all --check

phase "lints (cargo clippy --all-targets -- -D warnings)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

phase "unit, property and integration tests (every crate)"
# Bounded: a hung test would otherwise hold CI until its own limit with no word of why (run 41
# hung in a node shutdown). libtest names a test running over 60 s just above the failure.
tests_minutes_max=25
if ! timeout --kill-after=30s "${tests_minutes_max}m" cargo test --workspace --quiet 2>&1; then
    echo "cargo test failed or ran past ${tests_minutes_max} minutes (a hung test is named" \
        "'has been running for over 60 seconds' above)" >&2
    exit 1
fi

phase "deterministic simulation: 200 seeds of a faulty 3-node cluster, each replayed"
CROUPIER_SIM=target/debug/croupier-sim bash scripts/simulate.sh

# The end-to-end steps below run the binary the tests above built (dev profile, with debug
# assertions and overflow checks on: schemathesis found an overflow that way). A release build
# would compile every crate again for the same code; the README's run command and benchmarks
# build it. (Not `cargo build -p croupier` either: without the dev-dependencies' features it
# rebuilds much of the tree.)
croupier=target/debug/croupier
[ -x "$croupier" ] || { echo "$croupier was not built by the tests" >&2; exit 1; }

phase "browser end-to-end test (chromium headless)"
bash scripts/browser-test.sh "$croupier"

phase "OpenAPI contract: schemathesis against a running node (every check, seeded)"
SCHEMATHESIS="$schemathesis_venv/bin/schemathesis" bash scripts/schemathesis.sh "$croupier"

phase "dieharder subset on the certified generator (full run: scripts/dieharder.sh --full)"
CROUPIER="$croupier" bash scripts/dieharder.sh

phase "benchmark smoke runs (the full figures are in the README)"
"$croupier" bench ledger --accounts 1000 --transfers 200000 >/dev/null
smoke_dir="$(mktemp -d)"
trap 'kill "${smoke_pid:-}" 2>/dev/null || true; rm -rf "$smoke_dir"' EXIT
"$croupier" serve --data-dir "$smoke_dir/data" --listen 127.0.0.1:0 >"$smoke_dir/serve.log" 2>&1 &
smoke_pid=$!
port="$(bash scripts/serve-port.sh "$smoke_dir/serve.log")"
"$croupier" bench ledger --server "http://127.0.0.1:$port" --accounts 1000 --transfers 200000 >/dev/null
kill -INT "$smoke_pid"
wait "$smoke_pid"
"$croupier" audit verify --data-dir "$smoke_dir/data" >/dev/null
# A replicated cluster of three child processes, its leader SIGKILLed three times under writes.
"$croupier" bench failover --kills 3 --work-dir "$smoke_dir/failover"

# A live table: players betting over their bet sockets, then over HTTP, while WebSocket
# subscribers watch (a serve child each time).
for bets_over in websocket http; do
    "$croupier" bench live --players 200 --bets-per-s 400 --duration-s 5 --subscribers 200 \
        --window-ms 2000 --bets-over "$bets_over" >/dev/null
done

phase "all tests passed"
