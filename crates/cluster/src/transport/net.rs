//! Where node-to-node bytes travel: TCP on a real node; a deterministic simulation plugs in
//! its simulated network (`PeerNet`) so the same transport code runs under it.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to or from a peer.
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> PeerIo for T {}

pub type PeerStream = Box<dyn PeerIo>;
pub(crate) type ReadHalf = tokio::io::ReadHalf<PeerStream>;
pub(crate) type WriteHalf = tokio::io::WriteHalf<PeerStream>;

pub type NetFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Opens connections and listeners.
pub trait PeerNet: Send + Sync + Debug + 'static {
    fn connect<'a>(&'a self, addr: &'a str) -> NetFuture<'a, PeerStream>;
    fn bind<'a>(&'a self, addr: &'a str) -> NetFuture<'a, Box<dyn PeerAcceptor>>;
}

/// A bound listener.
pub trait PeerAcceptor: Send + 'static {
    fn local_addr(&self) -> io::Result<SocketAddr>;
    fn accept(&mut self) -> NetFuture<'_, (PeerStream, SocketAddr)>;
}

/// Real TCP, with Nagle off both ways: every frame is a message someone waits on.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpNet;

impl PeerNet for TcpNet {
    fn connect<'a>(&'a self, addr: &'a str) -> NetFuture<'a, PeerStream> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as PeerStream)
        })
    }

    fn bind<'a>(&'a self, addr: &'a str) -> NetFuture<'a, Box<dyn PeerAcceptor>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(listener) as Box<dyn PeerAcceptor>)
        })
    }
}

impl PeerAcceptor for tokio::net::TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn accept(&mut self) -> NetFuture<'_, (PeerStream, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
            let _ = stream.set_nodelay(true);
            Ok((Box::new(stream) as PeerStream, peer))
        })
    }
}
