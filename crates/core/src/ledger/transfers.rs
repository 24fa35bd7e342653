//! create_transfers (single, pending, post, void) and the expiry of pending transfers.
//!
//! The order of checks follows TigerBeetle's `create_transfer`: ids, then idempotency (so a
//! retry answers `exists` whatever changed since), then the request's own fields, then the
//! accounts, then balances. One deliberate difference: an amount of zero is refused
//! (`amount_must_not_be_zero`), except on a post, where 0 means "the full pending amount".

use super::{Ledger, Movement, PendingStatus, EXPIRIES_PER_ENTRY_MAX, NANOS_PER_SECOND};
use crate::history::StoredTransfer;
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
        if let Some(existing) = self.find_transfer(t.id) {
            return transfer_exists(t, existing);
        }
        // The ledger's own pending transfers (withdrawal reservations) are resolved only by
        // the commands that own them: to a client they do not exist.
        if is_reserved_id(t.pending_id) {
            return R::PendingTransferNotFound;
        }
        if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            return self.post_or_void_pending_transfer(t, timestamp);
        }
        self.create_single_or_pending(t, timestamp)
    }

    pub(super) fn create_single_or_pending(
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
        let debit = self.account_at(debit_slot);
        let credit = self.account_at(credit_slot);
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
        if pending_deadline(timestamp, t.timeout_s).is_err() {
            return R::OverflowsTimeout;
        }
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
        let movement = if pending {
            Movement::pending(amount)
        } else {
            Movement::posted(amount)
        };
        let seq = self.insert_transfer(transfer, [debit_slot, credit_slot], 0, movement);
        if !pending {
            return R::Ok;
        }
        let stored = self.record_transfer_by_seq(seq).clone();
        self.insert_pending(stored);
        if closing_debit {
            self.set_closed(debit_slot, true);
        }
        if closing_credit {
            self.set_closed(credit_slot, true);
        }
        R::Ok
    }

    /// The newest record, which must be the transfer with sequence number `seq`.
    fn record_transfer_by_seq(&self, seq: u64) -> &StoredTransfer {
        let index = self.entry.records.len() as u32 - 1;
        let stored = self.record_transfer(index);
        assert_eq!(stored.seq, seq);
        stored
    }

    pub(super) fn post_or_void_pending_transfer(
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
        let Some(p) = self.find_transfer(t.pending_id) else {
            return R::PendingTransferNotFound;
        };
        let p = p.transfer.clone();
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
        match self.pending_status(t.pending_id) {
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
            && self
                .account_at(debit_slot)
                .flags
                .contains(AccountFlags::CLOSED)
        {
            return R::DebitAccountAlreadyClosed;
        }
        if !void
            && self
                .account_at(credit_slot)
                .flags
                .contains(AccountFlags::CLOSED)
        {
            return R::CreditAccountAlreadyClosed;
        }

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
        let posted = if post { u128::from(amount) } else { 0 };
        let movement = Movement::resolve(u128::from(p.amount), posted);
        self.insert_transfer(transfer, [debit_slot, credit_slot], p.amount, movement);
        if void {
            self.reopen_closed_by(p.flags, debit_slot, credit_slot);
        }
        self.remove_pending(t.pending_id);
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

    /// Voids pending transfers whose deadline is at or before `now`, oldest deadline first
    /// (ties by id), at most `EXPIRIES_PER_ENTRY_MAX`, recording each as a
    /// `void_pending_transfer` with a reserved id.
    pub(super) fn expire_pending_transfers(&mut self, now: u64) {
        assert!(!self.undo.active);
        for _ in 0..EXPIRIES_PER_ENTRY_MAX {
            let Some(pending_id) = self.pending.first_expired(now) else {
                break;
            };
            let pending = self.remove_pending(pending_id);
            let p = pending.stored.transfer;
            let timestamp = self.next_timestamp();
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
            self.expiry_sequence += 1;
            let debit_slot = self.account_index[&void.debit_account_id];
            let credit_slot = self.account_index[&void.credit_account_id];
            let movement = Movement::resolve(u128::from(p.amount), 0);
            self.insert_transfer(void, [debit_slot, credit_slot], p.amount, movement);
            self.reopen_closed_by(p.flags, debit_slot, credit_slot);
        }
    }
}

/// The same id again: `exists` if every field the client gave matches, else the first field
/// that differs (flags first, because they change what the other fields mean).
fn transfer_exists(t: &NewTransfer, existing: &StoredTransfer) -> CreateTransferResult {
    let e = &existing.transfer;
    if t.flags != e.flags {
        return R::ExistsWithDifferentFlags;
    }
    if t.pending_id != e.pending_id {
        return R::ExistsWithDifferentPendingId;
    }
    if t.timeout_s != e.timeout_s {
        return R::ExistsWithDifferentTimeout;
    }
    if existing.resolves_pending() {
        // A post or void may leave the accounts 0 (inherit) and the amount 0 (all of it).
        if t.debit_account_id != 0 && t.debit_account_id != e.debit_account_id {
            return R::ExistsWithDifferentDebitAccountId;
        }
        if t.credit_account_id != 0 && t.credit_account_id != e.credit_account_id {
            return R::ExistsWithDifferentCreditAccountId;
        }
        let requested = if t.amount == 0 {
            existing.pending_amount
        } else {
            t.amount
        };
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

/// The deadline of a pending transfer created at `timestamp` with `timeout_s` (None: never
/// expires); `Err` when it does not fit the u64 nanosecond clock.
pub(crate) fn pending_deadline(timestamp: u64, timeout_s: u32) -> Result<Option<u64>, ()> {
    if timeout_s == 0 {
        return Ok(None);
    }
    let timeout_ns = u64::from(timeout_s) * NANOS_PER_SECOND;
    timestamp.checked_add(timeout_ns).map(Some).ok_or(())
}
