//! Node-to-node transport: plain TCP with the project's binary codec. One listener per process
//! and one connection per peer, shared by every Raft group the process hosts: the group id
//! travels in every frame. Requests are pipelined on a connection (answers matched by id);
//! frames queued together share one write. A checkpoint streams on a connection of its own.
//!
//! Plain TCP rather than gRPC: the messages are already encoded by our own deterministic codec
//! (the same bytes the log stores), so a protobuf layer would only copy them again, and tonic
//! would add prost, h2 and a build step for four message types.

mod client;
mod frame;
mod network;
mod server;

pub use client::CallError;
pub(crate) use client::Peers;
pub(crate) use frame::Kind;
pub use frame::RemoteError;
pub(crate) use network::PeerNetwork;
pub(crate) use server::{listen, BoxFuture, GroupService, Registry, Reply};
