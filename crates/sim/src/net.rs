//! The cluster's node-to-node transport over turmoil's simulated TCP, with faults TCP itself
//! never shows: after the handshake, each frame a node writes may be sent twice (a duplicate)
//! or held back behind the next frame of the same burst (reordered). The draws come from the
//! run's seeded stream, in the order the simulation writes, so a seed replays them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use croupier_cluster::{
    NetFuture, PeerAcceptor, PeerNet, PeerStream, HANDSHAKE_CALLER_BYTES, HANDSHAKE_LISTENER_BYTES,
};
use rand_09::rngs::SmallRng;
use rand_09::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A frame's length prefix and checksum (transport/frame.rs): `u32 body_len | u32 crc`.
const FRAME_PREFIX_BYTES: usize = 8;
/// Bytes a stream may hold for the simulated socket before its writer waits.
const OUT_BYTES_MAX: usize = 4 << 20;

/// How often frames are duplicated or reordered, and how many were.
#[derive(Debug)]
pub struct MessageFaults {
    rng: Mutex<SmallRng>,
    duplicate_rate: f64,
    reorder_rate: f64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
}

impl MessageFaults {
    pub fn new(seed: u64, duplicate_rate: f64, reorder_rate: f64) -> MessageFaults {
        MessageFaults {
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            duplicate_rate,
            reorder_rate,
            duplicated: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
        }
    }

    fn draw(&self) -> Fate {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let roll: f64 = rng.random();
        if roll < self.duplicate_rate {
            Fate::Duplicate
        } else if roll < self.duplicate_rate + self.reorder_rate {
            Fate::Hold
        } else {
            Fate::Send
        }
    }
}

enum Fate {
    Send,
    Duplicate,
    Hold,
}

/// turmoil's network: hosts are reached by name (`node-1:9000`), a listener binds every
/// address of its host.
#[derive(Debug)]
pub struct SimNet {
    faults: Arc<MessageFaults>,
}

impl SimNet {
    pub fn new(faults: Arc<MessageFaults>) -> SimNet {
        SimNet { faults }
    }
}

impl PeerNet for SimNet {
    fn connect<'a>(&'a self, addr: &'a str) -> NetFuture<'a, PeerStream> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            let faults = Arc::clone(&self.faults);
            Ok(Box::new(FaultyStream::new(stream, HANDSHAKE_CALLER_BYTES, faults)) as PeerStream)
        })
    }

    fn bind<'a>(&'a self, addr: &'a str) -> NetFuture<'a, Box<dyn PeerAcceptor>> {
        Box::pin(async move {
            let port = addr
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .ok_or_else(|| io::Error::other(format!("no port in {addr}")))?;
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
            let faults = Arc::clone(&self.faults);
            Ok(Box::new(SimListener { listener, faults }) as Box<dyn PeerAcceptor>)
        })
    }
}

struct SimListener {
    listener: turmoil::net::TcpListener,
    faults: Arc<MessageFaults>,
}

impl PeerAcceptor for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn accept(&mut self) -> NetFuture<'_, (PeerStream, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = self.listener.accept().await?;
            let faults = Arc::clone(&self.faults);
            let stream = FaultyStream::new(stream, HANDSHAKE_LISTENER_BYTES, faults);
            Ok((Box::new(stream) as PeerStream, peer))
        })
    }
}

/// A simulated TCP stream whose outgoing frames meet `MessageFaults`.
struct FaultyStream {
    inner: turmoil::net::TcpStream,
    /// Handshake bytes still to pass through untouched.
    handshake_left: usize,
    /// Bytes of a frame not yet complete.
    partial: Vec<u8>,
    /// Bytes decided on, not yet taken by the socket.
    out: Vec<u8>,
    /// A frame held back to go after the next one.
    held: Option<Vec<u8>>,
    faults: Arc<MessageFaults>,
}

impl FaultyStream {
    fn new(
        inner: turmoil::net::TcpStream,
        handshake_left: usize,
        faults: Arc<MessageFaults>,
    ) -> Self {
        FaultyStream {
            inner,
            handshake_left,
            partial: Vec::new(),
            out: Vec::new(),
            held: None,
            faults,
        }
    }

    fn take(&mut self, mut bytes: &[u8]) {
        let passing = self.handshake_left.min(bytes.len());
        self.out.extend_from_slice(&bytes[..passing]);
        self.handshake_left -= passing;
        bytes = &bytes[passing..];
        self.partial.extend_from_slice(bytes);
        while let Some(len) = complete_frame(&self.partial) {
            let frame: Vec<u8> = self.partial.drain(..len).collect();
            self.route(frame);
        }
    }

    fn route(&mut self, frame: Vec<u8>) {
        match self.faults.draw() {
            Fate::Duplicate => {
                self.faults.duplicated.fetch_add(1, Ordering::Relaxed);
                self.out.extend_from_slice(&frame);
                self.send(frame);
            }
            Fate::Hold if self.held.is_none() => {
                self.faults.reordered.fetch_add(1, Ordering::Relaxed);
                self.held = Some(frame);
            }
            _ => self.send(frame),
        }
    }

    fn send(&mut self, frame: Vec<u8>) {
        self.out.extend_from_slice(&frame);
        if let Some(held) = self.held.take() {
            self.out.extend_from_slice(&held);
        }
    }

    /// Hands `out` to the socket; Ready once it is all taken.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.out.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The length of the frame at the start of `bytes`, once all of it is there.
fn complete_frame(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let total = FRAME_PREFIX_BYTES + u32::from_le_bytes(prefix) as usize;
    (bytes.len() >= total).then_some(total)
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.out.len() >= OUT_BYTES_MAX {
            match self.drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.take(buf);
        // What the socket does not take now goes at the next write or flush.
        if let Poll::Ready(Err(e)) = self.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The end of a burst: a held frame goes now, after the ones written since.
        if let Some(held) = self.held.take() {
            self.out.extend_from_slice(&held);
        }
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}
