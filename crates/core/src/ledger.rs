//! The ledger state machine. (Skeleton: the implementation lands with issue #2 §2.)

use crate::command::{Command, CommandResult};
use crate::ids::{AccountId, LedgerCode, TransferId};
use crate::types::{Account, Transfer};

/// Sums over the whole ledger, per ledger code (sorted by code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub accounts: u64,
    pub transfers: u64,
    pub per_ledger: Vec<LedgerSums>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSums {
    pub ledger: LedgerCode,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

#[derive(Clone, Debug, Default)]
pub struct Ledger {
    _private: (),
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one log entry. Pure: the same state, timestamp and commands give the same
    /// results and the same next state on every replica.
    pub fn apply(&mut self, _timestamp_ns: u64, _commands: &[Command]) -> Vec<CommandResult> {
        todo!("ledger state machine")
    }

    pub fn account(&self, _id: AccountId) -> Option<&Account> {
        todo!()
    }

    pub fn transfer(&self, _id: TransferId) -> Option<&Transfer> {
        todo!()
    }

    /// The account's transfers, newest first, at most `limit`.
    pub fn account_transfers(&self, _id: AccountId, _limit: usize) -> Vec<&Transfer> {
        todo!()
    }

    /// Available balance of a player account: credits_posted - debits_posted - debits_pending.
    pub fn player_balance(&self, _id: AccountId) -> Option<(LedgerCode, u128)> {
        todo!()
    }

    /// The ledger clock: the timestamp of the last object created (ns).
    pub fn last_timestamp(&self) -> u64 {
        todo!()
    }

    pub fn totals(&self) -> LedgerTotals {
        todo!()
    }
}
