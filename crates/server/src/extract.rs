//! Request extractors that answer bad input with our JSON errors instead of axum's plain-text
//! rejections: a JSON body (Content-Type checked, size-limited, parsed from bytes), a path
//! segment and a query string.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use croupier_cluster::Consensus;

use crate::error::ApiError;
use crate::routes::AppState;
use crate::wire::parse_decimal_u128;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<C: Consensus, T: DeserializeOwned> FromRequest<AppState<C>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState<C>) -> Result<Self, ApiError> {
        require_json_content_type(&request)?;
        // Refuse a declared oversize at once instead of reading 4 MiB first; bodies without a
        // length are cut by the DefaultBodyLimit layer as they stream in.
        let body_size_max_bytes = state.body_size_max_bytes();
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok());
        if declared
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len > body_size_max_bytes as u64)
        {
            return Err(ApiError::body_too_large(body_size_max_bytes));
        }
        let body = Bytes::from_request(request, state)
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
            })?;
        serde_json::from_slice(&body)
            .map(ApiJson)
            .map_err(|error| match error.classify() {
                Category::Syntax | Category::Eof => {
                    ApiError::malformed_json(format!("malformed JSON: {error}"))
                }
                Category::Data | Category::Io => {
                    ApiError::invalid_request(format!("invalid request body: {error}"))
                }
            })
    }
}

fn require_json_content_type(request: &Request) -> Result<(), ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let is_json = content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json",
        ))
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
            .map_err(|rejection| ApiError::invalid_path(rejection.body_text()))
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
            .map_err(|rejection| ApiError::invalid_query(rejection.body_text()))
    }
}
