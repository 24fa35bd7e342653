//! The operator audit trail over HTTP: `GET /v1/audit/operators?from=N&limit=M` pages through
//! every command an operator key asked for (who, what, when), with each record's hash and its
//! predecessor's, so a client can check the chain itself (docs/api.md, "Audit trail").

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::operators::OperatorAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Allowed;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::state::AppState;
use crate::wire::IdOut;

/// Default and largest page.
const ACTIONS_LIMIT_DEFAULT: u64 = 100;
const ACTIONS_LIMIT_MAX: u64 = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorTrailQuery {
    /// Number of the first action to return (0-based); default 0.
    #[param(value_type = Option<crate::wire::U64In>)]
    pub from: Option<u64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorTrailOut {
    pub actions: Vec<OperatorActionOut>,
    /// Actions in the whole trail (the next action's number).
    pub count: u64,
    /// Hex SHA-256 of the last action (64 zeros while the trail is empty).
    pub head: String,
    /// `from` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// One command an operator key asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorActionOut {
    /// Its number in the trail (0-based).
    pub seq: u64,
    /// Ledger time after it applied, nanoseconds since the Unix epoch (in the event feed, the
    /// event's own `timestamp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The operator key that asked (`crk.<key_id>.…`).
    pub key_id: String,
    /// create_accounts, create_transfers, wallet_bet, wallet_win, wallet_rollback, tick,
    /// create_player, open_session, close_session or revoke_sessions.
    pub action: &'static str,
    /// Items the command carried, and how many the ledger refused.
    pub items: u32,
    pub rejected: u32,
    /// The first object the command named (account, transfer or player id); absent if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<IdOut>,
    /// The transfers it created: history numbers `transfer_seq_first` to `+transfers - 1`.
    pub transfer_seq_first: u64,
    pub transfers: u32,
    /// Hex SHA-256 of the previous action (zeros for the first) and of this one: SHA-256 of the
    /// fixed-size record's bytes before its own hash (docs/storage-format.md).
    pub prev_hash: String,
    pub hash: String,
}

impl From<&OperatorAction> for OperatorActionOut {
    fn from(action: &OperatorAction) -> Self {
        OperatorActionOut {
            seq: action.seq,
            timestamp: Some(action.timestamp),
            key_id: action.key_id.clone(),
            action: action.kind.name(),
            items: action.items,
            rejected: action.rejected,
            subject: (action.subject != 0).then_some(IdOut(action.subject)),
            transfer_seq_first: action.transfer_seq_first,
            transfers: action.transfers,
            prev_hash: hex::encode(action.prev_hash),
            hash: hex::encode(action.hash),
        }
    }
}

/// The operator audit trail, oldest first: every operator write, hash-chained.
#[utoipa::path(
    get, path = crate::paths::ROUTE_AUDIT_OPERATORS, tag = "audit",
    params(OperatorTrailQuery),
    responses(
        (status = 200, body = OperatorTrailOut),
        (status = 400, description = "invalid_query: bad from or limit", body = ErrorBody),
        (status = 503, description = "storage_unavailable: history cannot be read right now", body = ErrorBody),
    )
)]
pub async fn operators<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<OperatorTrailQuery>,
) -> Result<Response, ApiError> {
    let from = query.from.unwrap_or(0);
    let limit = query.limit.unwrap_or(ACTIONS_LIMIT_DEFAULT);
    if !(1..=ACTIONS_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be from 1 to {ACTIONS_LIMIT_MAX}"
        )));
    }
    let page = state
        .read(move |view| view.operator_actions(from, limit as usize))
        .await?
        .map_err(ApiError::from_read)?;
    let shown_end = from.saturating_add(page.actions.len() as u64);
    let out = OperatorTrailOut {
        actions: page.actions.iter().map(OperatorActionOut::from).collect(),
        count: page.chain.count,
        head: hex::encode(page.chain.head),
        next: (shown_end < page.chain.count).then_some(shown_end),
    };
    Ok(json_response(StatusCode::OK, &out))
}
