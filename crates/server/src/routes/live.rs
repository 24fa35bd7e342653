//! `GET /v1/live?table=ID[&after=SEQ]`: a table's live messages over a WebSocket (see
//! `crate::live` for what is sent and how it is bounded). Anyone may watch a table; a client
//! that identifies a player (an `Authorization` header, or from a browser the subprotocol
//! `bearer.<session token>` next to `croupier.live.v1`) also receives that player's own results.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use croupier_cluster::Consensus;
use croupier_core::players::PlayerId;
use croupier_core::tables::{TableId, TABLE_ID_MAX};
use futures_util::SinkExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::table_answers::table_websocket;
use crate::auth::Caller;
use crate::compliance::reality;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::live::{SubscribeError, Subscription};
use crate::state::AppState;

/// The subprotocol the server speaks (offered by browsers next to their `bearer.` token).
pub const LIVE_PROTOCOL: &str = "croupier.live.v1";
/// A client that does not read its messages for this long is closed.
const SEND_TIMEOUT_S: u64 = 10;
/// Pings keep proxies from closing a quiet connection between rounds.
const PING_INTERVAL_S: u64 = 20;
/// Largest message a client may send (it has nothing to say but control frames).
const CLIENT_MESSAGE_BYTES_MAX: usize = 4 << 10;
/// Per-connection buffers: tungstenite's default is 128 KiB each way, zeroed as it reads,
/// which at 10,000 screens cost more CPU than the messages (and 2.5 GiB). The write buffer
/// holds the messages queued together until one flush writes them (see `send_queued`); it is
/// written out early once it passes this, so it never holds much more.
const READ_BUFFER_BYTES: usize = 4 << 10;
const WRITE_BUFFER_BYTES: usize = 8 << 10;
/// Most queued messages gathered into one write.
const MESSAGES_PER_WRITE_MAX: usize = 32;
/// A paced message waits for its turn only while fewer than this many wait behind it.
const PACED_BEHIND_MAX: usize = 4;

/// How often a player's screen looks again at a reality check that is not due (an interval
/// set meanwhile is seen within this), and at one that is due and not yet acknowledged.
const REALITY_IDLE_POLL_S: u64 = 30;
const REALITY_DUE_POLL_S: u64 = 5;

/// WebSocket close codes (RFC 6455 §7.4.1).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// The table to watch.
    #[param(value_type = crate::schema::TableId)]
    pub table: String,
    /// The last `seq` the client saw: every message after it is sent first (while retained).
    #[param(minimum = 0)]
    pub after: Option<u64>,
}

/// A table's live messages as JSON text frames, each with the table's `seq` and a `type`:
/// `round_opened`, `bets_total`, `round_closed`, `round_drawn`, `round_settled`,
/// `round_voided`. Answers 101 Switching Protocols to a WebSocket handshake.
#[utoipa::path(
    get, path = crate::paths::ROUTE_LIVE, tag = "tables",
    params(LiveQuery),
    // Anyone may watch; a player's session (header or `bearer.` subprotocol) adds their results.
    security((), ("player_session" = [])),
    responses(
        (status = 101, description = "WebSocket of the table's live messages"),
        (status = 400, description = "invalid_query: bad table or after", body = ErrorBody),
        (status = 401, description = "unauthorized: a bearer token that is not valid", body = ErrorBody),
        (status = 404, description = "table_not_found", body = ErrorBody),
        (status = 426, description = "upgrade_required: not a WebSocket handshake", body = ErrorBody),
        (status = 503, description = "overloaded: too many live connections on this node", body = ErrorBody),
    )
)]
pub async fn live<C: Consensus>(
    State(state): State<AppState<C>>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<LiveQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let table = table_in(&query.table)?;
    let upgrade = table_websocket(&state, table, upgrade, "GET /v1/live").await?;
    let hub = state.live_hub();
    hub.caught_up().await;
    let subscription = hub.subscribe(table, query.after, caller.player()).map_err(
        |SubscribeError::TooMany(_)| {
            ApiError::overloaded_because("too many live connections on this node")
        },
    )?;
    let stopping = state.clone();
    let reality = caller
        .player()
        .map(|player| RealityWatch::new(state.clone(), player));
    Ok(upgrade
        .protocols([LIVE_PROTOCOL])
        .max_message_size(CLIENT_MESSAGE_BYTES_MAX)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            // The connection lives on the live push's threads (see `live::threads`); nothing
            // on the request threads waits for it.
            drop(hub.spawn(connection(socket, subscription, reality, stopping)));
        }))
}

async fn connection<C: Consensus>(
    mut socket: WebSocket,
    mut subscription: Subscription,
    reality: Option<RealityWatch<C>>,
    stopping: AppState<C>,
) {
    let end = tokio::select! {
        end = serve(&mut socket, &mut subscription, reality) => end,
        () = stopping.stopping() => End::Stopping,
    };
    match end {
        End::Evicted => {
            close(
                &mut socket,
                CLOSE_POLICY,
                "too slow: the live queue is full",
            )
            .await
        }
        End::Stopping => close(&mut socket, CLOSE_GOING_AWAY, "the server is stopping").await,
        End::Gone => {}
    }
}

fn table_in(text: &str) -> Result<TableId, ApiError> {
    text.parse::<TableId>()
        .ok()
        .filter(|id| (1..=TABLE_ID_MAX).contains(id))
        .ok_or_else(|| ApiError::invalid_query("table must be an integer from 1 to 1048575"))
}

/// Why a connection ends.
enum End {
    /// The client left, or its socket failed.
    Gone,
    /// Too slow: the hub dropped it.
    Evicted,
    /// The server stops (the client reconnects, to this node later or to another).
    Stopping,
}

/// The replay, then live messages until the client leaves or falls behind.
async fn serve<C: Consensus>(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    reality: Option<RealityWatch<C>>,
) -> End {
    let replay = std::mem::take(&mut subscription.replay);
    // Fed into the write buffer, which goes out each time it fills and once at the end.
    let write_replay = async {
        for text in replay {
            socket.feed(Message::Text(text)).await?;
        }
        socket.flush().await
    };
    let timeout = Duration::from_secs(SEND_TIMEOUT_S);
    if !matches!(
        tokio::time::timeout(timeout, write_replay).await,
        Ok(Ok(()))
    ) {
        return End::Gone;
    }
    live_loop(socket, subscription, reality).await
}

/// A player's reality check, watched from their live connection: when one falls due, its
/// status (session time, net position) is pushed once, then again only for the next one.
struct RealityWatch<C: Consensus> {
    state: AppState<C>,
    player: PlayerId,
    next_poll: tokio::time::Instant,
    pushed_due_at_ns: Option<u64>,
}

impl<C: Consensus> RealityWatch<C> {
    fn new(state: AppState<C>, player: PlayerId) -> Self {
        RealityWatch {
            state,
            player,
            next_poll: tokio::time::Instant::now(),
            pushed_due_at_ns: None,
        }
    }

    /// Waits for the next look; answers the message to push, if a check fell due.
    async fn next_message(&mut self) -> Option<String> {
        tokio::time::sleep_until(self.next_poll).await;
        let player = self.player;
        let read = self.state.read_stale(move |view| {
            let ledger = view.ledger();
            let compliance = ledger.player_compliance(player)?;
            let now = reality::now_ns(ledger.compliance_now_ns());
            let (status, due_at) = reality::reality_check_out(player, compliance, now);
            Some((status, due_at, now))
        });
        let now = tokio::time::Instant::now();
        self.next_poll = now + Duration::from_secs(REALITY_IDLE_POLL_S);
        let (status, due_at, now_ns) = read.await.ok().flatten()?;
        let due_at = due_at?;
        if !status.due {
            let until_due = Duration::from_nanos(due_at.saturating_sub(now_ns));
            self.next_poll = now + until_due.min(Duration::from_secs(REALITY_IDLE_POLL_S));
            return None;
        }
        self.next_poll = now + Duration::from_secs(REALITY_DUE_POLL_S);
        if self.pushed_due_at_ns == Some(due_at) {
            return None;
        }
        self.pushed_due_at_ns = Some(due_at);
        Some(reality::live_message(&status))
    }
}

/// The next reality-check message, or never for a screen without a player.
async fn reality_message<C: Consensus>(watch: &mut Option<RealityWatch<C>>) -> Option<String> {
    match watch {
        Some(watch) => watch.next_message().await,
        None => std::future::pending().await,
    }
}

async fn live_loop<C: Consensus>(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    mut reality: Option<RealityWatch<C>>,
) -> End {
    let mut ping = tokio::time::interval(Duration::from_secs(PING_INTERVAL_S));
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            queued = subscription.queue.recv() => match queued {
                Some(queued) => {
                    // A screen with messages waiting behind this one writes at once: pacing
                    // spreads a burst, it must never let a queue grow toward eviction.
                    if queued.paced && subscription.queue.len() < PACED_BEHIND_MAX {
                        subscription.pace().await;
                    }
                    if send_queued(socket, subscription, queued.text).await.is_err() {
                        return End::Gone;
                    }
                    continue;
                }
                None if subscription.evicted() => return End::Evicted,
                None => return End::Gone,
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; text from the client is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Gone,
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
            pushed = reality_message(&mut reality) => match pushed {
                Some(text) => Message::Text(text.into()),
                None => continue,
            },
        };
        if send(socket, outgoing).await.is_err() {
            return End::Gone;
        }
    }
}

/// Writes `first` and the messages queued behind it in one flush. At a round change the
/// hub queues several messages at once (`round_settled`, then `round_opened`); each flush is a
/// socket write, and on every screen each write costs a segment and its acknowledgement, so
/// gathering them is what a fan-out to thousands of screens saves most on.
async fn send_queued(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    first: Utf8Bytes,
) -> Result<(), ()> {
    let mut bytes = first.len();
    let gather = async {
        socket.feed(Message::Text(first)).await?;
        for _ in 1..MESSAGES_PER_WRITE_MAX {
            let Ok(next) = subscription.queue.try_recv() else {
                break;
            };
            bytes += next.text.len();
            socket.feed(Message::Text(next.text)).await?;
        }
        socket.flush().await
    };
    let written = tokio::time::timeout(Duration::from_secs(SEND_TIMEOUT_S), gather).await;
    subscription.sent(bytes);
    match written {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends one message, or gives up on a client that has not read for `SEND_TIMEOUT_S` (the
/// live feed and the bet socket alike).
pub(super) async fn send(socket: &mut WebSocket, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(Duration::from_secs(SEND_TIMEOUT_S), socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

pub(super) async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = send(socket, Message::Close(Some(frame))).await;
}
