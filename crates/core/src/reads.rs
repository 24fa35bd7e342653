//! Reads that combine the hot state with history: an account's transfers page by page, the
//! stored answer to a wallet transaction id, and a payment open or final. Pure over a
//! `HistorySource`.

use std::sync::Arc;

use crate::cases::{Case, CaseId};
use crate::history::{HistorySource, StoredTransfer, NO_TRANSFER};
use crate::ids::AccountId;
use crate::ledger::Ledger;
use crate::payments::{ArchivedPayment, DepositRecord, PaymentId, PaymentKey, WithdrawalRecord};
use crate::types::Transfer;
use crate::wallet::WalletOutcome;

/// One page of an account's transfers, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferPage {
    pub transfers: Vec<Transfer>,
    /// Where the next (older) page starts: the sequence number of its first transfer; `None`
    /// when this page reached the account's first transfer.
    pub next_before: Option<u64>,
}

/// Most transfers one page may hold.
pub const TRANSFER_PAGE_LIMIT_MAX: usize = 8_190;

/// The account's transfers, newest first, at most `limit`, starting at sequence number
/// `start_seq` (a previous page's `next_before`) or at the newest. Empty for an unknown
/// account. `start_seq` must come from a page of the same account; a sequence number of a
/// transfer that does not touch the account yields an empty page.
pub fn account_transfers<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    account: AccountId,
    limit: usize,
    start_seq: Option<u64>,
) -> Result<TransferPage, H::Error> {
    let limit = limit.min(TRANSFER_PAGE_LIMIT_MAX);
    let Some(newest) = ledger.newest_transfer_of(account) else {
        return Ok(TransferPage::default());
    };
    let mut next = match start_seq {
        Some(seq) if seq <= newest || newest == NO_TRANSFER => seq,
        Some(_) => NO_TRANSFER,
        None => newest,
    };
    let mut page = TransferPage::default();
    while next != NO_TRANSFER && page.transfers.len() < limit {
        let Some(stored) = history.transfer_at(next)? else {
            break;
        };
        if !touches(&stored, account) {
            break;
        }
        next = stored.previous_of(account);
        page.transfers.push(stored.transfer);
    }
    page.next_before = (next != NO_TRANSFER).then_some(next);
    Ok(page)
}

fn touches(stored: &StoredTransfer, account: AccountId) -> bool {
    stored.transfer.debit_account_id == account || stored.transfer.credit_account_id == account
}

/// The stored answer to a wallet transaction id, if the ledger decided one (a tombstone left
/// by a rollback answers `BetAlreadyRolledBack`, as a bet with that id would).
pub fn wallet_outcome<H: HistorySource>(
    history: &H,
    transaction_id: &str,
) -> Result<Option<WalletOutcome>, H::Error> {
    Ok(history
        .wallet_entry(transaction_id)?
        .map(|entry| entry.outcome()))
}

/// A deposit wherever it is: the hot state while open, history once final.
pub fn deposit_record<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    id: PaymentId,
) -> Result<Option<Arc<DepositRecord>>, H::Error> {
    if let Some(record) = ledger.payments.deposits.get(&id) {
        return Ok(Some(record.clone()));
    }
    let archived = history.archived_payment(PaymentKey::Deposit(id))?;
    Ok(archived.as_ref().and_then(|a| a.deposit()).cloned())
}

/// A withdrawal wherever it is: the hot state while open or held, history once final.
pub fn withdrawal_record<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    id: PaymentId,
) -> Result<Option<Arc<WithdrawalRecord>>, H::Error> {
    if let Some(record) = ledger.payments.withdrawals.get(&id) {
        return Ok(Some(record.clone()));
    }
    let archived = history.archived_payment(PaymentKey::Withdrawal(id))?;
    Ok(archived.as_ref().and_then(|a| a.withdrawal()).cloned())
}

/// One page of a walk back along an account's transfers, newest first (as
/// `account_transfers`): the archived payments its transfers name, in order, stopping at the
/// first transfer `keep` refuses; and where the next page starts (`None`: the walk is done).
/// A transfer of a payment still open names none (its record is in the hot state).
pub fn archived_payments_along<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    account: AccountId,
    limit: usize,
    start_seq: Option<u64>,
    keep: impl Fn(&Transfer) -> bool,
) -> Result<(Vec<ArchivedPayment>, Option<u64>), H::Error> {
    let page = account_transfers(ledger, history, account, limit, start_seq)?;
    let mut payments = Vec::new();
    for transfer in &page.transfers {
        if !keep(transfer) {
            return Ok((payments, None));
        }
        if let Some(payment) = history.archived_payment_of_transfer(transfer.id)? {
            payments.push(payment);
        }
    }
    Ok((payments, page.next_before))
}

/// An AML case wherever it is: the hot state while open, history once decided.
pub fn case_record<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    id: CaseId,
) -> Result<Option<Arc<Case>>, H::Error> {
    if let Some(case) = ledger.compliance.cases.get(&id) {
        return Ok(Some(case.clone()));
    }
    Ok(history.archived_case(id)?.map(|archived| archived.case))
}

/// Up to `limit` decided cases from history, the last decided first (each archived case names
/// the one decided before it). Decided cases a checkpoint from before format 12 kept in the
/// hot state are in `Ledger::cases`, not here.
pub fn closed_cases<H: HistorySource>(
    ledger: &Ledger,
    history: &H,
    limit: usize,
) -> Result<Vec<Arc<Case>>, H::Error> {
    let mut cases = Vec::new();
    let mut next = ledger.compliance.last_closed;
    while next != 0 && cases.len() < limit {
        let Some(archived) = history.archived_case(next)? else {
            break;
        };
        next = archived.previous_closed;
        cases.push(archived.case);
    }
    Ok(cases)
}
