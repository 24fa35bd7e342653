//! Operations: health, metrics, the OpenAPI document and the JSON fallbacks.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use croupier_cluster::Consensus;

use super::AppState;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::wire::HealthOut;

/// 200 once this node accepts writes, else 503.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, body = HealthOut),
        (status = 503, description = "not_ready: the node does not accept writes yet", body = ErrorBody),
    )
)]
pub async fn healthz<C: Consensus>(State(state): State<AppState<C>>) -> Response {
    if state.is_serving_writes() {
        json_response(StatusCode::OK, &HealthOut { status: "ok" })
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the node does not accept writes yet",
        )
        .into_response()
    }
}

/// Prometheus text exposition.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
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

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi() -> Response {
    let mut response = (StatusCode::OK, crate::openapi::document_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
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
