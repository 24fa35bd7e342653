//! Croupier's core: money, ids, commands, results and the deterministic ledger state machine.
//!
//! This crate owns the meaning of every change to money: accounts, transfers (single, linked,
//! two-phase), the seamless-wallet layer (bet / win / rollback) and the binary codec of log
//! entries and snapshots. It is a pure function of the log: `Ledger::apply` takes the leader's
//! timestamp and a batch of commands and returns one result per command.
//!
//! It must not know: clocks, randomness, threads, disks, sockets, tokio, HTTP or JSON. (The one
//! random input is std's per-process hash seed for its id-keyed maps, which decides only where
//! entries sit in memory: nothing observable iterates a hash map.)
//! Business rejections are values (`CreateTransferResult`, `WalletOutcome`), never `Err`;
//! broken invariants are bugs and panic via `assert!`.

pub mod codec;
pub mod command;
pub mod ids;
pub mod ledger;
pub mod types;
pub mod wallet;

pub use command::{Command, CommandResult};
pub use ids::{AccountId, LedgerCode, LedgerCodeError, TransferId};
pub use ledger::{Ledger, LedgerTotals};
pub use types::{
    Account, AccountFlags, AccountKind, CreateAccountResult, CreateTransferResult, NewAccount,
    NewTransfer, Transfer, TransferFlags,
};
pub use wallet::{WalletBet, WalletOutcome, WalletRollback, WalletWin};

/// Most items a single create_accounts / create_transfers command may carry (TigerBeetle's
/// request limit less one, as the HTTP contract states).
pub const BATCH_ITEMS_MAX: usize = 8189;
