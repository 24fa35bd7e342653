//! The HTTP edge: the accept loop and the limits every connection and request lives under.
//!
//! hyper's HTTP/1 connection closes a connection whose request head has not arrived within
//! `header_read_timeout_ms` (slowloris, idle sockets); tower layers bound the time and the
//! number of requests being handled; a semaphore bounds open connections, and a connection past
//! it gets a JSON 503 and is closed instead of holding a file descriptor until the process runs
//! out of them (about 20,000 idle sockets used to lock every client out). Errors hyper answers
//! by itself get our JSON body (`crate::protocol_errors`).

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tower::{ServiceBuilder, ServiceExt};

use crate::error::ApiError;
use crate::protocol_errors::JsonProtocolErrors;

/// Limits of the HTTP listener; see docs/api.md "Limits".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLimits {
    /// How long a connection may wait for a complete request head, counted from the moment it
    /// starts waiting: right after accept, and again after each answer on a kept-alive
    /// connection (hyper measures the idle wait and the head as one span, so this is also the
    /// keep-alive idle timeout). Past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// How long a request may take from its head to its answer (body read, commit and all);
    /// past it the answer is 503 `deadline_exceeded`. A write cut off this way may still be
    /// applied: retrying with the same ids is safe.
    pub request_deadline_ms: u64,
    /// Open connections; one more is answered 503 `overloaded` and closed. Lowered at start to
    /// what the process's file-descriptor limit allows.
    pub connections_max: usize,
    /// Requests being handled at once (an event stream counts until its first byte); one more
    /// is answered 503 `overloaded` at once.
    pub requests_in_flight_max: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_read_timeout_ms: 10_000,
            request_deadline_ms: 30_000,
            connections_max: 10_000,
            requests_in_flight_max: 1_024,
        }
    }
}

/// File descriptors kept for the node itself (log, history segments, indexes, peers) when
/// `connections_max` is fitted to the process's limit.
const NODE_FDS_RESERVED: u64 = 512;

/// Connections past `connections_max` being answered 503 at once; beyond it they are dropped
/// without an answer (a flood must not turn the refusals themselves into the resource hog).
const REFUSALS_IN_FLIGHT_MAX: usize = 256;

/// How long a refused connection may take to send the request head its 503 answers.
const REFUSAL_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after an accept error that is not about one connection (EMFILE, ENOBUFS): retrying at
/// once would spin and flood the log.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The deadline and load-shedding layers every route runs under. Their errors become our JSON
/// 503s; the concurrency semaphore is shared by every route (a global limit).
pub(crate) fn request_limits<S>(router: Router<S>, limits: &EdgeLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let deadline = Duration::from_millis(limits.request_deadline_ms);
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |error| async move {
                refusal_for(error, deadline)
            }))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                limits.requests_in_flight_max,
            ))
            .timeout(deadline),
    )
}

fn refusal_for(error: tower::BoxError, deadline: Duration) -> ApiError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::overloaded_because("too many requests are being handled; retry shortly")
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::deadline_exceeded(deadline)
    } else {
        tracing::error!(%error, "request layer failed");
        ApiError::internal("the request could not be handled")
    }
}

/// Fits `connections_max` under the file-descriptor limit: raises the soft limit towards the
/// hard one if needed (as Go's runtime does at start), and lowers the cap if that is not enough.
pub(crate) fn fit_connections_to_fd_limit(connections_max: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let wanted = connections_max as u64 + NODE_FDS_RESERVED;
    let mut limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft < wanted {
        let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
        limit.current = Some(raised);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(soft);
        }
    }
    let available = limit.current.unwrap_or(u64::MAX);
    let fitted = available.saturating_sub(NODE_FDS_RESERVED).max(1);
    if fitted < connections_max as u64 {
        tracing::warn!(
            connections_max,
            fitted,
            fd_limit = available,
            "the file-descriptor limit is too low for connections_max; lowered"
        );
        return fitted as usize;
    }
    connections_max
}

/// Accepts and serves connections until `stop` fires, then lets open connections finish their
/// request in flight (hyper's graceful shutdown) and returns. Dropping the future (the server
/// task aborted after the drain timeout) closes every connection.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: EdgeLimits,
    mut stop: oneshot::Receiver<()>,
) {
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    // Not hyper-util's GracefulShutdown: it cannot watch a connection that may be upgraded.
    let (shutdown, shutdown_requested) = tokio::sync::watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        // Finished connections leave their (empty) results in the set until joined.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                pause_after_accept_error(error).await;
                continue;
            }
        };
        // Answers are small single writes; don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refuse(stream, &refusals, &mut tasks);
            continue;
        };
        // Rate limits and logs need the client's address.
        let client = crate::auth::ClientAddr(peer.ip());
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(client);
                request
            },
        ));
        let io = TokioIo::new(JsonProtocolErrors::new(stream));
        // With upgrades: `GET /v1/live` turns its connection into a WebSocket.
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut shutdown_requested = shutdown_requested.clone();
        tasks.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shutdown_requested.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    shutdown.send_replace(true);
    while tasks.join_next().await.is_some() {}
}

async fn pause_after_accept_error(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return; // that one connection is gone; the next accept is fine
    }
    tracing::warn!(%error, "cannot accept connections; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Answers a connection past `connections_max` with a JSON 503 and closes it.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return; // dropped: closes the socket
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_HEADER_READ_TIMEOUT)
        .keep_alive(false);
    let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, Infallible>(too_many_connections())
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tasks.spawn(async move {
        let _ = connection.await;
        drop(permit);
    });
}

fn too_many_connections() -> Response {
    let mut response = ApiError::overloaded_because(
        "too many open connections; retry shortly or reuse a connection",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    debug_assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    response
}
