//! What the ledger keeps beyond its hot state: the permanent history of transfers and wallet
//! decisions, and the one-step protocol by which the state machine reads it without doing I/O.
//!
//! Applying a log entry has two phases, as in TigerBeetle's prefetch/commit split:
//! 1. `Ledger::history_keys` lists every history key the entry's commands may need (transfer
//!    ids, pending ids, wallet transaction ids, rollback markers, settled rounds); a
//!    [`HistorySource`] (on disk in production, in memory in tests) looks them up into
//!    [`Prefetched`]. This is the only phase that can fail on I/O.
//! 2. `Ledger::apply` is pure: hot state + `Prefetched` + commands → results and new
//!    [`HistoryRecord`]s, which the caller persists (and indexes) before the next entry.
//!
//! Every key `apply` may look up is derivable from the commands alone, so one round of
//! prefetching always suffices; `apply` treats a key it finds neither in this entry's own
//! records nor in `Prefetched` as absent, which is exactly right because `history_keys` asked
//! for it.

use std::collections::HashSet;

use crate::cases::{ArchivedCase, CaseId};
use crate::ids::{is_expiry_transfer_id, AccountId, TransferId};
use crate::ledger::hashing::IdMap;
use crate::operators::OperatorAction;
use crate::payments::{ArchivedPayment, PaymentKey};
use crate::types::{Account, Transfer, TransferFlags};
use crate::wallet::WalletEntry;

/// The end of an account's history chain.
pub const NO_TRANSFER: u64 = u64::MAX;

/// A transfer as history keeps it: the transfer, its sequence number (the n-th transfer the
/// ledger ever created, 0-based, the address of its record), and the links of its two accounts'
/// history chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTransfer {
    pub seq: u64,
    pub transfer: Transfer,
    /// Sequence number of the debit account's previous transfer (`NO_TRANSFER` if none).
    pub prev_debit: u64,
    /// Sequence number of the credit account's previous transfer (`NO_TRANSFER` if none).
    pub prev_credit: u64,
    /// For a post or void: the amount of the pending transfer it resolved; 0 otherwise. Kept so
    /// a retried post with amount 0 ("all of it") can be judged without reading the pending.
    pub pending_amount: u64,
}

/// What a transfer did, as events name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    Posted,
    Pending,
    PendingPosted,
    PendingVoided,
    /// The state machine's automatic void of a pending transfer whose timeout passed.
    PendingExpired,
}

impl TransferKind {
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::Posted => "transfer_posted",
            TransferKind::Pending => "transfer_pending",
            TransferKind::PendingPosted => "pending_posted",
            TransferKind::PendingVoided => "pending_voided",
            TransferKind::PendingExpired => "pending_expired",
        }
    }
}

impl StoredTransfer {
    pub fn kind(&self) -> TransferKind {
        let flags = self.transfer.flags;
        if flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            TransferKind::PendingPosted
        } else if flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
            if is_expiry_transfer_id(self.transfer.id) {
                TransferKind::PendingExpired
            } else {
                TransferKind::PendingVoided
            }
        } else if flags.contains(TransferFlags::PENDING) {
            TransferKind::Pending
        } else {
            TransferKind::Posted
        }
    }

    /// True for a post or a void (including an automatic expiry void).
    pub fn resolves_pending(&self) -> bool {
        let flags = self.transfer.flags;
        flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
    }

    /// The transfer before this one in `account`'s history.
    pub fn previous_of(&self, account: AccountId) -> u64 {
        if self.transfer.debit_account_id == account {
            self.prev_debit
        } else {
            assert_eq!(self.transfer.credit_account_id, account);
            self.prev_credit
        }
    }
}

/// A wallet decision as history keeps it, under the transaction id it answers to (for a
/// tombstone: the id of the bet that must never be accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRecord {
    pub key: String,
    pub entry: WalletEntry,
    /// The ledger clock when the decision was made (ns): the time of the transfer it made, or
    /// of the last object before it.
    pub timestamp: u64,
}

/// One thing an applied entry produced, in the order it happened. Each is also an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryRecord {
    /// A new account (accounts live in the hot state; this record exists for the event feed).
    AccountCreated(Account),
    Transfer(StoredTransfer),
    Wallet(WalletRecord),
    /// A command an operator's key asked for (`crate::operators`).
    OperatorAction(OperatorAction),
    /// A table's round moved or a bet was placed or settled (`crate::tables`).
    Table(crate::tables::TableEvent),
    /// A deposit or a withdrawal changed (`crate::payments`).
    Payment(crate::payments::PaymentEvent),
    /// A payment turned final and left the hot state. History only: never an event (see
    /// [`HistoryRecord::is_event`]).
    PaymentArchived(ArchivedPayment),
    /// An AML case was decided and left the hot state. History only, like `PaymentArchived`.
    CaseArchived(ArchivedCase),
}

impl HistoryRecord {
    /// The ledger time of the record (ns).
    pub fn timestamp(&self) -> u64 {
        match self {
            HistoryRecord::AccountCreated(account) => account.timestamp,
            HistoryRecord::Transfer(stored) => stored.transfer.timestamp,
            HistoryRecord::Wallet(record) => record.timestamp,
            HistoryRecord::OperatorAction(action) => action.timestamp,
            HistoryRecord::Table(event) => event.timestamp,
            HistoryRecord::Payment(event) => event.timestamp,
            HistoryRecord::PaymentArchived(payment) => payment.updated_at_ns(),
            HistoryRecord::CaseArchived(archived) => archived.case.updated_at_ns(),
        }
    }

    /// Whether the event feed publishes this record. An archived payment or case is not
    /// published: a payment's last change already was, and it holds the payee's account (and a
    /// case its notes): personal data the feed's readers need not see. Its ordinal is skipped,
    /// so later records keep their positions.
    pub fn is_event(&self) -> bool {
        !matches!(
            self,
            HistoryRecord::PaymentArchived(_) | HistoryRecord::CaseArchived(_)
        )
    }

    /// The event type this record is published as.
    pub fn event_type(&self) -> &'static str {
        match self {
            HistoryRecord::AccountCreated(_) => "account_created",
            HistoryRecord::Transfer(stored) => stored.kind().name(),
            HistoryRecord::Wallet(record) => record.entry.event_type(),
            HistoryRecord::OperatorAction(_) => "operator_action",
            HistoryRecord::Table(event) => event.event_type(),
            HistoryRecord::Payment(event) => event.event_type(),
            HistoryRecord::PaymentArchived(_) => "payment_archived",
            HistoryRecord::CaseArchived(_) => "case_archived",
        }
    }
}

/// The history keys one entry may need (duplicates allowed; a source may dedupe).
#[derive(Clone, Debug, Default)]
pub struct HistoryKeys {
    /// Ids of transfers to create, and pending ids that posts and voids name.
    pub transfer_ids: Vec<TransferId>,
    /// Pending transfers whose resolution (post, void or expiry) may matter.
    pub resolutions: Vec<TransferId>,
    /// Wallet transaction ids (requests, and the targets of rollbacks).
    pub wallet_keys: Vec<String>,
    /// Bets whose rollback status matters.
    pub rolled_back: Vec<String>,
    /// (player, round) pairs whose settlement matters.
    pub settled: Vec<(AccountId, String)>,
    /// Payments a command names that are not in the hot state (maybe archived).
    pub payments: Vec<PaymentKey>,
    /// AML cases a command names that are not in the hot state (maybe decided and archived).
    pub cases: Vec<CaseId>,
}

impl HistoryKeys {
    pub fn clear(&mut self) {
        self.transfer_ids.clear();
        self.resolutions.clear();
        self.wallet_keys.clear();
        self.rolled_back.clear();
        self.settled.clear();
        self.payments.clear();
        self.cases.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.transfer_ids.is_empty()
            && self.resolutions.is_empty()
            && self.wallet_keys.is_empty()
            && self.rolled_back.is_empty()
            && self.settled.is_empty()
            && self.payments.is_empty()
            && self.cases.is_empty()
    }
}

/// What a source found for a `HistoryKeys`: only the keys that exist. A key the entry asked for
/// and that is missing here does not exist in history.
#[derive(Clone, Debug, Default)]
pub struct Prefetched {
    pub(crate) transfers: IdMap<TransferId, StoredTransfer>,
    pub(crate) resolutions: IdMap<TransferId, StoredTransfer>,
    pub(crate) wallet: IdMap<String, WalletEntry>,
    pub(crate) rolled_back: HashSet<String>,
    pub(crate) settled: HashSet<(AccountId, String)>,
    pub(crate) payments: std::collections::BTreeMap<PaymentKey, ArchivedPayment>,
    pub(crate) cases: std::collections::BTreeMap<CaseId, ArchivedCase>,
}

impl Prefetched {
    pub fn clear(&mut self) {
        self.transfers.clear();
        self.resolutions.clear();
        self.wallet.clear();
        self.rolled_back.clear();
        self.settled.clear();
        self.payments.clear();
        self.cases.clear();
    }

    pub fn insert_transfer(&mut self, stored: StoredTransfer) {
        self.transfers.insert(stored.transfer.id, stored);
    }

    /// `resolution` is the post, void or expiry void of `pending_id`.
    pub fn insert_resolution(&mut self, pending_id: TransferId, resolution: StoredTransfer) {
        assert_eq!(resolution.transfer.pending_id, pending_id);
        self.resolutions.insert(pending_id, resolution);
    }

    pub fn insert_wallet(&mut self, key: String, entry: WalletEntry) {
        self.wallet.insert(key, entry);
    }

    pub fn insert_rolled_back(&mut self, bet_key: String) {
        self.rolled_back.insert(bet_key);
    }

    pub fn insert_settled(&mut self, player: AccountId, round: String) {
        self.settled.insert((player, round));
    }

    pub fn insert_payment(&mut self, payment: ArchivedPayment) {
        self.payments.insert(payment.key(), payment);
    }

    pub fn insert_case(&mut self, archived: ArchivedCase) {
        self.cases.insert(archived.case.id, archived);
    }

    pub fn len(&self) -> usize {
        self.transfers.len()
            + self.resolutions.len()
            + self.wallet.len()
            + self.rolled_back.len()
            + self.settled.len()
            + self.payments.len()
            + self.cases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read access to history. Production reads it from disk (`croupier_store`); tests and the
/// model use `MemoryHistory`.
pub trait HistorySource {
    type Error;

    fn transfer_by_id(&self, id: TransferId) -> Result<Option<StoredTransfer>, Self::Error>;
    /// The transfer with sequence number `seq`, if the ledger created that many.
    fn transfer_at(&self, seq: u64) -> Result<Option<StoredTransfer>, Self::Error>;
    /// The post, void or expiry void that resolved `pending_id`, if any.
    fn resolution_of(&self, pending_id: TransferId) -> Result<Option<StoredTransfer>, Self::Error>;
    fn wallet_entry(&self, key: &str) -> Result<Option<WalletEntry>, Self::Error>;
    /// True once a rollback reversed the bet stored under `bet_key`.
    fn is_rolled_back(&self, bet_key: &str) -> Result<bool, Self::Error>;
    /// True once a win settled `round` for `player`.
    fn is_settled(&self, player: AccountId, round: &str) -> Result<bool, Self::Error>;
    /// A payment that turned final, by its key.
    fn archived_payment(&self, key: PaymentKey) -> Result<Option<ArchivedPayment>, Self::Error>;
    /// The archived payment that made clearing-account transfer `id`.
    fn archived_payment_of_transfer(
        &self,
        id: TransferId,
    ) -> Result<Option<ArchivedPayment>, Self::Error>;
    /// A decided AML case, by id.
    fn archived_case(&self, id: CaseId) -> Result<Option<ArchivedCase>, Self::Error>;

    /// Looks up transfers by id into `into`. One lookup per id unless a source knows better
    /// (an entry of 8189 new transfers asks for 8189 ids, nearly all absent).
    fn fetch_transfer_ids(
        &self,
        ids: &[TransferId],
        into: &mut Prefetched,
    ) -> Result<(), Self::Error> {
        for &id in ids {
            if !into.transfers.contains_key(&id) {
                if let Some(stored) = self.transfer_by_id(id)? {
                    into.insert_transfer(stored);
                }
            }
        }
        Ok(())
    }

    /// Looks up every key into `into` (which the caller cleared).
    fn fetch(&self, keys: &HistoryKeys, into: &mut Prefetched) -> Result<(), Self::Error> {
        self.fetch_transfer_ids(&keys.transfer_ids, into)?;
        for &pending_id in &keys.resolutions {
            if let Some(resolution) = self.resolution_of(pending_id)? {
                into.insert_resolution(pending_id, resolution);
            }
        }
        for key in &keys.wallet_keys {
            if let Some(entry) = self.wallet_entry(key)? {
                into.insert_wallet(key.clone(), entry);
            }
        }
        for key in &keys.rolled_back {
            if self.is_rolled_back(key)? {
                into.insert_rolled_back(key.clone());
            }
        }
        for (player, round) in &keys.settled {
            if self.is_settled(*player, round)? {
                into.insert_settled(*player, round.clone());
            }
        }
        for &key in &keys.payments {
            if let Some(payment) = self.archived_payment(key)? {
                into.insert_payment(payment);
            }
        }
        for &id in &keys.cases {
            if let Some(archived) = self.archived_case(id)? {
                into.insert_case(archived);
            }
        }
        Ok(())
    }
}

/// The keys a history source indexes for one record: what later lookups will ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexedKey<'a> {
    /// The transfer's id → the transfer.
    Transfer(TransferId),
    /// The pending id a post or void resolved → the resolving transfer.
    Resolution(TransferId),
    /// A wallet transaction id (or tombstoned bet id) → the wallet record.
    Wallet(&'a str),
    /// A bet id that a rollback reversed → the rollback record.
    RolledBack(&'a str),
    /// (player, round) that a win settled → the win record.
    Settled(AccountId, &'a str),
    /// A payment's key → its archived record.
    Payment(PaymentKey),
    /// A clearing-account transfer a payment made → the payment's archived record.
    PaymentTransfer(TransferId),
    /// A decided case's id → its archived record.
    Case(CaseId),
}

/// Calls `each` with every key `record` must be findable under.
pub fn indexed_keys(record: &HistoryRecord, mut each: impl FnMut(IndexedKey<'_>)) {
    match record {
        // Operator actions are found by their sequence number (fixed-size records).
        // Tables keep their rounds hot; their events are found by position in the feed.
        HistoryRecord::AccountCreated(_)
        | HistoryRecord::OperatorAction(_)
        | HistoryRecord::Table(_)
        | HistoryRecord::Payment(_) => {}
        HistoryRecord::PaymentArchived(payment) => {
            each(IndexedKey::Payment(payment.key()));
            payment
                .clearing_transfer_ids()
                .for_each(|id| each(IndexedKey::PaymentTransfer(id)));
        }
        HistoryRecord::CaseArchived(archived) => each(IndexedKey::Case(archived.case.id)),
        HistoryRecord::Transfer(stored) => {
            each(IndexedKey::Transfer(stored.transfer.id));
            if stored.resolves_pending() {
                each(IndexedKey::Resolution(stored.transfer.pending_id));
            }
        }
        HistoryRecord::Wallet(record) => {
            each(IndexedKey::Wallet(&record.key));
            match &record.entry {
                WalletEntry::Rollback { request, outcome } if outcome.moved_money() => {
                    each(IndexedKey::RolledBack(&request.rolled_back_transaction_id));
                }
                WalletEntry::Win { request, outcome } if outcome.is_ok() => {
                    each(IndexedKey::Settled(request.player_id, &request.round_id));
                }
                _ => {}
            }
        }
    }
}
