//! JSON Schemas of the wire types that the derive cannot infer: u128 ids as integers or decimal
//! strings, ledger codes, the exact ranges of u32/u64/u128 fields. Each says what the parser in
//! `crate::wire` (or `crate::extract`) accepts, no more and no less, so a client generated from
//! the document, or a fuzzer, meets no surprise.

use utoipa::openapi::schema::{
    ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;

/// Ledger codes as text: 1 to 8 of A-Z, 0-9 and _.
pub const LEDGER_PATTERN: &str = "^[A-Z0-9_]{1,8}$";
/// A ledger code given as a JSON integer stands for its decimal text, so it has 1 to 8 digits.
const LEDGER_INTEGER_MAX: u64 = 99_999_999;

/// utoipa's `Number` holds at most a u64; a u128 bound is written as this float (2^128, which
/// no u64 or f64 bound of ours is) and replaced by the exact integer in the document's text.
const U128_MAX_MARKER: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;
/// How the marker may be printed (utoipa serializes floats with an explicit exponent sign).
const U128_MAX_MARKER_TEXTS: [&str; 2] = ["3.402823669209385e+38", "3.402823669209385e38"];

/// The document's text with every u128 bound written exactly.
pub fn exact_u128_bounds(json: &str) -> String {
    U128_MAX_MARKER_TEXTS
        .iter()
        .fold(json.to_owned(), |json, marker| {
            json.replace(marker, &u128::MAX.to_string())
        })
}

/// A regular expression for strings of decimal digits whose value is at most `max` (and at
/// least 1 unless `zero`), with any number of leading zeros: what `parse_decimal_u128` accepts.
pub fn decimal_pattern(max: u128, zero: bool) -> String {
    let digits: Vec<u8> = max.to_string().bytes().map(|b| b - b'0').collect();
    let width = digits.len();
    let mut branches = Vec::new();
    if zero {
        branches.push("0".to_owned());
    }
    if width > 1 {
        // Fewer significant digits than `max` has: any such value fits.
        branches.push(format!("[1-9][0-9]{{0,{}}}", width - 2));
    }
    // As many significant digits as `max`: a prefix of max, one smaller digit, then anything.
    for (position, &digit) in digits.iter().enumerate() {
        let low = if position == 0 { 1 } else { 0 };
        if digit > low {
            let rest = width - position - 1;
            let class = if digit - 1 == low {
                low.to_string()
            } else {
                format!("[{low}-{}]", digit - 1)
            };
            let prefix: String = digits[..position].iter().map(|d| d.to_string()).collect();
            let tail = match rest {
                0 => String::new(),
                1 => "[0-9]".to_owned(),
                _ => format!("[0-9]{{{rest}}}"),
            };
            branches.push(format!("{prefix}{class}{tail}"));
        }
    }
    branches.push(max.to_string());
    format!("^0*(?:{})$", branches.join("|"))
}

fn integer(format: &str, minimum: u64, maximum: Bound) -> ObjectBuilder {
    let builder = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::Custom(format.to_owned())))
        .minimum(Some(minimum));
    match maximum {
        Bound::U64(max) => builder.maximum(Some(max)),
        Bound::U128Max => builder.maximum(Some(U128_MAX_MARKER)),
    }
}

enum Bound {
    U64(u64),
    U128Max,
}

/// A JSON integer from `minimum` to 2^64-1 (`250`, or any spelling of it such as `250.0`).
pub fn uint64(minimum: u64) -> ObjectBuilder {
    integer("uint64", minimum, Bound::U64(u64::MAX))
}

/// A JSON integer from 0 to 2^32-1.
pub fn uint32() -> ObjectBuilder {
    integer("uint32", 0, Bound::U64(u32::MAX.into()))
}

/// A JSON integer from 0 to 2^128-1 (balances).
pub fn uint128() -> ObjectBuilder {
    integer("uint128", 0, Bound::U128Max)
}

/// A u128 id as a string of decimal digits (how ids are printed, and path parameters).
pub fn id_string(zero: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(decimal_pattern(u128::MAX, zero)))
}

/// A u128 id on input: a JSON integer or a string of decimal digits.
pub fn id_in(zero: bool) -> OneOfBuilder {
    let minimum = if zero { 0 } else { 1 };
    OneOfBuilder::new()
        .item(integer("uint128", minimum, Bound::U128Max))
        .item(id_string(zero))
}

/// A ledger code as text.
pub fn ledger_string() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(LEDGER_PATTERN))
}

/// A ledger code on input: its text, or a JSON integer standing for its decimal digits.
pub fn ledger_in() -> OneOfBuilder {
    OneOfBuilder::new().item(ledger_string()).item(integer(
        "uint32",
        0,
        Bound::U64(LEDGER_INTEGER_MAX),
    ))
}

/// `schema` or JSON null.
pub fn nullable(schema: impl Into<RefOr<Schema>>) -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)))
        .item(schema)
        .into()
}

/// Schemas of values that have no wire type of their own: path and query parameters.
macro_rules! parameter_schema {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

parameter_schema!(
    /// A position in the event feed: decimal digits, 0 to 2^64-1.
    EventPosition,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(decimal_pattern(u64::MAX.into(), true)))
        .description(Some("An event position: decimal digits, 0 to 2^64-1"))
);
parameter_schema!(
    /// A cluster member's id: 1 to 2^64-1.
    NodeId,
    uint64(1).description(Some("A cluster member's id"))
);

parameter_schema!(
    /// A live table's id: 1 to 2^20-1.
    TableId,
    integer("uint32", 1, Bound::U64(croupier_core::tables::TABLE_ID_MAX.into()))
        .description(Some("A live table's id"))
);

parameter_schema!(
    /// A round id: table id × 2^32 + round number.
    RoundId,
    uint64(0).description(Some("A round id: table id × 2^32 + round number"))
);

parameter_schema!(
    /// A binary batch: 128-byte records (`crate::binary`), or one result byte per record.
    BinaryRecords,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(
            utoipa::openapi::schema::KnownFormat::Binary
        )))
        .description(Some(
            "Binary batch: little-endian 128-byte records in TigerBeetle's layout (docs/api.md, \"Binary batches\"); an answer has one result byte per record"
        ))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        // The patterns use only ^ $ (?: | ) [a-b] {m,n} 0*: a tiny backtracking matcher over
        // their branches is enough to check them against the parser.
        let inner = pattern
            .strip_prefix("^0*(?:")
            .and_then(|p| p.strip_suffix(")$"))
            .expect("shape");
        let significant = text.trim_start_matches('0');
        let significant = if significant.is_empty() && !text.is_empty() {
            "0"
        } else {
            significant
        };
        inner
            .split('|')
            .any(|branch| branch_matches(branch, significant))
    }

    fn branch_matches(branch: &str, text: &str) -> bool {
        // Tokens: a digit, [a-b], optionally followed by {n} or {m,n}.
        let mut tokens: Vec<(u8, u8, usize, usize)> = Vec::new();
        let bytes = branch.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let (low, high) = if bytes[i] == b'[' {
                let (low, high) = (bytes[i + 1], bytes[i + 3]);
                i += 5;
                (low, high)
            } else {
                i += 1;
                (bytes[i - 1], bytes[i - 1])
            };
            let (mut min, mut max) = (1, 1);
            if i < bytes.len() && bytes[i] == b'{' {
                let end = branch[i..].find('}').unwrap() + i;
                let counts: Vec<usize> = branch[i + 1..end]
                    .split(',')
                    .map(|n| n.parse().unwrap())
                    .collect();
                (min, max) = (counts[0], *counts.last().unwrap());
                i = end + 1;
            }
            tokens.push((low, high, min, max));
        }
        fn go(tokens: &[(u8, u8, usize, usize)], text: &[u8]) -> bool {
            let Some(&(low, high, min, max)) = tokens.first() else {
                return text.is_empty();
            };
            (min..=max).any(|count| {
                count <= text.len()
                    && text[..count].iter().all(|b| (low..=high).contains(b))
                    && go(&tokens[1..], &text[count..])
            })
        }
        go(&tokens, text.as_bytes())
    }

    #[test]
    fn decimal_patterns_accept_exactly_what_the_parser_does() {
        let max = u128::MAX.to_string();
        let beyond = "340282366920938463463374607431768211456";
        let pattern = decimal_pattern(u128::MAX, false);
        for good in [
            "1",
            "007",
            "42",
            &max,
            &format!("000{max}"),
            "99999999999999999999999999999999999999",
        ] {
            assert!(matches(&pattern, good), "{good} should match {pattern}");
            assert!(crate::wire::parse_decimal_u128(good.as_bytes()).is_some_and(|v| v > 0));
        }
        for bad in [
            "0",
            "000",
            beyond,
            "999999999999999999999999999999999999999",
            "340282366920938463463374607431768211460",
        ] {
            assert!(!matches(&pattern, bad), "{bad} should not match {pattern}");
        }
        let with_zero = decimal_pattern(u128::MAX, true);
        assert!(matches(&with_zero, "0") && matches(&with_zero, "000"));
        let small = decimal_pattern(u64::MAX.into(), true);
        assert!(matches(&small, "18446744073709551615"));
        assert!(!matches(&small, "18446744073709551616"));
        assert!(matches(&small, "9999999999999999999"));
        for value in [1u128, 9, 10, 99, 100, 12_345, 18_446_744_073_709_551_614] {
            assert!(matches(&small, &value.to_string()), "{value}");
        }
    }

    #[test]
    fn u128_bounds_are_written_exactly() {
        let schema: RefOr<Schema> = uint128().build().into();
        let json = serde_json::to_string(&schema).unwrap();
        let exact = exact_u128_bounds(&json);
        assert!(
            exact.contains("\"maximum\":340282366920938463463374607431768211455"),
            "{exact}"
        );
    }
}
