//! What the table routes answer alike: a table id from the path, a table command's rejection
//! as an API error (a named code, a status by kind), and a table's WebSocket handshake.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use croupier_core::tables::{TableId, TableOutcome, TABLE_ID_MAX};

use crate::error::ApiError;
use crate::extract::ApiPath;

pub fn table_id_in(path: &ApiPath) -> Result<TableId, ApiError> {
    path.0
        .parse::<TableId>()
        .ok()
        .filter(|id| (1..=TABLE_ID_MAX).contains(id))
        .ok_or_else(|| ApiError::invalid_path("table_id must be an integer from 1 to 1048575"))
}

/// A table whose game this node has no certified definition for: it cannot name its spots.
pub fn game_not_run_here() -> ApiError {
    ApiError::not_found(
        "table_not_found",
        "this node does not run the table's game (its definition is not certified here)",
    )
}

/// A table rejection as an API error (named code, status by kind).
pub fn table_error(outcome: TableOutcome) -> ApiError {
    use TableOutcome as O;
    let code = outcome.code();
    let status = match outcome {
        O::Refused(refusal) => return ApiError::from_refusal(refusal),
        O::InsufficientFunds { balance } => {
            let error = ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                code,
                "the bet exceeds the available balance",
            );
            return ApiError {
                balance: Some(balance),
                ..error
            };
        }
        O::TableNotFound | O::RoundNotFound => StatusCode::NOT_FOUND,
        O::RoundClosed
        | O::BetConflict
        | O::RoundInProgress
        | O::RoundStateInvalid
        | O::TooEarly
        | O::ResultLate
        | O::ResultDuplicate
        | O::DrawSourceInvalid => StatusCode::CONFLICT,
        O::PlayerAccountClosed | O::TableClosed | O::StudioSignatureInvalid => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let message = match outcome {
        O::RoundClosed => "betting on this round has closed",
        O::BetConflict => "this bet_id was used in this round for another bet",
        O::BetBelowMin | O::BetAboveMax => "a spot's amount is outside the table's limits",
        O::RoundStakeLimit => "the round's total stake limit is reached",
        O::TooManyBets => "the round holds as many bets as it may",
        O::NoWalletInCurrency => "the player has no wallet in the table's currency",
        O::SpotsInvalid => "spots must be 1 to 64 distinct spots",
        O::TooEarly => "the round is not past its draw time (betting may still be open)",
        O::ResultLate => "the round's result timeout has passed: the round is voided",
        O::ResultDuplicate => "the round already has its result",
        O::DrawSourceInvalid => "this table's outcomes are not reported by a studio",
        O::StudioSignatureInvalid => {
            "not signed by the round's studio (or signed for another round or outcome)"
        }
        _ => "the table refused the request",
    };
    ApiError::new(status, code, message)
}

/// The upgrade of a WebSocket that serves one table: 404 `table_not_found` for a table this
/// node does not hold (before the upgrade is looked at), 426 `upgrade_required` for a request
/// that is no WebSocket handshake. `what` names the route in that message.
pub async fn table_websocket<C: croupier_cluster::Consensus>(
    state: &crate::state::AppState<C>,
    table_id: TableId,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    what: &str,
) -> Result<WebSocketUpgrade, ApiError> {
    if !state
        .read_stale(move |view| view.ledger().table(table_id).is_some())
        .await?
    {
        return Err(ApiError::not_found("table_not_found", "no such table"));
    }
    upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!("{what} is a WebSocket: {rejection}"),
        )
    })
}
