//! Issuing attestations: what an identity provider does, for tests and for the sandbox IdP
//! (`croupier sandbox idp`). Signing is pure (ES256 as RFC 6979 deterministic ECDSA, Ed25519
//! deterministic by design), and the key comes from 32 bytes the caller drew: no randomness
//! source in this crate.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
// One trait for both curves: p256 and ed25519-dalek re-export the same `pkcs8` crate.
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;

use super::trust::jwk_thumbprint;
use super::{AttestationClaims, IssuerConfigError, Jwk, Jwks, SigningAlg, TrustedIssuers};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IssuerKeyError {
    /// Only for ES256: the bytes are 0 or not below the order of P-256 (a chance of about
    /// 2^-32 for uniform bytes). Draw again.
    #[error("the 32 bytes are not a valid P-256 secret scalar: draw new ones")]
    SecretOutOfRange,
    #[error("the issuer name is empty")]
    EmptyIssuer,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// An identity provider's signing key and name. Its private key is never printed.
pub struct Issuer {
    issuer: String,
    alg: SigningAlg,
    jwk: Jwk,
    encoding: EncodingKey,
}

impl Issuer {
    /// The issuer `issuer` (its `iss`) with the key made from `secret`: an ES256 key takes the
    /// bytes as its scalar (big-endian), an EdDSA key as its seed (RFC 8032). The same bytes
    /// give the same key, so a caller that keeps them keeps its key.
    pub fn from_secret(
        issuer: impl Into<String>,
        alg: SigningAlg,
        secret: &[u8; 32],
    ) -> Result<Issuer, IssuerKeyError> {
        let issuer = issuer.into();
        if issuer.is_empty() {
            return Err(IssuerKeyError::EmptyIssuer);
        }
        let (encoding, mut jwk) = match alg {
            SigningAlg::Es256 => es256_key(secret)?,
            SigningAlg::EdDsa => eddsa_key(secret)?,
        };
        jwk.alg = Some(alg.jws_name().to_owned());
        jwk.key_use = Some("sig".to_owned());
        // The kid follows from the key (RFC 7638 thumbprint): stable across restarts.
        jwk.kid = Some(jwk_thumbprint(&jwk));
        Ok(Issuer {
            issuer,
            alg,
            jwk,
            encoding,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        self.jwk.kid.as_deref().unwrap_or_default()
    }

    /// The public key as a JWK (with `kid`, `alg` and `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The public JWKS a verifier configures: this issuer's one key.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk.clone()],
        }
    }

    /// A trust configuration of this issuer alone (tests' shortcut).
    pub fn trusted_issuers(&self) -> Result<TrustedIssuers, IssuerConfigError> {
        let mut trusted = TrustedIssuers::new();
        trusted.add_jwk_set(&self.issuer, &self.jwks())?;
        Ok(trusted)
    }

    /// Signs `claims` into a compact JWS, header `{"typ":"JWT","alg":..,"kid":..}`. `iss` is
    /// always this issuer's name, whatever `claims.iss` says. Nothing else is checked: a test
    /// or a sandbox may issue expired or under-age attestations on purpose.
    pub fn sign(&self, claims: &AttestationClaims) -> Result<String, IssuerKeyError> {
        let claims = AttestationClaims {
            iss: Some(self.issuer.clone()),
            ..claims.clone()
        };
        let mut header = Header::new(self.alg.to_jsonwebtoken());
        header.kid = self.jwk.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| IssuerKeyError::Signing(e.to_string()))
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("alg", &self.alg)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// jsonwebtoken takes private keys as PKCS#8 DER; the public half goes into the JWK.
fn es256_key(secret: &[u8; 32]) -> Result<(EncodingKey, Jwk), IssuerKeyError> {
    let key = p256::SecretKey::from_slice(secret).map_err(|_| IssuerKeyError::SecretOutOfRange)?;
    let der = key
        .to_pkcs8_der() // zeroized when dropped
        .map_err(|e| IssuerKeyError::Signing(e.to_string()))?;
    let point = key.public_key().to_encoded_point(false);
    let coordinate = |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c));
    let jwk = Jwk {
        kty: "EC".to_owned(),
        crv: Some("P-256".to_owned()),
        x: coordinate(point.x()),
        y: coordinate(point.y()),
        kid: None,
        alg: None,
        key_use: None,
    };
    Ok((EncodingKey::from_ec_der(der.as_bytes()), jwk))
}

fn eddsa_key(secret: &[u8; 32]) -> Result<(EncodingKey, Jwk), IssuerKeyError> {
    let key = ed25519_dalek::SigningKey::from_bytes(secret); // zeroized when dropped
    let der = key
        .to_pkcs8_der()
        .map_err(|e| IssuerKeyError::Signing(e.to_string()))?;
    let jwk = Jwk {
        kty: "OKP".to_owned(),
        crv: Some("Ed25519".to_owned()),
        x: Some(URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())),
        y: None,
        kid: None,
        alg: None,
        key_use: None,
    };
    Ok((EncodingKey::from_ed_der(der.as_bytes()), jwk))
}
