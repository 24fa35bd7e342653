//! The live push: the committed event feed's table events, turned into per-table messages
//! numbered by the table's own `seq` (assigned by the state machine, so every node and every
//! restart numbers them alike), retained for resume and fanned out to WebSocket subscribers
//! (`routes::live`).
//!
//! Every node runs a hub over its own applied feed: followers serve screens as well as the
//! leader, and no message depends on which node a client is connected to.

pub mod feed;
pub mod hub;
pub mod limits;
pub mod messages;
mod pacer;
pub mod threads;

pub use hub::{LiveHub, Queued, SubscribeError, Subscription};
pub use limits::LiveLimits;
