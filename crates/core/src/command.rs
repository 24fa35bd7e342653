//! Commands (what a log entry asks for) and their results.

use crate::types::{CreateAccountResult, CreateTransferResult, NewAccount, NewTransfer};
use crate::wallet::{WalletBet, WalletOutcome, WalletRollback, WalletWin};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Items are applied in order; `linked` is not available for accounts.
    CreateAccounts(Vec<NewAccount>),
    /// Items are applied in order; linked chains live inside one command.
    CreateTransfers(Vec<NewTransfer>),
    WalletBet(WalletBet),
    WalletWin(WalletWin),
    WalletRollback(WalletRollback),
    /// Changes nothing but lets ledger time pass, so expired pending transfers are voided.
    Tick,
}

/// One result per command, in the command's shape (index-aligned item results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandResult {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
    Wallet(WalletOutcome),
    Tick,
}

/// The content of one log entry: the leader's timestamp and a batch of commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Wall-clock nanoseconds since the Unix epoch, stamped by the leader before proposing.
    /// The ledger never moves its clock backwards: it uses max(this, last + 1).
    pub timestamp_ns: u64,
    pub commands: Vec<Command>,
}
