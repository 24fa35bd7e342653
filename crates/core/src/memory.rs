//! History kept in memory, and a ledger over it: the reference the on-disk store is checked
//! against, and what the ledger's own tests drive. Not for production: it grows with history.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;

use crate::cases::{ArchivedCase, Case, CaseId};
use crate::command::{Command, CommandResult};
use crate::history::{
    indexed_keys, HistoryKeys, HistoryRecord, HistorySource, IndexedKey, Prefetched,
    StoredTransfer, WalletRecord,
};
use crate::ids::{AccountId, TransferId};
use crate::ledger::{Ledger, LedgerTotals};
use crate::operators::OperatorAction;
use crate::payments::{ArchivedPayment, DepositRecord, PaymentId, PaymentKey, WithdrawalRecord};
use crate::reads::{account_transfers, wallet_outcome, TransferPage};
use crate::types::{Account, Transfer};
use crate::wallet::{WalletEntry, WalletOutcome};

/// Every history record, with the same lookups the on-disk store offers.
#[derive(Clone, Debug, Default)]
pub struct MemoryHistory {
    transfers: Vec<StoredTransfer>,
    transfer_index: HashMap<TransferId, u64>,
    resolutions: HashMap<TransferId, u64>,
    wallet: Vec<WalletRecord>,
    wallet_index: HashMap<String, usize>,
    operator_actions: Vec<OperatorAction>,
    rolled_back: HashSet<String>,
    settled: HashSet<(AccountId, String)>,
    payments: Vec<ArchivedPayment>,
    payment_index: HashMap<PaymentKey, usize>,
    payment_transfers: HashMap<TransferId, usize>,
    cases: HashMap<CaseId, ArchivedCase>,
    /// Every record in order (the event feed publishes those that are events).
    records: Vec<HistoryRecord>,
}

impl MemoryHistory {
    /// Appends one entry's records and indexes them, as the store does after an apply.
    pub fn persist(&mut self, records: &[HistoryRecord]) {
        for record in records {
            self.persist_one(record);
        }
    }

    fn persist_one(&mut self, record: &HistoryRecord) {
        let wallet_index = self.wallet.len();
        match record {
            HistoryRecord::AccountCreated(_)
            | HistoryRecord::Table(_)
            | HistoryRecord::Payment(_) => {}
            HistoryRecord::PaymentArchived(payment) => self.payments.push(payment.clone()),
            HistoryRecord::CaseArchived(archived) => {
                let previous = self.cases.insert(archived.case.id, archived.clone());
                assert!(previous.is_none(), "case archived twice");
            }
            HistoryRecord::Transfer(stored) => {
                assert_eq!(stored.seq, self.transfers.len() as u64, "transfer seq gap");
                self.transfers.push(stored.clone());
            }
            HistoryRecord::Wallet(wallet) => self.wallet.push(wallet.clone()),
            HistoryRecord::OperatorAction(action) => {
                assert_eq!(
                    action.seq,
                    self.operator_actions.len() as u64,
                    "operator seq gap"
                );
                self.operator_actions.push(action.clone());
            }
        }
        indexed_keys(record, |key| match key {
            IndexedKey::Transfer(id) => {
                let seq = self.transfers.len() as u64 - 1;
                assert!(
                    self.transfer_index.insert(id, seq).is_none(),
                    "transfer id reused"
                );
            }
            IndexedKey::Resolution(pending_id) => {
                let seq = self.transfers.len() as u64 - 1;
                assert!(self.resolutions.insert(pending_id, seq).is_none());
            }
            IndexedKey::Wallet(key) => {
                let previous = self.wallet_index.insert(key.to_owned(), wallet_index);
                assert!(previous.is_none(), "wallet key reused");
            }
            IndexedKey::RolledBack(key) => assert!(self.rolled_back.insert(key.to_owned())),
            IndexedKey::Settled(player, round) => {
                self.settled.insert((player, round.to_owned()));
            }
            IndexedKey::Payment(key) => {
                let previous = self.payment_index.insert(key, self.payments.len() - 1);
                assert!(previous.is_none(), "payment archived twice");
            }
            IndexedKey::PaymentTransfer(id) => {
                let previous = self.payment_transfers.insert(id, self.payments.len() - 1);
                assert!(previous.is_none(), "a transfer made by two payments");
            }
            IndexedKey::Case(_) => {} // kept by id above
        });
        self.records.push(record.clone());
    }

    pub fn transfers(&self) -> &[StoredTransfer] {
        &self.transfers
    }

    pub fn wallet_records(&self) -> &[WalletRecord] {
        &self.wallet
    }

    /// Every payment archived, in order.
    pub fn archived_payments(&self) -> &[ArchivedPayment] {
        &self.payments
    }

    pub fn operator_actions(&self) -> &[OperatorAction] {
        &self.operator_actions
    }

    pub fn records(&self) -> &[HistoryRecord] {
        &self.records
    }

    #[cfg(test)]
    pub(crate) fn transfers_mut(&mut self) -> &mut Vec<StoredTransfer> {
        &mut self.transfers
    }

    #[cfg(test)]
    pub(crate) fn push_wallet_record_unchecked(&mut self, record: WalletRecord) {
        self.wallet.push(record);
    }
}

impl HistorySource for MemoryHistory {
    type Error = Infallible;

    fn transfer_by_id(&self, id: TransferId) -> Result<Option<StoredTransfer>, Infallible> {
        Ok(self
            .transfer_index
            .get(&id)
            .map(|&seq| self.transfers[seq as usize].clone()))
    }

    fn transfer_at(&self, seq: u64) -> Result<Option<StoredTransfer>, Infallible> {
        Ok(usize::try_from(seq)
            .ok()
            .and_then(|seq| self.transfers.get(seq))
            .cloned())
    }

    fn resolution_of(&self, pending_id: TransferId) -> Result<Option<StoredTransfer>, Infallible> {
        Ok(self
            .resolutions
            .get(&pending_id)
            .map(|&seq| self.transfers[seq as usize].clone()))
    }

    fn wallet_entry(&self, key: &str) -> Result<Option<WalletEntry>, Infallible> {
        Ok(self
            .wallet_index
            .get(key)
            .map(|&index| self.wallet[index].entry.clone()))
    }

    fn is_rolled_back(&self, bet_key: &str) -> Result<bool, Infallible> {
        Ok(self.rolled_back.contains(bet_key))
    }

    fn is_settled(&self, player: AccountId, round: &str) -> Result<bool, Infallible> {
        Ok(self.settled.contains(&(player, round.to_owned())))
    }

    fn archived_payment(&self, key: PaymentKey) -> Result<Option<ArchivedPayment>, Infallible> {
        let found = self.payment_index.get(&key);
        Ok(found.map(|&index| self.payments[index].clone()))
    }

    fn archived_payment_of_transfer(
        &self,
        id: TransferId,
    ) -> Result<Option<ArchivedPayment>, Infallible> {
        let found = self.payment_transfers.get(&id);
        Ok(found.map(|&index| self.payments[index].clone()))
    }

    fn archived_case(&self, id: CaseId) -> Result<Option<ArchivedCase>, Infallible> {
        Ok(self.cases.get(&id).cloned())
    }
}

/// A ledger with its history in memory: prefetch, apply and persist in one call.
#[derive(Clone, Debug, Default)]
pub struct MemoryLedger {
    pub ledger: Ledger,
    pub history: MemoryHistory,
    keys: HistoryKeys,
    prefetched: Prefetched,
    records: Vec<HistoryRecord>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger restored from a checkpoint of hot state over an existing history.
    pub fn from_parts(ledger: Ledger, history: MemoryHistory) -> Self {
        MemoryLedger {
            ledger,
            history,
            ..Default::default()
        }
    }

    /// Applies `commands` as one entry of term 0 (a ledger with no consensus around it).
    pub fn apply(&mut self, timestamp_ns: u64, commands: &[Command]) -> Vec<CommandResult> {
        let stamp = crate::command::EntryStamp {
            timestamp_ns,
            term: 0,
        };
        self.apply_in_term(stamp, commands)
    }

    /// Applies `commands` as one entry stamped `stamp`.
    pub fn apply_in_term(
        &mut self,
        stamp: crate::command::EntryStamp,
        commands: &[Command],
    ) -> Vec<CommandResult> {
        self.keys.clear();
        self.ledger.history_keys(commands, &mut self.keys);
        let Ok(()) = self.history.fetch(&self.keys, &mut self.prefetched);
        self.records.clear();
        let results = self
            .ledger
            .apply(stamp, commands, &mut self.prefetched, &mut self.records);
        self.history.persist(&self.records);
        results
    }

    /// The hot state's checkpoint bytes (`codec::encode_checkpoint`).
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        crate::codec::encode_checkpoint(&self.ledger.freeze(), &mut bytes)
            .expect("writing to a Vec cannot fail");
        bytes
    }

    /// Everything the ledger is, as bytes: the checkpoint of the hot state followed by every
    /// history record. Two ledgers are the same state exactly when these are equal.
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut bytes = self.checkpoint();
        for record in self.history.records() {
            if record.is_event() {
                crate::codec::encode_record(record, &mut bytes);
            } else {
                crate::codec::encode_wallet_log_record(record, &mut bytes);
            }
        }
        bytes
    }

    /// A ledger from a checkpoint of its hot state over the history it had then.
    pub fn restore(
        checkpoint: &[u8],
        history: MemoryHistory,
    ) -> Result<MemoryLedger, crate::codec::DecodeError> {
        let ledger = crate::codec::decode_checkpoint(checkpoint)?;
        Ok(MemoryLedger::from_parts(ledger, history))
    }

    /// The records the last `apply` produced.
    pub fn last_records(&self) -> &[HistoryRecord] {
        &self.records
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.ledger.account(id)
    }

    pub fn transfer(&self, id: TransferId) -> Option<Transfer> {
        let Ok(found) = self.history.transfer_by_id(id);
        found.map(|stored| stored.transfer)
    }

    /// The account's transfers, newest first, at most `limit`.
    pub fn account_transfers(&self, id: AccountId, limit: usize) -> Vec<Transfer> {
        let Ok(page) = self.account_transfers_page(id, limit, None);
        page.transfers
    }

    pub fn account_transfers_page(
        &self,
        id: AccountId,
        limit: usize,
        before_seq: Option<u64>,
    ) -> Result<TransferPage, Infallible> {
        account_transfers(&self.ledger, &self.history, id, limit, before_seq)
    }

    /// A deposit open (hot state) or final (history).
    pub fn deposit(&self, id: PaymentId) -> Option<Arc<DepositRecord>> {
        let Ok(found) = crate::reads::deposit_record(&self.ledger, &self.history, id);
        found
    }

    /// An AML case open (hot state) or decided (history).
    pub fn case(&self, id: CaseId) -> Option<Arc<Case>> {
        let Ok(found) = crate::reads::case_record(&self.ledger, &self.history, id);
        found
    }

    /// Up to `limit` decided cases, the last decided first.
    pub fn closed_cases(&self, limit: usize) -> Vec<Arc<Case>> {
        let Ok(found) = crate::reads::closed_cases(&self.ledger, &self.history, limit);
        found
    }

    /// A withdrawal open or held (hot state) or final (history).
    pub fn withdrawal(&self, id: PaymentId) -> Option<Arc<WithdrawalRecord>> {
        let Ok(found) = crate::reads::withdrawal_record(&self.ledger, &self.history, id);
        found
    }

    pub fn wallet_outcome(&self, transaction_id: &str) -> Option<WalletOutcome> {
        let Ok(outcome) = wallet_outcome(&self.history, transaction_id);
        outcome
    }

    pub fn player_balance(&self, id: AccountId) -> Option<(crate::ids::LedgerCode, u128)> {
        self.ledger.player_balance(id)
    }

    pub fn last_timestamp(&self) -> u64 {
        self.ledger.last_timestamp()
    }

    pub fn totals(&self) -> LedgerTotals {
        self.ledger.totals()
    }

    pub fn check_totals(&self) -> Result<(), String> {
        self.ledger.check_totals()
    }

    /// Every invariant: the hot state against a replay of the whole history, and every wallet
    /// record against the transfers it names.
    pub fn check_invariants(&self) -> Result<(), String> {
        let transfers = self
            .history
            .transfers()
            .iter()
            .map(|stored| Ok::<_, Infallible>(stored.clone()));
        self.ledger.check_against_history(transfers)?;
        let mut ids = HashSet::new();
        for stored in self.history.transfers() {
            if !ids.insert(stored.transfer.id) {
                return Err(format!("transfer id {} used twice", stored.transfer.id));
            }
        }
        for record in self.history.wallet_records() {
            self.check_wallet_record(record)?;
        }
        Ok(())
    }

    fn check_wallet_record(&self, record: &WalletRecord) -> Result<(), String> {
        let key = &record.key;
        crate::wallet::check_wallet_key(key).map_err(|e| format!("wallet key {e}"))?;
        let player = record.entry.player_id();
        // A registered player's calls reach its wallets; any other id is the account itself.
        let accounts: Vec<AccountId> = match self.ledger.player(player) {
            Some(registered) => registered.wallets.iter().map(|&(_, id)| id).collect(),
            None => vec![player],
        };
        if accounts
            .iter()
            .any(|&account| self.ledger.player_balance(account).is_none())
        {
            return Err(format!("wallet entry {key:?} names a non-player"));
        }
        if let WalletEntry::Tombstone {
            player_id,
            rollback_transaction_id,
            ..
        } = &record.entry
        {
            let Ok(rollback) = self.history.wallet_entry(rollback_transaction_id);
            return match rollback {
                Some(WalletEntry::Rollback { request, .. })
                    if request.player_id == *player_id
                        && request.rolled_back_transaction_id == *key =>
                {
                    Ok(())
                }
                _ => Err(format!("tombstone {key:?} without its rollback")),
            };
        }
        if let WalletOutcome::Ok {
            transfer_id: Some(id),
            ..
        } = record.entry.outcome()
        {
            let Some(t) = self.transfer(id) else {
                return Err(format!("wallet entry {key:?} names a missing transfer"));
            };
            let touches_player = accounts
                .iter()
                .any(|&account| t.debit_account_id == account || t.credit_account_id == account);
            if !touches_player || !crate::ids::is_reserved_id(t.id) {
                return Err(format!("wallet entry {key:?} disagrees with transfer {id}"));
            }
        }
        Ok(())
    }
}
