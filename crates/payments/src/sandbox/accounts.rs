//! Accounts as the sandbox keys them: an IBAN (upper case, no spaces, mod-97 checked) or a UK
//! sort code + account number (14 digits); the operator's accounts derived from the client id;
//! and Confirmation of Payee's name matching.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::transport::{iban_remainder, iban_valid};

/// How an account is identified: decides how it is written back in each protocol.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Scheme {
    Iban,
    SortCode,
}

/// The normalised identification, or why it is not one.
pub(crate) fn normalise(scheme: Scheme, identification: &str) -> Result<String, &'static str> {
    match scheme {
        Scheme::Iban => {
            let iban: String = identification
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            if iban_valid(&iban) {
                Ok(iban)
            } else {
                Err("not a valid IBAN (mod-97)")
            }
        }
        Scheme::SortCode => {
            let digits: String = identification
                .chars()
                .filter(|c| !matches!(c, ' ' | '-'))
                .collect();
            if digits.len() == 14 && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(digits)
            } else {
                Err("not a sort code and account number (14 digits)")
            }
        }
    }
}

/// The scheme of an already normalised identification.
pub(crate) fn scheme_of(key: &str) -> Scheme {
    if key.bytes().all(|b| b.is_ascii_digit()) {
        Scheme::SortCode
    } else {
        Scheme::Iban
    }
}

/// Sort code + account number (14 digits) derived from `seed`: the same seed, the same account.
pub(crate) fn derived_sort_code(seed: &str) -> String {
    let hash = Sha256::digest(seed.as_bytes());
    // Sort codes starting 04 are unallocated to real banks at random; "04" keeps them apart.
    let digits: String = hash
        .iter()
        .take(12)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    format!("04{}", &digits[..12])
}

/// A GB IBAN (bank code CRPR) over `derived_sort_code(seed)`, with its check digits.
pub(crate) fn derived_iban(seed: &str) -> String {
    let bban = format!("CRPR{}", derived_sort_code(seed));
    let remainder = iban_remainder(&format!("{bban}GB00")).unwrap_or(0);
    format!("GB{:02}{bban}", 98 - remainder)
}

/// What Confirmation of Payee answers for a name against the account holder's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NameMatch {
    Exact,
    Close,
    Different,
}

fn words(name: &str) -> Vec<String> {
    name.split_whitespace().map(str::to_lowercase).collect()
}

/// Exact (case and spacing ignored); close (same surname and first initial, or one edit
/// apart); else different.
pub(crate) fn match_name(given: &str, holder: &str) -> NameMatch {
    let (given, holder) = (words(given), words(holder));
    if given == holder {
        return NameMatch::Exact;
    }
    let same_surname = given.last().is_some() && given.last() == holder.last();
    let initial = |w: &[String]| w.first().and_then(|first| first.chars().next());
    if same_surname && initial(&given) == initial(&holder) {
        return NameMatch::Close;
    }
    if edit_distance_at_most_one(&given.join(" "), &holder.join(" ")) {
        return NameMatch::Close;
    }
    NameMatch::Different
}

fn edit_distance_at_most_one(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short.iter().zip(&long).take_while(|(x, y)| x == y).count();
    if short.len() == long.len() {
        prefix == short.len() || short[prefix + 1..] == long[prefix + 1..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_and_derived_ones_are_valid() {
        assert_eq!(
            normalise(Scheme::Iban, "gb33 bukb 2020 1555 5555 55").unwrap(),
            "GB33BUKB20201555555555"
        );
        assert!(normalise(Scheme::Iban, "GB34BUKB20201555555555").is_err());
        assert!(normalise(Scheme::Iban, "DE89370400440532013000").is_ok());
        let iban = derived_iban("croupier");
        assert_eq!(iban, derived_iban("croupier"));
        assert_eq!(normalise(Scheme::Iban, &iban).unwrap(), iban);
        assert_ne!(iban, derived_iban("other"));
        assert_eq!(derived_sort_code("x").len(), 14);
        assert_eq!(
            normalise(Scheme::SortCode, "20-00-00 12345678").unwrap(),
            "20000012345678"
        );
        assert!(normalise(Scheme::SortCode, "2000001234567").is_err());
        assert!(scheme_of("20000012345678") == Scheme::SortCode);
    }

    #[test]
    fn names_match_exactly_closely_or_not() {
        assert_eq!(match_name("jane  SMITH", "Jane Smith"), NameMatch::Exact);
        assert_eq!(match_name("J Smith", "Jane Smith"), NameMatch::Close);
        assert_eq!(match_name("Jane Smyth", "Jane Smith"), NameMatch::Close);
        assert_eq!(match_name("Jane Smit", "Jane Smith"), NameMatch::Close);
        assert_eq!(match_name("Bob Jones", "Jane Smith"), NameMatch::Different);
        assert_eq!(match_name("", "Jane Smith"), NameMatch::Different);
        assert_eq!(match_name("", ""), NameMatch::Exact);
    }
}
