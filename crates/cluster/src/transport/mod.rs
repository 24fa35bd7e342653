//! Node-to-node transport: plain TCP with the project's binary codec. One listener per process
//! and one connection per peer, shared by every Raft group the process hosts: the group id
//! travels in every frame. Requests are pipelined on a connection (answers matched by id);
//! frames queued together share one write. A checkpoint streams on a connection of its own.
//!
//! Plain TCP rather than gRPC: the messages are already encoded by our own deterministic codec
//! (the same bytes the log stores), so a protobuf layer would only copy them again, and tonic
//! would add prost, h2 and a build step for four message types.

mod checkpoint_stream;
mod client;
mod frame;
mod handshake;
mod net;
mod network;
mod server;

pub use client::CallError;
pub(crate) use client::Peers;
pub use frame::RemoteError;
pub(crate) use frame::{u64_at, Kind};
pub use handshake::{
    PeerSecret, HANDSHAKE_CALLER_BYTES, HANDSHAKE_LISTENER_BYTES, PEER_SECRET_BYTES_MIN,
};
pub use net::{NetFuture, PeerAcceptor, PeerIo, PeerNet, PeerStream, TcpNet};
pub(crate) use network::PeerNetwork;
pub(crate) use server::{listen, BoxFuture, GroupService, Registry, Reply};

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;

    /// Answers every request with its payload reversed, after a delay that makes later requests
    /// finish first (so pipelined answers come back out of order).
    struct Reverser;

    impl GroupService for Reverser {
        fn handle(&self, _kind: Kind, payload: Vec<u8>) -> BoxFuture<Reply> {
            Box::pin(async move {
                let delay_ms = 50u64.saturating_sub(u64::from(payload[0]) * 5);
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Ok(payload.into_iter().rev().collect())
            })
        }

        fn receive_snapshot(&self, _: Vec<u8>, _: mpsc::Receiver<Vec<u8>>) -> BoxFuture<Reply> {
            Box::pin(async { Err(RemoteError::Refused("no checkpoints here".into())) })
        }
    }

    #[tokio::test]
    async fn pipelined_calls_get_their_own_answers_and_unknown_groups_are_refused() {
        let registry = Registry::default();
        registry.register(7, Arc::new(Reverser));
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let addr = listen(
            &TcpNet,
            "127.0.0.1:0",
            registry,
            stopped,
            PeerSecret::none(),
        )
        .await
        .unwrap()
        .to_string();
        let peers = Peers::default();
        let timeout = Duration::from_secs(5);
        let calls = (0..8u8).map(|n| {
            let (peers, addr) = (peers.clone(), addr.clone());
            async move {
                peers
                    .call(&addr, 7, Kind::Status, vec![n, 1, 2], timeout)
                    .await
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), vec![2, 1, n as u8]);
        }
        let unknown = peers.call(&addr, 8, Kind::Status, vec![0], timeout).await;
        assert!(matches!(
            unknown,
            Err(CallError::Remote(RemoteError::UnknownGroup(8)))
        ));
    }

    #[tokio::test]
    async fn a_peer_that_is_not_listening_is_unreachable_not_a_lost_answer() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        let peers = Peers::default();
        let answer = peers
            .call(&addr, 1, Kind::Status, vec![], Duration::from_secs(2))
            .await;
        assert!(
            matches!(answer, Err(CallError::Unreachable { .. })),
            "{answer:?}"
        );
    }
}
