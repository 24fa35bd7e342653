//! Byte sizes in settings: an integer (bytes) or a string with a binary unit ("64MiB"), in the
//! file, in the environment and on the command line alike.

use std::fmt;

use serde::{de, Deserializer, Serializer};

const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];

/// Parses "1GiB", "512MiB", "64KiB", "1000" (bytes).
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1GiB, 512MiB or 1048576"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        "TiB" | "T" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The largest unit that divides `bytes` exactly ("256MiB"); plain digits otherwise, so the
/// text always parses back to the same number.
pub fn format(bytes: u64) -> String {
    UNITS
        .iter()
        .find(|(_, shift)| bytes != 0 && bytes.is_multiple_of(1u64 << shift))
        .map(|(unit, shift)| format!("{}{unit}", bytes >> shift))
        .unwrap_or_else(|| bytes.to_string())
}

/// For `#[serde(with = "size")]`: written with a unit when one fits, as an integer otherwise
/// (a TOML string "1000" would read back fine, but an integer says "bytes" plainly).
pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let text = format(*bytes);
    if text.bytes().all(|b| b.is_ascii_digit()) {
        serializer.serialize_u64(*bytes)
    } else {
        serializer.serialize_str(&text)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(SizeVisitor)
}

struct SizeVisitor;

impl de::Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size such as 64MiB or 1048576")
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<u64, E> {
        Ok(bytes)
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<u64, E> {
        u64::try_from(bytes).map_err(|_| E::custom(format!("a size cannot be negative ({bytes})")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
        parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format_back() {
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("512 MiB"), Ok(512 << 20));
        assert_eq!(parse("1000"), Ok(1000));
        assert!(parse("64XB").unwrap_err().contains("unknown size unit"));
        assert!(parse("-1").is_err());
        assert!(parse("99999999999TiB").unwrap_err().contains("too large"));
        for bytes in [
            0,
            1000,
            1 << 10,
            3 << 20,
            256 << 20,
            1 << 30,
            5 << 40,
            (1 << 20) + 1,
        ] {
            assert_eq!(parse(&format(bytes)), Ok(bytes), "{}", format(bytes));
        }
        assert_eq!(format(256 << 20), "256MiB");
        assert_eq!(format(1 << 30), "1GiB");
        assert_eq!(format(1000), "1000");
    }
}
