//! The ledger's invariants, and rebuilding a ledger from a snapshot's parts.
//!
//! Everything a ledger holds besides its accounts (as created), its transfers, its wallet
//! entries and its counters is derived: balances, `closed` flags, pending statuses, the expiry
//! index, per-account history chains and per-ledger sums all follow from replaying the transfers in
//! creation order. `derive` does that replay with checked arithmetic; the full invariant check
//! compares the live state with it, and a decoded snapshot is built from it (and refused when
//! its stored balances disagree).

use std::collections::{BTreeMap, BTreeSet};

use super::hashing::{IdMap, IdSet};

use super::transfers::pending_deadline;
use super::{
    AccountEntry, HistoryLinks, Ledger, LedgerSums, PendingStatus, WalletEntry, ACCOUNTS_MAX,
    NO_TRANSFER, TRANSFERS_MAX,
};
use crate::ids::{
    expiry_transfer_id, house_account_id, is_expiry_transfer_id, is_reserved_id,
    wallet_transfer_id, AccountId, LedgerCode,
};
use crate::types::{Account, AccountFlags, AccountKind, Transfer, TransferFlags};
use crate::wallet::WalletOutcome;

/// What a snapshot stores: enough to rebuild the whole ledger.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotParts {
    pub(crate) clock: u64,
    pub(crate) wallet_sequence: u64,
    pub(crate) expiry_sequence: u64,
    /// In creation order, with the flags each was created with.
    pub(crate) accounts: Vec<(Account, AccountFlags)>,
    /// In creation order.
    pub(crate) transfers: Vec<Transfer>,
    pub(crate) wallet: Vec<(String, WalletEntry)>,
    pub(crate) settled_rounds: Vec<(AccountId, String)>,
}

/// The state implied by the accounts and transfers.
struct Derived {
    account_index: IdMap<AccountId, u32>,
    transfer_index: IdMap<u128, u32>,
    balances: Vec<[u128; 4]>,
    closed_by_pending: Vec<bool>,
    newest_transfers: Vec<u32>,
    history_links: Vec<HistoryLinks>,
    pending_status: IdMap<u32, PendingStatus>,
    expiries: BTreeSet<(u64, u128)>,
    ledger_slots: BTreeMap<LedgerCode, u32>,
    ledger_sums: Vec<LedgerSums>,
}

fn derive<'a>(
    accounts: impl ExactSizeIterator<Item = &'a Account>,
    transfers: &[Transfer],
    clock: u64,
) -> Result<Derived, String> {
    if accounts.len() > ACCOUNTS_MAX || transfers.len() > TRANSFERS_MAX {
        return Err("more objects than slots".into());
    }
    let mut derived = Derived {
        account_index: IdMap::with_capacity_and_hasher(accounts.len(), Default::default()),
        transfer_index: IdMap::with_capacity_and_hasher(transfers.len(), Default::default()),
        balances: vec![[0; 4]; accounts.len()],
        closed_by_pending: vec![false; accounts.len()],
        newest_transfers: vec![NO_TRANSFER; accounts.len()],
        history_links: Vec::with_capacity(transfers.len()),
        pending_status: IdMap::default(),
        expiries: BTreeSet::new(),
        ledger_slots: BTreeMap::new(),
        ledger_sums: Vec::new(),
    };
    let mut account_timestamps = Vec::with_capacity(accounts.len());
    let mut account_ledgers = Vec::with_capacity(accounts.len());
    let mut previous_timestamp = 0;
    for (slot, account) in accounts.enumerate() {
        if account.id == 0
            || derived
                .account_index
                .insert(account.id, slot as u32)
                .is_some()
        {
            return Err(format!("account id {} is zero or repeated", account.id));
        }
        if account.timestamp <= previous_timestamp || account.timestamp > clock {
            return Err(format!(
                "account {} has an out-of-order timestamp",
                account.id
            ));
        }
        if is_reserved_id(account.id) != (account.kind == AccountKind::House)
            || (account.kind == AccountKind::House
                && account.id != house_account_id(account.ledger))
        {
            return Err(format!(
                "account {} has a reserved id but is not its ledger's house",
                account.id
            ));
        }
        previous_timestamp = account.timestamp;
        account_timestamps.push(account.timestamp);
        account_ledgers.push(account.ledger);
        if !derived.ledger_slots.contains_key(&account.ledger) {
            derived
                .ledger_slots
                .insert(account.ledger, derived.ledger_sums.len() as u32);
            derived.ledger_sums.push(LedgerSums::zero(account.ledger));
        }
    }

    previous_timestamp = 0;
    for (slot, t) in transfers.iter().enumerate() {
        let slot = slot as u32;
        let fail = |what: &str| Err(format!("transfer {}: {what}", t.id));
        if t.id == 0 || derived.transfer_index.insert(t.id, slot).is_some() {
            return fail("id is zero or repeated");
        }
        if t.timestamp <= previous_timestamp || t.timestamp > clock {
            return fail("timestamp out of order");
        }
        previous_timestamp = t.timestamp;
        let (Some(&debit), Some(&credit)) = (
            derived.account_index.get(&t.debit_account_id),
            derived.account_index.get(&t.credit_account_id),
        ) else {
            return fail("account not found");
        };
        let (debit, credit) = (debit as usize, credit as usize);
        if debit == credit
            || account_ledgers[debit] != t.ledger
            || account_ledgers[credit] != t.ledger
            || account_timestamps[debit] >= t.timestamp
            || account_timestamps[credit] >= t.timestamp
            || t.amount == 0
        {
            return fail("accounts, ledger, amount or timestamp inconsistent");
        }
        let debit_previous = std::mem::replace(&mut derived.newest_transfers[debit], slot);
        let credit_previous = std::mem::replace(&mut derived.newest_transfers[credit], slot);
        derived
            .history_links
            .push([debit_previous, credit_previous]);
        let amount = u128::from(t.amount);
        let post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        let (pending_add, pending_release, posted_add) = if post || void {
            let Some(&pending_slot) = derived.transfer_index.get(&t.pending_id) else {
                return fail("pending transfer not found");
            };
            let p = &transfers[pending_slot as usize];
            let status = derived.pending_status.get_mut(&pending_slot);
            if status != Some(&mut PendingStatus::Pending)
                || p.debit_account_id != t.debit_account_id
                || p.credit_account_id != t.credit_account_id
                || t.amount > p.amount
                || (void && t.amount != p.amount)
                || (post && void)
                || t.timeout_s != 0
            {
                return fail("does not resolve a pending transfer consistently");
            }
            let expired = is_expiry_transfer_id(t.id);
            let deadline =
                pending_deadline(p.timestamp, p.timeout_s).map_err(|()| "deadline overflow")?;
            match deadline {
                Some(deadline) if expired && deadline > t.timestamp => {
                    return fail("expired before its deadline")
                }
                Some(deadline) if !expired && deadline <= t.timestamp => {
                    return fail("resolved after its deadline")
                }
                None if expired => return fail("expired without a timeout"),
                _ => {}
            }
            let status = status.expect("checked above");
            *status = match (post, expired) {
                (true, false) => PendingStatus::Posted,
                (false, false) => PendingStatus::Voided,
                (false, true) => PendingStatus::Expired,
                (true, true) => return fail("an expiry cannot post"),
            };
            if void {
                if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
                    derived.closed_by_pending[debit] = false;
                }
                if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
                    derived.closed_by_pending[credit] = false;
                }
            }
            (0, u128::from(p.amount), if post { amount } else { 0 })
        } else if t.flags.contains(TransferFlags::PENDING) {
            if t.pending_id != 0 {
                return fail("pending with a pending_id");
            }
            derived.pending_status.insert(slot, PendingStatus::Pending);
            for (flag, side) in [
                (TransferFlags::CLOSING_DEBIT, debit),
                (TransferFlags::CLOSING_CREDIT, credit),
            ] {
                if t.flags.contains(flag) {
                    if derived.closed_by_pending[side] {
                        return fail("closes an account already closed");
                    }
                    derived.closed_by_pending[side] = true;
                }
            }
            (amount, 0, 0)
        } else {
            if t.pending_id != 0 || t.timeout_s != 0 {
                return fail("single transfer with pending_id or timeout");
            }
            (0, 0, amount)
        };
        let sums = &mut derived.ledger_sums[derived.ledger_slots[&t.ledger] as usize];
        for (side, pending, posted) in [(debit, 0, 1), (credit, 2, 3)] {
            let balances = &mut derived.balances[side];
            balances[pending] = checked(balances[pending], pending_add, pending_release)?;
            balances[posted] = checked(balances[posted], posted_add, 0)?;
        }
        sums.debits_pending = checked(sums.debits_pending, pending_add, pending_release)?;
        sums.credits_pending = checked(sums.credits_pending, pending_add, pending_release)?;
        sums.debits_posted = checked(sums.debits_posted, posted_add, 0)?;
        sums.credits_posted = checked(sums.credits_posted, posted_add, 0)?;
    }

    for (&slot, status) in &derived.pending_status {
        let p = &transfers[slot as usize];
        if *status == PendingStatus::Pending {
            if let Some(deadline) =
                pending_deadline(p.timestamp, p.timeout_s).map_err(|()| "deadline overflow")?
            {
                derived.expiries.insert((deadline, p.id));
            }
        }
    }
    Ok(derived)
}

fn checked(value: u128, add: u128, release: u128) -> Result<u128, String> {
    value
        .checked_add(add)
        .and_then(|v| v.checked_sub(release))
        .ok_or_else(|| "a balance overflows or goes below zero".to_string())
}

impl Ledger {
    /// The O(ledgers) check run after every apply: per ledger, debits equal credits (posted
    /// and pending) in the running sums.
    pub fn check_totals(&self) -> Result<(), String> {
        for sums in &self.ledger_sums {
            if sums.debits_posted != sums.credits_posted
                || sums.debits_pending != sums.credits_pending
            {
                return Err(format!("ledger {} does not balance: {sums:?}", sums.ledger));
            }
        }
        Ok(())
    }

    /// Every invariant, recomputed from scratch (O(transfers)); for tests and the audit.
    ///
    /// Per ledger, total debits equal total credits (posted and pending); no balance-limited
    /// account (every player) exceeds its limit; timestamps strictly increase; balances,
    /// `closed` flags, pending statuses, expiry deadlines, histories and running sums equal a
    /// replay of the transfers; wallet answers agree with the transfers they name.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_totals()?;
        let derived = derive(
            self.accounts.iter().map(|entry| &entry.account),
            &self.transfers,
            self.clock,
        )?;
        if derived.account_index != self.account_index
            || derived.transfer_index != self.transfer_index
        {
            return Err("id indexes disagree with the objects".into());
        }
        for (slot, entry) in self.accounts.iter().enumerate() {
            let account = &entry.account;
            if balances_of(account) != derived.balances[slot] {
                return Err(format!(
                    "account {} balances disagree with its transfers",
                    account.id
                ));
            }
            if entry.newest_transfer != derived.newest_transfers[slot] {
                return Err(format!(
                    "account {} history disagrees with the transfers",
                    account.id
                ));
            }
            check_account_flags(
                entry.flags_at_creation,
                derived.closed_by_pending[slot],
                account,
            )?;
            if entry.ledger_slot != derived.ledger_slots[&account.ledger] {
                return Err(format!("account {} has the wrong ledger slot", account.id));
            }
        }
        if derived.history_links != self.history_links {
            return Err("history links disagree with the transfers".into());
        }
        if derived.pending_status != self.pending_status {
            return Err("pending statuses disagree with the transfers".into());
        }
        if derived.expiries != self.expiries {
            return Err("expiry index disagrees with the pending transfers".into());
        }
        if derived.ledger_slots != self.ledger_slots || derived.ledger_sums != self.ledger_sums {
            return Err("running ledger sums disagree with the balances".into());
        }
        self.check_objects_beyond_transfers()
    }

    /// Checks that do not need the replay: limits, reserved ids, wallet answers.
    fn check_objects_beyond_transfers(&self) -> Result<(), String> {
        for entry in &self.accounts {
            check_limits(&entry.account)?;
        }
        for t in &self.transfers {
            let sequence = t.id as u64;
            let issued = if !is_reserved_id(t.id) {
                true
            } else if is_expiry_transfer_id(t.id) {
                t.id == expiry_transfer_id(sequence) && sequence < self.expiry_sequence
            } else {
                t.id == wallet_transfer_id(sequence) && sequence < self.wallet_sequence
            };
            if !issued {
                return Err(format!(
                    "transfer {} has a reserved id the ledger did not issue",
                    t.id
                ));
            }
        }
        for (key, entry) in &self.wallet {
            self.check_wallet_entry(key, entry)?;
        }
        for (player, rounds) in &self.settled_rounds {
            if rounds.is_empty() || self.player_balance(*player).is_none() {
                return Err(format!("settled rounds recorded for non-player {player}"));
            }
        }
        Ok(())
    }

    fn check_wallet_entry(&self, key: &str, entry: &WalletEntry) -> Result<(), String> {
        crate::wallet::check_wallet_key(key).map_err(|e| format!("wallet key {e}"))?;
        let (transaction_id, player, outcome, money) = match entry {
            WalletEntry::Bet {
                request, outcome, ..
            } => {
                let house = house_account_id(request.ledger);
                (
                    &request.transaction_id,
                    request.player_id,
                    outcome,
                    Some((request.player_id, house, request.amount)),
                )
            }
            WalletEntry::Win { request, outcome } => {
                let house = house_account_id(request.ledger);
                (
                    &request.transaction_id,
                    request.player_id,
                    outcome,
                    Some((house, request.player_id, request.amount)),
                )
            }
            WalletEntry::Rollback { request, outcome } => {
                (&request.transaction_id, request.player_id, outcome, None)
            }
            WalletEntry::Tombstone {
                player_id,
                round_id,
                rollback_transaction_id,
            } => {
                crate::wallet::check_wallet_key(round_id).map_err(|e| format!("round id {e}"))?;
                return match self.wallet.get(rollback_transaction_id) {
                    Some(WalletEntry::Rollback { request, .. })
                        if request.player_id == *player_id
                            && request.rolled_back_transaction_id == key =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("tombstone {key:?} without its rollback")),
                };
            }
        };
        if transaction_id != key {
            return Err(format!("wallet entry {key:?} stored under another key"));
        }
        if self.player_balance(player).is_none() {
            return Err(format!("wallet entry {key:?} names a non-player"));
        }
        if let WalletOutcome::Ok {
            transfer_id: Some(id),
            ..
        } = outcome
        {
            let Some(t) = self.transfer(*id) else {
                return Err(format!("wallet entry {key:?} names a missing transfer"));
            };
            let matches = match money {
                Some((debit, credit, amount)) => {
                    t.debit_account_id == debit
                        && t.credit_account_id == credit
                        && t.amount == amount
                }
                None => t.credit_account_id == player,
            };
            if !matches || !is_reserved_id(t.id) {
                return Err(format!("wallet entry {key:?} disagrees with transfer {id}"));
            }
        }
        Ok(())
    }

    /// Rebuilds a ledger from a decoded snapshot, refusing anything inconsistent.
    pub(crate) fn from_snapshot_parts(parts: SnapshotParts) -> Result<Ledger, String> {
        let derived = derive(
            parts.accounts.iter().map(|(account, _)| account),
            &parts.transfers,
            parts.clock,
        )?;
        let mut accounts = Vec::with_capacity(parts.accounts.len());
        let newest_transfers = derived.newest_transfers.into_iter();
        for ((slot, (account, flags_at_creation)), newest_transfer) in
            parts.accounts.into_iter().enumerate().zip(newest_transfers)
        {
            if balances_of(&account) != derived.balances[slot] {
                return Err(format!(
                    "account {} balances disagree with its transfers",
                    account.id
                ));
            }
            check_account_flags(flags_at_creation, derived.closed_by_pending[slot], &account)?;
            let ledger_slot = derived.ledger_slots[&account.ledger];
            accounts.push(AccountEntry {
                account,
                flags_at_creation,
                ledger_slot,
                newest_transfer,
            });
        }
        let mut wallet = IdMap::with_capacity_and_hasher(parts.wallet.len(), Default::default());
        for (key, entry) in parts.wallet {
            if wallet.insert(key, entry).is_some() {
                return Err("wallet key repeated".into());
            }
        }
        let mut settled_rounds: IdMap<AccountId, IdSet<String>> = IdMap::default();
        for (player, round) in parts.settled_rounds {
            crate::wallet::check_wallet_key(&round).map_err(|e| format!("round id {e}"))?;
            if !settled_rounds.entry(player).or_default().insert(round) {
                return Err("settled round repeated".into());
            }
        }
        let ledger = Ledger {
            clock: parts.clock,
            accounts,
            account_index: derived.account_index,
            transfers: parts.transfers,
            history_links: derived.history_links,
            transfer_index: derived.transfer_index,
            pending_status: derived.pending_status,
            expiries: derived.expiries,
            ledger_slots: derived.ledger_slots,
            ledger_sums: derived.ledger_sums,
            wallet,
            settled_rounds,
            wallet_sequence: parts.wallet_sequence,
            expiry_sequence: parts.expiry_sequence,
            undo: Default::default(),
        };
        ledger.check_totals()?;
        ledger.check_objects_beyond_transfers()?;
        Ok(ledger)
    }
}

fn balances_of(account: &Account) -> [u128; 4] {
    [
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    ]
}

/// An account's flags are its creation flags, plus `closed` while a closing pending transfer
/// on it is pending. Players always carry `debits_must_not_exceed_credits`.
fn check_account_flags(
    flags_at_creation: AccountFlags,
    closed_by_pending: bool,
    account: &Account,
) -> Result<(), String> {
    let mut expected = flags_at_creation;
    if closed_by_pending {
        if flags_at_creation.contains(AccountFlags::CLOSED) {
            return Err(format!("account {} was closed twice", account.id));
        }
        expected.insert(AccountFlags::CLOSED);
    }
    let exclusive = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
        .union(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    let player_unlimited = account.kind == AccountKind::Player
        && !account
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    if account.flags != expected || account.flags.contains(exclusive) || player_unlimited {
        return Err(format!("account {} has inconsistent flags", account.id));
    }
    Ok(())
}

fn check_limits(account: &Account) -> Result<(), String> {
    let debits = account.debits_pending.checked_add(account.debits_posted);
    let credits = account.credits_pending.checked_add(account.credits_posted);
    let (Some(debits), Some(credits)) = (debits, credits) else {
        return Err(format!("account {} balances overflow", account.id));
    };
    if account
        .flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && debits > account.credits_posted
    {
        return Err(format!("account {} debits exceed its credits", account.id));
    }
    if account
        .flags
        .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        && credits > account.debits_posted
    {
        return Err(format!("account {} credits exceed its debits", account.id));
    }
    Ok(())
}
