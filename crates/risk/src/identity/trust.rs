//! Which identity providers are trusted, with which public keys: built from their JWKS
//! documents (RFC 7517), checked when loaded so a bad key fails at start-up, not at a player's
//! first attestation.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The signature algorithms accepted (JWS `alg`): ECDSA P-256 with SHA-256 and Ed25519. Both
/// are deterministic and widely issued (ES256 by most OIDC providers and EUDI wallets, EdDSA by
/// newer ones); RSA and HMAC are refused on purpose (a shared HMAC secret would let the
/// verifier forge, and `alg` confusion attacks live there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// The JWS name (`ES256`, `EdDSA`).
    pub fn jws_name(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JWS `alg` name, exactly (case matters, as in RFC 7515).
    pub fn from_jws_name(name: &str) -> Option<SigningAlg> {
        match name {
            "ES256" => Some(SigningAlg::Es256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            _ => None,
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// One JSON Web Key, public members only (a private `d` is never read nor written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A trusted issuer as configured: its `iss` and its JWKS inline. A JWKS kept in a file is
/// the caller's to read (this crate does no I/O): read it, then [`TrustedIssuers::add_jwks`].
#[derive(Clone, Debug, Deserialize)]
pub struct IssuerConfig {
    pub issuer: String,
    pub jwks: Jwks,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IssuerConfigError {
    #[error("the JWKS is not valid JSON of the shape {{\"keys\": [...]}}: {0}")]
    Json(String),
    #[error("issuer {issuer:?}: key {kid:?} is invalid: {reason}")]
    InvalidKey {
        issuer: String,
        kid: Option<String>,
        reason: &'static str,
    },
    #[error("issuer {issuer:?}: two keys have the kid {kid:?}, which would be ambiguous")]
    DuplicateKid { issuer: String, kid: String },
    #[error("issuer {issuer:?}: its JWKS has no ES256 (P-256) or EdDSA (Ed25519) signing key")]
    NoUsableKey { issuer: String },
    #[error("the issuer name is empty")]
    EmptyIssuer,
}

/// A public key an issuer signs attestations with.
#[derive(Clone)]
pub struct TrustedKey {
    kid: Option<String>,
    alg: SigningAlg,
    jwk: Jwk,
    decoding: DecodingKey,
}

impl TrustedKey {
    /// The key of a JWK: `{"kty":"EC","crv":"P-256","x","y"}` (ES256) or
    /// `{"kty":"OKP","crv":"Ed25519","x"}` (EdDSA). `Ok(None)` for a key of another type or
    /// curve, or one for encryption (`use` other than `sig`): a provider's JWKS may list
    /// those beside its signing keys. A point off its curve, or an `alg` that contradicts the
    /// curve, is an error.
    pub fn from_jwk(jwk: &Jwk) -> Result<Option<TrustedKey>, &'static str> {
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let alg = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => SigningAlg::Es256,
            ("OKP", Some("Ed25519")) => SigningAlg::EdDsa,
            _ => return Ok(None),
        };
        if jwk.alg.as_deref().is_some_and(|a| a != alg.jws_name()) {
            return Err("its alg does not match its curve");
        }
        let x = decode_coordinate(jwk.x.as_deref())?;
        let decoding = match alg {
            SigningAlg::Es256 => {
                let y = decode_coordinate(jwk.y.as_deref())?;
                check_p256_point(&x, &y)?;
                DecodingKey::from_ec_components(
                    &URL_SAFE_NO_PAD.encode(x),
                    &URL_SAFE_NO_PAD.encode(y),
                )
            }
            SigningAlg::EdDsa => {
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| "x is not an Ed25519 public key")?;
                DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x))
            }
        }
        .map_err(|_| "its coordinates are not base64url")?;
        Ok(Some(TrustedKey {
            kid: jwk.kid.clone(),
            alg,
            jwk: jwk.clone(),
            decoding,
        }))
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key as a public JWK, as it was configured.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("x", &self.jwk.x)
            .finish()
    }
}

/// Exactly 32 bytes of base64url without padding (a P-256 coordinate or an Ed25519 key).
fn decode_coordinate(text: Option<&str>) -> Result<[u8; 32], &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.ok_or("a coordinate is missing")?)
        .map_err(|_| "a coordinate is not base64url without padding")?;
    bytes
        .try_into()
        .map_err(|_| "a coordinate is not 32 bytes long")
}

fn check_p256_point(x: &[u8; 32], y: &[u8; 32]) -> Result<(), &'static str> {
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04; // uncompressed point
    sec1[1..33].copy_from_slice(x);
    sec1[33..].copy_from_slice(y);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map(|_| ())
        .map_err(|_| "(x, y) is not a point of P-256")
}

/// One trusted issuer: its `iss` value, exactly as in its attestations, and its keys.
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub keys: Vec<TrustedKey>,
}

/// The identity providers whose attestations are believed. Build it with
/// [`TrustedIssuers::add_jwks`] or deserialize it from a list of
/// `{"issuer": "...", "jwks": {"keys": [...]}}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "Vec<IssuerConfig>")]
pub struct TrustedIssuers {
    issuers: Vec<TrustedIssuer>,
}

impl TrustedIssuers {
    pub fn new() -> TrustedIssuers {
        TrustedIssuers::default()
    }

    /// Trusts `issuer`'s signing keys from its JWKS document (JSON text). Keys add to those the
    /// issuer already has (a rotation publishes old and new side by side). All or nothing: on
    /// an error nothing is added.
    pub fn add_jwks(&mut self, issuer: &str, jwks_json: &str) -> Result<(), IssuerConfigError> {
        let jwks: Jwks =
            serde_json::from_str(jwks_json).map_err(|e| IssuerConfigError::Json(e.to_string()))?;
        self.add_jwk_set(issuer, &jwks)
    }

    /// [`TrustedIssuers::add_jwks`] for a JWKS already parsed.
    pub fn add_jwk_set(&mut self, issuer: &str, jwks: &Jwks) -> Result<(), IssuerConfigError> {
        if issuer.is_empty() {
            return Err(IssuerConfigError::EmptyIssuer);
        }
        let mut keys = Vec::new();
        for jwk in &jwks.keys {
            let key =
                TrustedKey::from_jwk(jwk).map_err(|reason| IssuerConfigError::InvalidKey {
                    issuer: issuer.to_owned(),
                    kid: jwk.kid.clone(),
                    reason,
                })?;
            keys.extend(key);
        }
        if keys.is_empty() {
            return Err(IssuerConfigError::NoUsableKey {
                issuer: issuer.to_owned(),
            });
        }
        let existing = self.get(issuer).map(|i| i.keys.as_slice()).unwrap_or(&[]);
        check_kids_unique(issuer, existing, &keys)?;
        match self.issuers.iter_mut().find(|i| i.issuer == issuer) {
            Some(entry) => entry.keys.extend(keys),
            None => self.issuers.push(TrustedIssuer {
                issuer: issuer.to_owned(),
                keys,
            }),
        }
        Ok(())
    }

    /// The issuer whose `iss` is exactly `issuer`.
    pub fn get(&self, issuer: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == issuer)
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustedIssuer> {
        self.issuers.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }
}

impl TryFrom<Vec<IssuerConfig>> for TrustedIssuers {
    type Error = IssuerConfigError;

    fn try_from(configs: Vec<IssuerConfig>) -> Result<TrustedIssuers, IssuerConfigError> {
        let mut trusted = TrustedIssuers::new();
        for config in &configs {
            trusted.add_jwk_set(&config.issuer, &config.jwks)?;
        }
        Ok(trusted)
    }
}

/// A kid names one key of an issuer, or the header's `kid` could pick either.
fn check_kids_unique(
    issuer: &str,
    existing: &[TrustedKey],
    added: &[TrustedKey],
) -> Result<(), IssuerConfigError> {
    for (i, key) in added.iter().enumerate() {
        let Some(kid) = key.kid() else { continue };
        let clash = existing
            .iter()
            .chain(&added[..i])
            .any(|k| k.kid() == Some(kid));
        if clash {
            return Err(IssuerConfigError::DuplicateKid {
                issuer: issuer.to_owned(),
                kid: kid.to_owned(),
            });
        }
    }
    Ok(())
}

/// The RFC 7638 thumbprint of a public JWK (SHA-256 of its required members in lexical
/// order, base64url): a kid that follows from the key itself.
pub(crate) fn jwk_thumbprint(jwk: &Jwk) -> String {
    let canonical = match jwk.kty.as_str() {
        "EC" => serde_json::json!({"crv": jwk.crv, "kty": jwk.kty, "x": jwk.x, "y": jwk.y}),
        _ => serde_json::json!({"crv": jwk.crv, "kty": jwk.kty, "x": jwk.x}),
    };
    // Members written in lexical order, as RFC 7638 wants, whether or not some crate turns on
    // serde_json's `preserve_order` (then insertion order is kept; else keys are sorted).
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}
