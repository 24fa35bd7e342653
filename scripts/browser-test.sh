#!/usr/bin/env bash
# The web UI's browser end-to-end test: headless chromium (the system's, /usr/bin/chromium or
# $CHROMIUM) driven by playwright-core against `croupier serve --demo`. First checks the
# page's provably-fair verifier against `croupier fair`. Screenshots go to target/e2e/.
# Usage: scripts/browser-test.sh <croupier binary>
set -euo pipefail
cd "$(dirname "$0")/.."
croupier="$(realpath "${1:?usage: scripts/browser-test.sh <croupier binary>}")"
e2e=tests/e2e

# playwright-core only (no browser download), pinned by the lock file; installed again only
# when the lock file changes.
if ! cmp -s "$e2e/package-lock.json" "$e2e/node_modules/.package-lock.copy.json"; then
    echo "    installing playwright-core into $e2e/node_modules"
    rm -rf "$e2e/node_modules"
    (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    cp "$e2e/package-lock.json" "$e2e/node_modules/.package-lock.copy.json"
fi

node "$e2e/fair-check.mjs" "$croupier"
node "$e2e/player.spec.mjs" "$croupier"
