#!/usr/bin/env bash
# Installs what Croupier's tests need on a fresh Debian machine and runs every test.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(dieharder)
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

echo "==> unit, property and integration tests (every crate)"
cargo test --workspace --quiet 2>&1

echo "==> release binary"
cargo build --release --quiet -p croupier
croupier=target/release/croupier

echo "==> dieharder subset on the certified generator (full run: scripts/dieharder.sh --full)"
CROUPIER="$croupier" bash scripts/dieharder.sh

echo "==> benchmark smoke run (the full figures are in the README)"
"$croupier" bench ledger --accounts 1000 --transfers 200000 >/dev/null

echo "==> all tests passed"
