//! `POST /v1/risk/withdrawal-score`: the synchronous scoring of a proposed withdrawal against
//! the player's current window (the withdrawal pipeline's check; finance and admin keys). It
//! records nothing and proposes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_risk::aml::LedgerCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Allowed, MoneyWrite};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::wire::{parse_ledger, IdIn, U64In};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalScoreIn {
    #[schema(example = "340282366841710301022897246133062467584")]
    player_id: IdIn,
    /// Minor units, at least 1.
    #[schema(schema_with = amount_schema, example = 250000)]
    amount: U64In,
    #[schema(schema_with = crate::schema::ledger_string, example = "EUR")]
    ledger: String,
}

fn amount_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(1).build()
}

#[derive(Serialize, ToSchema)]
pub struct ScoreOut {
    /// 0–100.
    score: u8,
    /// Reason codes of the rules that fired.
    reasons: Vec<String>,
    /// The rule set's version.
    version: String,
    /// allow, hold_withdrawals, require_enhanced_kyc, open_case or freeze.
    action: &'static str,
}

/// Score a proposed withdrawal (finance, admin).
#[utoipa::path(
    post, path = crate::paths::ROUTE_RISK_WITHDRAWAL_SCORE, tag = "cases",
    request_body = WithdrawalScoreIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = ScoreOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
    )
)]
pub async fn withdrawal_score<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<MoneyWrite>,
    ApiJson(request): ApiJson<WithdrawalScoreIn>,
) -> Result<Response, ApiError> {
    if request.player_id.0 == 0 {
        return Err(ApiError::invalid_field(None, "player_id", "must not be 0"));
    }
    if request.amount.0 == 0 {
        return Err(ApiError::invalid_field(None, "amount", "must not be 0"));
    }
    let code = parse_ledger(&request.ledger)
        .map_err(|error| ApiError::invalid_field(None, "ledger", &error))?;
    let ledger = LedgerCode::from_u64(code.to_u64())
        .ok_or_else(|| ApiError::invalid_field(None, "ledger", "is not a currency code"))?;
    let player_id = request.player_id.0;
    let seen = state
        .read_stale(move |view| {
            let ledger = view.ledger();
            ledger.player_compliance(player_id).map(|p| p.seen)
        })
        .await?
        .unwrap_or_default();
    let aml = &state.compliance().aml;
    let evaluation =
        crate::compliance::aml::score_withdrawal(aml, &seen, player_id, ledger, request.amount.0);
    let body = ScoreOut {
        score: evaluation.score,
        reasons: evaluation.reasons,
        version: evaluation.version,
        action: evaluation.action.code(),
    };
    Ok(json_response(StatusCode::OK, &body))
}
