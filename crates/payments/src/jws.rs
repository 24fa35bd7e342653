//! PS256 signatures as UK Open Banking uses them: a detached JWS over a request or response
//! body (`x-jws-signature`: `header..signature`, the payload travelling as the HTTP body), and
//! compact JWS for signed event notifications. Signing is OpenSSL's RSASSA-PSS over SHA-256,
//! verifying is ring's. Why two libraries: signing is most of the CPU a payout costs (under
//! `croupier bench payments` ring's RSA-2048 signing took ~40% of the node's CPU and ~60% of
//! the OBIE sandbox's), and on this project's machines OpenSSL 3 (with its AVX-512 IFMA code)
//! signs in 0.27-0.32 ms where ring takes 0.60-0.72 ms (measured side by side, see the README);
//! verifying is cheap in both, and ring is in the build for TLS already. Keys are made, saved
//! (PKCS#1 DER) and read with OpenSSL too. This module only frames the signing input and finds
//! keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// RSA modulus size of keys made here: what the Open Banking directory requires at least.
const RSA_BITS: u32 = 2048;

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
    private: PKey<Private>,
    /// The public modulus and exponent, big-endian (the JWK's n and e).
    modulus: Vec<u8>,
    exponent: Vec<u8>,
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

fn key_error(error: openssl::error::ErrorStack) -> JwsError {
    JwsError::Key(error.to_string())
}

impl SigningKey {
    /// A new key from the OS's randomness (OpenSSL's generator).
    pub fn generate() -> Result<SigningKey, JwsError> {
        SigningKey::from_rsa(Rsa::generate(RSA_BITS).map_err(key_error)?)
    }

    /// A key saved by `to_pkcs1_der`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<SigningKey, JwsError> {
        SigningKey::from_rsa(Rsa::private_key_from_der(der).map_err(key_error)?)
    }

    fn from_rsa(rsa: Rsa<Private>) -> Result<SigningKey, JwsError> {
        if !rsa.check_key().map_err(key_error)? {
            return Err(JwsError::Key("the RSA key is not consistent".into()));
        }
        if rsa.size() * 8 < RSA_BITS {
            return Err(JwsError::Key(format!(
                "the RSA key has fewer than {RSA_BITS} bits"
            )));
        }
        let modulus = rsa.n().to_vec();
        let exponent = rsa.e().to_vec();
        let kid = hex::encode(&Sha256::digest(&modulus)[..16]);
        Ok(SigningKey {
            private: PKey::from_rsa(rsa).map_err(key_error)?,
            modulus,
            exponent,
            kid,
        })
    }

    /// The key as PKCS#1 DER, for a file only its owner reads.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, JwsError> {
        let rsa = self.private.rsa().map_err(key_error)?;
        rsa.private_key_to_der().map_err(key_error)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (RFC 7517) for a JWKS.
    pub fn public_jwk(&self) -> Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "PS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.modulus),
            "e": URL_SAFE_NO_PAD.encode(&self.exponent),
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

    /// RSASSA-PSS, SHA-256 for the hash and MGF1, a salt as long as the hash (RFC 7518 §3.5).
    fn sign_input(&self, input: &str) -> Result<String, JwsError> {
        let signed = (|| {
            let mut signer = Signer::new(MessageDigest::sha256(), &self.private)?;
            signer.set_rsa_padding(Padding::PKCS1_PSS)?;
            signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            signer.update(input.as_bytes())?;
            signer.sign_to_vec()
        })();
        let signature = signed.map_err(|e| JwsError::Key(format!("signing failed: {e}")))?;
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

    /// OpenSSL signs; ring, an independent implementation, verifies (RSASSA-PSS with SHA-256
    /// and a salt as long as the hash, which is all ring's PS256 verifier accepts), and so does
    /// OpenSSL's own verifier with those parameters; a key saved and read back signs alike.
    #[test]
    fn a_signature_verifies_with_an_independent_pss_implementation() {
        let key = SigningKey::generate().unwrap();
        let jws = key.sign_compact(b"event", Map::new()).unwrap();
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let ring_key = ring::signature::RsaPublicKeyComponents {
            n: key.modulus.clone(),
            e: key.exponent.clone(),
        };
        let pss = &ring::signature::RSA_PSS_2048_8192_SHA256;
        ring_key.verify(pss, input.as_bytes(), &signature).unwrap();
        assert!(ring_key.verify(pss, b"other", &signature).is_err());
        let verify = |message: &[u8]| {
            let mut verifier =
                openssl::sign::Verifier::new(MessageDigest::sha256(), &key.private).unwrap();
            verifier.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            verifier.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
            verifier
                .set_rsa_pss_saltlen(RsaPssSaltlen::custom(32))
                .unwrap();
            verifier.verify_oneshot(&signature, message).unwrap()
        };
        assert!(verify(input.as_bytes()), "the salt is exactly 32 bytes");
        let reloaded = SigningKey::from_pkcs1_der(&key.to_pkcs1_der().unwrap()).unwrap();
        let again = reloaded.sign_compact(b"event", Map::new()).unwrap();
        assert!(verify_compact(&again, &key.jwks()).is_ok());
    }

    #[test]
    fn a_key_that_is_not_rsa_pkcs1_or_too_short_is_refused() {
        assert!(matches!(
            SigningKey::from_pkcs1_der(b"not a key"),
            Err(JwsError::Key(_))
        ));
        let short = Rsa::generate(1024).unwrap().private_key_to_der().unwrap();
        assert!(matches!(
            SigningKey::from_pkcs1_der(&short),
            Err(JwsError::Key(_))
        ));
    }
}
