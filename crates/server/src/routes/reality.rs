//! Reality checks over HTTP: a player (or support, admin) sets the interval, reads the status
//! and acknowledges a due check. The live push sends the same status when a check falls due.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::compliance::{ComplianceCommand, LimitChange, REALITY_CHECK_MINUTES_MAX};
use croupier_core::players::PlayerId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Allowed, OperatorOrOwnerRead, PlayerAdminOrSelf};
use crate::compliance::reality::{now_ns, reality_check_out, RealityCheckOut};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::compliance::{commit, player_not_found, present, target_player};
use crate::state::AppState;
use crate::wire::{IdOut, U64In};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealityCheckIn {
    /// Minutes between reality checks, 1 to 1440; null: none. A shorter interval applies at
    /// once; a longer one, or none, after the 24-hour cooling-off.
    #[serde(deserialize_with = "present")]
    #[schema(schema_with = interval_schema, required = true)]
    interval_minutes: Option<Option<U64In>>,
}

fn interval_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::nullable(crate::schema::uint64(1).maximum(Some(REALITY_CHECK_MINUTES_MAX)))
}

/// Set (or remove) the player's reality-check interval (the player itself, support, admin).
#[utoipa::path(
    put, path = crate::paths::ROUTE_PLAYER_REALITY_CHECK, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = RealityCheckIn,
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = RealityCheckOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn put<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
    ApiJson(request): ApiJson<RealityCheckIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let minutes = match request.interval_minutes.flatten() {
        None => LimitChange::Remove,
        Some(U64In(minutes)) if (1..=REALITY_CHECK_MINUTES_MAX).contains(&minutes) => {
            LimitChange::Set(minutes)
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                None,
                "interval_minutes",
                "must be from 1 to 1440, or null",
            ))
        }
    };
    let command = ComplianceCommand::SetRealityCheck { player_id, minutes };
    commit(&state, &caller, command).await?;
    status_view(&state, player_id).await
}

/// The player's reality check: interval, session length, net position, when the next is due.
#[utoipa::path(
    get, path = crate::paths::ROUTE_PLAYER_REALITY_CHECK, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = RealityCheckOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
    )
)]
pub async fn get<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    status_view(&state, player_id).await
}

/// Acknowledge the reality check (the player itself, support, admin): play goes on for
/// another interval. Recorded in the log with its time.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYER_REALITY_CHECK_ACK, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = RealityCheckOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn acknowledge<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let command = ComplianceCommand::AcknowledgeRealityCheck { player_id };
    commit(&state, &caller, command).await?;
    status_view(&state, player_id).await
}

async fn status_view<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
) -> Result<Response, ApiError> {
    let found = state
        .read(move |view| {
            let ledger = view.ledger();
            let player = ledger.player_compliance(player_id)?;
            let now = now_ns(ledger.compliance_now_ns());
            Some(reality_check_out(player_id, player, now).0)
        })
        .await?;
    match found {
        Some(body) => Ok(json_response(StatusCode::OK, &body)),
        None => Err(player_not_found()),
    }
}
