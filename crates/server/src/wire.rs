//! The JSON shapes of the API and their conversion to and from core types.
//!
//! Input rules: u128 ids arrive as JSON integers or strings of decimal digits; amounts are
//! JSON integers (u64, minor units); unknown fields are refused. Output rules: u128 ids are
//! decimal strings, balances and amounts JSON integers. Ids of 0 are caught by `validate_*`
//! (which names the item and field) rather than by the parser, so the message can say where.

use std::fmt;
use std::marker::PhantomData;

use croupier_core::wallet::WalletKeyError;
use croupier_core::{
    Account, AccountFlags, AccountKind, LedgerCode, NewAccount, NewTransfer, Transfer,
    TransferFlags, WalletBet, WalletRollback, WalletWin,
};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::quote::input_prefix;

/// Longest provider transaction id or round id, in bytes (core's limit).
pub use croupier_core::wallet::WALLET_KEY_LEN_MAX;

// ---------------------------------------------------------------------------------------------
// Field types (input)

/// A u128 id on input: a JSON integer or a string of decimal digits, 0 allowed here (the
/// request validators reject it with the item index and field name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdIn(pub u128);

impl<'de> Deserialize<'de> for IdIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_json turns integers above u64::MAX into floats when asked for "any" value, so
        // we take the raw token and parse its digits ourselves.
        let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
        parse_id_token(raw.get())
            .map(IdIn)
            .map_err(de::Error::custom)
    }
}

/// Parses a raw JSON token (a number or a string of digits) as a u128.
fn parse_id_token(token: &str) -> Result<u128, String> {
    let digits = match token.as_bytes() {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    parse_decimal_u128(digits).ok_or_else(|| {
        let quoted = match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(text) => format!("{:?}", input_prefix(text)),
            None => format!("`{}`", input_prefix(token)),
        };
        format!("invalid id {quoted}: expected an integer from 0 to 2^128-1, as a number or a string of digits")
    })
}

/// Decimal digits only (no sign, no exponent), at most u128::MAX.
pub fn parse_decimal_u128(digits: &[u8]) -> Option<u128> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u128, |value, digit| {
        value.checked_mul(10)?.checked_add(u128::from(digit - b'0'))
    })
}

/// A ledger code on input: `"EUR"` (1-8 of A-Z, 0-9, _) or a JSON integer such as `978`,
/// which stands for its decimal text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerIn(pub LedgerCode);

impl<'de> Deserialize<'de> for LedgerIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LedgerVisitor;
        impl Visitor<'_> for LedgerVisitor {
            type Value = LedgerIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a ledger code of 1 to 8 characters A-Z, 0-9 or _ (or a non-negative integer)",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<LedgerIn, E> {
                parse_ledger(text).map(LedgerIn).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<LedgerIn, E> {
                self.visit_str(&number.to_string())
            }
        }
        deserializer.deserialize_any(LedgerVisitor)
    }
}

pub fn parse_ledger(text: &str) -> Result<LedgerCode, String> {
    LedgerCode::parse(text)
        .map_err(|error| format!("invalid ledger {:?}: {error}", input_prefix(text)))
}

/// An account kind by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindIn(pub AccountKind);

impl<'de> Deserialize<'de> for KindIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl Visitor<'_> for KindVisitor {
            type Value = KindIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("one of player, house, clearing, bonus, jackpot, system")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<KindIn, E> {
                AccountKind::from_name(text).map(KindIn).ok_or_else(|| {
                    E::custom(format_args!(
                        "unknown account kind {:?}: expected one of player, house, clearing, bonus, jackpot, system",
                        input_prefix(text)
                    ))
                })
            }
        }
        deserializer.deserialize_str(KindVisitor)
    }
}

/// Flag sets that have snake_case names (core's account and transfer flags).
pub trait NamedFlags: Copy + Default {
    fn from_name(text: &str) -> Option<Self>;
    fn union(self, other: Self) -> Self;
    fn all_names() -> Vec<&'static str>;
    fn set_names(self) -> Vec<&'static str>;
}

macro_rules! named_flags {
    ($($flags:ty),*) => {$(
        impl NamedFlags for $flags {
            fn from_name(text: &str) -> Option<Self> { <$flags>::from_name(text) }
            fn union(self, other: Self) -> Self { <$flags>::union(self, other) }
            fn all_names() -> Vec<&'static str> { <$flags>::ALL.iter().map(|(_, name)| *name).collect() }
            fn set_names(self) -> Vec<&'static str> { self.names() }
        }
    )*};
}
named_flags!(AccountFlags, TransferFlags);

/// A JSON array of flag names, e.g. `["linked", "pending"]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagsIn<F>(pub F);

impl<'de, F: NamedFlags> Deserialize<'de> for FlagsIn<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagName<F>(F);
        impl<'de, F: NamedFlags> Deserialize<'de> for FlagName<F> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct NameVisitor<F>(PhantomData<F>);
                impl<F: NamedFlags> Visitor<'_> for NameVisitor<F> {
                    type Value = FlagName<F>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "a flag name, one of {}", F::all_names().join(", "))
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<FlagName<F>, E> {
                        F::from_name(text).map(FlagName).ok_or_else(|| {
                            E::custom(format_args!(
                                "unknown flag {:?}: expected one of {}",
                                input_prefix(text),
                                F::all_names().join(", ")
                            ))
                        })
                    }
                }
                deserializer.deserialize_str(NameVisitor(PhantomData))
            }
        }

        struct FlagsVisitor<F>(PhantomData<F>);
        impl<'de, F: NamedFlags> Visitor<'de> for FlagsVisitor<F> {
            type Value = FlagsIn<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of flag names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlagsIn<F>, A::Error> {
                let mut flags = F::default();
                while let Some(FlagName(flag)) = seq.next_element::<FlagName<F>>()? {
                    flags = flags.union(flag);
                }
                Ok(FlagsIn(flags))
            }
        }
        deserializer.deserialize_seq(FlagsVisitor(PhantomData))
    }
}

/// A provider's transaction or round id: a non-empty string of at most 128 bytes, or a
/// non-negative JSON integer standing for its decimal text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletKey(pub String);

impl<'de> Deserialize<'de> for WalletKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = WalletKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a non-empty string of at most {WALLET_KEY_LEN_MAX} bytes, or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<WalletKey, E> {
                if text.is_empty() || text.len() > WALLET_KEY_LEN_MAX {
                    return Err(E::custom(format_args!(
                        "must be a non-empty string of at most {WALLET_KEY_LEN_MAX} bytes (got {} bytes)",
                        text.len()
                    )));
                }
                Ok(WalletKey(text.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<WalletKey, E> {
                Ok(WalletKey(number.to_string()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Field types (output)

/// A u128 id on output: a JSON string of decimal digits (JavaScript cannot hold u128 numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdOut(pub u128);

impl Serialize for IdOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // u128::MAX has 39 digits; formatting on the stack keeps responses allocation-light.
        let mut buffer = [0u8; 39];
        let mut start = buffer.len();
        let mut value = self.0;
        loop {
            start -= 1;
            buffer[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        let text = std::str::from_utf8(&buffer[start..]).map_err(ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

/// A ledger code on output: its text, e.g. `"EUR"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerOut(pub LedgerCode);

impl Serialize for LedgerOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.0.to_u64().to_be_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = std::str::from_utf8(&bytes[..len]).map_err(ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// One account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// Non-zero u128, as a JSON integer or a decimal string.
    #[schema(value_type = String, example = "1001")]
    pub id: IdIn,
    /// Currency or unit of account: 1-8 characters A-Z, 0-9, _ (an integer means its digits).
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerIn,
    /// player, house, clearing, bonus, jackpot or system.
    #[schema(value_type = String, example = "player")]
    pub kind: KindIn,
    /// debits_must_not_exceed_credits, credits_must_not_exceed_debits, closed.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["debits_must_not_exceed_credits"]))]
    pub flags: FlagsIn<AccountFlags>,
}

/// One transfer to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferIn {
    /// Non-zero u128, as a JSON integer or a decimal string.
    #[schema(value_type = String, example = "5001")]
    pub id: IdIn,
    #[schema(value_type = String, example = "1001")]
    pub debit_account_id: IdIn,
    #[schema(value_type = String, example = "1002")]
    pub credit_account_id: IdIn,
    /// Minor units (e.g. cents), a JSON integer.
    #[schema(example = 250)]
    pub amount: u64,
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerIn,
    /// linked, pending, post_pending_transfer, void_pending_transfer, closing_debit,
    /// closing_credit.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!([]))]
    pub flags: FlagsIn<TransferFlags>,
    /// The pending transfer to post or void; 0, null or absent means none.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pending_id: Option<IdIn>,
    /// Seconds until a pending transfer expires; 0 or absent means never.
    #[serde(default)]
    pub timeout_s: Option<u32>,
}

/// A bet (player → house) or a win (house → player).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletMoveIn {
    /// The provider's transaction id (1-128 bytes; an integer means its digits).
    #[schema(value_type = String, example = "tx-1")]
    pub transaction_id: WalletKey,
    /// The player's account id.
    #[schema(value_type = String, example = "1001")]
    pub player_id: IdIn,
    #[schema(value_type = String, example = "round-1")]
    pub round_id: WalletKey,
    #[schema(example = 100)]
    pub amount: u64,
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerIn,
}

/// Reverses an unsettled bet exactly once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletRollbackIn {
    #[schema(value_type = String, example = "tx-2")]
    pub transaction_id: WalletKey,
    #[schema(value_type = String, example = "1001")]
    pub player_id: IdIn,
    #[schema(value_type = String, example = "round-1")]
    pub round_id: WalletKey,
    /// The bet's transaction id.
    #[schema(value_type = String, example = "tx-1")]
    pub rolled_back_transaction_id: WalletKey,
}

/// Query of `GET /v1/accounts/{id}/transfers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransfersQuery {
    /// 1 to 8189, default 50.
    pub limit: Option<u64>,
    /// Opaque cursor of the next page, from a previous page's `X-Next-Cursor` header.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// A registered player's currency (default: the first it registered with).
    pub ledger: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation: request → core types, naming the item and field of the first problem.

fn non_zero_id(id: IdIn, index: Option<usize>, field: &'static str) -> Result<u128, ApiError> {
    if id.0 == 0 {
        return Err(ApiError::invalid_field(index, field, "must not be 0"));
    }
    Ok(id.0)
}

impl AccountIn {
    pub fn validate(&self, index: usize) -> Result<NewAccount, ApiError> {
        Ok(NewAccount {
            id: non_zero_id(self.id, Some(index), "id")?,
            ledger: self.ledger.0,
            kind: self.kind.0,
            flags: self.flags.0,
        })
    }
}

impl TransferIn {
    pub fn validate(&self, index: usize) -> Result<NewTransfer, ApiError> {
        Ok(NewTransfer {
            id: non_zero_id(self.id, Some(index), "id")?,
            debit_account_id: non_zero_id(self.debit_account_id, Some(index), "debit_account_id")?,
            credit_account_id: non_zero_id(
                self.credit_account_id,
                Some(index),
                "credit_account_id",
            )?,
            amount: self.amount,
            ledger: self.ledger.0,
            flags: self.flags.0,
            pending_id: self.pending_id.map_or(0, |id| id.0),
            timeout_s: self.timeout_s.unwrap_or(0),
        })
    }
}

/// `WalletKey` already enforces the key rules; asking the core too keeps the two from drifting
/// apart (a bad key reaching the ledger would be a panic, not a rejection).
fn keys_checked(checked: Result<(), WalletKeyError>) -> Result<(), ApiError> {
    checked.map_err(|error| ApiError::invalid_request(format!("wallet key {error}")))
}

impl WalletMoveIn {
    pub fn into_bet(self) -> Result<WalletBet, ApiError> {
        let bet = WalletBet {
            player_id: non_zero_id(self.player_id, None, "player_id")?,
            transaction_id: self.transaction_id.0,
            round_id: self.round_id.0,
            amount: self.amount,
            ledger: self.ledger.0,
        };
        keys_checked(bet.check_keys())?;
        Ok(bet)
    }

    pub fn into_win(self) -> Result<WalletWin, ApiError> {
        let win = WalletWin {
            player_id: non_zero_id(self.player_id, None, "player_id")?,
            transaction_id: self.transaction_id.0,
            round_id: self.round_id.0,
            amount: self.amount,
            ledger: self.ledger.0,
        };
        keys_checked(win.check_keys())?;
        Ok(win)
    }
}

impl WalletRollbackIn {
    pub fn into_rollback(self) -> Result<WalletRollback, ApiError> {
        let rollback = WalletRollback {
            player_id: non_zero_id(self.player_id, None, "player_id")?,
            transaction_id: self.transaction_id.0,
            round_id: self.round_id.0,
            rolled_back_transaction_id: self.rolled_back_transaction_id.0,
        };
        keys_checked(rollback.check_keys())?;
        Ok(rollback)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// The result of one item of a create request, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    #[schema(value_type = String, example = "5001")]
    pub id: IdOut,
    /// "ok", "exists" or a rejection code such as "exceeds_credits".
    #[schema(value_type = String, example = "ok")]
    pub result: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    #[schema(value_type = String, example = "1001")]
    pub id: IdOut,
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(value_type = String, example = "player")]
    pub kind: &'static str,
    #[schema(value_type = Vec<String>)]
    pub flags: Vec<&'static str>,
    #[schema(value_type = u64)]
    pub debits_pending: u128,
    #[schema(value_type = u64)]
    pub debits_posted: u128,
    #[schema(value_type = u64)]
    pub credits_pending: u128,
    #[schema(value_type = u64)]
    pub credits_posted: u128,
    /// Ledger time of creation, nanoseconds since the Unix epoch.
    pub timestamp: u64,
}

impl From<&Account> for AccountOut {
    fn from(account: &Account) -> Self {
        AccountOut {
            id: IdOut(account.id),
            ledger: LedgerOut(account.ledger),
            kind: account.kind.name(),
            flags: account.flags.set_names(),
            debits_pending: account.debits_pending,
            debits_posted: account.debits_posted,
            credits_pending: account.credits_pending,
            credits_posted: account.credits_posted,
            timestamp: account.timestamp,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferOut {
    #[schema(value_type = String, example = "5001")]
    pub id: IdOut,
    #[schema(value_type = String, example = "1001")]
    pub debit_account_id: IdOut,
    #[schema(value_type = String, example = "1002")]
    pub credit_account_id: IdOut,
    pub amount: u64,
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(value_type = Vec<String>)]
    pub flags: Vec<&'static str>,
    /// The pending transfer this one posts or voids; null when none.
    #[schema(value_type = Option<String>)]
    pub pending_id: Option<IdOut>,
    /// Seconds until a pending transfer expires; 0 = never.
    pub timeout_s: u32,
    /// Ledger time of creation, nanoseconds since the Unix epoch.
    pub timestamp: u64,
}

impl From<&Transfer> for TransferOut {
    fn from(transfer: &Transfer) -> Self {
        TransferOut {
            id: IdOut(transfer.id),
            debit_account_id: IdOut(transfer.debit_account_id),
            credit_account_id: IdOut(transfer.credit_account_id),
            amount: transfer.amount,
            ledger: LedgerOut(transfer.ledger),
            flags: transfer.flags.set_names(),
            pending_id: (transfer.pending_id != 0).then_some(IdOut(transfer.pending_id)),
            timeout_s: transfer.timeout_s,
            timestamp: transfer.timestamp,
        }
    }
}

/// The answer to an accepted wallet call (also replayed for a duplicate transaction id).
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletOk {
    #[schema(value_type = String, example = "tx-1")]
    pub transaction_id: String,
    #[schema(value_type = String, example = "1001")]
    pub player_id: IdOut,
    /// The player's available balance right after this call, minor units.
    #[schema(value_type = u64, example = 900)]
    pub balance: u128,
    /// Present for bets and wins (the request's ledger).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "EUR")]
    pub ledger: Option<LedgerOut>,
    /// The ledger transfer made, or null when no money moved.
    #[schema(value_type = Option<String>)]
    pub transfer_id: Option<IdOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    #[schema(value_type = String, example = "1001")]
    pub player_id: IdOut,
    #[schema(value_type = String, example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(value_type = u64, example = 900)]
    pub balance: u128,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(json.as_bytes())
    }

    #[test]
    fn ids_accept_numbers_and_digit_strings_up_to_u128_max() {
        assert_eq!(parse::<IdIn>("42").unwrap(), IdIn(42));
        assert_eq!(parse::<IdIn>("\"42\"").unwrap(), IdIn(42));
        let max = u128::MAX.to_string();
        assert_eq!(parse::<IdIn>(&max).unwrap(), IdIn(u128::MAX));
        assert_eq!(
            parse::<IdIn>(&format!("\"{max}\"")).unwrap(),
            IdIn(u128::MAX)
        );
    }

    #[test]
    fn ids_refuse_signs_fractions_overflow_and_junk() {
        let beyond = "340282366920938463463374607431768211456"; // u128::MAX + 1
        for bad in [
            "-1", "1.5", "1e3", "\"\"", "\"+1\"", "\"0x10\"", "true", "null", beyond,
        ] {
            assert!(parse::<IdIn>(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse::<IdIn>(&format!("\"{beyond}\"")).is_err());
    }

    #[test]
    fn ids_serialize_as_decimal_strings() {
        assert_eq!(serde_json::to_string(&IdOut(0)).unwrap(), "\"0\"");
        assert_eq!(
            serde_json::to_string(&IdOut(u128::MAX)).unwrap(),
            format!("\"{}\"", u128::MAX)
        );
    }

    #[test]
    fn ledger_accepts_codes_and_integers_and_refuses_lowercase() {
        assert_eq!(parse::<LedgerIn>("\"EUR\"").unwrap().0.as_string(), "EUR");
        assert_eq!(parse::<LedgerIn>("978").unwrap().0.as_string(), "978");
        assert!(parse::<LedgerIn>("\"eur\"").is_err());
        assert!(parse::<LedgerIn>("-1").is_err());
        assert!(parse::<LedgerIn>("\"TOOLONGCODE\"").is_err());
        let out = LedgerOut(LedgerCode::parse("POINTS_1").unwrap());
        assert_eq!(serde_json::to_string(&out).unwrap(), "\"POINTS_1\"");
    }

    #[test]
    fn transfer_refuses_unknown_fields_negative_and_fractional_amounts() {
        let base = r#""id":1,"debit_account_id":"2","credit_account_id":3,"ledger":"EUR""#;
        assert!(parse::<TransferIn>(&format!("{{{base},\"amount\":5}}")).is_ok());
        assert!(parse::<TransferIn>(&format!("{{{base},\"amount\":5,\"memo\":1}}")).is_err());
        assert!(parse::<TransferIn>(&format!("{{{base},\"amount\":-5}}")).is_err());
        assert!(parse::<TransferIn>(&format!("{{{base},\"amount\":5.5}}")).is_err());
        assert!(parse::<TransferIn>(&format!("{{{base},\"amount\":\"5\"}}")).is_err());
        assert!(
            parse::<TransferIn>(&format!("{{{base}}}")).is_err(),
            "amount is required"
        );
    }

    #[test]
    fn transfer_flags_parse_by_name_and_refuse_unknown_names() {
        let base = r#""id":1,"debit_account_id":2,"credit_account_id":3,"ledger":"EUR","amount":1"#;
        let item: TransferIn = parse(&format!(
            "{{{base},\"flags\":[\"linked\",\"pending\"],\"timeout_s\":30}}"
        ))
        .unwrap();
        let transfer = item.validate(0).unwrap();
        assert!(transfer.flags.contains(TransferFlags::LINKED));
        assert!(transfer.flags.contains(TransferFlags::PENDING));
        assert_eq!(transfer.timeout_s, 30);
        assert_eq!(transfer.pending_id, 0);
        assert!(parse::<TransferIn>(&format!("{{{base},\"flags\":[\"sticky\"]}}")).is_err());
    }

    #[test]
    fn zero_ids_are_refused_naming_item_and_field() {
        let item: TransferIn = parse(
            r#"{"id":1,"debit_account_id":2,"credit_account_id":0,"ledger":"EUR","amount":1}"#,
        )
        .unwrap();
        let error = item.validate(7).unwrap_err();
        assert_eq!(error.code, "invalid_request");
        assert!(error.message.contains("item 7"), "{}", error.message);
        assert!(
            error.message.contains("credit_account_id"),
            "{}",
            error.message
        );
    }

    #[test]
    fn wallet_keys_accept_integers_and_refuse_empty_or_long_strings() {
        assert_eq!(parse::<WalletKey>("17").unwrap().0, "17");
        assert_eq!(parse::<WalletKey>("\"tx-1\"").unwrap().0, "tx-1");
        assert!(parse::<WalletKey>("\"\"").is_err());
        assert!(parse::<WalletKey>("-3").is_err());
        let long = "x".repeat(WALLET_KEY_LEN_MAX + 1);
        assert!(parse::<WalletKey>(&format!("\"{long}\"")).is_err());
    }
}
