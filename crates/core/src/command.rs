//! Commands (what a log entry asks for) and their results.

use crate::players::{NewPlayer, NewSession, PlayerId, PlayerOutcome, TokenHash};
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
    /// Registers a player and opens a wallet per currency (`crate::players`).
    CreatePlayer(NewPlayer),
    /// A login the node checked: a session for the token whose hash this is.
    OpenSession(NewSession),
    /// A logout.
    CloseSession(TokenHash),
    /// Closes every session of a player (an operator's revocation).
    RevokeSessions(PlayerId),
    /// Live tables and their rounds (`crate::tables`).
    Table(crate::tables::TableCommand),
    /// Responsible-gambling limits, exclusions, identity, KYC and deposits
    /// (`crate::compliance`).
    Compliance(crate::compliance::ComplianceCommand),
    /// Deposits and withdrawals through banks (`crate::payments`).
    Payment(crate::payments::PaymentCommand),
    /// A durable feed consumer's acknowledgement, replicated so the next node serving writes
    /// resumes where this one was (`crate::consumers`).
    ConsumerAck(crate::consumers::ConsumerAck),
    /// A command an operator's key asked for. Never nested. When `recorded`, applying it also
    /// appends a record to the operator audit trail (`crate::operators`); it is false only for
    /// entries logged before the trail existed (codec tag 11), which must apply as they did.
    ByOperator {
        key_id: String,
        command: Box<Command>,
        recorded: bool,
    },
}

/// Operator key ids (`ByOperator`): 1 to 32 characters of `a-z`, `0-9`, `_`, `-`.
pub const OPERATOR_KEY_ID_LEN_MAX: usize = 32;

pub fn check_operator_key_id(key_id: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    (1..=OPERATOR_KEY_ID_LEN_MAX).contains(&key_id.len()) && key_id.bytes().all(allowed)
}

impl Command {
    /// The command an operator wrapper carries, or the command itself.
    pub fn unwrapped(&self) -> &Command {
        match self {
            Command::ByOperator { command, .. } => command,
            other => other,
        }
    }
}

/// One result per command, in the command's shape (index-aligned item results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandResult {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
    Wallet(WalletOutcome),
    Tick,
    Player(PlayerOutcome),
    Table(crate::tables::TableOutcome),
    Compliance(crate::compliance::ComplianceOutcome),
    Payment(crate::payments::PaymentOutcome),
    Consumer(crate::consumers::ConsumerOutcome),
}

/// What the state machine knows of the log entry it applies, besides its commands: the same on
/// every replica, so applying stays deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStamp {
    /// The proposal's timestamp (`Proposal::timestamp_ns`).
    pub timestamp_ns: u64,
    /// The Raft term the entry was appended in (its log id's term). Commands bound to a
    /// leader's term (`PaymentCommand::FailPayout::leader_term`) are checked against it.
    pub term: u64,
}

/// The content of one log entry: the leader's timestamp and a batch of commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Wall-clock nanoseconds since the Unix epoch, stamped by the leader before proposing.
    /// The ledger never moves its clock backwards: it uses max(this, last + 1).
    pub timestamp_ns: u64,
    pub commands: Vec<Command>,
}
