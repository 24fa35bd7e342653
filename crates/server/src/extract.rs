//! Request extractors that answer bad input with our JSON errors instead of axum's plain-text
//! rejections: a JSON body (Content-Type checked, size-limited, parsed from bytes), a batch
//! body that is JSON or binary records, a path segment and a query string.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use croupier_cluster::Consensus;

use crate::error::ApiError;
use crate::quote::clip_parser_message;
use crate::state::AppState;
use crate::wire::parse_decimal_u128;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<C: Consensus, T: DeserializeOwned> FromRequest<AppState<C>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState<C>) -> Result<Self, ApiError> {
        require_json_content_type(&request)?;
        let body = read_body(request, state).await?;
        parse_json(&body).map(ApiJson)
    }
}

/// A batch request body: JSON (`application/json`) or binary records
/// (`application/octet-stream`, decoded by `crate::binary`).
pub enum BatchBody<T> {
    Json(T),
    Binary(Bytes),
}

impl<C: Consensus, T: DeserializeOwned> FromRequest<AppState<C>> for BatchBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState<C>) -> Result<Self, ApiError> {
        let binary = match essence(&request) {
            Some(essence) if essence.eq_ignore_ascii_case("application/json") => false,
            Some(essence) if essence.eq_ignore_ascii_case(crate::binary::CONTENT_TYPE) => true,
            _ => {
                return Err(unsupported_media_type(
                    "the body must be JSON (Content-Type: application/json) or binary records \
                     (Content-Type: application/octet-stream)",
                ))
            }
        };
        let body = read_body(request, state).await?;
        if binary {
            Ok(BatchBody::Binary(body))
        } else {
            parse_json(&body).map(BatchBody::Json)
        }
    }
}

/// Middleware: reads every request's body whole before anything answers the request. hyper
/// closes a connection whose request body was left unread, and closing a socket with unread
/// bytes in it (or still arriving) sends a TCP reset, which can reach the client before it has
/// read the answer: a bet refused early (a bad token, a wrong Content-Type, a rate limit) then
/// shows the client a reset connection instead of our JSON error. So the body is read first,
/// bounded by `body_size_max_bytes` (413 past it, at once when the declared length is over) and
/// by the request deadline of the layers around this one.
pub async fn read_whole_body<C: Consensus>(
    State(state): State<AppState<C>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limit = state.body_size_max_bytes();
    if declared_length_over(&parts.headers, limit) {
        return ApiError::body_too_large(limit).into_response();
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) if error.is::<LengthLimitError>() => {
            ApiError::body_too_large(limit).into_response()
        }
        Err(error) => {
            ApiError::invalid_request(format!("could not read the body: {error}")).into_response()
        }
    }
}

fn declared_length_over(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > limit as u64)
}

/// The whole body, refused with our JSON errors when it is too large or cannot be read.
async fn read_body<C: Consensus>(request: Request, state: &AppState<C>) -> Result<Bytes, ApiError> {
    // Refuse a declared oversize at once instead of reading 4 MiB first; bodies without a
    // length are cut by the DefaultBodyLimit layer as they stream in.
    let body_size_max_bytes = state.body_size_max_bytes();
    if declared_length_over(request.headers(), body_size_max_bytes) {
        return Err(ApiError::body_too_large(body_size_max_bytes));
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(body_size_max_bytes)
            } else {
                ApiError::invalid_request(format!(
                    "could not read the body: {}",
                    rejection.body_text()
                ))
            }
        })
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        // serde_json quotes the offending token or field name whole.
        let detail = clip_parser_message(&error.to_string());
        match error.classify() {
            Category::Syntax | Category::Eof => {
                ApiError::malformed_json(format!("malformed JSON: {detail}"))
            }
            Category::Data | Category::Io => {
                ApiError::invalid_request(format!("invalid request body: {detail}"))
            }
        }
    })
}

/// The media type of the body without parameters (`application/json; charset=utf-8` →
/// `application/json`).
fn essence(request: &Request) -> Option<&str> {
    let value = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim())
}

fn unsupported_media_type(message: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        message,
    )
}

fn require_json_content_type(request: &Request) -> Result<(), ApiError> {
    match essence(request) {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(unsupported_media_type(
            "the body must be JSON with Content-Type: application/json",
        )),
    }
}

/// One path parameter as text, parsed by the handler.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| ApiPath(segment))
            .map_err(|rejection| {
                ApiError::invalid_path(clip_parser_message(&rejection.body_text()))
            })
    }
}

impl ApiPath {
    /// A non-zero u128 id of decimal digits.
    pub fn id(&self, what: &str) -> Result<u128, ApiError> {
        match parse_decimal_u128(self.0.as_bytes()) {
            Some(0) => Err(ApiError::invalid_path(format!("{what} must not be 0"))),
            Some(id) => Ok(id),
            None => Err(ApiError::invalid_path(format!(
                "{what} must be a decimal integer from 1 to 2^128-1"
            ))),
        }
    }
}

/// A query string of type `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| ApiQuery(query))
            .map_err(|rejection| {
                ApiError::invalid_query(clip_parser_message(&rejection.body_text()))
            })
    }
}
