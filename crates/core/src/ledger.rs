//! The ledger state machine: accounts, transfers (single, linked, two-phase with expiry) and the
//! seamless-wallet layer, modelled on TigerBeetle's `state_machine.zig`.
//!
//! Layout, chosen for the hot path (one create_transfers command of 8189 items):
//! - accounts and transfers live in `Vec`s in creation order, found through `HashMap`s from id
//!   to slot. Creation order is also timestamp order, so a snapshot is written without sorting
//!   and a failed linked chain is undone by popping (its objects are always the newest).
//! - an account's history is a chain through its transfers, newest first: the account holds
//!   its newest transfer's slot and each transfer the previous slot of each of its two
//!   accounts. Recording a transfer touches only memory the transfer already touches (no
//!   per-account vector to grow, no extra cache miss); reading walks at most `limit` links.
//! - hash maps are only ever looked up; anything whose order is observable (expiry, totals,
//!   snapshots) is a `BTreeMap`/`BTreeSet` or a `Vec` in creation order.
//!
//! Time comes from the log: each `apply` starts the clock at max(entry timestamp, last + 1) and
//! every object (account, transfer, house account, auto-void) takes the next nanosecond, so
//! timestamps strictly increase even when a leader's wall clock steps back.

mod accounts;
mod chain;
mod hashing;
mod invariants;
mod transfers;
mod wallet_ops;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::command::{Command, CommandResult};
use crate::ids::{AccountId, LedgerCode, TransferId};
use crate::types::{Account, AccountFlags, AccountKind, Transfer};
use crate::wallet::{WalletBet, WalletOutcome, WalletRollback, WalletWin};

use hashing::{IdMap, IdSet};
pub(crate) use invariants::SnapshotParts;

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

impl LedgerSums {
    fn zero(ledger: LedgerCode) -> Self {
        LedgerSums {
            ledger,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
        }
    }
}

/// Most transfers (and accounts) one ledger holds: slots are u32 to keep histories small.
/// Memory runs out long before (each transfer costs ~150 bytes).
pub const TRANSFERS_MAX: usize = u32::MAX as usize;
pub const ACCOUNTS_MAX: usize = u32::MAX as usize;

pub(crate) const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Clone, Debug)]
pub(crate) struct AccountEntry {
    pub(crate) account: Account,
    /// The flags as created (normalized): `exists` compares against these, because `closed`
    /// on `account.flags` changes with closing transfers.
    pub(crate) flags_at_creation: AccountFlags,
    /// Index into `Ledger::ledger_sums`.
    pub(crate) ledger_slot: u32,
    /// Slot of the newest transfer touching this account, `NO_TRANSFER` if none.
    pub(crate) newest_transfer: u32,
}

/// The end of a history chain.
pub(crate) const NO_TRANSFER: u32 = u32::MAX;

/// For one transfer, the slot of the previous transfer of its debit account and of its credit
/// account (`NO_TRANSFER` at the start of a history).
pub(crate) type HistoryLinks = [u32; 2];

/// Where a pending transfer stands (TigerBeetle's `TransferPendingStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingStatus {
    Pending,
    Posted,
    Voided,
    Expired,
}

/// What the ledger remembers under a wallet transaction id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WalletEntry {
    Bet {
        request: WalletBet,
        outcome: WalletOutcome,
        rolled_back: bool,
    },
    Win {
        request: WalletWin,
        outcome: WalletOutcome,
    },
    Rollback {
        request: WalletRollback,
        outcome: WalletOutcome,
    },
    /// A rollback named this id before any bet with it arrived: a late bet is refused.
    Tombstone {
        player_id: AccountId,
        round_id: String,
        rollback_transaction_id: String,
    },
}

/// One reversible effect, recorded while a linked chain is open so a failing member can undo
/// the members before it.
#[derive(Clone, Debug)]
enum Undo {
    AccountCreated {
        ledger_slot_created: bool,
    },
    TransferCreated,
    AccountState {
        slot: u32,
        balances: [u128; 4],
        flags: AccountFlags,
    },
    LedgerSums {
        slot: u32,
        sums: LedgerSums,
    },
    PendingStatus {
        slot: u32,
        previous: Option<PendingStatus>,
    },
    ExpiryInserted((u64, TransferId)),
    ExpiryRemoved((u64, TransferId)),
}

#[derive(Clone, Debug, Default)]
struct UndoLog {
    active: bool,
    ops: Vec<Undo>,
}

#[derive(Clone, Default)]
pub struct Ledger {
    /// Timestamp (ns) of the last object created, or just below the last entry's timestamp.
    pub(crate) clock: u64,
    pub(crate) accounts: Vec<AccountEntry>,
    pub(crate) account_index: IdMap<AccountId, u32>,
    pub(crate) transfers: Vec<Transfer>,
    /// Parallel to `transfers`.
    pub(crate) history_links: Vec<HistoryLinks>,
    pub(crate) transfer_index: IdMap<TransferId, u32>,
    /// Status of every transfer created with `pending`, by transfer slot.
    pub(crate) pending_status: IdMap<u32, PendingStatus>,
    /// Pending transfers with a timeout that are still pending, by (deadline ns, id).
    pub(crate) expiries: BTreeSet<(u64, TransferId)>,
    pub(crate) ledger_slots: BTreeMap<LedgerCode, u32>,
    /// Running sums per ledger slot, kept incrementally so the balance check is O(ledgers).
    pub(crate) ledger_sums: Vec<LedgerSums>,
    pub(crate) wallet: IdMap<String, WalletEntry>,
    /// (player, round) pairs a win has settled: their bets can no longer be rolled back.
    pub(crate) settled_rounds: IdMap<AccountId, IdSet<String>>,
    pub(crate) wallet_sequence: u64,
    pub(crate) expiry_sequence: u64,
    undo: UndoLog,
}

impl fmt::Debug for Ledger {
    /// A summary: a ledger can hold millions of objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("clock", &self.clock)
            .field("accounts", &self.accounts.len())
            .field("transfers", &self.transfers.len())
            .field("pending_with_timeout", &self.expiries.len())
            .field("wallet_entries", &self.wallet.len())
            .finish()
    }
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves room for this many more accounts and transfers, so a large run does not pay
    /// for rehashing the maps while it applies entries.
    pub fn reserve(&mut self, accounts: usize, transfers: usize) {
        self.accounts.reserve(accounts);
        self.account_index.reserve(accounts);
        self.transfers.reserve(transfers);
        self.history_links.reserve(transfers);
        self.transfer_index.reserve(transfers);
    }

    /// Applies one log entry. Pure: the same state, timestamp and commands give the same
    /// results and the same next state on every replica.
    ///
    /// Before any command, every pending transfer whose deadline is at or before the entry's
    /// timestamp is voided (in deadline order), so expiry depends only on the log.
    pub fn apply(&mut self, timestamp_ns: u64, commands: &[Command]) -> Vec<CommandResult> {
        assert!(
            !self.undo.active,
            "a linked chain was left open by the previous apply"
        );
        let entry_timestamp =
            timestamp_ns.max(self.clock.checked_add(1).expect("ledger clock overflowed"));
        self.clock = entry_timestamp - 1;
        self.expire_pending_transfers(entry_timestamp);

        let results = commands
            .iter()
            .map(|command| self.apply_command(command))
            .collect();

        assert!(!self.undo.active);
        if let Err(broken) = self.check_totals() {
            panic!("ledger invariant broken after apply: {broken}");
        }
        results
    }

    fn apply_command(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::CreateAccounts(items) => CommandResult::Accounts(self.create_accounts(items)),
            Command::CreateTransfers(items) => {
                CommandResult::Transfers(self.create_transfers(items))
            }
            Command::WalletBet(bet) => CommandResult::Wallet(self.wallet_bet(bet)),
            Command::WalletWin(win) => CommandResult::Wallet(self.wallet_win(win)),
            Command::WalletRollback(rollback) => {
                CommandResult::Wallet(self.wallet_rollback(rollback))
            }
            Command::Tick => CommandResult::Tick,
        }
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.account_index
            .get(&id)
            .map(|&slot| &self.accounts[slot as usize].account)
    }

    pub fn transfer(&self, id: TransferId) -> Option<&Transfer> {
        self.transfer_index
            .get(&id)
            .map(|&slot| &self.transfers[slot as usize])
    }

    /// The account's transfers, newest first, at most `limit`. Includes wallet transfers and
    /// the automatic voids of expired pending transfers. Empty for an unknown account.
    pub fn account_transfers(&self, id: AccountId, limit: usize) -> Vec<&Transfer> {
        let Some(&slot) = self.account_index.get(&id) else {
            return Vec::new();
        };
        let mut found = Vec::with_capacity(limit.min(1024));
        let mut next = self.accounts[slot as usize].newest_transfer;
        while next != NO_TRANSFER && found.len() < limit {
            let transfer = &self.transfers[next as usize];
            let [debit_previous, credit_previous] = self.history_links[next as usize];
            next = if transfer.debit_account_id == id {
                debit_previous
            } else {
                credit_previous
            };
            found.push(transfer);
        }
        found
    }

    /// Available balance of a player account: credits_posted - debits_posted - debits_pending.
    /// `None` when the account does not exist or is not a player account.
    pub fn player_balance(&self, id: AccountId) -> Option<(LedgerCode, u128)> {
        let account = self.account(id)?;
        (account.kind == AccountKind::Player).then(|| (account.ledger, available_balance(account)))
    }

    /// The stored answer to a wallet transaction id, if the ledger decided one (a tombstone
    /// left by a rollback answers `BetAlreadyRolledBack`, as a bet with that id would).
    pub fn wallet_outcome(&self, transaction_id: &str) -> Option<WalletOutcome> {
        match self.wallet.get(transaction_id)? {
            WalletEntry::Bet { outcome, .. }
            | WalletEntry::Win { outcome, .. }
            | WalletEntry::Rollback { outcome, .. } => Some(*outcome),
            WalletEntry::Tombstone { .. } => Some(WalletOutcome::BetAlreadyRolledBack),
        }
    }

    /// The ledger clock: no object has a later timestamp, and the next object's is greater.
    pub fn last_timestamp(&self) -> u64 {
        self.clock
    }

    pub fn totals(&self) -> LedgerTotals {
        LedgerTotals {
            accounts: self.accounts.len() as u64,
            transfers: self.transfers.len() as u64,
            per_ledger: self
                .ledger_slots
                .values()
                .map(|&slot| self.ledger_sums[slot as usize].clone())
                .collect(),
        }
    }

    /// Takes the next object timestamp (ns).
    fn next_timestamp(&mut self) -> u64 {
        self.clock = self.clock.checked_add(1).expect("ledger clock overflowed");
        self.clock
    }

    // --- primitive mutations: every state change goes through these, and each records its
    // inverse while a linked chain is open.

    fn slot_of_account(&self, id: AccountId) -> Option<u32> {
        self.account_index.get(&id).copied()
    }

    fn insert_account(&mut self, account: Account, flags_at_creation: AccountFlags) -> u32 {
        assert!(account.id != 0);
        assert!(self
            .accounts
            .last()
            .is_none_or(|last| last.account.timestamp < account.timestamp));
        assert!(
            self.accounts.len() < ACCOUNTS_MAX,
            "account slots exhausted"
        );
        let slot = self.accounts.len() as u32;
        let (ledger_slot, ledger_slot_created) = match self.ledger_slots.get(&account.ledger) {
            Some(&ledger_slot) => (ledger_slot, false),
            None => {
                let ledger_slot = self.ledger_sums.len() as u32;
                self.ledger_slots.insert(account.ledger, ledger_slot);
                self.ledger_sums.push(LedgerSums::zero(account.ledger));
                (ledger_slot, true)
            }
        };
        let previous = self.account_index.insert(account.id, slot);
        assert!(previous.is_none(), "account id inserted twice");
        self.accounts.push(AccountEntry {
            account,
            flags_at_creation,
            ledger_slot,
            newest_transfer: NO_TRANSFER,
        });
        if self.undo.active {
            self.undo.ops.push(Undo::AccountCreated {
                ledger_slot_created,
            });
        }
        slot
    }

    fn insert_transfer(&mut self, transfer: Transfer, debit_slot: u32, credit_slot: u32) -> u32 {
        assert!(debit_slot != credit_slot);
        assert!(self
            .transfers
            .last()
            .is_none_or(|last| last.timestamp < transfer.timestamp));
        assert!(self.accounts[debit_slot as usize].account.timestamp < transfer.timestamp);
        assert!(self.accounts[credit_slot as usize].account.timestamp < transfer.timestamp);
        assert!(
            self.transfers.len() < TRANSFERS_MAX,
            "transfer slots exhausted"
        );
        let slot = self.transfers.len() as u32;
        let previous = self.transfer_index.insert(transfer.id, slot);
        assert!(previous.is_none(), "transfer id inserted twice");
        self.transfers.push(transfer);
        let debit_previous = std::mem::replace(
            &mut self.accounts[debit_slot as usize].newest_transfer,
            slot,
        );
        let credit_previous = std::mem::replace(
            &mut self.accounts[credit_slot as usize].newest_transfer,
            slot,
        );
        self.history_links.push([debit_previous, credit_previous]);
        if self.undo.active {
            self.undo.ops.push(Undo::TransferCreated);
        }
        slot
    }

    fn record_account_state(&mut self, slot: u32) {
        if self.undo.active {
            let account = &self.accounts[slot as usize].account;
            let balances = [
                account.debits_pending,
                account.debits_posted,
                account.credits_pending,
                account.credits_posted,
            ];
            self.undo.ops.push(Undo::AccountState {
                slot,
                balances,
                flags: account.flags,
            });
        }
    }

    /// Applies one transfer's effect: the debit account gains debits and the credit account
    /// gains credits of the same amounts, and so does their ledger's running sums.
    fn move_balances(&mut self, debit_slot: u32, credit_slot: u32, movement: Movement) {
        self.record_account_state(debit_slot);
        self.record_account_state(credit_slot);
        let ledger_slot = self.accounts[debit_slot as usize].ledger_slot;
        assert_eq!(ledger_slot, self.accounts[credit_slot as usize].ledger_slot);
        if self.undo.active {
            let sums = self.ledger_sums[ledger_slot as usize].clone();
            self.undo.ops.push(Undo::LedgerSums {
                slot: ledger_slot,
                sums,
            });
        }

        let debit = &mut self.accounts[debit_slot as usize].account;
        debit.debits_pending = movement.apply_pending(debit.debits_pending);
        debit.debits_posted = movement.apply_posted(debit.debits_posted);
        let credit = &mut self.accounts[credit_slot as usize].account;
        credit.credits_pending = movement.apply_pending(credit.credits_pending);
        credit.credits_posted = movement.apply_posted(credit.credits_posted);
        let sums = &mut self.ledger_sums[ledger_slot as usize];
        sums.debits_pending = movement.apply_pending(sums.debits_pending);
        sums.debits_posted = movement.apply_posted(sums.debits_posted);
        sums.credits_pending = movement.apply_pending(sums.credits_pending);
        sums.credits_posted = movement.apply_posted(sums.credits_posted);

        assert_within_limits(&self.accounts[debit_slot as usize].account);
        assert_within_limits(&self.accounts[credit_slot as usize].account);
    }

    fn set_closed(&mut self, slot: u32, closed: bool) {
        self.record_account_state(slot);
        let flags = &mut self.accounts[slot as usize].account.flags;
        assert_ne!(flags.contains(AccountFlags::CLOSED), closed);
        if closed {
            flags.insert(AccountFlags::CLOSED);
        } else {
            flags.remove(AccountFlags::CLOSED);
        }
    }

    fn set_pending_status(&mut self, transfer_slot: u32, status: PendingStatus) {
        let previous = self.pending_status.insert(transfer_slot, status);
        if self.undo.active {
            self.undo.ops.push(Undo::PendingStatus {
                slot: transfer_slot,
                previous,
            });
        }
    }

    fn insert_expiry(&mut self, key: (u64, TransferId)) {
        assert!(self.expiries.insert(key));
        if self.undo.active {
            self.undo.ops.push(Undo::ExpiryInserted(key));
        }
    }

    fn remove_expiry(&mut self, key: (u64, TransferId)) {
        assert!(self.expiries.remove(&key));
        if self.undo.active {
            self.undo.ops.push(Undo::ExpiryRemoved(key));
        }
    }

    fn undo_one(&mut self, op: Undo) {
        match op {
            Undo::AccountCreated {
                ledger_slot_created,
            } => {
                let entry = self
                    .accounts
                    .pop()
                    .expect("undo of an account that is not there");
                assert_eq!(entry.newest_transfer, NO_TRANSFER);
                assert_eq!(
                    self.account_index.remove(&entry.account.id),
                    Some(self.accounts.len() as u32)
                );
                if ledger_slot_created {
                    let sums = self
                        .ledger_sums
                        .pop()
                        .expect("undo of a ledger slot that is not there");
                    assert_eq!(sums, LedgerSums::zero(entry.account.ledger));
                    assert_eq!(
                        self.ledger_slots.remove(&entry.account.ledger),
                        Some(self.ledger_sums.len() as u32)
                    );
                }
            }
            Undo::TransferCreated => {
                let transfer = self
                    .transfers
                    .pop()
                    .expect("undo of a transfer that is not there");
                let links = self
                    .history_links
                    .pop()
                    .expect("history links parallel to transfers");
                let slot = self.transfers.len() as u32;
                assert_eq!(self.transfer_index.remove(&transfer.id), Some(slot));
                for (id, previous) in [transfer.debit_account_id, transfer.credit_account_id]
                    .into_iter()
                    .zip(links)
                {
                    let account = &mut self.accounts[self.account_index[&id] as usize];
                    assert_eq!(account.newest_transfer, slot);
                    account.newest_transfer = previous;
                }
            }
            Undo::AccountState {
                slot,
                balances,
                flags,
            } => {
                let account = &mut self.accounts[slot as usize].account;
                [
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                ] = balances;
                account.flags = flags;
            }
            Undo::LedgerSums { slot, sums } => self.ledger_sums[slot as usize] = sums,
            Undo::PendingStatus { slot, previous } => match previous {
                Some(status) => {
                    self.pending_status.insert(slot, status);
                }
                None => {
                    self.pending_status.remove(&slot);
                }
            },
            Undo::ExpiryInserted(key) => assert!(self.expiries.remove(&key)),
            Undo::ExpiryRemoved(key) => assert!(self.expiries.insert(key)),
        }
    }
}

/// A transfer's effect on balances, applied identically to the debit side of the debit account,
/// the credit side of the credit account and the ledger's sums.
#[derive(Clone, Copy, Debug)]
struct Movement {
    pending_add: u128,
    pending_release: u128,
    posted_add: u128,
}

impl Movement {
    fn posted(amount: u128) -> Self {
        Movement {
            pending_add: 0,
            pending_release: 0,
            posted_add: amount,
        }
    }

    fn pending(amount: u128) -> Self {
        Movement {
            pending_add: amount,
            pending_release: 0,
            posted_add: 0,
        }
    }

    /// Releases `pending_amount` and posts `posted` of it (0 for a void).
    fn resolve(pending_amount: u128, posted: u128) -> Self {
        assert!(posted <= pending_amount);
        Movement {
            pending_add: 0,
            pending_release: pending_amount,
            posted_add: posted,
        }
    }

    fn apply_pending(self, value: u128) -> u128 {
        value
            .checked_add(self.pending_add)
            .and_then(|v| v.checked_sub(self.pending_release))
            .expect("pending balance out of range: validation missed an overflow")
    }

    fn apply_posted(self, value: u128) -> u128 {
        value
            .checked_add(self.posted_add)
            .expect("posted balance overflowed: validation missed it")
    }
}

/// A balance-limited account never exceeds its limit, whatever happened.
fn assert_within_limits(account: &Account) {
    if account
        .flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
    {
        assert!(
            account.debits_pending.saturating_add(account.debits_posted) <= account.credits_posted,
            "account {} debits exceed its credits",
            account.id
        );
    }
    if account
        .flags
        .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
    {
        assert!(
            account
                .credits_pending
                .saturating_add(account.credits_posted)
                <= account.debits_posted,
            "account {} credits exceed its debits",
            account.id
        );
    }
}

/// credits_posted - debits_posted - debits_pending, floored at zero for accounts without a
/// debit limit (a player account always has one, so it is exact for players).
pub(crate) fn available_balance(account: &Account) -> u128 {
    account
        .credits_posted
        .saturating_sub(account.debits_posted)
        .saturating_sub(account.debits_pending)
}
