//! Identifiers a player is seen with (a device, a payment instrument, a postal address), as
//! the digests the ledger and the AML scoring compare: SHA-256 over a domain tag, the kind and
//! the normalised value. The ledger and the feed never see the identifier itself. The digest
//! is not salted per deployment (every node must compute the same one), so it hides an
//! identifier only as well as the identifier is hard to guess: a device id is a random token,
//! an IBAN or an address is not.

use croupier_core::compliance::{ComplianceCommand, SeenIdentifiers};
use croupier_core::players::PlayerId;
use croupier_core::Command;
use sha2::{Digest, Sha256};

/// Longest identifier accepted (before normalisation).
pub const IDENTIFIER_CHARS_MAX: usize = 256;

const DOMAIN: &[u8] = b"croupier-identifier-v1\0";

fn digest(kind: &[u8], normalised: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(kind);
    hash.update([0]);
    hash.update(normalised.as_bytes());
    hash.finalize().into()
}

/// A device id as the client sent it (case and surrounding blanks ignored).
pub fn device(id: &str) -> [u8; 32] {
    digest(b"device", &id.trim().to_lowercase())
}

/// A payment instrument (an IBAN, a card fingerprint, a wallet account): letters and digits
/// only, upper case, so `DE89 3704 …` and `de8937…` are one instrument.
pub fn instrument(id: &str) -> [u8; 32] {
    let normalised: String = id
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    digest(b"instrument", &normalised)
}

/// A postal address: lower case, punctuation dropped, blanks collapsed, so small differences
/// of writing do not make two addresses.
pub fn address(text: &str) -> [u8; 32] {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect();
    let normalised = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    digest(b"address", &normalised)
}

/// Whether a device id or an instrument a client sends is acceptable: 1 to
/// `IDENTIFIER_CHARS_MAX` printable ASCII characters (device tokens, IBANs and card
/// fingerprints are), at least one a letter or a digit.
pub fn acceptable_token(text: &str) -> bool {
    (1..=IDENTIFIER_CHARS_MAX).contains(&text.len())
        && text.bytes().all(|b| (b' '..=b'~').contains(&b))
        && text.bytes().any(|b| b.is_ascii_alphanumeric())
}

/// Whether an address text (from a verified attestation, any script) is worth a digest: 1 to
/// `IDENTIFIER_CHARS_MAX` characters, no control character, something left after
/// normalisation.
pub fn acceptable(text: &str) -> bool {
    let length = text.chars().count();
    (1..=IDENTIFIER_CHARS_MAX).contains(&length)
        && !text.chars().any(char::is_control)
        && text.chars().any(char::is_alphanumeric)
}

/// The command recording that `player_id` was seen with `seen`.
pub fn observe(player_id: PlayerId, seen: SeenIdentifiers) -> Command {
    Command::Compliance(ComplianceCommand::ObserveIdentifiers { player_id, seen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_identifier_written_differently_gives_one_digest() {
        assert_eq!(
            instrument("DE89 3704 0044 0532 0130 00"),
            instrument("de89-3704-0044-0532-0130-00")
        );
        assert_eq!(
            address("1 Harbour St., Valletta"),
            address("1  harbour st  valletta")
        );
        assert_eq!(device(" ABC-123 "), device("abc-123"));
    }

    #[test]
    fn kinds_are_kept_apart() {
        assert_ne!(device("x1"), instrument("x1"));
        assert_ne!(instrument("x1"), address("x1"));
    }

    #[test]
    fn identifiers_without_substance_are_refused() {
        assert!(!acceptable(""));
        assert!(!acceptable("--- ..."));
        assert!(!acceptable("a\u{0}b"));
        assert!(!acceptable(&"a".repeat(257)));
        assert!(acceptable("device-1"));
        assert!(acceptable("Hauptstraße 1, Köln"));
        assert!(acceptable_token("DE89 3704-0044"));
        assert!(!acceptable_token("gerät-1"));
        assert!(!acceptable_token("  --  "));
        assert!(!acceptable_token(&"a".repeat(257)));
    }
}
