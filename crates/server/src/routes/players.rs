//! Players: registration (operators), login and logout (players), and a player's own view.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::compliance::SeenIdentifiers;
use croupier_core::players::{
    check_username, NewPlayer, NewSession, PlayerId, PlayerOutcome, CURRENCIES_PER_PLAYER_MAX,
};
use croupier_core::{Command, CommandResult, LedgerCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::passwords::{self, Password, PASSWORD_LEN_MAX, PASSWORD_LEN_MIN};
use crate::auth::{
    unauthorized, Allowed, Caller, ClientAddr, OperatorOrOwnerRead, PlayerAdmin, PlayerAdminOrSelf,
    PlayerOnly,
};
use crate::compliance::identifiers;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::quote::input_prefix;
use crate::state::AppState;
use crate::wire::{parse_ledger, IdOut};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlayerIn {
    /// 3 to 64 characters of a-z, 0-9, _, ., -, @ (upper case is folded to lower case).
    #[schema(example = "alice", pattern = "^[A-Za-z0-9_.@-]{3,64}$")]
    username: String,
    /// 8 to 128 characters; stored only as an argon2id hash.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    password: String,
    /// One wallet per currency (ledger code), 1 to 16 of them.
    #[schema(schema_with = currencies_schema, example = json!(["EUR"]))]
    currencies: Vec<String>,
}

impl std::fmt::Debug for NewPlayerIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPlayerIn")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("currencies", &self.currencies)
            .finish()
    }
}

fn currencies_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema::ledger_string())
        .min_items(Some(1))
        .max_items(Some(CURRENCIES_PER_PLAYER_MAX))
        .unique_items(true)
        .build()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    #[schema(example = "alice")]
    username: String,
    #[schema(example = "correct horse battery")]
    password: String,
    /// The client's device id (a random token the app keeps), 1 to 256 printable ASCII
    /// characters with a letter or digit: its digest
    /// feeds the AML scoring's shared-device facts.
    #[serde(default)]
    #[schema(
        example = "5f0c2a9e-device",
        min_length = 1,
        max_length = 256,
        pattern = "^[ -~]*[A-Za-z0-9][ -~]*$"
    )]
    device_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlayerCreatedOut {
    #[schema(example = "340282366841710301022897246133062467584")]
    player_id: IdOut,
}

#[derive(Serialize, ToSchema)]
pub struct LoginOut {
    /// Bearer token for `Authorization: Bearer <token>`; shown once.
    token: String,
    player_id: IdOut,
    /// RFC 3339, UTC.
    #[schema(example = "2026-12-03T10:00:00Z")]
    expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlayerOut {
    player_id: IdOut,
    username: String,
    /// Available balance per currency.
    #[schema(schema_with = balances_schema)]
    balances: BTreeMap<String, u128>,
}

fn balances_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .property_names(Some(crate::schema::ledger_string()))
        .additional_properties(Some(crate::schema::uint128()))
        .build()
}

#[derive(Serialize, ToSchema)]
pub struct SessionsClosedOut {
    sessions_closed: u32,
}

fn username_in(text: &str) -> Result<String, ApiError> {
    let username = text.to_ascii_lowercase();
    check_username(&username).map_err(|error| {
        ApiError::invalid_field(
            None,
            "username",
            &format!("{error} (got {:?})", input_prefix(text)),
        )
    })?;
    Ok(username)
}

fn password_in(text: String) -> Result<Password, ApiError> {
    let length = text.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&length) {
        return Err(ApiError::invalid_field(
            None,
            "password",
            "must have 8 to 128 characters",
        ));
    }
    Ok(Password(text))
}

fn currencies_in(texts: &[String]) -> Result<Vec<LedgerCode>, ApiError> {
    let mut codes: Vec<LedgerCode> = Vec::with_capacity(texts.len());
    for text in texts {
        let code =
            parse_ledger(text).map_err(|e| ApiError::invalid_field(None, "currencies", &e))?;
        if codes.contains(&code) {
            return Err(ApiError::invalid_field(
                None,
                "currencies",
                "lists a currency twice",
            ));
        }
        codes.push(code);
    }
    if codes.is_empty() || codes.len() > CURRENCIES_PER_PLAYER_MAX {
        return Err(ApiError::invalid_field(
            None,
            "currencies",
            "must list 1 to 16 currencies",
        ));
    }
    Ok(codes)
}

/// Argon2 takes tens of milliseconds on purpose: off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::internal("password hashing failed"))
}

/// Register a player with a wallet per currency (operators: admin, support).
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYERS, tag = "players",
    request_body = NewPlayerIn,
    security(("operator_key" = [])),
    responses(
        (status = 201, body = PlayerCreatedOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 409, description = "username_taken", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn create<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    ApiJson(request): ApiJson<NewPlayerIn>,
) -> Result<Response, ApiError> {
    let username = username_in(&request.username)?;
    let password = password_in(request.password)?;
    let currencies = currencies_in(&request.currencies)?;
    let password_hash = blocking(move || passwords::hash_password(&password))
        .await?
        .map_err(entropy_unavailable)?;
    let player = NewPlayer {
        username,
        password_hash,
        currencies,
    };
    match state
        .commit(caller.attribute(Command::CreatePlayer(player)))
        .await?
    {
        CommandResult::Player(PlayerOutcome::PlayerCreated { player_id }) => {
            let body = PlayerCreatedOut {
                player_id: IdOut(player_id),
            };
            Ok(json_response(StatusCode::CREATED, &body))
        }
        CommandResult::Player(PlayerOutcome::UsernameTaken) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "username_taken",
            "a player with this username exists",
        )),
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

/// Log in: a session token for `Authorization: Bearer`. Attempts are rate limited per
/// username and per client address.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYERS_LOGIN, tag = "players",
    request_body = LoginIn,
    responses(
        (status = 200, body = LoginOut),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After says when to retry)", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn login<C: Consensus>(
    State(state): State<AppState<C>>,
    address: Option<axum::Extension<ClientAddr>>,
    ApiJson(request): ApiJson<LoginIn>,
) -> Result<Response, ApiError> {
    let username = request.username.to_ascii_lowercase();
    let device = match request.device_id.as_deref() {
        None => None,
        Some(id) if identifiers::acceptable_token(id) => Some(identifiers::device(id)),
        Some(_) => {
            return Err(ApiError::invalid_field(
                None,
                "device_id",
                "must be 1 to 256 printable ASCII characters with a letter or digit",
            ))
        }
    };
    let address = address.map(|axum::Extension(ClientAddr(ip))| ip);
    state.auth().limits.check_login(&username, address)?;
    let lookup = username.clone();
    let found = state
        .read(move |view| {
            let player = view.ledger().player_by_username(&lookup)?;
            Some((player.id, player.password_hash.clone()))
        })
        .await?;
    let password = Password(request.password);
    let stored = found.as_ref().map(|(_, hash)| hash.clone());
    let matches =
        blocking(move || passwords::verify_password(&password, stored.as_deref())).await?;
    let Some((player_id, _)) = found.filter(|_| matches) else {
        let mut error = unauthorized("unknown username or wrong password");
        error.code = "invalid_credentials";
        return Err(error);
    };
    let (token, token_hash) = passwords::new_session_token().map_err(entropy_unavailable)?;
    let session = NewSession {
        token_hash,
        player_id,
        ttl_s: state.auth().session_ttl_s,
    };
    match state.commit(Command::OpenSession(session)).await? {
        CommandResult::Player(PlayerOutcome::SessionOpened { expires_at_ns }) => {
            if let Some(device) = device {
                let seen = SeenIdentifiers {
                    device: Some(device),
                    ..SeenIdentifiers::default()
                };
                // An observation for the AML scoring: the login stands without it.
                if let Err(error) = state.commit(identifiers::observe(player_id, seen)).await {
                    tracing::warn!(code = error.code, "the login's device was not recorded");
                }
            }
            if let Some(register) = &state.compliance().register {
                // Asked after the answer, so a slow register never delays a login; a match
                // self-excludes the player a moment later.
                let consensus = state.consensus().clone();
                crate::compliance::register::check_later(consensus, register.clone(), player_id);
            }
            let expires = UNIX_EPOCH + Duration::from_nanos(expires_at_ns);
            let body = LoginOut {
                token,
                player_id: IdOut(player_id),
                expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

/// End the caller's session.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYERS_LOGOUT, tag = "players",
    security(("player_session" = [])),
    responses(
        (status = 200, body = SessionsClosedOut),
        (status = 401, description = "unauthorized: no valid session", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn logout<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerOnly>,
) -> Result<Response, ApiError> {
    let Caller::Player { token_hash, .. } = caller else {
        return Err(unauthorized("a player session is required"));
    };
    let count = match state.commit(Command::CloseSession(token_hash)).await? {
        CommandResult::Player(PlayerOutcome::SessionsClosed { count }) => count,
        // Logged out twice at once: the other request closed it.
        CommandResult::Player(PlayerOutcome::SessionNotFound) => 0,
        _ => {
            return Err(ApiError::internal(
                "the ledger answered in an unexpected shape",
            ))
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &SessionsClosedOut {
            sessions_closed: count,
        },
    ))
}

/// The caller's own player, with a balance per currency.
#[utoipa::path(
    get, path = crate::paths::ROUTE_PLAYERS_ME, tag = "players",
    security(("player_session" = [])),
    responses(
        (status = 200, body = PlayerOut),
        (status = 401, description = "unauthorized: no valid session", body = ErrorBody),
    )
)]
pub async fn me<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerOnly>,
) -> Result<Response, ApiError> {
    let player_id = caller
        .player()
        .ok_or_else(|| unauthorized("a player session is required"))?;
    player_view(&state, player_id).await
}

/// A player with a balance per currency (operators; a player sees only itself).
#[utoipa::path(
    get, path = crate::paths::ROUTE_PLAYER, tag = "players",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = PlayerOut),
        (status = 400, description = "invalid_path: not a decimal id from 1 to 2^128-1", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
    )
)]
pub async fn get<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = path.id("player id")?;
    if caller.player().is_some_and(|own| own != player_id) {
        return Err(player_not_found());
    }
    player_view(&state, player_id).await
}

/// Close every session of a player (support or admin; a player may close its own).
#[utoipa::path(
    delete, path = crate::paths::ROUTE_PLAYER_SESSIONS, tag = "players",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = SessionsClosedOut),
        (status = 400, description = "invalid_path: not a decimal id from 1 to 2^128-1", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn revoke_sessions<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = path.id("player id")?;
    if caller.player().is_some_and(|own| own != player_id) {
        return Err(player_not_found());
    }
    let command = caller.attribute(Command::RevokeSessions(player_id));
    match state.commit(command).await? {
        CommandResult::Player(PlayerOutcome::SessionsClosed { count }) => Ok(json_response(
            StatusCode::OK,
            &SessionsClosedOut {
                sessions_closed: count,
            },
        )),
        CommandResult::Player(PlayerOutcome::PlayerNotFound) => Err(player_not_found()),
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

fn entropy_unavailable(error: passwords::EntropyUnavailable) -> ApiError {
    tracing::error!(%error, "cannot salt a password or make a session token");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "entropy_unavailable",
        "the node cannot draw random numbers right now; retry on another node",
    )
}

fn player_not_found() -> ApiError {
    ApiError::not_found("player_not_found", "no such player")
}

async fn player_view<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
) -> Result<Response, ApiError> {
    let found = state
        .read(move |view| {
            let player = view.ledger().player(player_id)?;
            let balances = player
                .wallets
                .iter()
                .filter_map(|&(code, account)| {
                    let (_, balance) = view.player_balance(account)?;
                    Some((code.as_string(), balance))
                })
                .collect();
            Some(PlayerOut {
                player_id: IdOut(player.id),
                username: player.username.clone(),
                balances,
            })
        })
        .await?;
    match found {
        Some(body) => Ok(json_response(StatusCode::OK, &body)),
        None => Err(player_not_found()),
    }
}
