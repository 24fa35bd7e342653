//! The ledger state machine: accounts, transfers (single, linked, two-phase with expiry) and the
//! seamless-wallet layer, modelled on TigerBeetle's `state_machine.zig`.
//!
//! The ledger holds only its *hot* state: accounts with their balances, the pending transfers
//! that are still pending, per-ledger sums and counters, payments not yet final and open AML
//! cases. Everything that grows with history — every transfer ever made, every wallet
//! decision, which rounds are settled, finished payments, decided cases — lives in a
//! [`HistorySource`](crate::history::HistorySource) that the caller reads before each entry
//! (see `crate::history` for the prefetch/apply protocol) and appends the entry's
//! [`HistoryRecord`]s to afterwards. So memory is bounded by the number of accounts and open
//! pendings, never by the number of transfers.
//!
//! Layout, chosen for the hot path (one create_transfers command of 8189 items):
//! - accounts live in a copy-on-write paged vector in creation order, found through a hash map
//!   from id to slot; a checkpoint copies page pointers, not accounts (see `paged`).
//! - an account's history is a chain through its transfers, newest first: the account holds its
//!   newest transfer's sequence number and each transfer record the previous one of each of its
//!   two accounts. Recording a transfer touches only memory the transfer already touches.
//! - hash maps are only ever looked up; anything whose order is observable (expiry, totals,
//!   checkpoints) is a `BTreeMap`/`BTreeSet` or in creation order.
//!
//! Time comes from the log: each `apply` starts the clock at max(entry timestamp, last + 1) and
//! every object (account, transfer, house account, auto-void) takes the next nanosecond, so
//! timestamps strictly increase even when a leader's wall clock steps back.

mod accounts;
mod chain;
mod compliance_ops;
mod directory;
pub(crate) mod hashing;
mod invariants;
mod payment_ops;
mod pending;
mod table_ops;
mod transfers;
mod wallet_ops;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::command::{Command, CommandResult};
use crate::history::{HistoryKeys, HistoryRecord, Prefetched, StoredTransfer, NO_TRANSFER};
use crate::ids::{is_reserved_id, AccountId, LedgerCode, TransferId};
use crate::operators::{OperatorAction, OperatorChain};
use crate::payments::{ArchivedPayment, PaymentKey};
use crate::types::{Account, AccountFlags, AccountKind, Transfer, TransferFlags};
use crate::wallet::WalletEntry;

use crate::paged::PagedVec;
pub(crate) use compliance_ops::ComplianceBook;
use directory::Directory;
use hashing::IdMap;
pub(crate) use payment_ops::PaymentBook;
pub(crate) use pending::{PendingSet, PendingTransfer};

/// A consistent copy of the hot state for a checkpoint, taken between two entries in O(pages)
/// by sharing pages copy-on-write; encoding it (`codec::encode_checkpoint`) needs no lock.
#[derive(Clone, Debug)]
pub struct FrozenLedger {
    pub(crate) clock: u64,
    pub(crate) transfer_count: u64,
    pub(crate) wallet_sequence: u64,
    pub(crate) expiry_sequence: u64,
    pub(crate) accounts: PagedVec<AccountEntry>,
    pub(crate) pendings: PagedVec<Option<PendingTransfer>>,
    pub(crate) players: PagedVec<crate::players::Player>,
    pub(crate) sessions: PagedVec<Option<crate::players::Session>>,
    pub(crate) operators: OperatorChain,
    pub(crate) tables: BTreeMap<crate::tables::TableId, std::sync::Arc<crate::tables::Table>>,
    pub(crate) compliance: ComplianceBook,
    pub(crate) payments: payment_ops::PaymentBook,
    pub(crate) consumers: crate::consumers::ConsumerCursors,
}

impl FrozenLedger {
    /// The ledger clock at the freeze (ns).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    pub fn transfer_count(&self) -> u64 {
        self.transfer_count
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }
}

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

/// Most accounts one ledger holds: slots are u32.
pub const ACCOUNTS_MAX: usize = u32::MAX as usize;

/// Most automatic voids of expired pending transfers one entry performs, so a mass expiry
/// cannot turn one entry into an unbounded stall; the rest wait for the next entry (the node's
/// ticker proposes one while any deadline has passed).
pub const EXPIRIES_PER_ENTRY_MAX: usize = 8_189;

pub(crate) const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Clone, Debug)]
pub struct AccountEntry {
    pub(crate) account: Account,
    /// The flags as created (normalized): `exists` compares against these, because `closed`
    /// on `account.flags` changes with closing transfers.
    pub(crate) flags_at_creation: AccountFlags,
    /// Index into `Ledger::ledger_sums`.
    pub(crate) ledger_slot: u32,
    /// Sequence number of the newest transfer touching this account, `NO_TRANSFER` if none.
    pub(crate) newest_transfer: u64,
}

/// Where a pending transfer stands (TigerBeetle's `TransferPendingStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingStatus {
    Pending,
    Posted,
    Voided,
    Expired,
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
    PendingInserted(TransferId),
    PendingRemoved(PendingTransfer),
}

#[derive(Clone, Debug, Default)]
struct UndoLog {
    active: bool,
    ops: Vec<Undo>,
}

/// What the entry being applied has produced so far, and what was prefetched for it. Empty
/// between entries.
#[derive(Clone, Debug, Default)]
struct EntryState {
    prefetched: Prefetched,
    records: Vec<HistoryRecord>,
    /// Transfers created by this entry: id → index in `records`.
    transfers: IdMap<TransferId, u32>,
    /// Pendings resolved by this entry: pending id → index in `records` of the resolution.
    resolutions: IdMap<TransferId, u32>,
    wallet: IdMap<String, WalletEntry>,
    rolled_back: HashSet<String>,
    settled: HashSet<(AccountId, String)>,
    /// Payments this entry archived (they left the hot state).
    payments: BTreeMap<PaymentKey, ArchivedPayment>,
    /// AML cases this entry decided (they left the hot state).
    cases: BTreeMap<crate::cases::CaseId, crate::cases::ArchivedCase>,
}

impl EntryState {
    fn is_clear(&self) -> bool {
        self.records.is_empty()
            && self.transfers.is_empty()
            && self.resolutions.is_empty()
            && self.wallet.is_empty()
            && self.rolled_back.is_empty()
            && self.settled.is_empty()
            && self.payments.is_empty()
            && self.cases.is_empty()
            && self.prefetched.is_empty()
    }
}

/// The hot state. `Clone` is cheap for the account pages (shared copy-on-write) but copies
/// the id index; use [`Ledger::freeze`] for checkpoints.
#[derive(Clone, Default)]
pub struct Ledger {
    /// Timestamp (ns) of the last object created, or just below the last entry's timestamp.
    pub(crate) clock: u64,
    pub(crate) accounts: PagedVec<AccountEntry>,
    pub(crate) account_index: IdMap<AccountId, u32>,
    pub(crate) pending: PendingSet,
    pub(crate) ledger_slots: BTreeMap<LedgerCode, u32>,
    /// Running sums per ledger slot, kept incrementally so the balance check is O(ledgers).
    pub(crate) ledger_sums: Vec<LedgerSums>,
    /// Transfers ever created: the next transfer's sequence number.
    pub(crate) transfer_count: u64,
    pub(crate) wallet_sequence: u64,
    pub(crate) expiry_sequence: u64,
    pub(crate) directory: Directory,
    /// The operator audit trail's length and head (`crate::operators`).
    pub(crate) operators: OperatorChain,
    /// Live tables with their current and recent rounds; shared copy-on-write with
    /// checkpoints (a write after a freeze copies that one table).
    pub(crate) tables: BTreeMap<crate::tables::TableId, std::sync::Arc<crate::tables::Table>>,
    /// Responsible-gambling and KYC state per player, and the jurisdictions' policy (shared
    /// copy-on-write with checkpoints like the players).
    pub(crate) compliance: ComplianceBook,
    /// Deposits and withdrawals through banks (shared copy-on-write with checkpoints).
    pub(crate) payments: payment_ops::PaymentBook,
    /// The replicated cursors of the feed consumers that run where writes are served.
    pub(crate) consumers: crate::consumers::ConsumerCursors,
    /// The timestamp of the entry being applied (what table deadlines are compared with: a
    /// bet is late when its entry is stamped at or after the close).
    entry_ns: u64,
    /// The Raft term of the entry being applied (commands bound to a term compare with it).
    entry_term: u64,
    entry: EntryState,
    undo: UndoLog,
}

impl fmt::Debug for Ledger {
    /// A summary: a ledger can hold millions of objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("clock", &self.clock)
            .field("accounts", &self.accounts.len())
            .field("transfers", &self.transfer_count)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// A consistent copy of the hot state for a checkpoint (between entries only).
    pub fn freeze(&self) -> FrozenLedger {
        assert!(self.entry.is_clear() && !self.undo.active);
        FrozenLedger {
            clock: self.clock,
            transfer_count: self.transfer_count,
            wallet_sequence: self.wallet_sequence,
            expiry_sequence: self.expiry_sequence,
            accounts: self.accounts.clone(),
            pendings: self.pending.share_slots(),
            players: self.directory.players.clone(),
            sessions: self.directory.sessions.slots.share(),
            operators: self.operators,
            tables: self.tables.clone(),
            compliance: self.compliance.clone(),
            payments: self.payments.clone(),
            consumers: self.consumers.clone(),
        }
    }

    /// Where feed consumer `name` stands in the replicated state (`crate::consumers`).
    pub fn consumer_cursor(&self, name: &str) -> Option<u64> {
        self.consumers.get(name)
    }

    /// Starts rebuilding a ledger from a checkpoint: `[transfer_count, wallet_sequence,
    /// expiry_sequence]`. The caller adds accounts in creation order, then pendings, then
    /// checks `check_hot_invariants`.
    pub(crate) fn restore_begin(clock: u64, counters: [u64; 3], accounts: usize) -> Ledger {
        let mut ledger = Ledger {
            clock,
            transfer_count: counters[0],
            wallet_sequence: counters[1],
            expiry_sequence: counters[2],
            ..Ledger::default()
        };
        ledger.reserve(accounts);
        ledger
    }

    pub(crate) fn restore_account(
        &mut self,
        account: Account,
        flags_at_creation: AccountFlags,
        newest_transfer: u64,
    ) -> Result<(), ()> {
        let slot = u32::try_from(self.accounts.len()).map_err(|_| ())?;
        if self.account_index.insert(account.id, slot).is_some() {
            return Err(());
        }
        let next_slot = self.ledger_sums.len() as u32;
        let ledger_slot = *self.ledger_slots.entry(account.ledger).or_insert(next_slot);
        if ledger_slot == next_slot {
            self.ledger_sums.push(LedgerSums::zero(account.ledger));
        }
        let sums = &mut self.ledger_sums[ledger_slot as usize];
        let add = |sum: u128, value: u128| sum.checked_add(value).ok_or(());
        sums.debits_pending = add(sums.debits_pending, account.debits_pending)?;
        sums.debits_posted = add(sums.debits_posted, account.debits_posted)?;
        sums.credits_pending = add(sums.credits_pending, account.credits_pending)?;
        sums.credits_posted = add(sums.credits_posted, account.credits_posted)?;
        self.accounts.push(AccountEntry {
            account,
            flags_at_creation,
            ledger_slot,
            newest_transfer,
        });
        Ok(())
    }

    pub(crate) fn restore_pending(&mut self, stored: StoredTransfer) -> Result<(), ()> {
        let t = &stored.transfer;
        let valid = t.flags.contains(TransferFlags::PENDING)
            && !self.pending.contains(t.id)
            && transfers::pending_deadline(t.timestamp, t.timeout_s).is_ok();
        if !valid {
            return Err(());
        }
        self.pending.insert(PendingTransfer { stored });
        Ok(())
    }

    /// Reserves room for this many more accounts, so a large run does not pay for rehashing
    /// the account index while it applies entries.
    pub fn reserve(&mut self, accounts: usize) {
        self.accounts.reserve_pages(accounts);
        self.account_index.reserve(accounts);
    }

    /// Adds to `keys` every history key applying `commands` may read. Pure; the caller looks
    /// the keys up (I/O) and passes what it found to [`Ledger::apply`].
    pub fn history_keys(&self, commands: &[Command], keys: &mut HistoryKeys) {
        for command in commands {
            match command {
                Command::CreateTransfers(items) => self.transfer_keys(items, keys),
                Command::WalletBet(bet) => keys.wallet_keys.push(bet.transaction_id.clone()),
                Command::WalletWin(win) => keys.wallet_keys.push(win.transaction_id.clone()),
                Command::WalletRollback(rollback) => {
                    let target = &rollback.rolled_back_transaction_id;
                    keys.wallet_keys.push(rollback.transaction_id.clone());
                    keys.wallet_keys.push(target.clone());
                    keys.rolled_back.push(target.clone());
                    keys.settled
                        .push((rollback.player_id, rollback.round_id.clone()));
                }
                Command::ByOperator { command, .. } => {
                    self.history_keys(std::slice::from_ref(command), keys)
                }
                Command::Compliance(crate::compliance::ComplianceCommand::Deposit(deposit)) => {
                    if !is_reserved_id(deposit.deposit_id) {
                        keys.transfer_ids.push(deposit.deposit_id);
                    }
                }
                Command::Compliance(crate::compliance::ComplianceCommand::Case(case)) => {
                    self.case_key(case.case_id(), keys)
                }
                Command::CreateAccounts(_)
                | Command::Tick
                | Command::CreatePlayer(_)
                | Command::OpenSession(_)
                | Command::CloseSession(_)
                | Command::RevokeSessions(_)
                | Command::Table(_)
                | Command::Compliance(_)
                | Command::ConsumerAck(_) => {}
                Command::Payment(payment) => {
                    let key = payment.key();
                    if !self.payments.holds(key) {
                        keys.payments.push(key);
                    }
                    // A hold opens a case under the decision's id: it may be decided already.
                    if let crate::payments::PaymentCommand::DecideWithdrawal {
                        decision: crate::payments::WithdrawalDecision::Hold { case_id, .. },
                        ..
                    } = payment
                    {
                        self.case_key(*case_id, keys);
                    }
                }
            }
        }
    }

    /// A case not in the hot state may be decided and archived: its id is looked up.
    fn case_key(&self, case_id: crate::cases::CaseId, keys: &mut HistoryKeys) {
        if !self.compliance.cases.contains_key(&case_id) {
            keys.cases.push(case_id);
        }
    }

    fn transfer_keys(&self, items: &[crate::types::NewTransfer], keys: &mut HistoryKeys) {
        for t in items {
            if t.id != 0 && !is_reserved_id(t.id) {
                keys.transfer_ids.push(t.id);
            }
            let resolves = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
                || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
            // Fetched even when it is pending now: this entry's expiry sweep may void it first.
            if resolves && t.pending_id != 0 {
                keys.transfer_ids.push(t.pending_id);
                keys.resolutions.push(t.pending_id);
            }
        }
    }

    /// Applies one log entry. Pure: the same state, timestamp, commands and prefetched history
    /// give the same results, records and next state on every replica.
    ///
    /// `prefetched` must hold what the history had for `history_keys(commands)` (it is left
    /// cleared for reuse). The entry's new history records are appended to `records`, in the
    /// order they happened; the caller persists them before the next entry.
    ///
    /// Before any command, pending transfers whose deadline is at or before the entry's
    /// timestamp are voided (in deadline order, at most `EXPIRIES_PER_ENTRY_MAX`), so expiry
    /// depends only on the log.
    pub fn apply(
        &mut self,
        stamp: crate::command::EntryStamp,
        commands: &[Command],
        prefetched: &mut Prefetched,
        records: &mut Vec<HistoryRecord>,
    ) -> Vec<CommandResult> {
        assert!(
            !self.undo.active,
            "a linked chain was left open by the previous apply"
        );
        assert!(self.entry.is_clear(), "the previous entry was not finished");
        std::mem::swap(&mut self.entry.prefetched, prefetched);
        std::mem::swap(&mut self.entry.records, records);
        let records_before = self.entry.records.len();

        let entry_timestamp = stamp
            .timestamp_ns
            .max(self.clock.checked_add(1).expect("ledger clock overflowed"));
        self.clock = entry_timestamp - 1;
        self.entry_ns = entry_timestamp;
        self.entry_term = stamp.term;
        self.expire_pending_transfers(entry_timestamp);
        self.expire_sessions(entry_timestamp);
        let results = commands
            .iter()
            .map(|command| self.apply_command(command))
            .collect();

        assert!(!self.undo.active);
        if let Err(broken) = self.check_totals() {
            panic!("ledger invariant broken after apply: {broken}");
        }
        assert!(self.entry.records.len() >= records_before);
        std::mem::swap(&mut self.entry.records, records);
        std::mem::swap(&mut self.entry.prefetched, prefetched);
        prefetched.clear();
        self.finish_entry();
        results
    }

    fn finish_entry(&mut self) {
        let entry = &mut self.entry;
        entry.transfers.clear();
        entry.resolutions.clear();
        entry.wallet.clear();
        entry.rolled_back.clear();
        entry.settled.clear();
        entry.payments.clear();
        entry.cases.clear();
        entry.prefetched.clear();
        assert!(entry.is_clear());
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
            Command::CreatePlayer(player) => CommandResult::Player(self.create_player(player)),
            Command::OpenSession(session) => CommandResult::Player(self.open_session(session)),
            Command::CloseSession(token) => CommandResult::Player(self.close_session(token)),
            Command::RevokeSessions(player) => CommandResult::Player(self.revoke_sessions(*player)),
            Command::Table(command) => CommandResult::Table(self.apply_table(command)),
            Command::Compliance(command) => {
                CommandResult::Compliance(self.apply_compliance(command))
            }
            Command::Payment(command) => CommandResult::Payment(self.apply_payment(command)),
            Command::ConsumerAck(ack) => CommandResult::Consumer(self.consumers.apply(ack)),
            // The effect is the command's own; the operator's identity and what the command
            // did go to the audit trail.
            Command::ByOperator {
                command,
                recorded: false,
                ..
            } => self.apply_command(command),
            Command::ByOperator {
                key_id,
                command,
                recorded: true,
            } => {
                let transfers_before = self.transfer_count;
                let result = self.apply_command(command);
                let transfers = transfers_before..self.transfer_count;
                let action = OperatorAction::append(
                    &mut self.operators,
                    self.clock,
                    key_id,
                    command,
                    &result,
                    transfers,
                );
                self.entry
                    .records
                    .push(HistoryRecord::OperatorAction(action));
                result
            }
        }
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.account_index
            .get(&id)
            .map(|&slot| &self.accounts.get(slot as usize).account)
    }

    /// Sequence number of the account's newest transfer (`NO_TRANSFER` if none); `None` for an
    /// unknown account. The start of a history walk (`crate::reads::account_transfers`).
    pub fn newest_transfer_of(&self, id: AccountId) -> Option<u64> {
        self.account_index
            .get(&id)
            .map(|&slot| self.accounts.get(slot as usize).newest_transfer)
    }

    /// A pending transfer that is still pending.
    pub fn pending_transfer(&self, id: TransferId) -> Option<&StoredTransfer> {
        self.pending.get(id).map(|pending| &pending.stored)
    }

    /// Available balance of a player account: credits_posted - debits_posted - debits_pending.
    /// `None` when the account does not exist or is not a player account.
    pub fn player_balance(&self, id: AccountId) -> Option<(LedgerCode, u128)> {
        let account = self.account(id)?;
        (account.kind == AccountKind::Player).then(|| (account.ledger, available_balance(account)))
    }

    /// The ledger clock: no object has a later timestamp, and the next object's is greater.
    pub fn last_timestamp(&self) -> u64 {
        self.clock
    }

    /// Transfers ever created (the next transfer's sequence number).
    pub fn transfer_count(&self) -> u64 {
        self.transfer_count
    }

    /// The operator audit trail's length and the hash of its last record.
    pub fn operator_chain(&self) -> OperatorChain {
        self.operators
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The earliest deadline among pending transfers, if any (ns, ledger time).
    pub fn next_expiry_ns(&self) -> Option<u64> {
        self.pending.next_deadline()
    }

    pub fn totals(&self) -> LedgerTotals {
        LedgerTotals {
            accounts: self.accounts.len() as u64,
            transfers: self.transfer_count,
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

    // --- lookups across this entry's own records and what was prefetched for it.

    /// A transfer by id, created by this entry or found in history before it.
    fn find_transfer(&self, id: TransferId) -> Option<&StoredTransfer> {
        if let Some(&index) = self.entry.transfers.get(&id) {
            return Some(self.record_transfer(index));
        }
        if let Some(pending) = self.pending.get(id) {
            return Some(&pending.stored);
        }
        self.entry.prefetched.transfers.get(&id)
    }

    fn record_transfer(&self, index: u32) -> &StoredTransfer {
        match &self.entry.records[index as usize] {
            HistoryRecord::Transfer(stored) => stored,
            other => panic!("record {index} is not a transfer: {other:?}"),
        }
    }

    /// Where a transfer created with `pending` stands.
    fn pending_status(&self, pending_id: TransferId) -> PendingStatus {
        if self.pending.contains(pending_id) {
            return PendingStatus::Pending;
        }
        let resolution = match self.entry.resolutions.get(&pending_id) {
            Some(&index) => self.record_transfer(index),
            None => self
                .entry
                .prefetched
                .resolutions
                .get(&pending_id)
                .unwrap_or_else(|| {
                    panic!("pending transfer {pending_id} is neither pending nor resolved")
                }),
        };
        if resolution
            .transfer
            .flags
            .contains(TransferFlags::POST_PENDING_TRANSFER)
        {
            PendingStatus::Posted
        } else if crate::ids::is_expiry_transfer_id(resolution.transfer.id) {
            PendingStatus::Expired
        } else {
            PendingStatus::Voided
        }
    }

    fn wallet_entry(&self, key: &str) -> Option<&WalletEntry> {
        self.entry
            .wallet
            .get(key)
            .or_else(|| self.entry.prefetched.wallet.get(key))
    }

    fn is_rolled_back(&self, bet_key: &str) -> bool {
        self.entry.rolled_back.contains(bet_key)
            || self.entry.prefetched.rolled_back.contains(bet_key)
    }

    fn is_settled(&self, player: AccountId, round: &str) -> bool {
        let key = (player, round.to_owned());
        self.entry.settled.contains(&key) || self.entry.prefetched.settled.contains(&key)
    }

    // --- primitive mutations: every state change goes through these, and each records its
    // inverse while a linked chain is open.

    fn slot_of_account(&self, id: AccountId) -> Option<u32> {
        self.account_index.get(&id).copied()
    }

    fn account_at(&self, slot: u32) -> &Account {
        &self.accounts.get(slot as usize).account
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
        self.entry
            .records
            .push(HistoryRecord::AccountCreated(account.clone()));
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

    /// Records a new transfer and its effect: its sequence number, its place in both accounts'
    /// histories, its record, and the balances it moves (the debit account gains debits, the
    /// credit account credits, and so does their ledger's sums). Each account is written once
    /// (one copy-on-write check each). For a post or void, `pending_amount` is the resolved
    /// pending's amount.
    fn insert_transfer(
        &mut self,
        transfer: Transfer,
        [debit_slot, credit_slot]: [u32; 2],
        pending_amount: u64,
        movement: Movement,
    ) -> u64 {
        assert!(debit_slot != credit_slot);
        assert!(transfer.timestamp <= self.clock);
        assert!(self.account_at(debit_slot).timestamp < transfer.timestamp);
        assert!(self.account_at(credit_slot).timestamp < transfer.timestamp);
        self.record_account_state(debit_slot);
        self.record_account_state(credit_slot);
        let ledger_slot = self.accounts.get(debit_slot as usize).ledger_slot;
        assert_eq!(
            ledger_slot,
            self.accounts.get(credit_slot as usize).ledger_slot
        );
        if self.undo.active {
            let sums = self.ledger_sums[ledger_slot as usize].clone();
            self.undo.ops.push(Undo::LedgerSums {
                slot: ledger_slot,
                sums,
            });
        }
        let seq = self.transfer_count;
        self.transfer_count = seq.checked_add(1).expect("transfer sequence overflowed");
        let debit = self.accounts.get_mut(debit_slot as usize);
        let prev_debit = std::mem::replace(&mut debit.newest_transfer, seq);
        movement.apply_debit(&mut debit.account);
        let credit = self.accounts.get_mut(credit_slot as usize);
        let prev_credit = std::mem::replace(&mut credit.newest_transfer, seq);
        movement.apply_credit(&mut credit.account);
        movement.apply_sums(&mut self.ledger_sums[ledger_slot as usize]);
        self.push_transfer_record(StoredTransfer {
            seq,
            transfer,
            prev_debit,
            prev_credit,
            pending_amount,
        });
        seq
    }

    fn push_transfer_record(&mut self, stored: StoredTransfer) {
        let index = u32::try_from(self.entry.records.len()).expect("records per entry fit u32");
        let (id, pending_id) = (stored.transfer.id, stored.transfer.pending_id);
        let resolves = stored.resolves_pending();
        self.entry.records.push(HistoryRecord::Transfer(stored));
        let previous = self.entry.transfers.insert(id, index);
        assert!(
            previous.is_none(),
            "transfer id inserted twice in one entry"
        );
        if resolves {
            let previous = self.entry.resolutions.insert(pending_id, index);
            assert!(previous.is_none(), "pending resolved twice in one entry");
        }
        if self.undo.active {
            self.undo.ops.push(Undo::TransferCreated);
        }
    }

    fn record_account_state(&mut self, slot: u32) {
        if self.undo.active {
            let account = self.account_at(slot);
            let balances = balances_of(account);
            let flags = account.flags;
            self.undo.ops.push(Undo::AccountState {
                slot,
                balances,
                flags,
            });
        }
    }

    fn set_closed(&mut self, slot: u32, closed: bool) {
        self.record_account_state(slot);
        let flags = &mut self.accounts.get_mut(slot as usize).account.flags;
        assert_ne!(flags.contains(AccountFlags::CLOSED), closed);
        if closed {
            flags.insert(AccountFlags::CLOSED);
        } else {
            flags.remove(AccountFlags::CLOSED);
        }
    }

    fn insert_pending(&mut self, stored: StoredTransfer) {
        let id = stored.transfer.id;
        self.pending.insert(PendingTransfer { stored });
        if self.undo.active {
            self.undo.ops.push(Undo::PendingInserted(id));
        }
    }

    fn remove_pending(&mut self, id: TransferId) -> PendingTransfer {
        let removed = self.pending.remove(id);
        if self.undo.active {
            self.undo.ops.push(Undo::PendingRemoved(removed.clone()));
        }
        removed
    }

    fn undo_one(&mut self, op: Undo) {
        match op {
            Undo::AccountCreated {
                ledger_slot_created,
            } => self.undo_account_created(ledger_slot_created),
            Undo::TransferCreated => self.undo_transfer_created(),
            Undo::AccountState {
                slot,
                balances,
                flags,
            } => {
                let account = &mut self.accounts.get_mut(slot as usize).account;
                [
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                ] = balances;
                account.flags = flags;
            }
            Undo::LedgerSums { slot, sums } => self.ledger_sums[slot as usize] = sums,
            Undo::PendingInserted(id) => {
                self.pending.remove(id);
            }
            Undo::PendingRemoved(pending) => self.pending.insert(pending),
        }
    }

    fn undo_account_created(&mut self, ledger_slot_created: bool) {
        let entry = self
            .accounts
            .pop()
            .expect("undo of an account that is not there");
        assert_eq!(entry.newest_transfer, NO_TRANSFER);
        assert_eq!(
            self.account_index.remove(&entry.account.id),
            Some(self.accounts.len() as u32)
        );
        match self.entry.records.pop() {
            Some(HistoryRecord::AccountCreated(account)) => {
                assert_eq!(account.id, entry.account.id)
            }
            other => panic!("undo of an account found {other:?}"),
        }
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

    fn undo_transfer_created(&mut self) {
        let stored = match self.entry.records.pop() {
            Some(HistoryRecord::Transfer(stored)) => stored,
            other => panic!("undo of a transfer found {other:?}"),
        };
        let index = self.entry.records.len() as u32;
        assert_eq!(
            self.entry.transfers.remove(&stored.transfer.id),
            Some(index)
        );
        if stored.resolves_pending() {
            assert_eq!(
                self.entry.resolutions.remove(&stored.transfer.pending_id),
                Some(index)
            );
        }
        self.transfer_count -= 1;
        assert_eq!(self.transfer_count, stored.seq);
        let t = &stored.transfer;
        for (id, previous) in [
            (t.debit_account_id, stored.prev_debit),
            (t.credit_account_id, stored.prev_credit),
        ] {
            let slot = self.account_index[&id] as usize;
            let account = self.accounts.get_mut(slot);
            assert_eq!(account.newest_transfer, stored.seq);
            account.newest_transfer = previous;
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

    fn apply_debit(self, debit: &mut Account) {
        debit.debits_pending = self.apply_pending(debit.debits_pending);
        debit.debits_posted = self.apply_posted(debit.debits_posted);
        assert_within_limits(debit);
    }

    fn apply_credit(self, credit: &mut Account) {
        credit.credits_pending = self.apply_pending(credit.credits_pending);
        credit.credits_posted = self.apply_posted(credit.credits_posted);
        assert_within_limits(credit);
    }

    fn apply_sums(self, sums: &mut LedgerSums) {
        sums.debits_pending = self.apply_pending(sums.debits_pending);
        sums.debits_posted = self.apply_posted(sums.debits_posted);
        sums.credits_pending = self.apply_pending(sums.credits_pending);
        sums.credits_posted = self.apply_posted(sums.credits_posted);
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

pub(crate) fn balances_of(account: &Account) -> [u128; 4] {
    [
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    ]
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
