//! Croupier's core: money, ids, commands, results and the deterministic ledger state machine.
//!
//! This crate owns the meaning of every change to money: accounts, transfers (single, linked,
//! two-phase), the seamless-wallet layer (bet / win / rollback), the history records and events
//! every applied entry yields, and the binary codecs of log entries, history records and
//! checkpoints. It is a pure function of the log: `Ledger::apply` takes the leader's
//! timestamp, a batch of commands and the history it prefetched (`history`), and returns one
//! result per command plus the entry's new history records.
//!
//! It must not know: clocks, randomness, threads, disks, sockets, tokio, HTTP or JSON. (The one
//! random input is std's per-process hash seed for its id-keyed maps, which decides only where
//! entries sit in memory: nothing observable iterates a hash map.)
//! Business rejections are values (`CreateTransferResult`, `WalletOutcome`), never `Err`;
//! broken invariants are bugs and panic via `assert!`.

pub mod cases;
pub mod codec;
pub mod command;
pub mod compliance;
pub mod consumers;
pub mod events;
pub mod history;
pub mod ids;
pub mod ledger;
pub mod memory;
pub mod money;
pub mod operators;
pub(crate) mod paged;
pub mod payments;
pub mod players;
pub mod reads;
pub mod tables;
pub mod types;
pub mod wallet;

pub use command::{Command, CommandResult};
pub use history::{HistoryKeys, HistoryRecord, HistorySource, Prefetched, StoredTransfer};
pub use ids::{AccountId, LedgerCode, LedgerCodeError, TransferId};
pub use ledger::{FrozenLedger, Ledger, LedgerTotals};
pub use memory::{MemoryHistory, MemoryLedger};
pub use types::{
    Account, AccountFlags, AccountKind, CreateAccountResult, CreateTransferResult, NewAccount,
    NewTransfer, Transfer, TransferFlags,
};
pub use wallet::{WalletBet, WalletEntry, WalletOutcome, WalletRollback, WalletWin};

/// Most items a single create_accounts / create_transfers command may carry (TigerBeetle's
/// request limit less one, as the HTTP contract states).
pub const BATCH_ITEMS_MAX: usize = 8189;
