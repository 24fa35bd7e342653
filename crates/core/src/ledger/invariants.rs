//! The ledger's invariants.
//!
//! Two levels: `check_hot_invariants` needs only the hot state (O(accounts + pendings)) and
//! runs after every checkpoint load; `check_against_history` replays every transfer of the
//! history in sequence order (streaming, O(accounts + pendings) memory) and checks that the hot
//! state is exactly what the history implies: balances, `closed` flags, the pending set,
//! history chains and per-ledger sums. Tests and the audit run the full check.

use std::collections::BTreeMap;

use super::hashing::IdMap;
use super::transfers::pending_deadline;
use super::{balances_of, Ledger, LedgerSums};
use crate::history::{StoredTransfer, NO_TRANSFER};
use crate::ids::{
    expiry_transfer_id, house_account_id, is_expiry_transfer_id, is_reserved_id,
    wallet_transfer_id, LedgerCode, TransferId,
};
use crate::types::{Account, AccountFlags, AccountKind, Transfer, TransferFlags};

/// What replaying the history's transfers implies for the hot state.
struct Derived {
    balances: Vec<[u128; 4]>,
    closed_by_pending: Vec<bool>,
    newest: Vec<u64>,
    pending: BTreeMap<TransferId, StoredTransfer>,
    transfers: u64,
    last_timestamp: u64,
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

    /// Every invariant the hot state can check on its own: ids and indexes agree, timestamps
    /// strictly increase, no balance-limited account exceeds its limit, per-ledger sums equal
    /// the accounts' balances and balance, pending balances equal the open pendings.
    pub fn check_hot_invariants(&self) -> Result<(), String> {
        self.check_totals()?;
        self.check_accounts()?;
        self.check_ledger_sums()?;
        self.check_pendings()?;
        self.check_directory()
    }

    fn check_directory(&self) -> Result<(), String> {
        self.directory.check()?;
        if self.compliance.players.len() != self.directory.players.len() {
            return Err("compliance state disagrees with the players".into());
        }
        for player in self.directory.players.iter() {
            for &(ledger, wallet) in &player.wallets {
                let account = self
                    .account(wallet)
                    .ok_or_else(|| format!("player {} has no wallet {wallet}", player.id))?;
                if account.kind != AccountKind::Player || account.ledger != ledger {
                    return Err(format!("player {} wallet {wallet} is not its", player.id));
                }
            }
        }
        Ok(())
    }

    fn check_accounts(&self) -> Result<(), String> {
        if self.account_index.len() != self.accounts.len() {
            return Err("account index disagrees with the accounts".into());
        }
        let mut previous_timestamp = 0;
        for (slot, entry) in self.accounts.iter().enumerate() {
            let account = &entry.account;
            if self.account_index.get(&account.id) != Some(&(slot as u32)) || account.id == 0 {
                return Err(format!("account {} is not indexed at its slot", account.id));
            }
            if account.timestamp <= previous_timestamp || account.timestamp > self.clock {
                return Err(format!(
                    "account {} has an out-of-order timestamp",
                    account.id
                ));
            }
            previous_timestamp = account.timestamp;
            check_house_id(account)?;
            check_limits(account)?;
            if entry.newest_transfer != NO_TRANSFER && entry.newest_transfer >= self.transfer_count
            {
                return Err(format!("account {} names a future transfer", account.id));
            }
            if self.ledger_slots.get(&account.ledger) != Some(&entry.ledger_slot) {
                return Err(format!("account {} has the wrong ledger slot", account.id));
            }
        }
        Ok(())
    }

    fn check_ledger_sums(&self) -> Result<(), String> {
        let mut sums: BTreeMap<LedgerCode, LedgerSums> = BTreeMap::new();
        for entry in self.accounts.iter() {
            let a = &entry.account;
            let s = sums
                .entry(a.ledger)
                .or_insert_with(|| LedgerSums::zero(a.ledger));
            s.debits_pending = add(s.debits_pending, a.debits_pending)?;
            s.debits_posted = add(s.debits_posted, a.debits_posted)?;
            s.credits_pending = add(s.credits_pending, a.credits_pending)?;
            s.credits_posted = add(s.credits_posted, a.credits_posted)?;
        }
        let running: BTreeMap<LedgerCode, LedgerSums> = self
            .ledger_slots
            .iter()
            .map(|(&code, &slot)| (code, self.ledger_sums[slot as usize].clone()))
            .collect();
        if running != sums || self.ledger_slots.len() != self.ledger_sums.len() {
            return Err("running ledger sums disagree with the balances".into());
        }
        Ok(())
    }

    /// Each account's pending balances equal the sums of its open pending transfers, and an
    /// account is closed by a pending exactly while that closing pending is open.
    fn check_pendings(&self) -> Result<(), String> {
        let mut pending_sums: IdMap<u128, [u128; 2]> = IdMap::default();
        let mut closed_by: IdMap<u128, u32> = IdMap::default();
        for pending in self.pending.iter() {
            let t = &pending.stored.transfer;
            if !t.flags.contains(TransferFlags::PENDING)
                || pending.stored.seq >= self.transfer_count
            {
                return Err(format!("pending set holds transfer {} wrongly", t.id));
            }
            let amount = u128::from(t.amount);
            let debit = pending_sums.entry(t.debit_account_id).or_default();
            debit[0] = add(debit[0], amount)?;
            let credit = pending_sums.entry(t.credit_account_id).or_default();
            credit[1] = add(credit[1], amount)?;
            if t.flags.contains(TransferFlags::CLOSING_DEBIT) {
                *closed_by.entry(t.debit_account_id).or_default() += 1;
            }
            if t.flags.contains(TransferFlags::CLOSING_CREDIT) {
                *closed_by.entry(t.credit_account_id).or_default() += 1;
            }
        }
        for entry in self.accounts.iter() {
            let a = &entry.account;
            let [debits, credits] = pending_sums.get(&a.id).copied().unwrap_or_default();
            if a.debits_pending != debits || a.credits_pending != credits {
                return Err(format!("account {} pending balances disagree", a.id));
            }
            // Closed by an open closing pending: certainly closed. Otherwise a posted closing
            // pending may have closed it for good; only the history replay can tell.
            let closers = closed_by.get(&a.id).copied().unwrap_or(0);
            let maybe_closed_by_post = closers == 0
                && a.flags.contains(AccountFlags::CLOSED)
                && !entry.flags_at_creation.contains(AccountFlags::CLOSED);
            check_account_flags(
                entry.flags_at_creation,
                closers.max(u32::from(maybe_closed_by_post)),
                a,
            )?;
        }
        Ok(())
    }

    /// Replays `transfers` (the whole history, in sequence order) and checks the hot state is
    /// exactly what it implies. Memory: O(accounts + pendings).
    pub fn check_against_history<E>(
        &self,
        transfers: impl IntoIterator<Item = Result<StoredTransfer, E>>,
    ) -> Result<(), String>
    where
        E: std::fmt::Display,
    {
        self.check_hot_invariants()?;
        let derived = self.derive(transfers)?;
        if derived.transfers != self.transfer_count {
            return Err(format!(
                "history holds {} transfers, the ledger counts {}",
                derived.transfers, self.transfer_count
            ));
        }
        if derived.last_timestamp > self.clock {
            return Err("a transfer is newer than the ledger clock".into());
        }
        for (slot, entry) in self.accounts.iter().enumerate() {
            let account = &entry.account;
            if balances_of(account) != derived.balances[slot] {
                return Err(format!(
                    "account {} balances disagree with history",
                    account.id
                ));
            }
            if entry.newest_transfer != derived.newest[slot] {
                return Err(format!("account {} history chain disagrees", account.id));
            }
            let closed = u32::from(derived.closed_by_pending[slot]);
            check_account_flags(entry.flags_at_creation, closed, account)?;
        }
        let hot: BTreeMap<TransferId, StoredTransfer> = self
            .pending
            .iter()
            .map(|p| (p.id(), p.stored.clone()))
            .collect();
        if hot != derived.pending {
            return Err("open pending transfers disagree with history".into());
        }
        Ok(())
    }

    fn derive<E: std::fmt::Display>(
        &self,
        transfers: impl IntoIterator<Item = Result<StoredTransfer, E>>,
    ) -> Result<Derived, String> {
        let accounts = self.accounts.len();
        let mut derived = Derived {
            balances: vec![[0; 4]; accounts],
            closed_by_pending: vec![false; accounts],
            newest: vec![NO_TRANSFER; accounts],
            pending: BTreeMap::new(),
            transfers: 0,
            last_timestamp: 0,
        };
        for stored in transfers {
            let stored = stored.map_err(|e| format!("history unreadable: {e}"))?;
            self.replay_one(&mut derived, &stored).map_err(|what| {
                format!(
                    "transfer {} (seq {}): {what}",
                    stored.transfer.id, stored.seq
                )
            })?;
        }
        Ok(derived)
    }

    fn replay_one(&self, derived: &mut Derived, stored: &StoredTransfer) -> Result<(), String> {
        let t = &stored.transfer;
        if stored.seq != derived.transfers {
            return Err(format!("sequence gap, expected {}", derived.transfers));
        }
        if t.id == 0 || t.amount == 0 || t.timestamp <= derived.last_timestamp {
            return Err("zero id or amount, or timestamp out of order".into());
        }
        self.check_reserved_transfer_id(t)?;
        let debit = self.slot_before(t.debit_account_id, t)?;
        let credit = self.slot_before(t.credit_account_id, t)?;
        if debit == credit || self.account_at(debit).ledger != t.ledger {
            return Err("accounts are the same or on another ledger".into());
        }
        let [debit, credit] = [debit as usize, credit as usize];
        if stored.prev_debit != derived.newest[debit]
            || stored.prev_credit != derived.newest[credit]
        {
            return Err("history links disagree".into());
        }
        derived.newest[debit] = stored.seq;
        derived.newest[credit] = stored.seq;
        derived.transfers += 1;
        derived.last_timestamp = t.timestamp;
        let movement = replay_movement(derived, stored)?;
        let d = &mut derived.balances[debit];
        d[0] = checked(d[0], movement.pending_add, movement.release)?;
        d[1] = checked(d[1], movement.posted, 0)?;
        let c = &mut derived.balances[credit];
        c[2] = checked(c[2], movement.pending_add, movement.release)?;
        c[3] = checked(c[3], movement.posted, 0)?;
        for (flag, side) in [
            (TransferFlags::CLOSING_DEBIT, debit),
            (TransferFlags::CLOSING_CREDIT, credit),
        ] {
            if movement.closing.contains(flag) {
                if movement.close && derived.closed_by_pending[side] {
                    return Err("closes an account already closed".into());
                }
                if movement.close || movement.reopen {
                    derived.closed_by_pending[side] = movement.close;
                }
            }
        }
        Ok(())
    }

    fn slot_before(&self, id: u128, t: &Transfer) -> Result<u32, String> {
        let slot = *self
            .account_index
            .get(&id)
            .ok_or_else(|| format!("account {id} does not exist"))?;
        if self.account_at(slot).timestamp >= t.timestamp {
            return Err(format!("account {id} is newer than the transfer"));
        }
        Ok(slot)
    }

    fn check_reserved_transfer_id(&self, t: &Transfer) -> Result<(), String> {
        if !is_reserved_id(t.id) {
            return Ok(());
        }
        let sequence = t.id as u64;
        let issued = if is_expiry_transfer_id(t.id) {
            t.id == expiry_transfer_id(sequence) && sequence < self.expiry_sequence
        } else {
            t.id == wallet_transfer_id(sequence) && sequence < self.wallet_sequence
        };
        if !issued {
            return Err("a reserved id the ledger did not issue".into());
        }
        Ok(())
    }
}

/// What one transfer does to its accounts.
struct ReplayedMovement {
    release: u128,
    pending_add: u128,
    posted: u128,
    /// The closing flags involved (of the transfer, or of the pending it resolves).
    closing: TransferFlags,
    close: bool,
    reopen: bool,
}

fn replay_movement(
    derived: &mut Derived,
    stored: &StoredTransfer,
) -> Result<ReplayedMovement, String> {
    let t = &stored.transfer;
    let amount = u128::from(t.amount);
    let mut movement = ReplayedMovement {
        release: 0,
        pending_add: 0,
        posted: 0,
        closing: TransferFlags::empty(),
        close: false,
        reopen: false,
    };
    if !stored.resolves_pending() {
        if t.pending_id != 0 {
            return Err("a pending_id on a transfer that resolves nothing".into());
        }
        if !t.flags.contains(TransferFlags::PENDING) {
            if t.timeout_s != 0 {
                return Err("a timeout on a posted transfer".into());
            }
            movement.posted = amount;
            return Ok(movement);
        }
        pending_deadline(t.timestamp, t.timeout_s).map_err(|()| "pending deadline overflows")?;
        derived.pending.insert(t.id, stored.clone());
        movement.pending_add = amount;
        movement.closing = t.flags;
        movement.close = true;
        return Ok(movement);
    }
    let pending = derived
        .pending
        .remove(&t.pending_id)
        .ok_or("resolves a transfer that is not pending")?;
    let p = &pending.transfer;
    let post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
    if p.debit_account_id != t.debit_account_id
        || p.credit_account_id != t.credit_account_id
        || p.amount != stored.pending_amount
        || t.amount > p.amount
        || (!post && t.amount != p.amount)
        || t.timeout_s != 0
    {
        return Err("disagrees with the pending transfer it resolves".into());
    }
    check_resolution_time(p, t)?;
    movement.release = u128::from(p.amount);
    movement.posted = if post { amount } else { 0 };
    movement.closing = p.flags;
    movement.reopen = !post;
    Ok(movement)
}

/// An expiry void happens at or after the deadline; a client's post or void before it.
fn check_resolution_time(p: &Transfer, t: &Transfer) -> Result<(), String> {
    let expired = is_expiry_transfer_id(t.id);
    let deadline = pending_deadline(p.timestamp, p.timeout_s).map_err(|()| "deadline overflow")?;
    match deadline {
        Some(deadline) if expired && deadline > t.timestamp => {
            Err("expired before its deadline".into())
        }
        Some(deadline) if !expired && deadline <= t.timestamp => {
            Err("resolved after its deadline".into())
        }
        None if expired => Err("expired without a timeout".into()),
        _ if expired && t.flags.contains(TransferFlags::POST_PENDING_TRANSFER) => {
            Err("an expiry cannot post".into())
        }
        _ => Ok(()),
    }
}

/// The payments' own accounts (`crate::payments`): in flight, returns, and a clearing account
/// per connector number, each of its ledger and kind.
fn is_payment_account(account: &Account) -> bool {
    use crate::ids::{clearing_account_id, in_flight_account_id, returns_account_id};
    let ledger = account.ledger;
    match account.kind {
        AccountKind::System => {
            account.id == in_flight_account_id(ledger) || account.id == returns_account_id(ledger)
        }
        AccountKind::Clearing => {
            (0..=u8::MAX).any(|connector| account.id == clearing_account_id(connector, ledger))
        }
        _ => false,
    }
}

fn check_house_id(account: &Account) -> Result<(), String> {
    let registered_wallet =
        crate::ids::is_player_wallet_account_id(account.id) && account.kind == AccountKind::Player;
    let payments = is_payment_account(account);
    if (is_reserved_id(account.id) && !registered_wallet && !payments)
        != (account.kind == AccountKind::House)
        || (account.kind == AccountKind::House && account.id != house_account_id(account.ledger))
    {
        return Err(format!(
            "account {} has a reserved id but is not its ledger's house",
            account.id
        ));
    }
    Ok(())
}

fn add(value: u128, amount: u128) -> Result<u128, String> {
    value
        .checked_add(amount)
        .ok_or_else(|| "a sum overflows".to_string())
}

fn checked(value: u128, add: u128, release: u128) -> Result<u128, String> {
    value
        .checked_add(add)
        .and_then(|v| v.checked_sub(release))
        .ok_or_else(|| "a balance overflows or goes below zero".to_string())
}

/// An account's flags are its creation flags, plus `closed` while a closing pending transfer
/// on it is open. Players always carry `debits_must_not_exceed_credits`.
fn check_account_flags(
    flags_at_creation: AccountFlags,
    closing_pendings: u32,
    account: &Account,
) -> Result<(), String> {
    let mut expected = flags_at_creation;
    if closing_pendings > 0 {
        if closing_pendings > 1 || flags_at_creation.contains(AccountFlags::CLOSED) {
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
