//! Identifiers: account and transfer ids (u128, non-zero), ledger (currency) codes and the
//! id range reserved for objects the state machine creates itself.

use std::fmt;

pub type AccountId = u128;
pub type TransferId = u128;

/// Ids whose top 32 bits are all ones are reserved for objects the ledger creates itself
/// (house accounts, wallet transfers, voids of expired pending transfers). Clients get
/// `id_must_not_be_reserved` for them.
pub const RESERVED_ID_PREFIX: u128 = 0xFFFF_FFFF << 96;
const RESERVED_TAG_HOUSE_ACCOUNT: u128 = 1;
const RESERVED_TAG_WALLET_TRANSFER: u128 = 2;
const RESERVED_TAG_EXPIRY_TRANSFER: u128 = 3;
const RESERVED_TAG_PLAYER: u128 = 4;
const RESERVED_TAG_PLAYER_WALLET: u128 = 5;
const RESERVED_TAG_IN_FLIGHT: u128 = 6;
const RESERVED_TAG_RETURNS: u128 = 7;
/// Clearing accounts: this tag plus the connector's number (below 256).
const RESERVED_TAG_CLEARING: u128 = 0x100;
const RESERVED_TAG_MASK: u128 = 0xFFFF_FFFF << 64;

pub fn is_reserved_id(id: u128) -> bool {
    id & RESERVED_ID_PREFIX == RESERVED_ID_PREFIX
}

/// The house account of a ledger: created by the state machine on the ledger's first wallet
/// operation; every bet credits it and every win debits it.
pub fn house_account_id(ledger: LedgerCode) -> AccountId {
    RESERVED_ID_PREFIX | (RESERVED_TAG_HOUSE_ACCOUNT << 64) | ledger.0 as u128
}

/// The account of a ledger's withdrawals in flight: reserved when requested, paid out of.
pub fn in_flight_account_id(ledger: LedgerCode) -> AccountId {
    RESERVED_ID_PREFIX | (RESERVED_TAG_IN_FLIGHT << 64) | ledger.0 as u128
}

/// Where a deposit the bank settled waits when the player's limits refused the credit.
pub fn returns_account_id(ledger: LedgerCode) -> AccountId {
    RESERVED_ID_PREFIX | (RESERVED_TAG_RETURNS << 64) | ledger.0 as u128
}

/// The clearing account of payment connector number `connector` (`crate::payments`) in
/// `ledger`: the mirror of the operator's account at that bank.
pub fn clearing_account_id(connector: u8, ledger: LedgerCode) -> AccountId {
    RESERVED_ID_PREFIX | ((RESERVED_TAG_CLEARING + u128::from(connector)) << 64) | ledger.0 as u128
}

/// The transfer id of the `sequence`-th wallet operation (bet, win or rollback reversal).
pub fn wallet_transfer_id(sequence: u64) -> TransferId {
    RESERVED_ID_PREFIX | (RESERVED_TAG_WALLET_TRANSFER << 64) | sequence as u128
}

/// The transfer id of the `sequence`-th automatic void of an expired pending transfer. The
/// state machine records each expiry as a `void_pending_transfer` so account histories show it.
pub fn expiry_transfer_id(sequence: u64) -> TransferId {
    RESERVED_ID_PREFIX | (RESERVED_TAG_EXPIRY_TRANSFER << 64) | sequence as u128
}

/// True for the ids `expiry_transfer_id` produces (auto-voids of expired pending transfers).
pub fn is_expiry_transfer_id(id: TransferId) -> bool {
    is_reserved_id(id) && (id & RESERVED_TAG_MASK) == (RESERVED_TAG_EXPIRY_TRANSFER << 64)
}

/// The id of the `sequence`-th registered player (`crate::players`).
pub fn player_id(sequence: u64) -> u128 {
    RESERVED_ID_PREFIX | (RESERVED_TAG_PLAYER << 64) | sequence as u128
}

/// The registration sequence of a player id, `None` for any other id.
pub fn player_sequence(id: u128) -> Option<u64> {
    let tagged = is_reserved_id(id) && (id & RESERVED_TAG_MASK) == (RESERVED_TAG_PLAYER << 64);
    tagged.then_some(id as u64)
}

/// The wallet (player account) number `index` of the `sequence`-th player: derived, so the
/// state machine needs no counter and a wallet's id names its player.
pub fn player_wallet_account_id(sequence: u64, index: usize) -> AccountId {
    assert!(
        index < 256 && sequence < 1 << 56,
        "player wallet id out of range"
    );
    RESERVED_ID_PREFIX
        | (RESERVED_TAG_PLAYER_WALLET << 64)
        | u128::from(sequence << 8 | index as u64)
}

/// The registered player a wallet account belongs to (`None` for any other account).
pub fn player_of_wallet(account: AccountId) -> Option<u128> {
    is_player_wallet_account_id(account).then(|| player_id((account as u64) >> 8))
}

/// True for house accounts (`house_account_id`).
pub fn is_house_account_id(id: AccountId) -> bool {
    is_reserved_id(id) && (id & RESERVED_TAG_MASK) == (RESERVED_TAG_HOUSE_ACCOUNT << 64)
}

/// True for the ids `player_wallet_account_id` produces.
pub fn is_player_wallet_account_id(id: AccountId) -> bool {
    is_reserved_id(id) && (id & RESERVED_TAG_MASK) == (RESERVED_TAG_PLAYER_WALLET << 64)
}

/// A ledger is a currency or unit of account ("EUR", "USD", "BTC", "POINTS"): 1 to 8
/// characters of `A-Z`, `0-9` or `_`, packed big-endian into a u64 so it orders like text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerCode(u64);

pub const LEDGER_CODE_LEN_MAX: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerCodeError {
    #[error("ledger code must have 1 to 8 characters")]
    BadLength,
    #[error("ledger code may only contain A-Z, 0-9 and _")]
    BadCharacter,
}

impl LedgerCode {
    pub fn parse(text: &str) -> Result<Self, LedgerCodeError> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > LEDGER_CODE_LEN_MAX {
            return Err(LedgerCodeError::BadLength);
        }
        let mut packed = [0u8; 8];
        for (slot, &b) in packed.iter_mut().zip(bytes) {
            if !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                return Err(LedgerCodeError::BadCharacter);
            }
            *slot = b;
        }
        Ok(LedgerCode(u64::from_be_bytes(packed)))
    }

    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// Inverse of `to_u64`, for decoders; rejects values `parse` could not have produced.
    pub fn from_u64(raw: u64) -> Result<Self, LedgerCodeError> {
        let bytes = raw.to_be_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(8);
        if bytes[len..].iter().any(|&b| b != 0) {
            return Err(LedgerCodeError::BadCharacter);
        }
        let text = std::str::from_utf8(&bytes[..len]).map_err(|_| LedgerCodeError::BadCharacter)?;
        Self::parse(text)
    }

    pub fn as_string(self) -> String {
        let bytes = self.0.to_be_bytes();
        bytes
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect()
    }
}

impl fmt::Display for LedgerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl fmt::Debug for LedgerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerCode({})", self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_wallet_names_its_player() {
        let wallet = player_wallet_account_id(41, 3);
        assert_eq!(player_of_wallet(wallet), Some(player_id(41)));
        assert_eq!(player_of_wallet(41), None);
        assert!(!is_house_account_id(wallet));
        assert!(is_house_account_id(house_account_id(
            LedgerCode::parse("EUR").unwrap()
        )));
    }

    #[test]
    fn ledger_code_round_trips_through_u64() {
        for text in ["EUR", "USD", "A", "POINTS_1", "12345678"] {
            let code = LedgerCode::parse(text).unwrap();
            assert_eq!(code.as_string(), text);
            assert_eq!(LedgerCode::from_u64(code.to_u64()).unwrap(), code);
        }
    }

    #[test]
    fn ledger_code_rejects_bad_text() {
        assert_eq!(LedgerCode::parse(""), Err(LedgerCodeError::BadLength));
        assert_eq!(
            LedgerCode::parse("TOOLONGCODE"),
            Err(LedgerCodeError::BadLength)
        );
        assert_eq!(LedgerCode::parse("eur"), Err(LedgerCodeError::BadCharacter));
        assert!(LedgerCode::from_u64(0).is_err());
    }

    #[test]
    fn reserved_ids_are_recognised() {
        let eur = LedgerCode::parse("EUR").unwrap();
        assert!(is_reserved_id(house_account_id(eur)));
        assert!(is_reserved_id(wallet_transfer_id(7)));
        assert!(is_reserved_id(u128::MAX));
        assert!(!is_reserved_id(1));
        assert!(is_expiry_transfer_id(expiry_transfer_id(3)));
        assert!(!is_expiry_transfer_id(wallet_transfer_id(3)));
        assert!(!is_expiry_transfer_id(3 << 64));
    }
}
