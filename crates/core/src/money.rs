//! Amounts as people and banks write them: ISO 4217 minor-unit digits, and minor units as a
//! decimal in major units ("1234.56") and back. The ledger itself only counts minor units.

/// ISO 4217 minor-unit digits: 2 for most currencies; the exceptions are listed (ISO 4217,
/// list one, "Minor unit" column).
pub fn currency_exponent(code: &str) -> u32 {
    const NO_MINOR_UNIT: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE_DIGITS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if NO_MINOR_UNIT.contains(&code) {
        0
    } else if THREE_DIGITS.contains(&code) {
        3
    } else {
        2
    }
}

/// Minor units as a decimal in major units: 123456 with exponent 2 is "1234.56".
pub fn decimal(minor: u64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(exponent);
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = exponent as usize
    )
}

/// A decimal in major units back to minor units: "1234.56" (or "1234.5", "1234") with
/// exponent 2 is 123456. None for anything else: a sign, more fraction digits than the
/// currency has, an empty part, or an amount past u64.
pub fn parse_decimal(text: &str, exponent: u32) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let fraction_ok =
        fraction.len() <= exponent as usize && (fraction.is_empty() || digits(fraction));
    if whole.is_empty() || !digits(whole) || !fraction_ok || (text.ends_with('.')) {
        return None;
    }
    let scale = 10u64.checked_pow(exponent)?;
    let padded = format!("{fraction:0<width$}", width = exponent as usize);
    let fraction_minor = if padded.is_empty() {
        0
    } else {
        padded.parse::<u64>().ok()?
    };
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(scale)?
        .checked_add(fraction_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_at_every_exponent() {
        for (minor, exponent, text) in [
            (123456, 2, "1234.56"),
            (5, 2, "0.05"),
            (7, 0, "7"),
            (1001, 3, "1.001"),
        ] {
            assert_eq!(decimal(minor, exponent), text);
            assert_eq!(parse_decimal(text, exponent), Some(minor));
        }
        assert_eq!(parse_decimal("12.5", 2), Some(1250));
        assert_eq!(parse_decimal("12", 2), Some(1200));
    }

    #[test]
    fn malformed_decimals_are_refused() {
        for text in [
            "",
            ".5",
            "1.",
            "-1",
            "+1",
            "1.234",
            "1e3",
            "1 ",
            "18446744073709551616",
        ] {
            assert_eq!(parse_decimal(text, 2), None, "{text:?}");
        }
        assert_eq!(parse_decimal("1.5", 0), None);
    }

    #[test]
    fn currency_exponents_follow_iso_4217() {
        assert_eq!(currency_exponent("JPY"), 0);
        assert_eq!(currency_exponent("KWD"), 3);
        assert_eq!(currency_exponent("EUR"), 2);
    }
}
