//! `GET /v1/tables/{table_id}/bet-socket`: a player's bets over one WebSocket. Each text frame
//! is a bet, the body `POST /v1/tables/{table_id}/bets` takes; each bet gets one answer frame,
//! `bet_accepted` (the HTTP answer's fields) or `bet_refused` (the HTTP status and error body),
//! naming the bet by its `bet_id`. The ledger, limits and codes are the HTTP route's
//! (`tables::place_bet`); only the transport differs.
//!
//! Why a socket as well as HTTP: a live table's players bet many times a minute, and over HTTP
//! each bet pays for a request's headers, parsing, routing and middleware (about half of the
//! server's CPU samples per bet in a profile of `croupier bench live`). The socket pays for
//! the handshake once; measured, the server spends about 30% less CPU per bet (README).
//! It runs on the request threads, not the live push's, because a bet is request work: it
//! must not wait behind a fan-out to thousands of screens.
//!
//! What the handshake proved is checked again per bet where it can change: the session must
//! still be open (a logout or expiry refuses the bet and closes the socket), and each bet
//! takes from the player's rate limit as a request would.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use croupier_cluster::Consensus;
use croupier_core::players::{PlayerId, TokenHash};
use croupier_core::tables::TableId;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::live::{close, send};
use super::table_answers::{table_id_in, table_websocket};
use super::tables::{place_bet, BetIn, BetOut};
use crate::auth::{unauthorized, Caller, ClientAddr};
use crate::authenticate::session_open;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_json, ApiPath};
use crate::state::AppState;
use crate::wire::{IdIn, IdOut};

/// The subprotocol the server speaks (browsers offer it next to their `bearer.` token).
pub const BET_PROTOCOL: &str = "croupier.bets.v1";
/// Bets of one socket being placed at once; past it the socket is not read until one is
/// answered, so a client that floods waits on its own TCP window, not on the server's memory.
const BETS_IN_FLIGHT_MAX: usize = 16;
/// Buffers: tungstenite's default is 128 KiB each way, and it zeroes its read buffer before
/// every read (at 4 KiB that was 2.4% of the server's CPU under `bench live`). A bet is a few
/// hundred bytes; a larger one (up to `body_size_max_bytes`) just takes more reads.
const READ_BUFFER_BYTES: usize = 1 << 10;
const WRITE_BUFFER_BYTES: usize = 1 << 10;

/// WebSocket close codes (RFC 6455 §7.4.1).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

/// Opens a player's betting socket on one table. Each text frame is a bet (the JSON body of
/// `POST /v1/tables/{table_id}/bets`); each bet is answered by one text frame:
/// `{"type":"bet_accepted","bet_id","round_id","stake","balance"}` or
/// `{"type":"bet_refused","bet_id","status","error","message"[,"balance"]}` with the status
/// and error code the HTTP route answers. Answers come as bets finish, which is not always the
/// order they were sent in; `bet_id` pairs them.
#[utoipa::path(
    get, path = crate::paths::ROUTE_TABLE_BET_SOCKET, tag = "tables",
    params(("table_id" = crate::schema::TableId, Path)),
    security(("player_session" = [])),
    responses(
        (status = 101, description = "WebSocket: bets in, one answer per bet out"),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized: a player session is required", body = ErrorBody),
        (status = 404, description = "table_not_found", body = ErrorBody),
        (status = 426, description = "upgrade_required: not a WebSocket handshake", body = ErrorBody),
    )
)]
pub async fn bet_socket<C: Consensus>(
    State(state): State<AppState<C>>,
    Extension(caller): Extension<Caller>,
    address: Option<Extension<ClientAddr>>,
    path: ApiPath,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let table_id = table_id_in(&path)?;
    let Caller::Player {
        player_id,
        token_hash,
    } = caller
    else {
        return Err(unauthorized("a player session is required"));
    };
    let upgrade = table_websocket(&state, table_id, upgrade, "the bet socket").await?;
    let bettor = Bettor {
        state: state.clone(),
        player_id,
        token_hash,
        address: address.map(|Extension(ClientAddr(address))| address),
        table_id,
    };
    Ok(upgrade
        .protocols([BET_PROTOCOL])
        .max_message_size(state.body_size_max_bytes())
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(socket, bettor)))
}

/// Who bets on the socket, and where.
struct Bettor<C: Consensus> {
    state: AppState<C>,
    player_id: PlayerId,
    token_hash: TokenHash,
    address: Option<std::net::IpAddr>,
    table_id: TableId,
}

/// One bet's answer frame, and whether the socket ends after it.
struct Answer {
    text: String,
    session_ended: bool,
}

async fn serve<C: Consensus>(mut socket: WebSocket, bettor: Bettor<C>) {
    let stopping = bettor.state.clone();
    let end = tokio::select! {
        end = answer_bets(&mut socket, &bettor) => end,
        () = stopping.stopping() => Some((CLOSE_GOING_AWAY, "the server is stopping")),
    };
    if let Some((code, reason)) = end {
        close(&mut socket, code, reason).await;
    }
}

/// Reads bets and writes their answers until the client leaves; the close to send, if any.
async fn answer_bets<C: Consensus>(
    socket: &mut WebSocket,
    bettor: &Bettor<C>,
) -> Option<(u16, &'static str)> {
    let mut placing = FuturesUnordered::new();
    loop {
        tokio::select! {
            incoming = socket.recv(), if placing.len() < BETS_IN_FLIGHT_MAX => match incoming {
                Some(Ok(Message::Text(text))) => placing.push(bettor.answer(text)),
                Some(Ok(Message::Binary(_))) => {
                    let refused = refusal(None, &ApiError::malformed_json(
                        "a bet is a text frame of JSON",
                    ));
                    if send(socket, Message::Text(refused.into())).await.is_err() {
                        return None;
                    }
                }
                // Pings are answered by the socket itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            },
            Some(answer) = placing.next(), if !placing.is_empty() => {
                if send(socket, Message::Text(answer.text.into())).await.is_err() {
                    return None;
                }
                if answer.session_ended {
                    return Some((CLOSE_POLICY, "the session ended"));
                }
            }
        }
    }
}

impl<C: Consensus> Bettor<C> {
    /// The caller the handshake authenticated, for the per-bet rate limit.
    fn caller(&self) -> Caller {
        Caller::Player {
            player_id: self.player_id,
            token_hash: self.token_hash,
        }
    }

    async fn answer(&self, text: Utf8Bytes) -> Answer {
        match self.place(text.as_bytes()).await {
            Ok(out) => Answer {
                text: accepted(&out),
                session_ended: false,
            },
            Err((bet_id, error)) => Answer {
                session_ended: error.status == StatusCode::UNAUTHORIZED,
                text: refusal(bet_id, &error),
            },
        }
    }

    /// The bet in `frame`, placed as the HTTP route places it; a refusal names the bet when
    /// the frame said which.
    async fn place(&self, frame: &[u8]) -> Result<BetOut, (Option<u128>, ApiError)> {
        let request: BetIn = parse_json(frame).map_err(|error| (bet_id_of(frame), error))?;
        let bet_id = Some(request.bet_id());
        let state = &self.state;
        state
            .auth()
            .limits
            .check(&self.caller(), self.address)
            .map_err(|error| (bet_id, error))?;
        if !session_open(state, self.token_hash)
            .await
            .map_err(|error| (bet_id, error))?
        {
            let error = unauthorized("the session is unknown, expired or logged out");
            return Err((bet_id, error));
        }
        place_bet(state, self.table_id, self.player_id, request)
            .await
            .map_err(|error| (bet_id, error))
    }
}

/// The `bet_id` of a frame that is not a valid bet, when it has a readable one.
fn bet_id_of(frame: &[u8]) -> Option<u128> {
    #[derive(Deserialize)]
    struct Named {
        bet_id: IdIn,
    }
    serde_json::from_slice::<Named>(frame)
        .ok()
        .map(|named| named.bet_id.0)
}

#[derive(Serialize)]
struct Accepted<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    bet: &'a BetOut,
}

fn accepted(out: &BetOut) -> String {
    let answer = Accepted {
        kind: "bet_accepted",
        bet: out,
    };
    to_json(&answer)
}

#[derive(Serialize)]
struct Refused {
    #[serde(rename = "type")]
    kind: &'static str,
    bet_id: Option<IdOut>,
    status: u16,
    #[serde(flatten)]
    body: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_s: Option<u32>,
}

fn refusal(bet_id: Option<u128>, error: &ApiError) -> String {
    let answer = Refused {
        kind: "bet_refused",
        bet_id: bet_id.map(IdOut),
        status: error.status.as_u16(),
        body: error.body(),
        retry_after_s: error.retry_after_s.map(|seconds| seconds.get()),
    };
    to_json(&answer)
}

/// Our own answers always serialize; were one ever not to, the client still gets JSON.
fn to_json<T: Serialize>(answer: &T) -> String {
    serde_json::to_string(answer).unwrap_or_else(|error| {
        tracing::error!(%error, "bet answer serialization failed");
        r#"{"type":"bet_refused","bet_id":null,"status":500,"error":"internal","message":"answer serialization failed"}"#.to_owned()
    })
}
