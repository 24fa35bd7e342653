#!/usr/bin/env bash
# Runs dieharder on the certified generator's raw output (`croupier rng raw`, read by
# dieharder as raw stdin, `-g 200`).
#
#   scripts/dieharder.sh          representative subset for CI (a few minutes)
#   scripts/dieharder.sh --full   every test (`dieharder -a`), long-running (about half an hour)
#
# Each test runs in resolve-ambiguity mode (-Y 1): a WEAK p-value makes dieharder re-test with
# more samples until the result is a clear PASSED or FAILED. The script fails if any result is
# FAILED (in the CI subset, a resolution that runs past its time budget gives way to one
# single-pass run; see run_bounded). The binary is $CROUPIER (default target/release/croupier). Needs Debian's `dieharder`.
set -euo pipefail
cd "$(dirname "$0")/.."

croupier="${CROUPIER:-target/release/croupier}"
# Birthdays, OPERM5, 32x32 and 6x8 binary rank, bitstream, count-the-1s (stream and byte),
# parking lot, 2d and 3d minimum distance, squeeze, runs, craps, STS monobit, runs and serial,
# RGB permutations, lagged sums and KS, byte distribution, DAB DCT, fill trees, monobit 2.
# Left out of the subset for time: 17 (GCD, ~3.5 min alone). Left out of the subset and of
# the verdict of --full: 201 (rgb_minimum_distance, which FAILS in dieharder 3.31.1 for its own
# AES_OFB generator, `dieharder -g 205 -d 201`) and 14 (diehard_sums, rated "Do Not Use").
# The "Suspect" tests 5, 6 and 7 run only in --full.
subset=(0 1 2 3 4 8 9 10 11 12 13 15 16 100 101 102 202 203 204 205 206 207 208 209)

if ! command -v dieharder >/dev/null 2>&1; then
    echo "dieharder not found: install Debian's 'dieharder' package (apt-get install dieharder)" >&2
    exit 2
fi
if [ ! -x "$croupier" ]; then
    echo "$croupier not found: build it with 'cargo build --release -p croupier' or set CROUPIER" >&2
    exit 2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Resolving a WEAK p-value re-tests with ever more samples; on a loaded machine that has taken
# eight minutes for one test. Past this budget the resolution is abandoned and the test runs
# again once, single pass, on a fresh stream: its verdict counts (FAILED still fails the run).
resolve_budget_s="${DIEHARDER_RESOLVE_BUDGET_S:-120}"

run() {
    # The generator stops quietly when dieharder closes the pipe.
    "$croupier" rng raw | dieharder -g 200 -Y 1 "$@" | tee -a "$log"
}

run_bounded() {
    local out status=0
    out="$(mktemp)"
    "$croupier" rng raw | timeout "$resolve_budget_s" dieharder -g 200 -Y 1 -d "$1" >"$out" || status=$?
    if [ "$status" -eq 124 ]; then
        echo "# test $1: not decided within ${resolve_budget_s} s (WEAK results re-test); one single-pass run decides"
        "$croupier" rng raw | dieharder -g 200 -d "$1" | tee -a "$log"
    elif [ "$status" -ne 0 ]; then
        cat "$out"
        rm -f "$out"
        echo "dieharder -d $1 exited with status $status" >&2
        exit 1
    else
        tee -a "$log" <"$out"
    fi
    rm -f "$out"
}

start=$SECONDS
if [ "${1:-}" = "--full" ]; then
    run -a
else
    for test in "${subset[@]}"; do
        run_bounded "$test"
    done
fi

# Tests whose verdict does not count (see above); their lines are still shown.
broken='^ *(rgb_minimum_distance|diehard_sums) *\|'
results=$(grep -cE '\|\s*(PASSED|WEAK|FAILED)' "$log" || true)
failed=$(grep -E '\|\s*FAILED' "$log" | grep -cvE "$broken" || true)
echo "dieharder: $results results, $failed FAILED (not counting tests known broken in dieharder), $((SECONDS - start)) s"
if [ "$results" -eq 0 ]; then
    echo "dieharder produced no results" >&2
    exit 1
fi
if [ "$failed" -gt 0 ]; then
    grep -E '\|\s*FAILED' "$log" | grep -vE "$broken" >&2
    exit 1
fi
