//! API errors: an HTTP status, a stable snake_case code and a human message, always answered
//! as `{"error": code, "message": ...}` (plus `balance`, `index`, `field` where they help).

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use croupier_cluster::ProposeError;
use croupier_core::WalletOutcome;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub balance: Option<u128>,
    pub index: Option<usize>,
    pub field: Option<&'static str>,
    /// 429: seconds until the client may retry (the `Retry-After` header).
    pub retry_after_s: Option<std::num::NonZeroU32>,
    /// 401: answer `WWW-Authenticate: Bearer`.
    pub www_authenticate: bool,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. "account_not_found", "invalid_request".
    #[schema(value_type = String, example = "invalid_request")]
    pub error: &'static str,
    #[schema(value_type = String, example = "item 0: field `id` must not be 0")]
    pub message: Cow<'static, str>,
    /// The player's available balance (insufficient_funds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub balance: Option<u128>,
    /// The index of the offending item in a batch request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            balance: None,
            index: None,
            field: None,
            retry_after_s: None,
            www_authenticate: false,
        }
    }

    pub fn malformed_json(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// A semantic problem with one field, optionally of one item of a batch.
    pub fn invalid_field(index: Option<usize>, field: &'static str, problem: &str) -> Self {
        let message = match index {
            Some(index) => format!("item {index}: field `{field}` {problem}"),
            None => format!("field `{field}` {problem}"),
        };
        ApiError {
            index,
            field: Some(field),
            ..Self::invalid_request(message)
        }
    }

    pub fn invalid_path(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", message)
    }

    pub fn invalid_query(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn too_many_items(count: usize, max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("{count} items in one request; at most {max} are allowed"),
        )
    }

    pub fn body_too_large(max_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {max_bytes} bytes"),
        )
    }

    pub fn overloaded() -> Self {
        Self::overloaded_because("the commit queue is full; retry shortly")
    }

    /// 503 `overloaded`: a bounded resource (connections, requests, the commit queue) is full.
    pub fn overloaded_because(message: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
    }

    /// 503 `deadline_exceeded`: the request ran past the edge's per-request deadline.
    pub fn deadline_exceeded(deadline: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "deadline_exceeded",
            format!(
                "the request took longer than {} ms; a write may or may not be applied: retry with the same ids",
                deadline.as_millis()
            ),
        )
    }

    /// A bug: the state machine answered in an unexpected shape. No request should see it.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A read that storage could not serve: 503 `storage_unavailable` (the node's health
    /// says why); the message names the file and offset for the operator.
    pub fn from_read(error: croupier_cluster::ReadError) -> Self {
        match error {
            croupier_cluster::ReadError::Storage(message) => {
                tracing::error!(%message, "read failed on storage");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "history cannot be read right now; see /healthz",
                )
            }
            croupier_cluster::ReadError::Invalid(message) => Self::invalid_request(message),
        }
    }

    pub fn from_propose(error: &ProposeError) -> Self {
        match error {
            ProposeError::NotLeader { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_leader",
                "this node does not accept writes now; retry shortly",
            ),
            ProposeError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down",
            ),
            ProposeError::StorageUnavailable(reason) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                reason.clone(),
            ),
            ProposeError::Storage(detail) => {
                tracing::error!(%detail, "storage failure while serving a request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the node cannot write to its storage",
                )
            }
            ProposeError::NoLeader => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_leader",
                "no leader is known right now (an election is under way); retry shortly",
            ),
            ProposeError::Unavailable(reason) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                reason.clone(),
            ),
            ProposeError::OutcomeUnknown(reason) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome_unknown",
                format!("the leader did not answer ({reason}): the write may or may not be applied; retry with the same ids"),
            ),
            ProposeError::ClockUnsynchronized(reason) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "clock_unsynchronized",
                reason.clone(),
            ),
            ProposeError::Fatal(detail) => {
                tracing::error!(%detail, "consensus failure while serving a request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "consensus_unavailable",
                    "the node's consensus layer failed",
                )
            }
        }
    }

    /// The refusal of a bet or deposit by responsible-gambling rules, KYC or an AML case:
    /// 403 with the refusal's name.
    pub fn from_refusal(refusal: croupier_core::compliance::Refusal) -> Self {
        use croupier_core::compliance::Refusal;
        let message = match refusal {
            Refusal::SelfExcluded => "the player is self-excluded",
            Refusal::TimedOut => "the player has taken a time-out",
            Refusal::KycRequired => "the player's identity verification level is too low for this",
            Refusal::SessionLimitReached => "the player's session-time limit is reached",
            Refusal::DepositLimitReached => "this deposit would pass the player's deposit limit",
            Refusal::LossLimitReached => "this bet could pass the player's loss limit",
            Refusal::WagerLimitReached => "this bet would pass the player's wager limit",
            Refusal::AccountFrozen => "an AML case froze the player's account pending its decision",
            Refusal::RealityCheckDue => {
                "a reality check is due: acknowledge it (POST /v1/players/{id}/reality-check/acknowledgement) to play on"
            }
        };
        Self::new(StatusCode::FORBIDDEN, refusal.code(), message)
    }

    /// Maps a refused wallet call to its status. `Ok` is not an error and must not come here.
    pub fn from_wallet(outcome: WalletOutcome) -> Self {
        let code = outcome.code();
        let (status, message): (StatusCode, &'static str) = match outcome {
            WalletOutcome::InsufficientFunds { balance } => {
                let error = Self::new(
                    StatusCode::PAYMENT_REQUIRED,
                    code,
                    "the bet exceeds the player's available balance",
                );
                return ApiError {
                    balance: Some(balance),
                    ..error
                };
            }
            WalletOutcome::TransactionConflict => (
                StatusCode::CONFLICT,
                "this transaction_id was used before with a different body",
            ),
            WalletOutcome::PlayerNotFound => {
                (StatusCode::NOT_FOUND, "no account has this player_id")
            }
            WalletOutcome::BetAlreadyRolledBack => (
                StatusCode::CONFLICT,
                "a rollback for this transaction_id came first",
            ),
            WalletOutcome::BetAlreadySettled => (
                StatusCode::CONFLICT,
                "the bet's round was already settled by a win",
            ),
            WalletOutcome::NotAPlayerAccount => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "the account is not a player account",
            ),
            WalletOutcome::LedgerMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "the ledger is not the player account's ledger",
            ),
            WalletOutcome::RollbackTargetInvalid => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "rolled_back_transaction_id names a win, this rollback or another player's bet",
            ),
            WalletOutcome::RoundMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "round_id is not the round of the bet being rolled back; nothing moved",
            ),
            WalletOutcome::AmountMustNotBeZero => {
                (StatusCode::UNPROCESSABLE_ENTITY, "amount must not be 0")
            }
            WalletOutcome::PlayerAccountClosed => {
                (StatusCode::FORBIDDEN, "the player account is closed")
            }
            WalletOutcome::Refused(refusal) => return Self::from_refusal(refusal),
            WalletOutcome::Ok { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "an accepted wallet call was treated as an error",
            ),
        };
        Self::new(status, code, message)
    }
}

impl ApiError {
    /// The JSON body of this error (what an HTTP answer and a bet socket's refusal carry).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message.clone(),
            balance: self.balance,
            index: self.index,
            field: self.field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.body());
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.get()));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"croupier\""),
            );
        }
        response
    }
}

/// Serializes `body` as the JSON answer. Serialization of our own types cannot fail; if it
/// ever did, the client still gets a JSON error rather than a dropped connection.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "response serialization failed");
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"internal","message":"response serialization failed"}"#,
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}
