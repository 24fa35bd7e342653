//! PS256 signatures as UK Open Banking uses them: a detached JWS over a request or response
//! body (`x-jws-signature`: `header..signature`, the payload travelling as the HTTP body), and
//! compact JWS for signed event notifications. Signing and verifying are ring's RSASSA-PSS over
//! SHA-256 (its assembly made them several times cheaper than the pure-Rust `rsa` crate,
//! whose modular arithmetic took 70% of the node's and the OBIE bank's CPU under `croupier
//! bench payments`; ring is in the build for TLS already); keys are made and saved with
//! `rsa`. This module only frames the signing input and finds keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// RSA modulus size of keys made here: what the Open Banking directory requires at least.
const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("not a detached JWS (header..signature)")]
    Malformed,
    #[error("the JWS header is not a JSON object with alg and kid")]
    BadHeader,
    #[error("the JWS algorithm must be PS256")]
    WrongAlgorithm,
    #[error("no trusted key has kid {0:?}")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the key cannot be read: {0}")]
    Key(String),
}

/// A public key set (RFC 7517) as served at a `jwks_uri`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

/// An RSA signing key and its key id (the SHA-256 of its modulus, hex, first 16 bytes).
pub struct SigningKey {
    private: RsaPrivateKey,
    signing: ring::signature::RsaKeyPair,
    random: ring::rand::SystemRandom,
    kid: String,
}

// The private key never reaches Debug output.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the OS's randomness.
    pub fn generate() -> Result<SigningKey, JwsError> {
        let mut rng = rsa::rand_core::OsRng;
        let private =
            RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(|e| JwsError::Key(e.to_string()))?;
        SigningKey::from_private(private)
    }

    /// A key saved by `to_pkcs1_der`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<SigningKey, JwsError> {
        let private =
            RsaPrivateKey::from_pkcs1_der(der).map_err(|e| JwsError::Key(e.to_string()))?;
        SigningKey::from_private(private)
    }

    fn from_private(private: RsaPrivateKey) -> Result<SigningKey, JwsError> {
        let der = private
            .to_pkcs1_der()
            .map_err(|e| JwsError::Key(e.to_string()))?;
        let signing = ring::signature::RsaKeyPair::from_der(der.as_bytes())
            .map_err(|e| JwsError::Key(e.to_string()))?;
        let modulus = private.n().to_bytes_be();
        let kid = hex::encode(&Sha256::digest(&modulus)[..16]);
        Ok(SigningKey {
            private,
            signing,
            random: ring::rand::SystemRandom::new(),
            kid,
        })
    }

    /// The key as PKCS#1 DER, for a file only its owner reads.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, JwsError> {
        let der = self
            .private
            .to_pkcs1_der()
            .map_err(|e| JwsError::Key(e.to_string()))?;
        Ok(der.as_bytes().to_vec())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (RFC 7517) for a JWKS.
    pub fn public_jwk(&self) -> Value {
        let public = self.private.to_public_key();
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "PS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        })
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.public_jwk()],
        }
    }

    /// A detached JWS over `payload`: `base64url(header)..base64url(signature)`. `claims` are
    /// added to the protected header (OBIE's `http://openbanking.org.uk/iss`, `iat`, `tan`).
    pub fn sign_detached(
        &self,
        payload: &[u8],
        claims: Map<String, Value>,
    ) -> Result<String, JwsError> {
        let header = self.header(claims);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = self.sign_input(&input)?;
        Ok(format!("{header}..{signature}"))
    }

    /// A compact JWS whose payload is `payload` (a signed event token, say).
    pub fn sign_compact(
        &self,
        payload: &[u8],
        claims: Map<String, Value>,
    ) -> Result<String, JwsError> {
        let header = self.header(claims);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = self.sign_input(&input)?;
        Ok(format!("{input}.{signature}"))
    }

    fn header(&self, claims: Map<String, Value>) -> String {
        let mut header = claims;
        header.insert("alg".into(), "PS256".into());
        header.insert("kid".into(), self.kid.clone().into());
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string())
    }

    fn sign_input(&self, input: &str) -> Result<String, JwsError> {
        let mut signature = vec![0; self.signing.public().modulus_len()];
        let padding = &ring::signature::RSA_PSS_SHA256;
        self.signing
            .sign(padding, &self.random, input.as_bytes(), &mut signature)
            .map_err(|_| JwsError::Key("signing failed".into()))?;
        Ok(URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Verifies a detached JWS over `payload` with a key of `keys`; answers its protected header.
pub fn verify_detached(
    jws: &str,
    payload: &[u8],
    keys: &Jwks,
) -> Result<Map<String, Value>, JwsError> {
    let mut parts = jws.split('.');
    let (Some(header), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    verify_input(header, &input, signature, keys)
}

/// Verifies a compact JWS; answers its protected header and its payload.
pub fn verify_compact(jws: &str, keys: &Jwks) -> Result<(Map<String, Value>, Vec<u8>), JwsError> {
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let input = format!("{header}.{payload}");
    let header = verify_input(header, &input, signature, keys)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwsError::Malformed)?;
    Ok((header, payload))
}

fn verify_input(
    header: &str,
    input: &str,
    signature: &str,
    keys: &Jwks,
) -> Result<Map<String, Value>, JwsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwsError::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(JwsError::BadHeader);
    };
    if header.get("alg").and_then(Value::as_str) != Some("PS256") {
        return Err(JwsError::WrongAlgorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwsError::BadHeader)?;
    let jwk = keys
        .keys
        .iter()
        .find(|key| key["kid"] == kid)
        .ok_or_else(|| JwsError::UnknownKey(kid.to_string()))?;
    let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
        return Err(JwsError::Key(format!("key {kid} is not an RSA key")));
    };
    let component = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| JwsError::Key(format!("key {kid} has a malformed n or e")))
    };
    let key = ring::signature::RsaPublicKeyComponents {
        n: component(n)?,
        e: component(e)?,
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwsError::Malformed)?;
    let padding = &ring::signature::RSA_PSS_2048_8192_SHA256;
    key.verify(padding, input.as_bytes(), &signature)
        .map(|()| header)
        .map_err(|_| JwsError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_signature_verifies_only_over_its_own_body_and_key() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let mut claims = Map::new();
        claims.insert("http://openbanking.org.uk/iss".into(), "croupier".into());
        let jws = key.sign_detached(b"{\"a\":1}", claims).unwrap();
        assert!(jws.contains(".."));
        let header = verify_detached(&jws, b"{\"a\":1}", &key.jwks()).unwrap();
        assert_eq!(header["http://openbanking.org.uk/iss"], "croupier");
        assert!(matches!(
            verify_detached(&jws, b"{\"a\":2}", &key.jwks()),
            Err(JwsError::BadSignature)
        ));
        assert!(matches!(
            verify_detached(&jws, b"{\"a\":1}", &other.jwks()),
            Err(JwsError::UnknownKey(_))
        ));
        assert!(matches!(
            verify_detached("x.y.z", b"", &key.jwks()),
            Err(JwsError::Malformed)
        ));
        let reloaded = SigningKey::from_pkcs1_der(&key.to_pkcs1_der().unwrap()).unwrap();
        assert_eq!(reloaded.kid(), key.kid());
    }

    #[test]
    fn a_compact_signature_carries_its_payload() {
        let key = SigningKey::generate().unwrap();
        let jws = key.sign_compact(b"event", Map::new()).unwrap();
        let (_, payload) = verify_compact(&jws, &key.jwks()).unwrap();
        assert_eq!(payload, b"event");
        let forged = format!("{}x", &jws[..jws.len() - 1]);
        assert!(verify_compact(&forged, &key.jwks()).is_err());
    }

    /// ring signs; an independent implementation (the `rsa` crate's RSASSA-PSS with SHA-256,
    /// salt as long as the hash, as RFC 7518 §3.5 asks) must accept the signature.
    #[test]
    fn a_signature_verifies_with_an_independent_pss_implementation() {
        let key = SigningKey::generate().unwrap();
        let jws = key.sign_compact(b"event", Map::new()).unwrap();
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let hashed = Sha256::digest(input.as_bytes());
        let public = key.private.to_public_key();
        let scheme = rsa::Pss::new_with_salt::<Sha256>(32);
        public.verify(scheme, &hashed, &signature).unwrap();
        let scheme = rsa::Pss::new_with_salt::<Sha256>(32);
        assert!(public
            .verify(scheme, &Sha256::digest(b"other"), &signature)
            .is_err());
    }
}
