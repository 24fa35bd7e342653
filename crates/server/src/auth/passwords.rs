//! Player passwords (argon2id) and session tokens.
//!
//! Hashing and verifying take tens of milliseconds and a few MiB on purpose; callers run them
//! on the blocking pool so they never hold an async worker.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use croupier_core::players::TokenHash;
use sha2::{Digest, Sha256};

/// The prefix of a player's session token in `Authorization: Bearer`.
pub const SESSION_TOKEN_PREFIX: &str = "crs.";
pub const PASSWORD_LEN_MIN: usize = 8;
pub const PASSWORD_LEN_MAX: usize = 128;

/// A password as received: never printed.
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The OS random source failed: no salt or token can be made (the API answers 503).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct EntropyUnavailable(getrandom::Error);

/// argon2id with the crate's defaults (OWASP's minimum: 19 MiB, 2 passes, 1 lane) and a
/// 16-byte salt from the OS.
pub fn hash_password(password: &Password) -> Result<String, EntropyUnavailable> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(EntropyUnavailable)?;
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    let hashed = Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password");
    Ok(hashed.to_string())
}

/// Whether `password` matches the PHC string `stored`. With `stored` absent (an unknown
/// username) it verifies against a fixed hash anyway, so both answers take as long.
pub fn verify_password(password: &Password, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    // Without entropy the dummy is empty and an unknown username answers faster: the only
    // cost of a failure that also refuses every login and registration.
    let dummy =
        DUMMY.get_or_init(|| hash_password(&Password("not a password".into())).unwrap_or_default());
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(dummy)) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.0.as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
}

/// A new session token (shown to the player once) and the hash the ledger keeps.
pub fn new_session_token() -> Result<(String, TokenHash), EntropyUnavailable> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(EntropyUnavailable)?;
    let token = format!(
        "{SESSION_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password(&Password("correct horse".into())).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(
            &Password("correct horse".into()),
            Some(&hash)
        ));
        assert!(!verify_password(
            &Password("wrong horse".into()),
            Some(&hash)
        ));
        assert!(!verify_password(&Password("correct horse".into()), None));
    }

    #[test]
    fn session_tokens_are_unique_and_hash_to_what_the_ledger_keeps() {
        let (a, hash_a) = new_session_token().unwrap();
        let (b, _) = new_session_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), hash_a);
        assert!(!format!("{:?}", Password(a.clone())).contains(&a));
    }
}
