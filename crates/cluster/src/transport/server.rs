//! The answering side: one listener per process; each request is dispatched by group id to the
//! group that process hosts, and answered on the connection it came in on.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use super::checkpoint_stream::{self, Accept, Reassembly};
use super::frame::{pump_frames, read_frame, Frame, Kind, RemoteError, ERROR, RESPONSE};
use super::handshake::{self, PeerSecret};
use super::net::{PeerAcceptor, PeerNet, PeerStream, WriteHalf};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type Reply = Result<Vec<u8>, RemoteError>;

/// Answers queued on one connection before its request handlers wait.
const ANSWERS_QUEUED_MAX: usize = 256;
/// Checkpoint chunks buffered between the socket and the staging file.
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 4;
/// Mid-checkpoint, the longest wait for the next frame (either side) before the stream is
/// given up.
pub(crate) const SNAPSHOT_FRAME_WAIT_MS: u64 = 10_000;

/// A checkpoint stream being received on a connection.
struct Inbound {
    chunks: mpsc::Sender<Vec<u8>>,
    reassembly: Reassembly,
}

/// A Raft group as the listener sees it.
pub(crate) trait GroupService: Send + Sync + 'static {
    /// Answers one request (every kind but the snapshot stream's).
    fn handle(&self, kind: Kind, payload: Vec<u8>) -> BoxFuture<Reply>;
    /// Receives a checkpoint: `begin` is the SnapshotBegin payload, `chunks` the archive's
    /// bytes in order, then one empty chunk once SnapshotEnd arrived (a stream that breaks off
    /// closes the channel without it).
    fn receive_snapshot(&self, begin: Vec<u8>, chunks: mpsc::Receiver<Vec<u8>>)
        -> BoxFuture<Reply>;
}

/// The groups this process hosts, by id.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    groups: Arc<RwLock<HashMap<u64, Arc<dyn GroupService>>>>,
}

impl Registry {
    pub(crate) fn register(&self, group_id: u64, service: Arc<dyn GroupService>) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group_id, service);
    }

    pub(crate) fn unregister(&self, group_id: u64) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&group_id);
    }

    fn get(&self, group_id: u64) -> Result<Arc<dyn GroupService>, RemoteError> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&group_id)
            .cloned()
            .ok_or(RemoteError::UnknownGroup(group_id))
    }
}

/// Binds the node-to-node listener and serves it until the runtime stops or `stop` fires.
pub(crate) async fn listen(
    net: &dyn PeerNet,
    addr: &str,
    registry: Registry,
    stop: tokio::sync::watch::Receiver<bool>,
    secret: PeerSecret,
) -> std::io::Result<SocketAddr> {
    let listener = net.bind(addr).await?;
    let local_addr = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, registry, stop, Arc::new(secret)));
    Ok(local_addr)
}

async fn accept_loop(
    mut listener: Box<dyn PeerAcceptor>,
    registry: Registry,
    mut stop: tokio::sync::watch::Receiver<bool>,
    secret: Arc<PeerSecret>,
) {
    loop {
        let accepted = tokio::select! {
            // Fixed polling order: a simulation replays the same choice for the same seed.
            biased;
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (registry, stop, secret) = (registry.clone(), stop.clone(), secret.clone());
                tokio::spawn(async move {
                    let mut stream = stream;
                    if let Err(reason) = handshake::as_listener(&mut stream, &secret).await {
                        // A stranger or a member with another secret: worth a line each time.
                        tracing::warn!(%peer, %reason, "peer connection refused");
                        return;
                    }
                    if let Err(reason) = serve_connection(stream, registry, stop).await {
                        tracing::debug!(%peer, %reason, "peer connection ended");
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "cannot accept a peer connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(
    stream: PeerStream,
    registry: Registry,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let (mut read_half, write_half) = tokio::io::split(stream);
    let (answers, queued) = mpsc::channel::<Frame>(ANSWERS_QUEUED_MAX);
    tokio::spawn(write_answers(write_half, queued));
    let mut snapshot: Option<Inbound> = None;
    loop {
        // Mid-checkpoint, a sender that goes silent is gone: the stream ends (the receiver
        // discards what it got and frees its one checkpoint slot) instead of holding it.
        let patience = match snapshot {
            Some(_) => std::time::Duration::from_millis(SNAPSHOT_FRAME_WAIT_MS),
            None => std::time::Duration::MAX,
        };
        let frame = tokio::select! {
            // Fixed polling order: a simulation replays the same choice for the same seed.
            biased;
            frame = tokio::time::timeout(patience, read_frame(&mut read_half)) => match frame {
                Ok(frame) => frame.map_err(|e| e.to_string())?,
                Err(_) => return Err(format!("checkpoint stream silent for {SNAPSHOT_FRAME_WAIT_MS} ms")),
            },
            _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
        };
        let Some(frame) = frame else { return Ok(()) };
        let Some(kind) = Kind::from_u8(frame.kind) else {
            return Err(format!("unknown request kind {}", frame.kind));
        };
        match kind {
            Kind::SnapshotChunk | Kind::SnapshotEnd => {
                let Some(inbound) = &mut snapshot else {
                    return Err("a checkpoint piece outside a checkpoint stream".into());
                };
                let piece = match kind {
                    Kind::SnapshotChunk => checkpoint_stream::decode_chunk(frame.payload)?,
                    _ => checkpoint_stream::decode_end(&frame.payload)?,
                };
                // A gap or a bad digest ends the connection: the channel closes without its end
                // marker and the receiver discards what it staged.
                let passed_on = match inbound.reassembly.accept(piece)? {
                    Accept::Repeated => true,
                    // An empty chunk marks the end (see `GroupService::receive_snapshot`).
                    Accept::Complete => {
                        let _ = inbound.chunks.send(Vec::new()).await;
                        false
                    }
                    Accept::Next(bytes) => inbound.chunks.send(bytes).await.is_ok(),
                };
                if !passed_on {
                    // Complete, or the receiving side gave up and answered already.
                    snapshot = None;
                }
            }
            Kind::SnapshotBegin => {
                let (chunks, receiver) = mpsc::channel(SNAPSHOT_CHUNKS_QUEUED_MAX);
                snapshot = Some(Inbound {
                    chunks,
                    reassembly: Reassembly::default(),
                });
                spawn_answer(
                    &registry,
                    frame,
                    answers.clone(),
                    move |service, payload| service.receive_snapshot(payload, receiver),
                );
            }
            _ => spawn_answer(
                &registry,
                frame,
                answers.clone(),
                move |service, payload| service.handle(kind, payload),
            ),
        }
    }
}

fn spawn_answer<F>(registry: &Registry, frame: Frame, answers: mpsc::Sender<Frame>, call: F)
where
    F: FnOnce(Arc<dyn GroupService>, Vec<u8>) -> BoxFuture<Reply> + Send + 'static,
{
    let service = registry.get(frame.group_id);
    tokio::spawn(async move {
        let reply = match service {
            Ok(service) => call(service, frame.payload).await,
            Err(error) => Err(error),
        };
        let (kind, payload) = match reply {
            Ok(payload) => (frame.kind | RESPONSE, payload),
            Err(error) => (ERROR, error.encode()),
        };
        let _ = answers
            .send(Frame {
                kind,
                request_id: frame.request_id,
                group_id: frame.group_id,
                payload,
            })
            .await;
    });
}

async fn write_answers(write_half: WriteHalf, mut queued: mpsc::Receiver<Frame>) {
    // A peer that stopped reading: its handlers' answers are dropped with the connection.
    let _ = pump_frames(write_half, &mut queued).await;
}
