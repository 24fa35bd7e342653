//! create_accounts, in TigerBeetle's order of checks: ids, idempotency, then the request.

use super::Ledger;
use crate::ids::{house_account_id, is_reserved_id, LedgerCode};
use crate::types::{Account, AccountFlags, AccountKind, CreateAccountResult, NewAccount};

impl Ledger {
    pub(super) fn create_accounts(&mut self, items: &[NewAccount]) -> Vec<CreateAccountResult> {
        self.run_chained(items, Self::create_account)
    }

    fn create_account(&mut self, request: &NewAccount, timestamp: u64) -> CreateAccountResult {
        use CreateAccountResult as R;
        if request.id == 0 {
            return R::IdMustNotBeZero;
        }
        if is_reserved_id(request.id) {
            return R::IdMustNotBeReserved;
        }
        let flags = normalized_flags(request);
        if let Some(slot) = self.slot_of_account(request.id) {
            let existing = self.accounts.get(slot as usize);
            if existing.flags_at_creation != flags {
                return R::ExistsWithDifferentFlags;
            }
            if existing.account.ledger != request.ledger {
                return R::ExistsWithDifferentLedger;
            }
            if existing.account.kind != request.kind {
                return R::ExistsWithDifferentKind;
            }
            return R::Exists;
        }
        if flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return R::FlagsAreMutuallyExclusive;
        }
        if request.kind == AccountKind::House {
            return R::KindMustNotBeHouse;
        }
        self.insert_account(
            new_account(request.id, request.ledger, request.kind, flags, timestamp),
            flags,
        );
        R::Ok
    }

    /// The house account of `ledger`, created on first use: the ledger's own counterparty for
    /// bets and wins, without balance limits (the house may pay out more than it took in).
    pub(super) fn ensure_house_account(&mut self, ledger: LedgerCode) -> u32 {
        let id = house_account_id(ledger);
        if let Some(slot) = self.slot_of_account(id) {
            let house = self.account_at(slot);
            assert!(house.kind == AccountKind::House && house.ledger == ledger);
            return slot;
        }
        let timestamp = self.next_timestamp();
        let flags = AccountFlags::empty();
        self.insert_account(
            new_account(id, ledger, AccountKind::House, flags, timestamp),
            flags,
        )
    }
}

/// Player accounts never go below zero: they always carry `debits_must_not_exceed_credits`,
/// whether or not the client asked for it.
pub(crate) fn normalized_flags(request: &NewAccount) -> AccountFlags {
    let mut flags = request.flags;
    if request.kind == AccountKind::Player {
        flags.insert(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    }
    flags
}

pub(super) fn new_account(
    id: u128,
    ledger: LedgerCode,
    kind: AccountKind,
    flags: AccountFlags,
    timestamp: u64,
) -> Account {
    Account {
        id,
        ledger,
        kind,
        flags,
        debits_pending: 0,
        debits_posted: 0,
        credits_pending: 0,
        credits_posted: 0,
        timestamp,
    }
}
