//! Amounts as the banks write them: a decimal string in major units ("12.34") with the
//! currency's ISO 4217 minor-unit digits (`croupier_core::money`).

use croupier_core::money::{currency_exponent, decimal, parse_decimal};

/// Minor units as the decimal a bank API wants: 1234 EUR cents is "12.34".
pub fn to_bank_amount(minor: u64, currency: &str) -> String {
    decimal(minor, currency_exponent(currency))
}

/// A bank's decimal back to minor units; None if it is not a plain decimal with at most the
/// currency's digits.
pub fn from_bank_amount(text: &str, currency: &str) -> Option<u64> {
    parse_decimal(text, currency_exponent(currency))
}
