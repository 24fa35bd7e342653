//! 128-bit keys for the variable-length things history is looked up by (wallet transaction ids,
//! rolled-back bets, settled rounds): SHA-256 over a domain tag and the length-prefixed parts,
//! truncated to 128 bits. Domains keep the kinds apart; a hit is always confirmed against the
//! record it points to, so even a collision (about 2^-64 after 2^32 keys) could only make a key
//! look absent, never answer for another.

use std::collections::HashSet;

use croupier_core::history::IndexedKey;
use croupier_core::payments::PaymentKey;
use croupier_core::{AccountId, TransferId};
use sha2::{Digest, Sha256};

use crate::index::IdIndex;
use crate::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDomain {
    /// A wallet transaction id (or a tombstoned bet id) → its wallet record.
    Wallet,
    /// A bet id that a rollback reversed → the rollback record.
    RolledBack,
    /// A (player, round) that a win settled → the win record.
    Settled,
    /// A payment's book and id → its archived record.
    Payment,
    /// A clearing-account transfer id → the archived payment that made it.
    PaymentTransfer,
    /// A decided AML case's id → its archived record.
    Case,
}

impl KeyDomain {
    fn tag(self) -> &'static [u8] {
        match self {
            KeyDomain::Wallet => b"croupier/wallet\0",
            KeyDomain::RolledBack => b"croupier/rolled-back\0",
            KeyDomain::Settled => b"croupier/settled\0",
            KeyDomain::Payment => b"croupier/payment\0",
            KeyDomain::PaymentTransfer => b"croupier/payment-transfer\0",
            KeyDomain::Case => b"croupier/case\0",
        }
    }
}

/// The index key of `parts` in `domain`.
pub fn hashed_key(domain: KeyDomain, parts: &[&[u8]]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(domain.tag());
    for part in parts {
        hasher.update((part.len() as u32).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    u128::from_le_bytes(digest[..16].try_into().expect("16 bytes"))
}

pub(crate) fn wallet_key(transaction_id: &str) -> u128 {
    hashed_key(KeyDomain::Wallet, &[transaction_id.as_bytes()])
}

pub(crate) fn rolled_back_key(bet_id: &str) -> u128 {
    hashed_key(KeyDomain::RolledBack, &[bet_id.as_bytes()])
}

pub(crate) fn payment_key(key: PaymentKey) -> u128 {
    let (book, id) = match key {
        PaymentKey::Deposit(id) => (b"deposit".as_slice(), id),
        PaymentKey::Withdrawal(id) => (b"withdrawal".as_slice(), id),
    };
    hashed_key(KeyDomain::Payment, &[book, &id.to_le_bytes()])
}

pub(crate) fn payment_transfer_key(id: TransferId) -> u128 {
    hashed_key(KeyDomain::PaymentTransfer, &[&id.to_le_bytes()])
}

pub(crate) fn case_key(id: u128) -> u128 {
    hashed_key(KeyDomain::Case, &[&id.to_le_bytes()])
}

pub(crate) fn settled_key(player: AccountId, round: &str) -> u128 {
    hashed_key(KeyDomain::Settled, &[&player.to_le_bytes(), round.as_bytes()])
}

/// The hashed index key of a record's wallet-side key (transfer ids are indexed as they are).
pub(crate) fn indexed_key_hash(key: &IndexedKey<'_>, _scratch: &mut Vec<u8>) -> u128 {
    match *key {
        IndexedKey::Wallet(id) => wallet_key(id),
        IndexedKey::RolledBack(id) => rolled_back_key(id),
        IndexedKey::Settled(player, round) => settled_key(player, round),
        IndexedKey::Payment(key) => payment_key(key),
        IndexedKey::PaymentTransfer(id) => payment_transfer_key(id),
        IndexedKey::Case(id) => case_key(id),
        IndexedKey::Transfer(_) | IndexedKey::Resolution(_) => {
            unreachable!("transfer ids are indexed as they are")
        }
    }
}

/// Adds to `out` the settled-round keys of `settled` (in position order) that must point at a
/// new place. Every other history key is written once, but each win of a round yields its
/// settled key again, and `IdIndex` keeps a key's newest value: the key must keep pointing at
/// the round's first win, or an entry between two wins, replayed when the later win is not
/// visible (after recovery cut history back to a checkpoint, or in the audit's verified view),
/// would find the round unsettled. So a key the index (or this batch) already has at an
/// earlier position is skipped; `seen` is scratch space.
pub(crate) fn add_settled_keys(
    index: &IdIndex,
    settled: &[(u128, u64)],
    out: &mut Vec<(u128, u64)>,
    seen: &mut HashSet<u128>,
) -> Result<(), StoreError> {
    seen.clear();
    for &(key, position) in settled {
        if !seen.insert(key) || index.get(key)?.is_some_and(|indexed| indexed < position) {
            continue;
        }
        out.push((key, position));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_part_boundaries_give_different_keys() {
        assert_ne!(wallet_key("a"), rolled_back_key("a"));
        assert_ne!(settled_key(1, "ab"), hashed_key(KeyDomain::Settled, &[&1u128.to_le_bytes(), b"a", b"b"]));
        assert_eq!(wallet_key("tx-1"), wallet_key("tx-1"));
    }
}
