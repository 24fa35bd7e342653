//! The bank's signature on its answers to our POSTs and to our GETs of payment-initiation
//! resources (OBIE non-repudiation): a detached PS256
//! JWS over the exact body bytes in `x-jws-signature`, by a key of the bank's JWKS (the cache
//! notifications use: fetched once, refetched once on an unknown kid), with OBIE's critical
//! claims iat, iss and tan. Only 2xx answers are checked: the bank does not sign its errors,
//! and an error answer is classified before it gets here.

use serde_json::{Map, Value};

use crate::bank_keys::BankKeysError;
use crate::connector::ConnectorError;
use crate::jws::{self, JwsError};
use crate::transport::{ApiResponse, Transport, OBIE_IAT, OBIE_ISS, OBIE_TAN};

/// The claims an OBIE signature must carry and list in `crit`.
const CRITICAL_CLAIMS: [&str; 3] = [OBIE_IAT, OBIE_ISS, OBIE_TAN];

/// Why an answer does not prove it is the bank's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnswerSignatureError {
    #[error("the answer has no x-jws-signature")]
    Missing,
    #[error("the answer's signature does not verify: {0}")]
    Invalid(JwsError),
    #[error("the answer's signature lacks the critical claim {0}")]
    MissingClaim(&'static str),
    /// RFC 7515 §4.1.11: a critical extension the recipient does not understand is refused.
    #[error("the answer's signature marks {0:?} critical, which we do not understand")]
    UnknownCritical(String),
    #[error("the bank's keys cannot be had: {0}")]
    KeysUnavailable(ConnectorError),
}

/// What a POST can have done at the bank: it decides what an answer that does not prove it
/// is the bank's means (see `ConnectorError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stakes {
    /// A consent or an event subscription: it moves no money, and a resend with the same key
    /// answers the same resource, so the call is `Retryable` (even on another connector: an
    /// orphan consent there pays nothing without our signed payment request).
    NothingPaid,
    /// A payment: the bank may have taken it, whatever the answer's signature says, so the
    /// outcome is `Unknown` (resolved by asking this bank again with the same key, never by
    /// paying elsewhere: that could pay twice).
    MayHavePaid,
    /// A GET: it changed nothing, but what it reports (a status, a payer's account) is not
    /// believed, so the outcome stays `Unknown` until the same bank answers again, signed.
    Read,
}

impl Stakes {
    /// `error` on an answer to `what` as the connector's error.
    pub(crate) fn error(self, what: &str, error: &AnswerSignatureError) -> ConnectorError {
        match self {
            Stakes::NothingPaid => ConnectorError::Retryable(format!("the {what} answer: {error}")),
            Stakes::MayHavePaid => ConnectorError::Unknown(format!(
                "the {what} answer: {error}; the bank may have taken it"
            )),
            Stakes::Read => ConnectorError::Unknown(format!(
                "the {what} answer: {error}; its state is not believed"
            )),
        }
    }
}

/// Verifies a 2xx answer's signature: by the bank's key, over exactly its body, with OBIE's
/// critical claims. One RSA public-key operation; the keys come from the transport's cache.
pub(crate) async fn verify(
    transport: &Transport,
    answer: &ApiResponse,
) -> Result<(), AnswerSignatureError> {
    let signature = answer
        .signature
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(AnswerSignatureError::Missing)?;
    let header = transport
        .verify_with_bank_keys(|keys| jws::verify_detached(signature, &answer.body, keys))
        .await
        .map_err(|error| match error {
            BankKeysError::Unavailable(error) => AnswerSignatureError::KeysUnavailable(error),
            BankKeysError::Refused(error) => AnswerSignatureError::Invalid(error),
        })?;
    check_claims(&header)
}

/// OBIE's claims in a verified protected header: iat a number, iss and tan non-empty text,
/// all three listed in `crit`, and nothing in `crit` we do not understand. Their values are
/// not compared: the bank's iss and trust anchor are its own, and the signature is what
/// binds the answer to the bank's key.
pub(crate) fn check_claims(header: &Map<String, Value>) -> Result<(), AnswerSignatureError> {
    let crit = match header.get("crit") {
        Some(Value::Array(names)) => names.as_slice(),
        _ => &[],
    };
    for claim in CRITICAL_CLAIMS {
        let present = match header.get(claim) {
            Some(Value::Number(_)) => claim == OBIE_IAT,
            Some(Value::String(text)) => claim != OBIE_IAT && !text.is_empty(),
            _ => false,
        };
        if !present || !crit.iter().any(|name| name == claim) {
            return Err(AnswerSignatureError::MissingClaim(claim));
        }
    }
    let understood = |name: &Value| CRITICAL_CLAIMS.iter().any(|claim| name == *claim);
    match crit.iter().find(|name| !understood(name)) {
        Some(unknown) => {
            let name = unknown
                .as_str()
                .map_or_else(|| unknown.to_string(), str::to_string);
            Err(AnswerSignatureError::UnknownCritical(name))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    #[test]
    fn an_answer_signature_needs_obies_critical_claims() {
        let crit = json!([OBIE_IAT, OBIE_ISS, OBIE_TAN]);
        let good =
            json!({OBIE_IAT: 1_700_000_000, OBIE_ISS: "bank", OBIE_TAN: "ob.org.uk", "crit": crit});
        check_claims(&header(good.clone())).unwrap();
        let mut without_tan = good.clone();
        without_tan.as_object_mut().unwrap().remove(OBIE_TAN);
        assert!(matches!(
            check_claims(&header(without_tan)),
            Err(AnswerSignatureError::MissingClaim(OBIE_TAN))
        ));
        let mut iat_as_text = good.clone();
        iat_as_text[OBIE_IAT] = json!("1700000000");
        assert!(check_claims(&header(iat_as_text)).is_err());
        let mut not_critical = good.clone();
        not_critical["crit"] = json!([OBIE_IAT, OBIE_ISS]);
        assert!(matches!(
            check_claims(&header(not_critical)),
            Err(AnswerSignatureError::MissingClaim(OBIE_TAN))
        ));
        let mut unknown = good;
        unknown["crit"] = json!([OBIE_IAT, OBIE_ISS, OBIE_TAN, "b64"]);
        assert!(matches!(
            check_claims(&header(unknown)),
            Err(AnswerSignatureError::UnknownCritical(name)) if name == "b64"
        ));
    }

    #[test]
    fn only_a_payment_answer_is_an_unknown_outcome() {
        let error = AnswerSignatureError::Missing;
        assert!(matches!(
            Stakes::MayHavePaid.error("payment", &error),
            ConnectorError::Unknown(_)
        ));
        assert!(matches!(
            Stakes::NothingPaid.error("consent", &error),
            ConnectorError::Retryable(_)
        ));
    }
}
