//! create_transfers (single, pending, post, void) and the expiry of pending transfers.
//!
//! The order of checks follows TigerBeetle's `create_transfer`: ids, then idempotency (so a
//! retry answers `exists` whatever changed since), then the request's own fields, then the
//! accounts, then balances. One deliberate difference: an amount of zero is refused
//! (`amount_must_not_be_zero`), except on a post, where 0 means "the full pending amount".

use super::{Ledger, Movement, PendingStatus, NANOS_PER_SECOND};
use crate::ids::{expiry_transfer_id, is_reserved_id};
use crate::types::{AccountFlags, CreateTransferResult, NewTransfer, Transfer, TransferFlags};

use CreateTransferResult as R;

impl Ledger {
    pub(super) fn create_transfers(&mut self, items: &[NewTransfer]) -> Vec<CreateTransferResult> {
        self.run_chained(items, Self::create_transfer)
    }

    fn create_transfer(&mut self, t: &NewTransfer, timestamp: u64) -> CreateTransferResult {
        if t.id == 0 {
            return R::IdMustNotBeZero;
        }
        if is_reserved_id(t.id) {
            return R::IdMustNotBeReserved;
        }
        if let Some(&slot) = self.transfer_index.get(&t.id) {
            return self.transfer_exists(t, slot);
        }
        if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            return self.post_or_void_pending_transfer(t, timestamp);
        }
        self.create_single_or_pending(t, timestamp)
    }

    fn create_single_or_pending(
        &mut self,
        t: &NewTransfer,
        timestamp: u64,
    ) -> CreateTransferResult {
        if t.debit_account_id == 0 {
            return R::DebitAccountIdMustNotBeZero;
        }
        if t.credit_account_id == 0 {
            return R::CreditAccountIdMustNotBeZero;
        }
        if t.debit_account_id == t.credit_account_id {
            return R::AccountsMustBeDifferent;
        }
        if t.pending_id != 0 {
            return R::PendingIdMustBeZero;
        }
        let pending = t.flags.contains(TransferFlags::PENDING);
        let closing_debit = t.flags.contains(TransferFlags::CLOSING_DEBIT);
        let closing_credit = t.flags.contains(TransferFlags::CLOSING_CREDIT);
        if !pending {
            if t.timeout_s != 0 {
                return R::TimeoutReservedForPendingTransfer;
            }
            if closing_debit || closing_credit {
                return R::ClosingTransferMustBePending;
            }
        }
        if t.amount == 0 {
            return R::AmountMustNotBeZero;
        }
        let Some(debit_slot) = self.slot_of_account(t.debit_account_id) else {
            return R::DebitAccountNotFound;
        };
        let Some(credit_slot) = self.slot_of_account(t.credit_account_id) else {
            return R::CreditAccountNotFound;
        };
        let debit = &self.accounts[debit_slot as usize].account;
        let credit = &self.accounts[credit_slot as usize].account;
        if debit.ledger != credit.ledger {
            return R::AccountsMustHaveTheSameLedger;
        }
        if t.ledger != debit.ledger {
            return R::TransferMustHaveTheSameLedgerAsAccounts;
        }
        if debit.flags.contains(AccountFlags::CLOSED) {
            return R::DebitAccountAlreadyClosed;
        }
        if credit.flags.contains(AccountFlags::CLOSED) {
            return R::CreditAccountAlreadyClosed;
        }
        let amount = u128::from(t.amount);
        let debits_after = debit
            .debits_pending
            .checked_add(debit.debits_posted)
            .and_then(|d| d.checked_add(amount));
        let Some(debits_after) = debits_after else {
            return R::OverflowsDebits;
        };
        let credits_after = credit
            .credits_pending
            .checked_add(credit.credits_posted)
            .and_then(|c| c.checked_add(amount));
        let Some(credits_after) = credits_after else {
            return R::OverflowsCredits;
        };
        let deadline = match pending_deadline(timestamp, t.timeout_s) {
            Ok(deadline) => deadline,
            Err(()) => return R::OverflowsTimeout,
        };
        if debit
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && debits_after > debit.credits_posted
        {
            return R::ExceedsCredits;
        }
        if credit
            .flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && credits_after > credit.debits_posted
        {
            return R::ExceedsDebits;
        }

        let transfer = Transfer {
            id: t.id,
            debit_account_id: t.debit_account_id,
            credit_account_id: t.credit_account_id,
            amount: t.amount,
            ledger: t.ledger,
            flags: t.flags,
            pending_id: 0,
            timeout_s: t.timeout_s,
            timestamp,
        };
        let slot = self.insert_transfer(transfer, debit_slot, credit_slot);
        if !pending {
            self.move_balances(debit_slot, credit_slot, Movement::posted(amount));
            return R::Ok;
        }
        self.move_balances(debit_slot, credit_slot, Movement::pending(amount));
        self.set_pending_status(slot, PendingStatus::Pending);
        if let Some(deadline) = deadline {
            self.insert_expiry((deadline, t.id));
        }
        if closing_debit {
            self.set_closed(debit_slot, true);
        }
        if closing_credit {
            self.set_closed(credit_slot, true);
        }
        R::Ok
    }

    fn post_or_void_pending_transfer(
        &mut self,
        t: &NewTransfer,
        timestamp: u64,
    ) -> CreateTransferResult {
        let post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        if (post && void)
            || t.flags.contains(TransferFlags::PENDING)
            || t.flags.contains(TransferFlags::CLOSING_DEBIT)
            || t.flags.contains(TransferFlags::CLOSING_CREDIT)
        {
            return R::FlagsAreMutuallyExclusive;
        }
        if t.pending_id == 0 {
            return R::PendingIdMustNotBeZero;
        }
        if t.pending_id == t.id {
            return R::PendingIdMustBeDifferent;
        }
        if t.timeout_s != 0 {
            return R::TimeoutReservedForPendingTransfer;
        }
        let Some(&pending_slot) = self.transfer_index.get(&t.pending_id) else {
            return R::PendingTransferNotFound;
        };
        let p = &self.transfers[pending_slot as usize];
        if !p.flags.contains(TransferFlags::PENDING) {
            return R::PendingTransferNotPending;
        }
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return R::PendingTransferHasDifferentDebitAccountId;
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return R::PendingTransferHasDifferentCreditAccountId;
        }
        if t.ledger != p.ledger {
            return R::PendingTransferHasDifferentLedger;
        }
        let amount = if t.amount == 0 { p.amount } else { t.amount };
        if amount > p.amount {
            return R::ExceedsPendingTransferAmount;
        }
        if void && amount < p.amount {
            return R::PendingTransferHasDifferentAmount;
        }
        match self.pending_status[&pending_slot] {
            PendingStatus::Pending => {}
            PendingStatus::Posted => return R::PendingTransferAlreadyPosted,
            PendingStatus::Voided => return R::PendingTransferAlreadyVoided,
            PendingStatus::Expired => return R::PendingTransferExpired,
        }
        let deadline =
            pending_deadline(p.timestamp, p.timeout_s).expect("deadline checked at creation");
        if deadline.is_some_and(|deadline| deadline <= timestamp) {
            // Expired within this entry; the next entry's sweep voids it.
            return R::PendingTransferExpired;
        }
        let debit_slot = self
            .slot_of_account(p.debit_account_id)
            .expect("pending's debit account");
        let credit_slot = self
            .slot_of_account(p.credit_account_id)
            .expect("pending's credit account");
        // The only movement a closed account allows is voiding a pending transfer.
        if !void
            && self.accounts[debit_slot as usize]
                .account
                .flags
                .contains(AccountFlags::CLOSED)
        {
            return R::DebitAccountAlreadyClosed;
        }
        if !void
            && self.accounts[credit_slot as usize]
                .account
                .flags
                .contains(AccountFlags::CLOSED)
        {
            return R::CreditAccountAlreadyClosed;
        }

        let pending_amount = u128::from(p.amount);
        let pending_flags = p.flags;
        let transfer = Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            ledger: p.ledger,
            flags: t.flags,
            pending_id: t.pending_id,
            timeout_s: 0,
            timestamp,
        };
        self.insert_transfer(transfer, debit_slot, credit_slot);
        let posted = if post { u128::from(amount) } else { 0 };
        self.move_balances(
            debit_slot,
            credit_slot,
            Movement::resolve(pending_amount, posted),
        );
        if void {
            self.reopen_closed_by(pending_flags, debit_slot, credit_slot);
        }
        let status = if post {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        self.set_pending_status(pending_slot, status);
        if let Some(deadline) = deadline {
            self.remove_expiry((deadline, t.pending_id));
        }
        R::Ok
    }

    /// Voiding (or expiring) a closing pending transfer reopens what it closed.
    fn reopen_closed_by(
        &mut self,
        pending_flags: TransferFlags,
        debit_slot: u32,
        credit_slot: u32,
    ) {
        if pending_flags.contains(TransferFlags::CLOSING_DEBIT) {
            self.set_closed(debit_slot, false);
        }
        if pending_flags.contains(TransferFlags::CLOSING_CREDIT) {
            self.set_closed(credit_slot, false);
        }
    }

    /// The same id again: `exists` if every field the client gave matches, else the first
    /// field that differs (flags first, because they change what the other fields mean).
    fn transfer_exists(&self, t: &NewTransfer, existing_slot: u32) -> CreateTransferResult {
        let e = &self.transfers[existing_slot as usize];
        if t.flags != e.flags {
            return R::ExistsWithDifferentFlags;
        }
        if t.pending_id != e.pending_id {
            return R::ExistsWithDifferentPendingId;
        }
        if t.timeout_s != e.timeout_s {
            return R::ExistsWithDifferentTimeout;
        }
        let resolves_pending = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        if resolves_pending {
            // A post or void may leave the accounts 0 (inherit) and the amount 0 (all of it).
            let p = self
                .transfer(e.pending_id)
                .expect("a stored post or void names its pending transfer");
            if t.debit_account_id != 0 && t.debit_account_id != e.debit_account_id {
                return R::ExistsWithDifferentDebitAccountId;
            }
            if t.credit_account_id != 0 && t.credit_account_id != e.credit_account_id {
                return R::ExistsWithDifferentCreditAccountId;
            }
            let requested = if t.amount == 0 { p.amount } else { t.amount };
            if requested != e.amount {
                return R::ExistsWithDifferentAmount;
            }
        } else {
            if t.debit_account_id != e.debit_account_id {
                return R::ExistsWithDifferentDebitAccountId;
            }
            if t.credit_account_id != e.credit_account_id {
                return R::ExistsWithDifferentCreditAccountId;
            }
            if t.amount != e.amount {
                return R::ExistsWithDifferentAmount;
            }
        }
        if t.ledger != e.ledger {
            return R::ExistsWithDifferentLedger;
        }
        R::Exists
    }

    /// Voids every pending transfer whose deadline is at or before `now`, oldest deadline
    /// first (ties by id), recording each as a `void_pending_transfer` with a reserved id.
    pub(super) fn expire_pending_transfers(&mut self, now: u64) {
        assert!(!self.undo.active);
        while let Some(&(deadline, pending_id)) = self.expiries.first() {
            if deadline > now {
                break;
            }
            self.expiries.pop_first();
            let pending_slot = self.transfer_index[&pending_id];
            assert_eq!(
                self.pending_status.get(&pending_slot),
                Some(&PendingStatus::Pending)
            );
            let timestamp = self.next_timestamp();
            let p = &self.transfers[pending_slot as usize];
            let void = Transfer {
                id: expiry_transfer_id(self.expiry_sequence),
                debit_account_id: p.debit_account_id,
                credit_account_id: p.credit_account_id,
                amount: p.amount,
                ledger: p.ledger,
                flags: TransferFlags::VOID_PENDING_TRANSFER,
                pending_id,
                timeout_s: 0,
                timestamp,
            };
            let pending_flags = p.flags;
            let pending_amount = u128::from(p.amount);
            self.expiry_sequence += 1;
            let debit_slot = self.account_index[&void.debit_account_id];
            let credit_slot = self.account_index[&void.credit_account_id];
            self.insert_transfer(void, debit_slot, credit_slot);
            self.move_balances(
                debit_slot,
                credit_slot,
                Movement::resolve(pending_amount, 0),
            );
            self.reopen_closed_by(pending_flags, debit_slot, credit_slot);
            self.set_pending_status(pending_slot, PendingStatus::Expired);
        }
    }
}

/// The deadline of a pending transfer created at `timestamp` with `timeout_s` (None: never
/// expires); `Err` when it does not fit the u64 nanosecond clock.
pub(crate) fn pending_deadline(timestamp: u64, timeout_s: u32) -> Result<Option<u64>, ()> {
    if timeout_s == 0 {
        return Ok(None);
    }
    let timeout_ns = u64::from(timeout_s) * NANOS_PER_SECOND;
    timestamp.checked_add(timeout_ns).map(Some).ok_or(())
}
