#!/usr/bin/env bash
# Fuzzes a running node against its own OpenAPI document with schemathesis (every check), so the
# document and the server cannot drift apart: an undocumented status, a body outside its schema,
# a schema-valid request refused, an invalid one accepted, a 5xx, all fail the run.
#
# Usage: scripts/schemathesis.sh [path/to/croupier]   (default: target/release/croupier)
# Needs schemathesis in .venv-schemathesis/ (scripts/test.sh installs it; or set SCHEMATHESIS).
# SCHEMATHESIS_MAX_EXAMPLES (default 40) bounds the cases per operation and phase;
# SCHEMATHESIS_SEED (default 8) makes the run reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."

croupier="${1:-${CARGO_TARGET_DIR:-target}/release/croupier}"
schemathesis="${SCHEMATHESIS:-.venv-schemathesis/bin/schemathesis}"
python="$(dirname "$schemathesis")/python"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
seed="${SCHEMATHESIS_SEED:-8}"
[ -x "$croupier" ] || { echo "no croupier binary at $croupier (cargo build --release -p croupier)" >&2; exit 2; }
[ -x "$schemathesis" ] || { echo "no schemathesis at $schemathesis (scripts/test.sh installs it)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'kill "${server_pid:-}" "${bank_pid:-}" 2>/dev/null || true; wait "${server_pid:-}" "${bank_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"

# An admin key (operator routes), a provider key (the signed wallet calls); with an operator key
# the node is not in protected mode, so calls without credentials must be refused.
operator_key="$("$croupier" keys create --role admin --name schemathesis --data-dir "$data" 2>/dev/null | grep -o 'crk\.[^ ]*' | head -1)"
read -r provider_key provider_secret < <("$croupier" keys create --role provider --name schemathesis --data-dir "$data" 2>/dev/null | grep -E '^pv-' | head -1)
[ -n "$operator_key" ] && [ -n "${provider_secret:-}" ] || { echo "could not create keys" >&2; exit 1; }

# A sandbox bank, so the payment routes run against a real connector.
"$croupier" sandbox bank --protocol obie --listen 127.0.0.1:0 --data-dir "$work/bank" \
    --client-id croupier --client-secret schemathesis-bank >"$work/bank.out" 2>"$work/bank.log" &
bank_pid=$!
for _ in $(seq 1 600); do
    bank_addr="$(sed -n 's/^sandbox bank listening on \([^ ]*\).*/\1/p' "$work/bank.out")"
    [ -n "$bank_addr" ] && break
    sleep 0.1
done
[ -n "${bank_addr:-}" ] || { echo "the sandbox bank did not start" >&2; cat "$work/bank.log" >&2; exit 1; }
printf '[[payments.connectors]]\nid = "bank-a"\nprotocol = "obie"\nbase_url = "http://%s"\nclient_id = "croupier"\nclient_secret = "schemathesis-bank"\n' \
    "$bank_addr" >"$work/croupier.toml"

# Login limits high enough for schemathesis to log in again after each generated logout.
CROUPIER_RATE_LIMIT__LOGIN_PER_USERNAME_PER_MIN=100000 \
CROUPIER_RATE_LIMIT__LOGIN_PER_ADDRESS_PER_MIN=100000 \
    "$croupier" serve --config "$work/croupier.toml" --data-dir "$data" --listen 127.0.0.1:0 \
    >"$work/serve.log" 2>&1 &
server_pid=$!
port="$(bash scripts/serve-port.sh "$work/serve.log")"
base="http://127.0.0.1:$port"

# A player whose session the player-only routes use (schemathesis logs in as it, and again
# after a generated logout ended the session).
player_password="schemathesis-password"
"$python" - "$base" "$operator_key" "$player_password" <<'EOF'
import sys, requests
base, key, password = sys.argv[1:]
response = requests.post(
    f"{base}/v1/players",
    json={"username": "schemathesis", "password": password, "currencies": ["EUR", "USD"]},
    headers={"Authorization": f"Bearer {key}"},
    timeout=30,
)
assert response.status_code == 201, response.text
EOF

cat >"$work/schemathesis.toml" <<EOF
# No state kept between runs (replayed crashes would make two runs with one seed differ).
[cache]
enabled = false

# Credentials per security scheme of the document (components.securitySchemes).
[auth.openapi.operator_key]
bearer = "$operator_key"

[auth.openapi.provider_signature]
api_key = "$provider_key"

[auth.dynamic.openapi.player_session]
path = "/v1/players/login"
payload = { username = "schemathesis", password = "$player_password" }
extract_selector = "/token"
retry_on = [401]

# Responsible gambling, KYC and cases depend on the ledger's state as well: 403 self_excluded,
# timed_out, kyc_required, deposit_limit_reached, account_frozen; 404 an unknown player or
# case; 409 self_exclusion_active (a lift while one runs), a deposit id used for another
# transfer, a case already decided, a goAML export without a reporting entity; 422
# no_wallet_in_currency, a deposit the ledger refuses
# (an unknown source account), an attestation that does not verify.
[[operations]]
include-path-regex = "^/v1/(players/[^/]+/(limits|self-exclusion|time-out|deposits|kyc|compliance|identity|reality-check)|compliance/|cases)"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# A wallet call's answer also depends on the ledger's state, not only on the request's shape:
# 402 insufficient_funds (a bet over the balance), 422 ledger_mismatch, not_a_player_account,
# rollback_target_invalid, round_mismatch. A schema-valid call may meet them, so for these
# operations they count as accepted answers of positive data (every other check is unchanged).
[[operations]]
include-path-regex = "^/v1/wallet/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "402", "403", "404", "409", "422", "429"]

# A table's limits relate to each other (bet_min <= bet_max <= round_stake_max), which JSON
# Schema cannot state: a schema-valid configuration may still be refused with 422.
[[operations]]
include-path-regex = "^/v1/tables/[^/]+\$"
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# A bet meets the table's rules (limits, the round's state, funds): business refusals, as with
# the wallet routes.
[[operations]]
include-path-regex = "^/v1/tables/[^/]+/bets\$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "402", "403", "404", "409", "422", "429"]

# A studio result is judged by its signature and the round's state (too early, late, a
# duplicate): a schema-valid one with a made-up signature is refused.
[[operations]]
include-path-regex = "^/v1/tables/[^/]+/results\$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# Payments depend on the ledger and the bank: 403 a limit or status refusal, 404 an unknown
# payment or connector, 409 an id used for another payment, 422 insufficient_funds,
# unknown_connector, no_route, no_wallet_in_currency; 400 for a notification that is not signed
# by the bank (a made-up one never is).
[[operations]]
include-path-regex = "^/v1/(deposits|withdrawals|payments/)"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

# WebSockets (a table's live messages, a player's bet socket): the fuzzer sends plain GETs,
# which are answered 426 upgrade_required.
[[operations]]
include-path-regex = "^/v1/(live|tables/[^/]+/bet-socket)\$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "426", "429"]
EOF

echo "==> schemathesis $("$schemathesis" --version | awk '{print $NF}') against $base (seed $seed, at most $max_examples examples per operation)"
started=$SECONDS
status=0
CROUPIER_PROVIDER_SECRET="$provider_secret" PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" \
SCHEMATHESIS_HOOKS=schemathesis_hooks \
"$schemathesis" --config-file "$work/schemathesis.toml" --no-color run "$base/v1/openapi.json" \
    --checks all \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --generation-database none \
    --request-timeout 10 \
    || status=$?
echo "==> schemathesis took $((SECONDS - started)) s"

# Whatever schemathesis thought of the answers, the node must not have panicked.
if grep -q "panicked" "$work/serve.log"; then
    echo "the node panicked during the run:" >&2
    grep -B2 -A5 "panicked" "$work/serve.log" >&2
    status=1
fi
exit "$status"
