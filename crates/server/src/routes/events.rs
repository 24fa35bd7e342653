//! The committed event feed over HTTP: a page (`GET /v1/events?after=P&limit=N`) and a
//! Server-Sent Events stream (`GET /v1/events/stream?after=P`, or the `Last-Event-ID` header
//! a reconnecting browser sends) that resumes from any retained position without gaps or
//! duplicates: every event carries its position as the SSE id.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use croupier_cluster::{CommittedEvent, Consensus, EventPage};
use croupier_core::history::{HistoryRecord, StoredTransfer, WalletRecord};
use croupier_core::{WalletEntry, WalletOutcome};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Allowed;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::state::AppState;
use crate::wire::{AccountOut, IdOut, LedgerOut, TransferOut};

/// Default and largest page.
const EVENTS_LIMIT_DEFAULT: usize = 100;
const EVENTS_LIMIT_MAX: usize = 10_000;
/// Events read per step of a stream: bounded memory per connection, whatever the backlog.
const STREAM_PAGE_EVENTS: usize = 500;
/// A comment line this often keeps proxies from closing an idle stream.
const STREAM_KEEP_ALIVE_S: u64 = 15;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Position to start after (decimal string); 0 or absent: from the oldest retained event.
    #[param(value_type = Option<crate::schema::EventPosition>)]
    pub after: Option<String>,
    /// 1 to 10000, default 100.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Position to start after (decimal string); 0 or absent: from the oldest retained event.
    #[param(value_type = Option<crate::schema::EventPosition>)]
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsOut {
    pub events: Vec<EventOut>,
    /// Position to pass as `after` for the next page (the last event's; `after` if none).
    #[schema(value_type = crate::schema::EventPosition, example = "4294967296")]
    pub next: String,
    /// True when `after` was older than the oldest retained event: some events were skipped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missed: bool,
}

/// One committed event: position, ledger time, type and the object it concerns.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    #[schema(value_type = crate::schema::EventPosition, example = "4294967296")]
    pub position: String,
    /// Ledger time, nanoseconds since the Unix epoch.
    pub timestamp: u64,
    /// account_created, transfer_posted, transfer_pending, pending_posted, pending_voided,
    /// pending_expired, wallet_bet, wallet_win, wallet_rollback, wallet_tombstone,
    /// operator_action, round_opened, bet_placed, round_closed, round_drawn, bet_settled,
    /// round_settled, round_voided, deposit_updated, withdrawal_updated.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub body: EventBody,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventBody {
    Account(AccountEventOut),
    Transfer(TransferEventOut),
    Wallet(WalletEventOut),
    Operator(crate::routes::audit::OperatorActionOut),
    Table(crate::routes::table_events::TableEventOut),
    Payment(crate::wire::PaymentEventOut),
}

/// An account as created (its timestamp is the event's).
#[derive(Debug, Serialize)]
pub struct AccountEventOut {
    pub id: IdOut,
    pub ledger: LedgerOut,
    pub kind: &'static str,
    pub flags: Vec<&'static str>,
}

/// A transfer (its timestamp is the event's).
#[derive(Debug, Serialize)]
pub struct TransferEventOut {
    pub id: IdOut,
    pub debit_account_id: IdOut,
    pub credit_account_id: IdOut,
    pub amount: u64,
    pub ledger: LedgerOut,
    pub flags: Vec<&'static str>,
    pub pending_id: Option<IdOut>,
    pub timeout_s: u32,
}

#[derive(Debug, Serialize)]
pub struct WalletEventOut {
    pub transaction_id: String,
    pub player_id: IdOut,
    pub round_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_transaction_id: Option<String>,
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<IdOut>,
}

impl EventOut {
    /// The event as the API shows it; None for a record the feed never publishes (an
    /// archived payment or case: `HistoryRecord::is_event`), which the event log cannot hold.
    fn of(event: &CommittedEvent) -> Option<EventOut> {
        let body = match &event.record {
            HistoryRecord::AccountCreated(account) => EventBody::Account(account_out(account)),
            HistoryRecord::Transfer(stored) => EventBody::Transfer(transfer_out(stored)),
            HistoryRecord::Wallet(record) => EventBody::Wallet(wallet_out(record)),
            HistoryRecord::OperatorAction(action) => {
                let mut out = crate::routes::audit::OperatorActionOut::from(action);
                out.timestamp = None; // the event's own
                EventBody::Operator(out)
            }
            HistoryRecord::Table(table) => {
                EventBody::Table(crate::routes::table_events::table_event_out(table))
            }
            HistoryRecord::Payment(payment) => EventBody::Payment(payment.into()),
            HistoryRecord::PaymentArchived(_) | HistoryRecord::CaseArchived(_) => return None,
        };
        Some(EventOut {
            position: event.position.to_string(),
            timestamp: event.timestamp_ns,
            event_type: event.record.event_type(),
            body,
        })
    }
}

fn account_out(account: &croupier_core::Account) -> AccountEventOut {
    let out = AccountOut::from(account);
    AccountEventOut {
        id: out.id,
        ledger: out.ledger,
        kind: out.kind,
        flags: out.flags,
    }
}

fn transfer_out(stored: &StoredTransfer) -> TransferEventOut {
    let out = TransferOut::from(&stored.transfer);
    TransferEventOut {
        id: out.id,
        debit_account_id: out.debit_account_id,
        credit_account_id: out.credit_account_id,
        amount: out.amount,
        ledger: out.ledger,
        flags: out.flags,
        pending_id: out.pending_id,
        timeout_s: out.timeout_s,
    }
}

fn wallet_out(record: &WalletRecord) -> WalletEventOut {
    let outcome = record.entry.outcome();
    let (balance, transfer_id) = match outcome {
        WalletOutcome::Ok {
            balance,
            transfer_id,
        } => (Some(balance), transfer_id.map(IdOut)),
        WalletOutcome::InsufficientFunds { balance } => (Some(balance), None),
        _ => (None, None),
    };
    let mut out = WalletEventOut {
        transaction_id: record.key.clone(),
        player_id: IdOut(record.entry.player_id()),
        round_id: String::new(),
        amount: None,
        ledger: None,
        rolled_back_transaction_id: None,
        result: outcome.code(),
        balance,
        transfer_id,
    };
    match &record.entry {
        WalletEntry::Bet { request, .. } => {
            (out.round_id, out.amount) = (request.round_id.clone(), Some(request.amount));
            out.ledger = Some(LedgerOut(request.ledger));
        }
        WalletEntry::Win { request, .. } => {
            (out.round_id, out.amount) = (request.round_id.clone(), Some(request.amount));
            out.ledger = Some(LedgerOut(request.ledger));
        }
        WalletEntry::Rollback { request, .. } => {
            out.round_id = request.round_id.clone();
            out.rolled_back_transaction_id = Some(request.rolled_back_transaction_id.clone());
        }
        WalletEntry::Tombstone {
            round_id,
            rollback_transaction_id,
            ..
        } => {
            out.round_id = round_id.clone();
            out.rolled_back_transaction_id = Some(rollback_transaction_id.clone());
        }
    }
    out
}

/// Decimal digits (leading zeros allowed, as for ids), at most u64::MAX.
fn parse_position(text: &str, what: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::invalid_query(format!(
            "{what} must be a decimal event position (0 to 18446744073709551615)"
        ))
    };
    let position = crate::wire::parse_decimal_u128(text.as_bytes()).ok_or_else(bad)?;
    u64::try_from(position).map_err(|_| bad())
}

fn page_out(page: &EventPage) -> EventsOut {
    EventsOut {
        events: page.events.iter().filter_map(EventOut::of).collect(),
        next: page.next.to_string(),
        missed: page.missed,
    }
}

/// Committed events after a position, oldest first.
#[utoipa::path(
    get, path = crate::paths::ROUTE_EVENTS, tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, body = EventsOut),
        (status = 400, description = "invalid_query: bad after or limit", body = ErrorBody),
        (status = 503, description = "storage_unavailable", body = ErrorBody),
    )
)]
pub async fn list<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let after = match &query.after {
        Some(text) => parse_position(text, "after")?,
        None => 0,
    };
    let limit = query.limit.unwrap_or(EVENTS_LIMIT_DEFAULT as u64);
    if !(1..=EVENTS_LIMIT_MAX as u64).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be from 1 to {EVENTS_LIMIT_MAX}"
        )));
    }
    let page = state.events_after(after, limit as usize).await?;
    Ok(json_response(StatusCode::OK, &page_out(&page)))
}

/// The same events as a Server-Sent Events stream that never ends: each SSE message has the
/// event's position as its id and the event (as in `GET /v1/events`) as its data.
#[utoipa::path(
    get, path = crate::paths::ROUTE_EVENTS_STREAM, tag = "events",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<crate::schema::EventPosition>, Header, nullable = false, description = "The last event a reconnecting client saw; wins over `after`"),
    ),
    responses(
        (status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 400, description = "invalid_query: bad after or Last-Event-ID", body = ErrorBody),
    )
)]
pub async fn stream<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
    headers: HeaderMap,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| value.to_str().unwrap_or("?").to_owned());
    // Both are checked, whichever wins: a bad `after` is refused even beside a Last-Event-ID.
    let after = query
        .after
        .as_deref()
        .map(|text| parse_position(text, "after"))
        .transpose()?;
    let last_event_id = last_event_id
        .map(|id| parse_position(&id, "Last-Event-ID"))
        .transpose()?;
    let after = last_event_id.or(after).unwrap_or(0);
    let events = event_stream(state, after);
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(STREAM_KEEP_ALIVE_S));
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// Pages through the feed from `after`, waiting at the end for new events. A storage error
/// ends the stream with an `error` message (the client reconnects with its last id).
fn event_stream<C: Consensus>(
    state: AppState<C>,
    after: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = (state, after, Vec::<Event>::new().into_iter(), false);
    stream::unfold(start, |(state, after, mut ready, done)| async move {
        loop {
            if let Some(event) = ready.next() {
                return Some((Ok(event), (state, after, ready, done)));
            }
            // A stopping server ends its streams (the client resumes from its last id).
            if done || state.is_stopping() {
                return None;
            }
            match state.events_after(after, STREAM_PAGE_EVENTS).await {
                Ok(page) if page.events.is_empty() => {
                    if !state.wait_for_event_after(after).await {
                        return None;
                    }
                }
                Ok(page) => {
                    let events: Vec<Event> = page.events.iter().filter_map(sse_event).collect();
                    return first_of_page(events, state, page.next);
                }
                Err(error) => {
                    let event = Event::default().event("error").data(error.message);
                    return Some((Ok(event), (state, after, Vec::new().into_iter(), true)));
                }
            }
        }
    })
}

/// A stream's state between two events: where it resumes, the rest of the page read, done.
type StreamState<C> = (AppState<C>, u64, std::vec::IntoIter<Event>, bool);

/// The first event of a page, with the rest queued behind it.
fn first_of_page<C>(
    events: Vec<Event>,
    state: AppState<C>,
    next: u64,
) -> Option<(Result<Event, Infallible>, StreamState<C>)> {
    let mut ready = events.into_iter();
    let first = ready.next()?;
    Some((Ok(first), (state, next, ready, false)))
}

fn sse_event(event: &CommittedEvent) -> Option<Event> {
    let data = serde_json::to_string(&EventOut::of(event)?).unwrap_or_else(|_| "{}".into());
    let sse = Event::default().id(event.position.to_string());
    Some(sse.event(event.record.event_type()).data(data))
}
