//! What the sandbox's route modules share: the bank handle every handler gets, the error
//! shapes of both protocols (`problem`, `internal`, `full`) and request parsing (forms,
//! account identifications). A leaf under the routes: `http` (which assembles the router),
//! `obie`, `berlin` and `page` all use it, and it uses none of them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::accounts::{normalise, Scheme};
use super::bank::Bank;
use super::util::random_id;

pub(crate) type Shared = Arc<Bank>;

/// Which error body a route answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Obie,
    Berlin,
}

/// Berlin Group routes live under `/v1/`; everything else answers in OBIE's shape.
pub(crate) fn shape_of(path: &str) -> Shape {
    if path.starts_with("/v1/") {
        Shape::Berlin
    } else {
        Shape::Obie
    }
}

/// A refusal in the route's protocol's error shape.
pub(crate) fn problem(shape: Shape, status: StatusCode, code: &str, message: &str) -> Response {
    let body = match shape {
        Shape::Obie => json!({
            "Code": status.as_u16().to_string(),
            "Id": random_id(),
            "Message": message,
            "Errors": [{"ErrorCode": code, "Message": message}],
        }),
        Shape::Berlin => json!({
            "tppMessages": [{"category": "ERROR", "code": code, "text": message}],
        }),
    };
    (status, Json(body)).into_response()
}

pub(crate) fn internal(shape: Shape, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "internal error");
    let code = match shape {
        Shape::Obie => "UK.OBIE.UnexpectedError",
        Shape::Berlin => "INTERNAL_SERVER_ERROR",
    };
    problem(
        shape,
        StatusCode::INTERNAL_SERVER_ERROR,
        code,
        "internal error",
    )
}

/// Past `--payments-max` or `--accounts-max`.
pub(crate) fn full(shape: Shape, what: &str) -> Response {
    let code = match shape {
        Shape::Obie => "UK.OBIE.Rules.ResourceLimit",
        Shape::Berlin => "ACCESS_EXCEEDED",
    };
    let message = format!("the sandbox keeps no more {what}");
    problem(shape, StatusCode::TOO_MANY_REQUESTS, code, &message)
}

/// `application/x-www-form-urlencoded` (also a query string) as a map; the last value wins.
pub(crate) fn parse_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An account identification from a path or a form: 14 digits are a sort code and account
/// number, anything else an IBAN.
pub(crate) fn account_key(text: &str) -> Result<String, &'static str> {
    let digits = text
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
    normalise(
        if digits {
            Scheme::SortCode
        } else {
            Scheme::Iban
        },
        text,
    )
}
