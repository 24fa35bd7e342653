//! What a read sees: the applied hot state and the history behind it, between two entries.

use std::sync::Arc;

use croupier_core::cases::{Case, CaseId};
use croupier_core::operators::{OperatorAction, OperatorChain};
use croupier_core::payments::{ArchivedPayment, DepositRecord, PaymentId, WithdrawalRecord};
use croupier_core::reads::{
    account_transfers, archived_payments_along, wallet_outcome, TransferPage,
};
use croupier_core::{
    Account, AccountId, HistorySource, Ledger, LedgerCode, LedgerTotals, Transfer, TransferId,
    WalletOutcome,
};
use croupier_store::HistoryReader;

/// A read failed on storage (the node is unhealthy; the message names file and offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("history is unreadable: {0}")]
    Storage(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<croupier_store::StoreError> for ReadError {
    fn from(error: croupier_store::StoreError) -> Self {
        ReadError::Storage(error.to_string())
    }
}

/// A page of the operator audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTrailPage {
    pub actions: Vec<OperatorAction>,
    /// The whole trail's length and the hash of its last action.
    pub chain: OperatorChain,
}

/// The ledger as of the last applied entry. Borrowed for the duration of one read.
pub struct LedgerView<'a> {
    ledger: &'a Ledger,
    history: &'a HistoryReader,
}

impl<'a> LedgerView<'a> {
    pub(crate) fn new(ledger: &'a Ledger, history: &'a HistoryReader) -> Self {
        LedgerView { ledger, history }
    }

    /// The hot state (accounts, balances, open pendings, totals).
    pub fn ledger(&self) -> &'a Ledger {
        self.ledger
    }

    pub fn account(&self, id: AccountId) -> Option<&'a Account> {
        self.ledger.account(id)
    }

    pub fn player_balance(&self, id: AccountId) -> Option<(LedgerCode, u128)> {
        self.ledger.player_balance(id)
    }

    pub fn totals(&self) -> LedgerTotals {
        self.ledger.totals()
    }

    pub fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, ReadError> {
        Ok(self
            .history
            .transfer_by_id(id)?
            .map(|stored| stored.transfer))
    }

    /// A page of the account's transfers, newest first, from disk. `cursor` is a previous
    /// page's `next_before`.
    pub fn account_transfers(
        &self,
        id: AccountId,
        limit: usize,
        cursor: Option<u64>,
    ) -> Result<TransferPage, ReadError> {
        Ok(account_transfers(
            self.ledger,
            self.history,
            id,
            limit,
            cursor,
        )?)
    }

    /// Up to `limit` operator actions from number `from` on, oldest first, from disk; and the
    /// trail's length and head as of this read.
    pub fn operator_actions(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<OperatorTrailPage, ReadError> {
        let chain = self.ledger.operator_chain();
        let actions = self.history.operator_actions_from(from, limit)?;
        Ok(OperatorTrailPage { actions, chain })
    }

    pub fn wallet_outcome(&self, transaction_id: &str) -> Result<Option<WalletOutcome>, ReadError> {
        Ok(wallet_outcome(self.history, transaction_id)?)
    }

    /// A deposit open (hot state) or final (history).
    pub fn deposit(&self, id: PaymentId) -> Result<Option<Arc<DepositRecord>>, ReadError> {
        Ok(croupier_core::reads::deposit_record(
            self.ledger,
            self.history,
            id,
        )?)
    }

    /// An AML case open (hot state) or decided (history).
    pub fn case(&self, id: CaseId) -> Result<Option<Arc<Case>>, ReadError> {
        Ok(croupier_core::reads::case_record(
            self.ledger,
            self.history,
            id,
        )?)
    }

    /// Up to `limit` decided cases from history, the last decided first.
    pub fn closed_cases(&self, limit: usize) -> Result<Vec<Arc<Case>>, ReadError> {
        Ok(croupier_core::reads::closed_cases(
            self.ledger,
            self.history,
            limit,
        )?)
    }

    /// A withdrawal open or held (hot state) or final (history).
    pub fn withdrawal(&self, id: PaymentId) -> Result<Option<Arc<WithdrawalRecord>>, ReadError> {
        Ok(croupier_core::reads::withdrawal_record(
            self.ledger,
            self.history,
            id,
        )?)
    }

    /// One page of a walk back along an account's transfers: the final payments they name,
    /// until `keep` refuses a transfer (`croupier_core::reads::archived_payments_along`).
    pub fn archived_payments_along(
        &self,
        account: AccountId,
        limit: usize,
        cursor: Option<u64>,
        keep: impl Fn(&Transfer) -> bool,
    ) -> Result<(Vec<ArchivedPayment>, Option<u64>), ReadError> {
        let (ledger, history) = (self.ledger, self.history);
        Ok(archived_payments_along(
            ledger, history, account, limit, cursor, keep,
        )?)
    }

    /// Replays every transfer in history (streaming, from disk) and checks that the hot state
    /// is exactly what it implies: balances, open pendings, account chains, transfer count.
    /// O(history) reads: for tests, drills and audits, not for the request path.
    pub fn check_against_history(&self) -> Result<(), String> {
        const BATCH_TRANSFERS: usize = 4_096;
        let history = self.history;
        let mut next_seq = 0u64;
        let mut batch = Vec::new().into_iter();
        let transfers = std::iter::from_fn(move || loop {
            if let Some(stored) = batch.next() {
                return Some(Ok(stored));
            }
            match history.transfers_from(next_seq, BATCH_TRANSFERS) {
                Ok(read) if read.is_empty() => return None,
                Ok(read) => {
                    next_seq += read.len() as u64;
                    batch = read.into_iter();
                }
                Err(error) => {
                    next_seq = u64::MAX; // ends the stream after the error
                    return Some(Err(error));
                }
            }
        });
        self.ledger.check_against_history(transfers)
    }
}
