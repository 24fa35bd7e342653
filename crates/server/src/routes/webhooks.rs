//! The webhooks' delivery log over HTTP: list and read deliveries (any operator), and replay
//! one (admin, finance): the same event, signed anew, sent again as a delivery of its own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Allowed, MoneyWrite, OperatorRead};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::webhooks::dispatch::prepare;
use crate::webhooks::log::{DeliveryRecord, DeliveryState};
use crate::webhooks::Webhooks;

const DELIVERIES_LIMIT_DEFAULT: usize = 100;
const DELIVERIES_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only this endpoint's.
    pub endpoint: Option<String>,
    /// retrying, delivered, rejected or failed.
    #[param(pattern = "^(retrying|delivered|rejected|failed)$")]
    pub state: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveriesOut {
    /// Newest first: the retrying ones, then the finished ones.
    deliveries: Vec<DeliveryRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayOut {
    /// The new delivery (`GET /v1/webhooks/deliveries/{id}` follows it).
    delivery_id: String,
    replay_of: String,
}

fn webhooks_of<C: Consensus>(state: &AppState<C>) -> Result<&Webhooks, ApiError> {
    state.webhooks().map(|w| w.as_ref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "webhooks_not_configured",
            "this node has no webhook endpoints ([[webhooks.endpoints]])",
        )
    })
}

fn parse_state(text: &str) -> Result<DeliveryState, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.into())).map_err(|_| {
        ApiError::invalid_query("state must be retrying, delivered, rejected or failed")
    })
}

/// The delivery log, newest first.
#[utoipa::path(
    get, path = crate::paths::ROUTE_WEBHOOK_DELIVERIES, tag = "payments",
    params(DeliveriesQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = DeliveriesOut),
        (status = 400, description = "invalid_query", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not an operator", body = ErrorBody),
        (status = 409, description = "webhooks_not_configured", body = ErrorBody),
    )
)]
pub async fn list<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorRead>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit {
        None => DELIVERIES_LIMIT_DEFAULT,
        Some(n @ 1..=1_000) => n as usize,
        Some(_) => return Err(ApiError::invalid_query("limit must be 1 to 1000")),
    };
    let wanted = query.state.as_deref().map(parse_state).transpose()?;
    let webhooks = webhooks_of(&state)?;
    let keep = |record: &DeliveryRecord| {
        wanted.is_none_or(|state| record.state == state)
            && query
                .endpoint
                .as_ref()
                .is_none_or(|e| *e == record.endpoint)
    };
    let deliveries = webhooks.log().list(keep, limit.min(DELIVERIES_LIMIT_MAX));
    Ok(json_response(StatusCode::OK, &DeliveriesOut { deliveries }))
}

/// One delivery.
#[utoipa::path(
    get, path = crate::paths::ROUTE_WEBHOOK_DELIVERY, tag = "payments",
    params(("delivery_id" = String, Path, description = "From the delivery log")),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = DeliveryRecord),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not an operator", body = ErrorBody),
        (status = 404, description = "delivery_not_found (or older than the log keeps)", body = ErrorBody),
        (status = 409, description = "webhooks_not_configured", body = ErrorBody),
    )
)]
pub async fn get<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let record = find(webhooks_of(&state)?, &path.0)?;
    Ok(json_response(StatusCode::OK, &record))
}

fn find(webhooks: &Webhooks, delivery_id: &str) -> Result<DeliveryRecord, ApiError> {
    webhooks.log().get(delivery_id).ok_or_else(|| {
        ApiError::not_found(
            "delivery_not_found",
            "no such delivery (the log keeps the newest log_entries_max)",
        )
    })
}

/// Sends a delivery's event again (a failed or rejected one, or any other on request): the
/// same event id, a new delivery id, a fresh signature. Answers 202 once it is queued.
#[utoipa::path(
    post, path = crate::paths::ROUTE_WEBHOOK_REPLAY, tag = "payments",
    params(("delivery_id" = String, Path, description = "From the delivery log")),
    security(("operator_key" = [])),
    responses(
        (status = 202, body = ReplayOut),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: admin or finance only", body = ErrorBody),
        (status = 404, description = "delivery_not_found, endpoint_not_found", body = ErrorBody),
        (status = 409, description = "webhooks_not_configured; delivery_in_progress: it is still being retried", body = ErrorBody),
        (status = 410, description = "event_not_retained: the feed no longer holds the event", body = ErrorBody),
        (status = 503, description = "overloaded: the replay queue is full", body = ErrorBody),
    )
)]
pub async fn replay<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<MoneyWrite>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let webhooks = webhooks_of(&state)?;
    let record = find(webhooks, &path.0)?;
    if record.state == DeliveryState::Retrying {
        let message = "the delivery is still being retried; replay it once it ended";
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "delivery_in_progress",
            message,
        ));
    }
    if webhooks.endpoint(&record.endpoint).is_none() {
        let message = "the delivery's endpoint is no longer configured";
        return Err(ApiError::not_found("endpoint_not_found", message));
    }
    let not_retained = || {
        let message = "the event feed no longer retains this event";
        ApiError::new(StatusCode::GONE, "event_not_retained", message)
    };
    // The log is a file an operator may have edited: a position that is not one is gone.
    let position = record
        .position
        .parse::<u64>()
        .ok()
        .filter(|position| *position > 0)
        .ok_or_else(not_retained)?;
    let page = state.events_after(position - 1, 1).await?;
    let event = page
        .events
        .first()
        .filter(|event| event.position == position)
        .and_then(prepare)
        .ok_or_else(not_retained)?;
    let delivery_id = webhooks
        .request_replay(&record, event)
        .ok_or_else(|| ApiError::overloaded_because("the webhook replay queue is full"))?;
    let out = ReplayOut {
        delivery_id,
        replay_of: record.delivery_id,
    };
    Ok(json_response(StatusCode::ACCEPTED, &out))
}
