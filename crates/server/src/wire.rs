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
    let parsed = match token.as_bytes() {
        [b'"', inner @ .., b'"'] => parse_decimal_u128(inner),
        _ => parse_integer_token(token, u128::MAX),
    };
    parsed.ok_or_else(|| {
        let quoted = match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(text) => format!("{:?}", input_prefix(text)),
            None => format!("`{}`", input_prefix(token)),
        };
        format!("invalid id {quoted}: expected an integer from 0 to 2^128-1, as a number or a string of digits")
    })
}

/// A JSON number token as an exact integer from 0 to `max`. JSON Schema's `integer` is a value,
/// not a spelling: `250`, `250.0` and `2.5e2` are the same integer (and `-0` is 0), so all are
/// accepted; a fraction, a negative value or one above `max` is not. Exact at any size (no
/// float is involved), so no spelling can turn into a neighbouring value.
pub fn parse_integer_token(token: &str, max: u128) -> Option<u128> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (mantissa, ""),
    };
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || (mantissa.contains('.') && !all_digits(fraction)) {
        return None;
    }
    let digits = || whole.bytes().chain(fraction.bytes());
    if digits().all(|b| b == b'0') {
        // Zero however spelled (0, 0.0, -0, 0e99); a malformed exponent is still refused.
        return exponent
            .is_none_or(|e| parse_exponent(e).is_some())
            .then_some(0);
    }
    if negative {
        return None;
    }
    let exponent = match exponent {
        Some(text) => parse_exponent(text)?,
        None => 0,
    };
    // value = digits × 10^(exponent - fraction length)
    let shift = exponent - fraction.len() as i64;
    let significant: Vec<u8> = digits().skip_while(|&b| b == b'0').collect();
    let (kept, dropped) = if shift >= 0 {
        (significant.as_slice(), &[][..])
    } else {
        let cut = significant
            .len()
            .saturating_sub(shift.unsigned_abs() as usize);
        significant.split_at(cut)
    };
    if dropped.iter().any(|&b| b != b'0') {
        return None; // a fraction
    }
    let mut value = parse_decimal_u128(kept)?;
    for _ in 0..shift.max(0) {
        value = value.checked_mul(10)?;
    }
    (value <= max).then_some(value)
}

/// An exponent's digits with their sign, bounded (any exponent past ±10^6 has no integer u128
/// value except for zero, handled before).
fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .parse::<i64>()
        .unwrap_or(if digits.trim_start_matches('0').is_empty() {
            0
        } else {
            i64::MAX
        })
        .min(1_000_000);
    Some(if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
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
        let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
        let code = match json_text(raw).map_err(de::Error::custom)? {
            Some(text) => parse_ledger(&text),
            None => match parse_integer_token(raw.get(), LEDGER_INTEGER_MAX.into()) {
                Some(number) => parse_ledger(&number.to_string()),
                None => Err(format!(
                    "invalid ledger `{}`: expected a ledger code of 1 to 8 characters A-Z, 0-9 or _ (or an integer of at most 8 digits)",
                    input_prefix(raw.get())
                )),
            },
        };
        code.map(LedgerIn).map_err(de::Error::custom)
    }
}

/// A ledger code given as a JSON integer stands for its digits, so it has at most 8 of them.
const LEDGER_INTEGER_MAX: u32 = 99_999_999;

/// The text of a raw JSON string token (`None` for any other token).
fn json_text(raw: &RawValue) -> Result<Option<std::borrow::Cow<'_, str>>, String> {
    let token = raw.get();
    if !token.starts_with('"') {
        return Ok(None);
    }
    if let Ok(text) = serde_json::from_str::<&str>(token) {
        return Ok(Some(text.into()));
    }
    // Escapes: the text differs from the token.
    serde_json::from_str::<String>(token)
        .map(|text| Some(text.into()))
        .map_err(|error| error.to_string())
}

/// Unsigned JSON integers of a given width, spelled any way JSON Schema's `integer` admits
/// (see [`parse_integer_token`]).
macro_rules! uint_in {
    ($(#[$doc:meta])* $name:ident, $int:ty, $schema:expr, $schema_name:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name(pub $int);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
                parse_integer_token(raw.get(), <$int>::MAX.into())
                    .and_then(|value| <$int>::try_from(value).ok())
                    .map($name)
                    .ok_or_else(|| {
                        de::Error::custom(format_args!(
                            "invalid integer `{}`: expected an integer from 0 to {}",
                            input_prefix(raw.get()),
                            <$int>::MAX
                        ))
                    })
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($schema_name)
            }
        }
    };
}

/// A policy read back is written the way it was sent: a plain JSON integer.
impl Serialize for U64In {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

uint_in!(
    /// A u64 on input, e.g. an amount.
    U64In, u64, crate::schema::uint64(0), "UInt64"
);
uint_in!(
    /// A u32 on input, e.g. `timeout_s`.
    U32In, u32, crate::schema::uint32(), "UInt32"
);

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
        let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
        match json_text(raw).map_err(de::Error::custom)? {
            Some(text) => check_wallet_key_text(&text)
                .map(|()| WalletKey(text.into_owned()))
                .map_err(de::Error::custom),
            None => parse_integer_token(raw.get(), u64::MAX.into())
                .map(|number| WalletKey(number.to_string()))
                .ok_or_else(|| {
                    de::Error::custom(format_args!(
                        "invalid key `{}`: expected a string of 1 to {WALLET_KEY_LEN_MAX} printable ASCII characters, or an integer from 0 to 2^64-1",
                        input_prefix(raw.get())
                    ))
                }),
        }
    }
}

/// Wallet keys are printable ASCII (space to `~`): one character is one byte, so the limit
/// reads the same in characters (as JSON Schema's `maxLength` counts) and in bytes (as the
/// ledger stores it).
fn check_wallet_key_text(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > WALLET_KEY_LEN_MAX {
        return Err(format!(
            "must be a non-empty string of at most {WALLET_KEY_LEN_MAX} characters (got {} bytes)",
            text.len()
        ));
    }
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(format!(
            "must be printable ASCII, space to ~ (got {:?})",
            input_prefix(text)
        ));
    }
    Ok(())
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
// Their schemas (crate::schema): named components the request and response schemas refer to.

macro_rules! schema_of {
    ($type:ty, $name:literal, $schema:expr) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }

        impl ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

schema_of!(
    IdIn,
    "IdIn",
    crate::schema::id_in(false).description(Some(
        "A non-zero u128 id: a JSON integer, or a string of decimal digits"
    ))
);
schema_of!(
    IdOut,
    "Id",
    crate::schema::id_string(false)
        .description(Some("A non-zero u128 id as a string of decimal digits"))
        .examples(["1001"])
);
schema_of!(
    LedgerIn,
    "LedgerCodeIn",
    crate::schema::ledger_in().description(Some(
        "A ledger code (currency or unit of account): 1 to 8 characters A-Z, 0-9 or _, or a JSON integer standing for its digits"
    ))
);
schema_of!(
    LedgerOut,
    "LedgerCode",
    crate::schema::ledger_string()
        .description(Some("A ledger code: 1 to 8 characters A-Z, 0-9 or _"))
        .examples(["EUR"])
);
schema_of!(
    WalletKey,
    "WalletKey",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some(format!("^[ -~]{{1,{WALLET_KEY_LEN_MAX}}}$")))
        )
        .item(crate::schema::uint64(0))
        .description(Some(
            "A provider's transaction or round id: 1 to 128 printable ASCII characters, or a JSON integer standing for its digits"
        ))
);

// ---------------------------------------------------------------------------------------------
// Requests

/// One account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// Non-zero u128, as a JSON integer or a decimal string.
    #[schema(example = "1001")]
    pub id: IdIn,
    /// Currency or unit of account: 1-8 characters A-Z, 0-9, _ (an integer means its digits).
    #[schema(example = "EUR")]
    pub ledger: LedgerIn,
    /// player, house, clearing, bonus, jackpot or system.
    #[schema(schema_with = account_kind_schema, example = "player")]
    pub kind: KindIn,
    /// linked, debits_must_not_exceed_credits, credits_must_not_exceed_debits, closed.
    #[serde(default)]
    #[schema(schema_with = flags_schema::<AccountFlags>, required = false, example = json!(["debits_must_not_exceed_credits"]))]
    pub flags: FlagsIn<AccountFlags>,
}

/// One transfer to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferIn {
    /// Non-zero u128, as a JSON integer or a decimal string.
    #[schema(example = "5001")]
    pub id: IdIn,
    #[schema(example = "1001")]
    pub debit_account_id: IdIn,
    #[schema(example = "1002")]
    pub credit_account_id: IdIn,
    /// Minor units (e.g. cents), a JSON integer.
    #[schema(example = 250)]
    pub amount: U64In,
    #[schema(example = "EUR")]
    pub ledger: LedgerIn,
    /// linked, pending, post_pending_transfer, void_pending_transfer, closing_debit,
    /// closing_credit.
    #[serde(default)]
    #[schema(schema_with = flags_schema::<TransferFlags>, required = false, example = json!([]))]
    pub flags: FlagsIn<TransferFlags>,
    /// The pending transfer to post or void; 0, null or absent means none.
    #[serde(default)]
    #[schema(schema_with = pending_id_schema, required = false)]
    pub pending_id: Option<IdIn>,
    /// Seconds until a pending transfer expires; 0, null or absent means never.
    #[serde(default)]
    #[schema(schema_with = timeout_schema, required = false)]
    pub timeout_s: Option<U32In>,
}

/// A bet (player → house) or a win (house → player).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletMoveIn {
    /// The provider's transaction id (1-128 printable ASCII characters; an integer means its
    /// digits).
    #[schema(example = "tx-1")]
    pub transaction_id: WalletKey,
    /// The registered player's id or the player's account id.
    #[schema(example = "1001")]
    pub player_id: IdIn,
    #[schema(example = "round-1")]
    pub round_id: WalletKey,
    /// Minor units, at least 1 (0 answers 422 amount_must_not_be_zero).
    #[schema(schema_with = wallet_amount_schema, example = 100)]
    pub amount: U64In,
    #[schema(example = "EUR")]
    pub ledger: LedgerIn,
}

/// Reverses an unsettled bet exactly once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletRollbackIn {
    #[schema(example = "tx-2")]
    pub transaction_id: WalletKey,
    #[schema(example = "1001")]
    pub player_id: IdIn,
    #[schema(example = "round-1")]
    pub round_id: WalletKey,
    /// The bet's transaction id.
    #[schema(example = "tx-1")]
    pub rolled_back_transaction_id: WalletKey,
}

/// Query of `GET /v1/accounts/{id}/transfers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransfersQuery {
    /// 1 to 8189, default 50.
    #[param(minimum = 1, maximum = 8189)]
    pub limit: Option<u64>,
    /// Opaque cursor of the next page, from a previous page's `X-Next-Cursor` header.
    #[param(pattern = "^c1[0-9a-fA-F]{16}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// A registered player's currency (default: the first it registered with).
    #[param(pattern = "^[A-Z0-9_]{1,8}$")]
    pub ledger: Option<String>,
}

/// Schemas of fields whose type says less than the parser checks.
fn account_kind_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(AccountKind::ALL.iter().map(|kind| kind.name())))
        .build()
}

fn flags_schema<F: NamedFlags>() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(F::all_names())),
        )
        .build()
}

fn pending_id_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::nullable(crate::schema::id_in(true))
}

fn timeout_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::nullable(crate::schema::uint32().build())
}

fn wallet_amount_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(1).build()
}

fn balance_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint128().build()
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
            amount: self.amount.0,
            ledger: self.ledger.0,
            flags: self.flags.0,
            pending_id: self.pending_id.map_or(0, |id| id.0),
            timeout_s: self.timeout_s.map_or(0, |timeout| timeout.0),
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
            amount: self.amount.0,
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
            amount: self.amount.0,
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
    #[schema(example = "5001")]
    pub id: IdOut,
    /// "ok", "exists" or a rejection code such as "exceeds_credits".
    #[schema(value_type = String, example = "ok")]
    pub result: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    #[schema(example = "1001")]
    pub id: IdOut,
    #[schema(example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(schema_with = account_kind_schema, example = "player")]
    pub kind: &'static str,
    #[schema(schema_with = flags_schema::<AccountFlags>)]
    pub flags: Vec<&'static str>,
    #[schema(schema_with = balance_schema)]
    pub debits_pending: u128,
    #[schema(schema_with = balance_schema)]
    pub debits_posted: u128,
    #[schema(schema_with = balance_schema)]
    pub credits_pending: u128,
    #[schema(schema_with = balance_schema)]
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
    #[schema(example = "5001")]
    pub id: IdOut,
    #[schema(example = "1001")]
    pub debit_account_id: IdOut,
    #[schema(example = "1002")]
    pub credit_account_id: IdOut,
    pub amount: u64,
    #[schema(example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(schema_with = flags_schema::<TransferFlags>)]
    pub flags: Vec<&'static str>,
    /// The pending transfer this one posts or voids; null when none.
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
    #[schema(example = "tx-1")]
    pub transaction_id: String,
    #[schema(example = "1001")]
    pub player_id: IdOut,
    /// The player's available balance right after this call, minor units.
    #[schema(schema_with = balance_schema, example = 900)]
    pub balance: u128,
    /// Present for bets and wins (the request's ledger).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "EUR")]
    pub ledger: Option<LedgerOut>,
    /// The ledger transfer made, or null when no money moved.
    pub transfer_id: Option<IdOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    #[schema(example = "1001")]
    pub player_id: IdOut,
    #[schema(example = "EUR")]
    pub ledger: LedgerOut,
    #[schema(schema_with = balance_schema, example = 900)]
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
            "-1", "1.5", "1e-3", "\"1e3\"", "\"1.0\"", "\"\"", "\"+1\"", "\"0x10\"", "true",
            "null", beyond,
        ] {
            assert!(parse::<IdIn>(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse::<IdIn>(&format!("\"{beyond}\"")).is_err());
        // A number is a value: an exponent or a zero fraction spells an integer too.
        assert_eq!(parse::<IdIn>("1e3").unwrap(), IdIn(1000));
    }

    #[test]
    fn integer_tokens_are_exact_values_however_spelled() {
        let max = u128::MAX;
        for (token, value) in [
            ("0", 0),
            ("-0", 0),
            ("0.000", 0),
            ("0e-99999999999999999999", 0),
            ("250", 250),
            ("250.0", 250),
            ("2.5e2", 250),
            ("2.50E+2", 250),
            ("25000e-2", 250),
            ("1e38", 10u128.pow(38)),
            ("340282366920938463463374607431768211455", max),
            ("3.40282366920938463463374607431768211455e38", max),
        ] {
            assert_eq!(parse_integer_token(token, max), Some(value), "{token}");
        }
        for token in [
            "2.5",
            "1e-1",
            "-1",
            "-0.5",
            "340282366920938463463374607431768211456",
            "1e39",
            "1e999999999999",
            "\"1\"",
            "true",
            "null",
            "1e",
            "1.e5",
        ] {
            assert_eq!(parse_integer_token(token, max), None, "{token}");
        }
        assert_eq!(parse_integer_token("256", 255), None);
        assert_eq!(parse_integer_token("2.55e2", 255), Some(255));
    }

    #[test]
    fn small_integers_and_ledgers_take_any_spelling_of_an_integer() {
        assert_eq!(parse::<U64In>("25.0").unwrap(), U64In(25));
        assert_eq!(
            parse::<U64In>("18446744073709551615").unwrap(),
            U64In(u64::MAX)
        );
        assert!(parse::<U64In>("18446744073709551616").is_err());
        assert!(parse::<U32In>("4294967296").is_err());
        assert!(parse::<U32In>("\"5\"").is_err());
        assert_eq!(parse::<LedgerIn>("978.0").unwrap().0.as_string(), "978");
        assert_eq!(
            parse::<LedgerIn>("\"\\u0045UR\"").unwrap().0.as_string(),
            "EUR"
        );
        assert!(parse::<LedgerIn>("123456789").is_err(), "9 digits");
        assert_eq!(parse::<WalletKey>("17.0").unwrap().0, "17");
        assert_eq!(parse::<IdIn>("7e0").unwrap(), IdIn(7));
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
        let longest = "~".repeat(WALLET_KEY_LEN_MAX);
        assert_eq!(
            parse::<WalletKey>(&format!("\"{longest}\"")).unwrap().0,
            longest
        );
        for bad in ["\"tx-é\"", "\"tab\\there\"", "\"nul\\u0000\""] {
            assert!(parse::<WalletKey>(bad).is_err(), "{bad}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payment events (the feed's `deposit_updated` and `withdrawal_updated`, and webhooks)

/// A deposit or a withdrawal as it changed; the event's position, time and type go beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentEventOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub deposit_id: Option<IdOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub withdrawal_id: Option<IdOut>,
    #[schema(value_type = String)]
    pub player_id: IdOut,
    /// The deposit's or withdrawal's state after the change.
    pub state: &'static str,
    /// Minor units.
    pub amount: u64,
    #[schema(value_type = String)]
    pub ledger: LedgerOut,
    /// The deposit's connector or the withdrawal's current attempt's ("" before one).
    pub connector: String,
    /// Withdrawals: payout attempts so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u8>,
    /// A refusal's code, the bank's reason or the last finding ("" if none).
    pub reason: String,
}

impl From<&croupier_core::payments::PaymentEvent> for PaymentEventOut {
    fn from(event: &croupier_core::payments::PaymentEvent) -> Self {
        use croupier_core::payments::PaymentChange;
        let (deposit_id, withdrawal_id, attempts) = match event.change {
            PaymentChange::Deposit { deposit_id, .. } => (Some(IdOut(deposit_id)), None, None),
            PaymentChange::Withdrawal {
                withdrawal_id,
                attempts,
                ..
            } => (None, Some(IdOut(withdrawal_id)), Some(attempts)),
        };
        PaymentEventOut {
            deposit_id,
            withdrawal_id,
            player_id: IdOut(event.player_id),
            state: event.state_name(),
            amount: event.amount,
            ledger: LedgerOut(event.ledger),
            connector: event.connector.clone(),
            attempts,
            reason: event.reason.clone(),
        }
    }
}
