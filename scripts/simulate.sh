#!/usr/bin/env bash
# Deterministic simulation of a 3-node cluster (crates/sim): the real node code under turmoil
# with partitions, held links, crashes with power loss and failed fsyncs, checked by a bank
# workload. Every seed runs in a process of its own and, with --replay, twice: both runs must
# leave the same trace.
#
#   scripts/simulate.sh                     what CI runs: 200 seeds, each replayed
#   scripts/simulate.sh --seeds 5000        thousands (any croupier-sim options)
#   scripts/simulate.sh --seed 42 --history h.jsonl    one seed and its Jepsen history
#
# Built with `--cfg tokio_unstable` (turmoil then seeds tokio's own randomness, which decides
# among tasks woken together), in a target directory of its own so the flag does not rebuild
# the rest of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# CROUPIER_SIM names a simulator built already, with the flag (the test script's: it builds
# everything with it).
sim="${CROUPIER_SIM:-}"
if [ -z "$sim" ]; then
    target_dir="${CROUPIER_SIM_TARGET_DIR:-target/sim}"
    RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR="$target_dir" \
        cargo build --release --quiet -p croupier-sim
    sim="$target_dir/release/croupier-sim"
fi
if [ "$#" -eq 0 ]; then
    set -- --seeds 200 --replay
fi
"$sim" "$@" | tail -n 3
