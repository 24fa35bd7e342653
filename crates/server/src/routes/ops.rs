//! Operations: health, metrics, the OpenAPI document and the JSON fallbacks.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use croupier_cluster::{Consensus, NodeHealth};

use crate::error::{json_response, ApiError, ErrorBody};
use crate::state::AppState;
use crate::wire::HealthOut;

/// 200 while this node accepts writes; otherwise 503 naming the real cause.
#[utoipa::path(
    get, path = crate::paths::ROUTE_HEALTHZ, tag = "operations",
    responses(
        (status = 200, body = HealthOut),
        (status = 503, description = "not_ready (not leading yet, or replaying its log), disk_full (writes refused until space returns; reads are served), failed (storage or consensus failed; the process exits), shutting_down", body = ErrorBody),
    )
)]
pub async fn healthz<C: Consensus>(State(state): State<AppState<C>>) -> Response {
    let unavailable = |code, message: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message).into_response()
    };
    match state.health() {
        NodeHealth::Serving => json_response(StatusCode::OK, &HealthOut { status: "ok" }),
        NodeHealth::NotReady => unavailable(
            "not_ready",
            "the node is not leading yet or is still replaying its log".into(),
        ),
        NodeHealth::DiskFull {
            free_bytes,
            reserve_bytes,
        } => unavailable(
            "disk_full",
            format!(
                "writes refused: {} MiB free on the data directory's disk, {} MiB reserved; reads are served and writes resume by themselves once space returns",
                free_bytes >> 20,
                reserve_bytes >> 20
            ),
        ),
        NodeHealth::Failed(reason) => unavailable("failed", format!("the node failed: {reason}")),
        NodeHealth::Stopped => unavailable("shutting_down", "the node is shutting down".into()),
    }
}

/// Prometheus text exposition.
#[utoipa::path(
    get, path = crate::paths::ROUTE_METRICS, tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics() -> Response {
    let text = crate::telemetry::prometheus().render();
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
