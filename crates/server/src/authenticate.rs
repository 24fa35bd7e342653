//! The authentication middleware: names each request's [`Caller`] (see `crate::auth` for the
//! kinds of callers and how each proves who it is), then applies the rate limits. It lives
//! beside `auth`, not in it, because it reads the node's state (sessions) through `AppState`,
//! which itself holds the `auth::Auth` settings.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use croupier_cluster::Consensus;
use croupier_core::players::{Session, TokenHash};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::{
    passwords, unauthorized, wall_clock_ns, Caller, ClientAddr, PROVIDER_KEY_HEADER,
    PROVIDER_SIGNATURE_HEADER,
};
use crate::error::ApiError;
use crate::state::AppState;

/// The middleware: sets the request's `Caller`, then applies the rate limits.
pub async fn authenticate<C: Consensus>(
    State(state): State<AppState<C>>,
    request: Request,
    next: Next,
) -> Response {
    let (caller, request) = match identify(&state, request).await {
        Ok(identified) => identified,
        Err(error) => return error.into_response(),
    };
    let address = request.extensions().get::<ClientAddr>().map(|a| a.0);
    if let Err(error) = state.auth().limits.check(&caller, address) {
        return error.into_response();
    }
    let mut request = request;
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn identify<C: Consensus>(
    state: &AppState<C>,
    request: Request,
) -> Result<(Caller, Request), ApiError> {
    let auth = state.auth();
    // Credentials of two kinds are refused rather than one of them silently ignored: a request
    // with a valid operator key and a bad provider key was served as the operator's.
    if request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        && request.headers().contains_key(PROVIDER_KEY_HEADER)
    {
        return Err(unauthorized(
            "send one kind of credentials: Authorization or X-Croupier-Key, not both",
        ));
    }
    if let Some(bearer) = bearer(request.headers())? {
        let caller = if bearer.starts_with(passwords::SESSION_TOKEN_PREFIX) {
            player_session(state, &bearer).await?
        } else {
            let ring = auth.ring.current();
            let (key_id, role) = ring
                .operator(&bearer)
                .ok_or_else(|| unauthorized("unknown or revoked key"))?;
            Caller::Operator {
                key_id: Arc::from(key_id),
                role,
            }
        };
        return Ok((caller, request));
    }
    if request.headers().contains_key(PROVIDER_KEY_HEADER) {
        return provider(state, request).await;
    }
    let caller = if auth.protected_mode() {
        Caller::Local
    } else {
        Caller::Public
    };
    Ok((caller, request))
}

fn bearer(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(websocket_bearer(headers));
    };
    let text = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| unauthorized("Authorization must be `Bearer <key or session token>`"))?;
    Ok(Some(text.trim().to_string()))
}

/// A browser cannot set headers on a WebSocket handshake; it names its token as a subprotocol
/// `bearer.<token>` instead (offered next to the protocol it speaks, which the server selects;
/// the token is never echoed back).
fn websocket_bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(WEBSOCKET_BEARER_PREFIX))
        .map(str::to_owned)
}

/// The subprotocol prefix that carries a bearer token on a WebSocket handshake.
pub const WEBSOCKET_BEARER_PREFIX: &str = "bearer.";

async fn player_session<C: Consensus>(
    state: &AppState<C>,
    token: &str,
) -> Result<Caller, ApiError> {
    let token_hash = passwords::token_hash(token);
    let mut session = state
        .read_stale(move |view| view.ledger().session(&token_hash).copied())
        .await?;
    if session.is_none() {
        // A login just answered through another node may not be applied here yet: before
        // refusing, catch up with the leader (a read index). Only unknown tokens pay for it.
        session = state
            .read(move |view| view.ledger().session(&token_hash).copied())
            .await?;
    }
    match session {
        Some(session) if unexpired(&session) => Ok(Caller::Player {
            player_id: session.player_id,
            token_hash,
        }),
        _ => Err(unauthorized(
            "the session is unknown, expired or logged out",
        )),
    }
}

/// Whether the session `token_hash` names is still open (neither expired nor logged out) as
/// this node has applied it: a betting socket, authenticated once at its handshake, asks again
/// before each bet.
pub(crate) async fn session_open<C: Consensus>(
    state: &AppState<C>,
    token_hash: TokenHash,
) -> Result<bool, ApiError> {
    let session = state
        .read_stale(move |view| view.ledger().session(&token_hash).copied())
        .await?;
    Ok(session.is_some_and(|session| unexpired(&session)))
}

/// A session lasts until its expiry by this node's clock; a logout removes it from the ledger.
fn unexpired(session: &Session) -> bool {
    session.expires_at_ns > wall_clock_ns()
}

async fn provider<C: Consensus>(
    state: &AppState<C>,
    request: Request,
) -> Result<(Caller, Request), ApiError> {
    let headers = request.headers();
    let key_id = header_text(headers, PROVIDER_KEY_HEADER)?;
    let signature = header_text(headers, PROVIDER_SIGNATURE_HEADER)?;
    let signature = signature.strip_prefix("sha256=").unwrap_or(&signature);
    let ring = state.auth().ring.current();
    let secret = ring
        .provider_secret(&key_id)
        .ok_or_else(|| unauthorized("unknown or revoked provider key"))?;
    let mut signature_bytes = [0u8; 32];
    hex::decode_to_slice(signature, &mut signature_bytes)
        .map_err(|_| unauthorized("X-Croupier-Signature must be 64 hex digits"))?;
    let (parts, body) = request.into_parts();
    let limit = state.body_size_max_bytes();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::body_too_large(limit))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    // The path is signed with the body: a bet's and a win's bodies have the same shape, so a
    // signature over the body alone would let a captured bet be replayed as a win.
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    mac.update(target.as_bytes());
    mac.update(b"\n");
    mac.update(&body);
    mac.verify_slice(&signature_bytes)
        .map_err(|_| unauthorized("the signature does not match the request"))?;
    let caller = Caller::Provider {
        key_id: Arc::from(key_id.as_str()),
    };
    Ok((caller, Request::from_parts(parts, Body::from(body))))
}

fn header_text(headers: &HeaderMap, name: &'static str) -> Result<String, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| {
            unauthorized("signed provider calls need X-Croupier-Key and X-Croupier-Signature")
        })
}
