//! The calling side: one TCP connection per peer address, shared by every group and every
//! caller, with requests pipelined on it and answers matched by request id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::frame::{pump_frames, read_frame, Frame, Kind, RemoteError, ERROR, RESPONSE};
use super::handshake::{self, PeerSecret};
use super::net::{PeerNet, PeerStream, ReadHalf, TcpNet, WriteHalf};

/// Frames queued for a connection's writer before callers wait (each caller waits for its
/// answer anyway, so this is the number of requests in flight per peer).
const OUTGOING_FRAMES_MAX: usize = 256;
/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// A connection that received nothing for this long while requests waited is given up.
const SILENT_DEAD_MS: u64 = 1_000;

/// Why a call to a peer did not get an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The request never reached the peer (connection refused, connect timeout).
    #[error("peer {addr} is unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The request may have reached the peer but no answer came (timeout, connection lost).
    #[error("no answer from peer {addr}: {reason}")]
    NoAnswer { addr: String, reason: String },
    /// The peer answered with an error.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

type Answer = Result<Vec<u8>, CallError>;

/// Connections to peers, by address. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Peers {
    connections: Arc<Mutex<HashMap<String, Arc<Connection>>>>,
    /// Fault injection: connect to these addresses instead of the members' own (tests route
    /// each directed link through a proxy they can cut). Empty in production.
    routes: Arc<HashMap<String, String>>,
    /// Proved to every peer on connecting (`handshake`).
    secret: Arc<PeerSecret>,
    net: Arc<dyn PeerNet>,
}

impl Default for Peers {
    fn default() -> Self {
        Peers::new(HashMap::new(), PeerSecret::none(), Arc::new(TcpNet))
    }
}

impl Peers {
    pub(crate) fn new(
        routes: HashMap<String, String>,
        secret: PeerSecret,
        net: Arc<dyn PeerNet>,
    ) -> Peers {
        Peers {
            connections: Arc::default(),
            routes: Arc::new(routes),
            secret: Arc::new(secret),
            net,
        }
    }

    pub(crate) fn net(&self) -> &dyn PeerNet {
        self.net.as_ref()
    }

    pub(crate) fn secret(&self) -> &PeerSecret {
        &self.secret
    }

    /// The address to dial for a member's peer address.
    pub(crate) fn route<'a>(&'a self, addr: &'a str) -> &'a str {
        self.routes.get(addr).map_or(addr, String::as_str)
    }

    /// Sends one request and waits for its answer, at most `timeout`.
    pub(crate) async fn call(
        &self,
        addr: &str,
        group_id: u64,
        kind: Kind,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Answer {
        let connection = self.connection(addr).await?;
        let call = connection.call(group_id, kind, payload);
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => {
                connection.give_up_if_silent();
                Err(CallError::NoAnswer {
                    addr: addr.to_string(),
                    reason: format!("timed out after {} ms", timeout.as_millis()),
                })
            }
        }
    }

    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, CallError> {
        if let Some(connection) = self.lock().get(addr) {
            if !connection.is_closed() {
                return Ok(Arc::clone(connection));
            }
        }
        let connection =
            Arc::new(Connection::open(self.net(), self.route(addr), &self.secret).await?);
        self.lock()
            .insert(addr.to_string(), Arc::clone(&connection));
        Ok(connection)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens a connection to a peer and proves the cluster secret on it.
pub(crate) async fn connect(
    net: &dyn PeerNet,
    addr: &str,
    secret: &PeerSecret,
) -> Result<PeerStream, CallError> {
    let unreachable = |reason: String| CallError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let connect = net.connect(addr);
    let stream = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect)
        .await
        .map_err(|_| unreachable(format!("connect timed out after {CONNECT_TIMEOUT_MS} ms")))?
        .map_err(|e| unreachable(e.to_string()))?;
    let mut stream = stream;
    // Refused before any frame was sent: nothing can have reached the peer.
    handshake::as_caller(&mut stream, secret)
        .await
        .map_err(unreachable)?;
    Ok(stream)
}

struct Connection {
    addr: String,
    outgoing: mpsc::Sender<Frame>,
    pending: Arc<Mutex<Pending>>,
    next_request_id: AtomicU64,
    /// The reading and writing tasks, stopped when the connection is given up for dead.
    tasks: [tokio::task::AbortHandle; 2],
}

/// Callers waiting for answers; once the connection is lost, `closed` says why.
#[derive(Default)]
struct Pending {
    // Ordered: a lost connection fails its callers in request order (a simulation replays it).
    waiting: std::collections::BTreeMap<u64, oneshot::Sender<Answer>>,
    closed: Option<String>,
    /// When the oldest request sent since the last frame received went out (None: every
    /// request sent so far was followed by a frame).
    unanswered_since: Option<tokio::time::Instant>,
}

impl Connection {
    async fn open(
        net: &dyn PeerNet,
        addr: &str,
        secret: &PeerSecret,
    ) -> Result<Connection, CallError> {
        let stream = connect(net, addr, secret).await?;
        let (read_half, write_half) = tokio::io::split(stream);
        let (outgoing, frames) = mpsc::channel(OUTGOING_FRAMES_MAX);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let writer = tokio::spawn(write_frames(
            write_half,
            frames,
            Arc::clone(&pending),
            addr.to_string(),
        ));
        let reader = tokio::spawn(read_answers(
            read_half,
            Arc::clone(&pending),
            addr.to_string(),
        ));
        Ok(Connection {
            addr: addr.to_string(),
            outgoing,
            pending,
            next_request_id: AtomicU64::new(1),
            tasks: [writer.abort_handle(), reader.abort_handle()],
        })
    }

    /// After a call timed out: a connection that has received nothing for `SILENT_DEAD_MS`
    /// while requests waited is given up (a peer that vanished without a reset, a stream that
    /// lost bytes), so the next call opens a new one instead of waiting on it forever.
    fn give_up_if_silent(&self) {
        let silent = lock(&self.pending)
            .unanswered_since
            .is_some_and(|since| since.elapsed() >= Duration::from_millis(SILENT_DEAD_MS));
        if silent {
            close(
                &self.pending,
                &self.addr,
                format!("nothing received for {SILENT_DEAD_MS} ms: connection given up"),
            );
            for task in &self.tasks {
                task.abort();
            }
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.pending).closed.is_some() || self.outgoing.is_closed()
    }

    async fn call(&self, group_id: u64, kind: Kind, payload: Vec<u8>) -> Answer {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.no_answer(reason.clone()));
            }
            pending.waiting.insert(request_id, answer);
            pending
                .unanswered_since
                .get_or_insert_with(tokio::time::Instant::now);
        }
        let frame = Frame {
            kind: kind as u8,
            request_id,
            group_id,
            payload,
        };
        // A caller that gives up (timeout) leaves its entry behind; the answer, or the
        // connection's end, removes it.
        if self.outgoing.send(frame).await.is_err() {
            lock(&self.pending).waiting.remove(&request_id);
            return Err(self.no_answer("connection closed".to_string()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(self.no_answer("connection closed".to_string())))
    }

    fn no_answer(&self, reason: String) -> CallError {
        CallError::NoAnswer {
            addr: self.addr.clone(),
            reason,
        }
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails every waiting caller and refuses new ones.
fn close(pending: &Mutex<Pending>, addr: &str, reason: String) {
    let waiting = {
        let mut pending = lock(pending);
        pending.closed.get_or_insert(reason.clone());
        std::mem::take(&mut pending.waiting)
    };
    for (_, answer) in waiting {
        let _ = answer.send(Err(CallError::NoAnswer {
            addr: addr.to_string(),
            reason: reason.clone(),
        }));
    }
}

async fn write_frames(
    write_half: WriteHalf,
    mut frames: mpsc::Receiver<Frame>,
    pending: Arc<Mutex<Pending>>,
    addr: String,
) {
    if let Err(error) = pump_frames(write_half, &mut frames).await {
        close(&pending, &addr, format!("write failed: {error}"));
    }
}

async fn read_answers(mut read_half: ReadHalf, pending: Arc<Mutex<Pending>>, addr: String) {
    let reason = loop {
        let frame = match read_frame(&mut read_half).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "the peer closed the connection".to_string(),
            Err(error) => break format!("read failed: {error}"),
        };
        let answer = if frame.kind == ERROR {
            Err(CallError::Remote(RemoteError::decode(&frame.payload)))
        } else if frame.kind & RESPONSE != 0 {
            Ok(frame.payload)
        } else {
            break format!(
                "the peer sent a request kind {} on a client connection",
                frame.kind
            );
        };
        let waiting = {
            let mut pending = lock(&pending);
            pending.unanswered_since = None;
            pending.waiting.remove(&frame.request_id)
        };
        if let Some(waiting) = waiting {
            let _ = waiting.send(answer);
        }
    };
    close(&pending, &addr, reason);
}
