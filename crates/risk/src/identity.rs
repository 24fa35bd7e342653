//! Identity attestations: a trusted identity provider (IdP) vouches for a player's identity
//! in a compact JWS (a signed JWT, RFC 7515/7519), and [`verify_attestation`] decides whether
//! to believe it.
//!
//! # The attestation
//!
//! Header: `alg` must be `ES256` (ECDSA P-256, SHA-256) or `EdDSA` (Ed25519); anything else,
//! `none` and `HS256` included, is malformed. `kid`, if present, picks the issuer's key; if
//! absent, every key of the issuer for that `alg` is tried. A `crit` header is refused (no
//! extension is understood here).
//!
//! Claims (payload, JSON object; unknown claims are ignored):
//!
//! | claim | type | |
//! |---|---|---|
//! | `iss` | string | issuer, exactly as configured in [`TrustedIssuers`]; required |
//! | `sub` | string | the player's identifier at the issuer, non-empty; required |
//! | `iat` | integer, Unix s | issued at; required, at most [`FUTURE_SKEW_S_MAX`] ahead of now |
//! | `exp` | integer, Unix s | expires at; required, must be after now |
//! | `nbf` | integer, Unix s | not before; optional, at most [`FUTURE_SKEW_S_MAX`] ahead of now |
//! | `name` | string | full name; optional |
//! | `birthdate` | `"YYYY-MM-DD"` | date of birth (OIDC standard claim) |
//! | `age_over_18` | bool | age attested without the date (ISO 18013-5 mDL, SD-JWT VC naming) |
//! | `country` | string | country of residence, ISO 3166-1 alpha-2, upper case (`GB`); required |
//! | `address` | object | postal address (OIDC `address`: `formatted`, or `street_address`, `locality`, `region`, `postal_code`, `country`); optional |
//!
//! At least one of `birthdate` and `age_over_18` is required. A claim of the wrong JSON type or
//! format (a date that does not exist, `country` not two capital letters) is malformed.
//!
//! # Checks, in order
//!
//! parse → issuer and key → signature → time → claims → age. Only what anyone holding the text
//! can see anyway (its shape, its `iss` and `kid`) is looked at before the signature; so a
//! forged or altered token learns `signature_invalid` and nothing about the policy after it.

mod date;
pub mod issue;
mod trust;

#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use date::CivilDate;
pub use trust::{
    IssuerConfig, IssuerConfigError, Jwk, Jwks, SigningAlg, TrustedIssuer, TrustedIssuers,
    TrustedKey,
};

/// The longest attestation read: real ones are well under 2 KiB; the bound keeps a hostile
/// request from making us decode and hash megabytes.
pub const ATTESTATION_BYTES_MAX: usize = 16 * 1024;

/// How far `iat` and `nbf` may be ahead of our clock: the issuer's clock and ours differ a
/// little, and a token issued "in a second" is not an attack.
pub const FUTURE_SKEW_S_MAX: u64 = 60;

/// The age rule applied to verified identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgePolicy {
    /// The youngest age admitted, in whole years on the day of verification (UTC).
    pub age_min_years: u8,
}

impl Default for AgePolicy {
    fn default() -> AgePolicy {
        AgePolicy { age_min_years: 18 }
    }
}

/// An attestation's claims as written in the JWS payload; every field optional here, so that
/// a missing claim is told apart from a malformed one. Also what [`issue::Issuer`] signs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_over_18: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressClaim>,
}

/// OpenID Connect's `address` claim (Core §5.1.1); only its text is used.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressClaim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl AddressClaim {
    /// `formatted`, or the parts joined by commas; None when all are empty.
    pub fn text(&self) -> Option<String> {
        if let Some(formatted) = self.formatted.as_ref().filter(|f| !f.trim().is_empty()) {
            return Some(formatted.clone());
        }
        let parts = [
            &self.street_address,
            &self.locality,
            &self.region,
            &self.postal_code,
            &self.country,
        ];
        let joined: Vec<&str> = parts
            .iter()
            .filter_map(|part| part.as_deref())
            .filter(|part| !part.trim().is_empty())
            .collect();
        (!joined.is_empty()).then(|| joined.join(", "))
    }
}

/// Personal data (subject, name, birth date) is never printed: Debug output ends up in logs.
impl fmt::Debug for AttestationClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationClaims")
            .field("iss", &self.iss)
            .field("sub", &self.sub.as_ref().map(|_| Redacted))
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("name", &self.name.as_ref().map(|_| Redacted))
            .field("birthdate", &self.birthdate.as_ref().map(|_| Redacted))
            .field("age_over_18", &self.age_over_18)
            .field("country", &self.country)
            .field("address", &self.address.as_ref().map(|_| Redacted))
            .finish()
    }
}

/// An identity an attestation proved.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub birth_date: Option<CivilDate>,
    /// 18 or older on the day of verification, by the birth date or the `age_over_18` claim.
    pub age_over_18: bool,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// The postal address's text, if the attestation carried one.
    pub address: Option<String>,
    pub expires_at_unix_s: u64,
    /// SHA-256 of the attestation's compact text: what a record keeps to prove which
    /// attestation it relied on, without keeping the personal data in it. Not a replay key:
    /// an ECDSA signature has two valid encodings (s and n - s), so the same claims can come
    /// as two texts; bind an identity by (`issuer`, `subject`) instead.
    pub attestation_sha256: [u8; 32],
}

/// Personal data (subject, name, birth date) is never printed: Debug output ends up in logs.
impl fmt::Debug for VerifiedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedIdentity")
            .field("issuer", &self.issuer)
            .field("subject", &Redacted)
            .field("name", &self.name.as_ref().map(|_| Redacted))
            .field("birth_date", &self.birth_date.map(|_| Redacted))
            .field("age_over_18", &self.age_over_18)
            .field("country", &self.country)
            .field("address", &self.address.as_ref().map(|_| Redacted))
            .field("expires_at_unix_s", &self.expires_at_unix_s)
            .field("attestation_sha256", &Hex(&self.attestation_sha256))
            .finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why an attestation is not believed. [`AttestationRejection::code`] is the stable name the
/// HTTP API returns (with 422); messages carry no personal data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationRejection {
    #[error("the attestation is not a readable compact JWS: {0}")]
    Malformed(&'static str),
    #[error("the attestation's issuer or key is not trusted: {0}")]
    IssuerNotTrusted(&'static str),
    #[error("the attestation's signature does not verify")]
    SignatureInvalid,
    #[error("the attestation expired at {expired_at_unix_s} (Unix s)")]
    Expired { expired_at_unix_s: u64 },
    #[error("the attestation is valid only from {valid_from_unix_s} (Unix s)")]
    NotYetValid { valid_from_unix_s: u64 },
    #[error("the attestation lacks a required claim: {0}")]
    ClaimsMissing(&'static str),
    #[error("the attested person is under {age_min_years}")]
    UnderAge { age_min_years: u8 },
}

impl AttestationRejection {
    pub fn code(&self) -> &'static str {
        match self {
            AttestationRejection::Malformed(_) => "attestation_malformed",
            AttestationRejection::IssuerNotTrusted(_) => "issuer_not_trusted",
            AttestationRejection::SignatureInvalid => "signature_invalid",
            AttestationRejection::Expired { .. } => "attestation_expired",
            AttestationRejection::NotYetValid { .. } => "attestation_not_yet_valid",
            AttestationRejection::ClaimsMissing(_) => "claims_missing",
            AttestationRejection::UnderAge { .. } => "under_age",
        }
    }
}

/// Verifies `compact` (a compact JWS) against the `trusted` issuers at `now_unix_s`, then
/// applies the age `policy`. The checks run in the order the module documentation gives.
pub fn verify_attestation(
    compact: &str,
    trusted: &TrustedIssuers,
    now_unix_s: u64,
    policy: &AgePolicy,
) -> Result<VerifiedIdentity, AttestationRejection> {
    use AttestationRejection::ClaimsMissing;
    let parsed = parse(compact)?;
    let keys = candidate_keys(&parsed, trusted)?;
    check_signature(&parsed, &keys)?;
    let expires_at_unix_s = check_time(&parsed.claims, now_unix_s)?;
    let claims = parsed.claims;
    let subject = claims
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(ClaimsMissing("sub"))?;
    let country = claims.country.ok_or(ClaimsMissing("country"))?;
    let age_over_18 = check_age(parsed.birth_date, claims.age_over_18, now_unix_s, policy)?;
    Ok(VerifiedIdentity {
        issuer: claims.iss.unwrap_or_default(), // present: the key was found by it
        subject,
        name: claims.name,
        birth_date: parsed.birth_date,
        age_over_18,
        country,
        address: claims.address.as_ref().and_then(AddressClaim::text),
        expires_at_unix_s,
        attestation_sha256: Sha256::digest(compact.as_bytes()).into(),
    })
}

/// A compact JWS taken apart; nothing in it is trusted yet.
struct Parsed<'a> {
    alg: SigningAlg,
    kid: Option<String>,
    claims: AttestationClaims,
    birth_date: Option<CivilDate>,
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    signing_input: &'a str,
    signature_b64: &'a str,
}

/// The JWS protected header, the members read here.
#[derive(Deserialize)]
struct JwsHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// ES256 (R ‖ S, 32 bytes each) and Ed25519 signatures are both 64 bytes.
const SIGNATURE_BYTES: usize = 64;

fn parse(compact: &str) -> Result<Parsed<'_>, AttestationRejection> {
    use AttestationRejection::Malformed;
    if compact.len() > ATTESTATION_BYTES_MAX {
        return Err(Malformed("longer than ATTESTATION_BYTES_MAX"));
    }
    let mut parts = compact.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed("not three dot-separated parts"));
    };
    let header: JwsHeader = decode_json(header).ok_or(Malformed("header is not base64url JSON"))?;
    let alg =
        SigningAlg::from_jws_name(&header.alg).ok_or(Malformed("alg is not ES256 or EdDSA"))?;
    if header.crit.is_some() {
        return Err(Malformed("crit: no header extension is understood"));
    }
    let claims: AttestationClaims =
        decode_json(payload).ok_or(Malformed("payload is not base64url JSON of the claims"))?;
    let signature_ok = URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|bytes| bytes.len() == SIGNATURE_BYTES);
    if !signature_ok {
        return Err(Malformed("signature is not 64 bytes of base64url"));
    }
    let birth_date = match claims.birthdate.as_deref() {
        Some(text) => {
            Some(CivilDate::parse_iso(text).ok_or(Malformed("birthdate is not YYYY-MM-DD"))?)
        }
        None => None,
    };
    let country_ok = |c: &String| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
    if claims.country.as_ref().is_some_and(|c| !country_ok(c)) {
        return Err(Malformed("country is not ISO 3166-1 alpha-2 in capitals"));
    }
    Ok(Parsed {
        alg,
        kid: header.kid,
        claims,
        birth_date,
        signing_input: &compact[..compact.len() - signature.len() - 1],
        signature_b64: signature,
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The keys that may have signed: the issuer's key named by `kid`, or all its keys for `alg`.
fn candidate_keys<'t>(
    parsed: &Parsed<'_>,
    trusted: &'t TrustedIssuers,
) -> Result<Vec<&'t TrustedKey>, AttestationRejection> {
    use AttestationRejection::{ClaimsMissing, IssuerNotTrusted};
    let iss = parsed.claims.iss.as_deref().ok_or(ClaimsMissing("iss"))?;
    let issuer = trusted
        .get(iss)
        .ok_or(IssuerNotTrusted("iss is not a trusted issuer"))?;
    let keys: Vec<&TrustedKey> = match parsed.kid.as_deref() {
        Some(kid) => {
            let key = issuer
                .keys
                .iter()
                .find(|k| k.kid() == Some(kid))
                .ok_or(IssuerNotTrusted("kid names no key of the issuer"))?;
            if key.alg() != parsed.alg {
                // The key is for another algorithm: never reinterpret it (alg confusion).
                return Err(IssuerNotTrusted("kid names a key for another alg"));
            }
            vec![key]
        }
        None => issuer
            .keys
            .iter()
            .filter(|k| k.alg() == parsed.alg)
            .collect(),
    };
    if keys.is_empty() {
        return Err(IssuerNotTrusted("the issuer has no key for this alg"));
    }
    Ok(keys)
}

fn check_signature(parsed: &Parsed<'_>, keys: &[&TrustedKey]) -> Result<(), AttestationRejection> {
    let verifies = |key: &&TrustedKey| {
        jsonwebtoken::crypto::verify(
            parsed.signature_b64,
            parsed.signing_input.as_bytes(),
            key.decoding_key(),
            parsed.alg.to_jsonwebtoken(),
        )
        .unwrap_or(false)
    };
    if keys.iter().any(verifies) {
        Ok(())
    } else {
        Err(AttestationRejection::SignatureInvalid)
    }
}

/// `exp` after now; `iat` and `nbf` not more than [`FUTURE_SKEW_S_MAX`] ahead. Returns `exp`.
fn check_time(claims: &AttestationClaims, now_unix_s: u64) -> Result<u64, AttestationRejection> {
    use AttestationRejection::{ClaimsMissing, Expired, NotYetValid};
    let exp = claims.exp.ok_or(ClaimsMissing("exp"))?;
    let iat = claims.iat.ok_or(ClaimsMissing("iat"))?;
    if exp <= now_unix_s {
        return Err(Expired {
            expired_at_unix_s: exp,
        });
    }
    let start_latest_unix_s = now_unix_s.saturating_add(FUTURE_SKEW_S_MAX);
    let start = claims.nbf.unwrap_or(0).max(iat);
    if start > start_latest_unix_s {
        return Err(NotYetValid {
            valid_from_unix_s: start,
        });
    }
    Ok(exp)
}

/// Whether the person is at least `policy.age_min_years` old today (UTC), from the birth date
/// if given, else from `age_over_18`. Claims that disagree count against: any claim saying
/// "under" wins. Returns whether the person is 18 or older.
fn check_age(
    birth_date: Option<CivilDate>,
    age_over_18: Option<bool>,
    now_unix_s: u64,
    policy: &AgePolicy,
) -> Result<bool, AttestationRejection> {
    use AttestationRejection::{ClaimsMissing, UnderAge};
    let age_min_years = policy.age_min_years;
    let under_age = Err(UnderAge { age_min_years });
    let (meets_minimum, over_18) = match (birth_date, age_over_18) {
        (Some(born), claim) => {
            let age_years = born.whole_years_until(CivilDate::from_unix_s(now_unix_s));
            let over_18 = age_years >= 18 && claim != Some(false);
            let meets = age_years >= i64::from(age_min_years) && (over_18 || age_min_years < 18);
            (meets, over_18)
        }
        (None, Some(true)) if age_min_years <= 18 => (true, true),
        (None, Some(false)) if age_min_years >= 18 => return under_age,
        // `age_over_18` alone cannot prove a minimum above 18, or rule out one below it.
        (None, Some(_)) => return Err(ClaimsMissing("birthdate (age_over_18 cannot decide)")),
        (None, None) => return Err(ClaimsMissing("birthdate or age_over_18")),
    };
    if meets_minimum {
        Ok(over_18)
    } else {
        under_age
    }
}
