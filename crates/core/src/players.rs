//! Players and their sessions, as ledger state: who may spend which wallet.
//!
//! A player is created by one command that also opens one player account (wallet) per
//! currency, so the identity and its money appear in the same entry or not at all. A session
//! is the SHA-256 of a bearer token; the token itself never enters the log. Passwords enter the
//! log only as argon2id PHC strings hashed by the node that took the request (hashing is slow
//! and salted with randomness, so it happens before proposing, never in `apply`).
//!
//! Every id here is in the reserved range (`crate::ids`), so a registered player can never be
//! confused with an account a client created, and a wallet call naming a player id reaches the
//! player's wallet in the call's currency.

use std::fmt;

use crate::ids::{AccountId, LedgerCode};

pub type PlayerId = u128;

/// Usernames: 3 to 64 characters of `a-z`, `0-9`, `_`, `.`, `-`, `@` (the API lowercases
/// what it receives, so two spellings of one name are one player).
pub const USERNAME_LEN_MIN: usize = 3;
pub const USERNAME_LEN_MAX: usize = 64;
/// An argon2id PHC string is about 100 bytes; anything much longer is not one.
pub const PASSWORD_HASH_LEN_MAX: usize = 256;
/// Wallets one player may hold (one per currency).
pub const CURRENCIES_PER_PLAYER_MAX: usize = 16;
/// Sessions one player may hold at once; opening one more closes the one expiring first, so
/// memory stays bounded by players, whatever clients do.
pub const SESSIONS_PER_PLAYER_MAX: usize = 32;
/// Longest session lifetime a login may ask for.
pub const SESSION_TTL_S_MAX: u32 = 30 * 24 * 3600;
/// Most expired sessions one entry forgets (the rest go with the next entries).
pub const SESSION_EXPIRIES_PER_ENTRY_MAX: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must have 3 to 64 characters")]
    BadLength,
    #[error("username may only contain a-z, 0-9, _, ., - and @")]
    BadCharacter,
}

/// Checks a username as stored (already lowercased).
pub fn check_username(name: &str) -> Result<(), UsernameError> {
    if !(USERNAME_LEN_MIN..=USERNAME_LEN_MAX).contains(&name.len()) {
        return Err(UsernameError::BadLength);
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-@".contains(&b);
    if !name.bytes().all(allowed) {
        return Err(UsernameError::BadCharacter);
    }
    Ok(())
}

/// A request to register a player. `password_hash` is a PHC string; it is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPlayer {
    pub username: String,
    pub password_hash: String,
    /// Distinct, 1 to `CURRENCIES_PER_PLAYER_MAX`, in the order the wallets are opened.
    pub currencies: Vec<LedgerCode>,
}

impl fmt::Debug for NewPlayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewPlayer")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("currencies", &self.currencies)
            .finish()
    }
}

/// Why a `NewPlayer` cannot be proposed (the API answers 422; the log decoder refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NewPlayerError {
    #[error(transparent)]
    Username(#[from] UsernameError),
    #[error("password hash must be a PHC string of at most 256 bytes")]
    PasswordHash,
    #[error("a player needs 1 to 16 distinct currencies")]
    Currencies,
}

impl NewPlayer {
    pub fn check(&self) -> Result<(), NewPlayerError> {
        check_username(&self.username)?;
        let hash = self.password_hash.as_bytes();
        if hash.is_empty() || hash.len() > PASSWORD_HASH_LEN_MAX || hash[0] != b'$' {
            return Err(NewPlayerError::PasswordHash);
        }
        let count = self.currencies.len();
        let distinct = self
            .currencies
            .iter()
            .enumerate()
            .all(|(i, code)| !self.currencies[..i].contains(code));
        if count == 0 || count > CURRENCIES_PER_PLAYER_MAX || !distinct {
            return Err(NewPlayerError::Currencies);
        }
        Ok(())
    }
}

/// A registered player as the ledger holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Player {
    pub id: PlayerId,
    pub username: String,
    pub password_hash: String,
    /// One player account per currency, in registration order.
    pub wallets: Vec<(LedgerCode, AccountId)>,
    pub created_at_ns: u64,
}

impl Player {
    /// The player's wallet in `ledger`, if it has one.
    pub fn wallet(&self, ledger: LedgerCode) -> Option<AccountId> {
        self.wallets
            .iter()
            .find(|(code, _)| *code == ledger)
            .map(|&(_, account)| account)
    }

    /// The wallet of the first currency registered (the one a call without a ledger means).
    pub fn first_wallet(&self) -> (LedgerCode, AccountId) {
        self.wallets[0]
    }
}

impl fmt::Debug for Player {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Player")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("wallets", &self.wallets)
            .finish()
    }
}

/// SHA-256 of a bearer token: what the ledger knows of a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    /// The first bytes only: enough to tell sessions apart in a test failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: TokenHash,
    pub player_id: PlayerId,
    /// 1 to `SESSION_TTL_S_MAX`; the session expires this long after the entry's time.
    pub ttl_s: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub token_hash: TokenHash,
    pub player_id: PlayerId,
    pub expires_at_ns: u64,
}

/// What a player or session command decided. Rejections are values, like every outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayerOutcome {
    PlayerCreated {
        player_id: PlayerId,
    },
    UsernameTaken,
    SessionOpened {
        expires_at_ns: u64,
    },
    /// The sessions closed (1 for a logout, any number for a revocation).
    SessionsClosed {
        count: u32,
    },
    PlayerNotFound,
    SessionNotFound,
}

impl PlayerOutcome {
    pub fn code(self) -> &'static str {
        match self {
            PlayerOutcome::PlayerCreated { .. } => "ok",
            PlayerOutcome::UsernameTaken => "username_taken",
            PlayerOutcome::SessionOpened { .. } => "ok",
            PlayerOutcome::SessionsClosed { .. } => "ok",
            PlayerOutcome::PlayerNotFound => "player_not_found",
            PlayerOutcome::SessionNotFound => "session_not_found",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercase_and_bounded() {
        assert_eq!(check_username("alice_01@x.io"), Ok(()));
        assert_eq!(check_username("Alice"), Err(UsernameError::BadCharacter));
        assert_eq!(check_username("al"), Err(UsernameError::BadLength));
        assert_eq!(
            check_username(&"a".repeat(65)),
            Err(UsernameError::BadLength)
        );
        assert_eq!(check_username("a b c"), Err(UsernameError::BadCharacter));
    }

    #[test]
    fn debug_output_never_shows_the_password_hash() {
        let player = NewPlayer {
            username: "alice".into(),
            password_hash: "$argon2id$v=19$secret".into(),
            currencies: vec![LedgerCode::parse("EUR").unwrap()],
        };
        assert!(!format!("{player:?}").contains("secret"));
    }

    #[test]
    fn repeated_currencies_are_refused() {
        let eur = LedgerCode::parse("EUR").unwrap();
        let player = NewPlayer {
            username: "alice".into(),
            password_hash: "$argon2id$".into(),
            currencies: vec![eur, eur],
        };
        assert_eq!(player.check(), Err(NewPlayerError::Currencies));
    }
}
