//! The cluster's node-to-node transport over turmoil's simulated TCP.

use std::io;
use std::net::SocketAddr;

use croupier_cluster::{NetFuture, PeerAcceptor, PeerNet, PeerStream};

/// turmoil's network: hosts are reached by name (`node-1:9000`), a listener binds every
/// address of its host.
#[derive(Debug, Default)]
pub struct SimNet;

impl PeerNet for SimNet {
    fn connect<'a>(&'a self, addr: &'a str) -> NetFuture<'a, PeerStream> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as PeerStream)
        })
    }

    fn bind<'a>(&'a self, addr: &'a str) -> NetFuture<'a, Box<dyn PeerAcceptor>> {
        Box::pin(async move {
            let port = addr
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .ok_or_else(|| io::Error::other(format!("no port in {addr}")))?;
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
            Ok(Box::new(SimListener(listener)) as Box<dyn PeerAcceptor>)
        })
    }
}

struct SimListener(turmoil::net::TcpListener);

impl PeerAcceptor for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> NetFuture<'_, (PeerStream, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            Ok((Box::new(stream) as PeerStream, peer))
        })
    }
}
