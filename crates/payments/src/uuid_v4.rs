//! UUID version 4 text from 16 bytes: the one formatting both the Berlin Group connector
//! (its `X-Request-ID`s) and the sandbox bank (its ids) use. A leaf: it depends on nothing in
//! the crate, so either side can use it without one depending on the other.

/// `bytes` as a version-4, variant-1 UUID (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`): the
/// version and variant bits are overwritten, the other 122 bits kept.
pub(crate) fn uuid_v4_text(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_and_variant_bits_are_set_and_the_rest_kept() {
        assert_eq!(
            uuid_v4_text([0xff; 16]),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            uuid_v4_text([0; 16]),
            "00000000-0000-4000-8000-000000000000"
        );
    }
}
