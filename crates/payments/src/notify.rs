//! Inbound bank notifications, verified before anything is believed: OBIE's signed event
//! tokens (compact JWS, `application/jwt`) and Berlin Group's `{"paymentId",
//! "transactionStatus"}` bodies with a `Digest` and a detached `x-jws-signature`, both against
//! the bank's keys (`GET /jwks.json`, cached). A verified notification is still only a hint:
//! the node asks the bank for the status it names (PROTOCOLS.md, Notifications).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bank_keys::BankKeysError;
use crate::connector::ConnectorError;
use crate::jws::{self, Jwks, JwsError};
use crate::transport::Transport;

const OBIE_EVENT: &str = "urn:uk:org:openbanking:events:resource-update";
const OBIE_RID: &str = "http://openbanking.org.uk/rid";
const OBIE_RTY: &str = "http://openbanking.org.uk/rty";

/// What a verified notification is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifiedPayment {
    /// OBIE: the rid (a DomesticPaymentId or a ConsentId, see `resource`); Berlin Group: the
    /// paymentId.
    pub id: String,
    pub resource: NotifiedResource,
    /// The status the notification claims (Berlin Group's transactionStatus), if any: a hint
    /// for logs, never the truth (notifications come twice and out of order).
    pub status_hint: Option<String>,
}

/// Which kind of bank resource a notification names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifiedResource {
    /// A payment (OBIE domestic payment, Berlin Group payment).
    Payment,
    /// An OBIE payment consent (a pay-in's, before its payment exists).
    Consent,
}

/// Why a notification is refused. All but `KeysUnavailable` are the sender's fault (the node
/// answers 4xx); `KeysUnavailable` is ours or the bank's (answer 503 so the bank retries).
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("the notification is not signed")]
    Unsigned,
    #[error("the notification's signature does not verify: {0}")]
    Forged(String),
    #[error("the notification is malformed: {0}")]
    Malformed(String),
    #[error("the notification is addressed to another client")]
    WrongAudience,
    #[error("the bank's keys cannot be had: {0}")]
    KeysUnavailable(ConnectorError),
}

impl NotificationError {
    /// True when the sender is at fault (answer 4xx), false when we could not check (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, NotificationError::KeysUnavailable(_))
    }
}

/// Runs `check` with the bank's keys (cached; refetched once on an unknown kid).
async fn verify_with_bank_keys<T>(
    transport: &Transport,
    check: impl Fn(&Jwks) -> Result<T, JwsError>,
) -> Result<T, NotificationError> {
    transport
        .verify_with_bank_keys(check)
        .await
        .map_err(|error| match error {
            BankKeysError::Unavailable(error) => NotificationError::KeysUnavailable(error),
            BankKeysError::Refused(error) => refused(error),
        })
}

fn refused(error: JwsError) -> NotificationError {
    match error {
        JwsError::Malformed | JwsError::BadHeader => {
            NotificationError::Malformed(error.to_string())
        }
        other => NotificationError::Forged(other.to_string()),
    }
}

/// An OBIE event notification: a compact JWS (the bank's key) over a Security Event Token
/// addressed to our client id.
pub(crate) async fn verify_obie(
    transport: &Transport,
    body: &[u8],
) -> Result<NotifiedPayment, NotificationError> {
    let token = std::str::from_utf8(body)
        .map_err(|_| NotificationError::Malformed("the body is not text".into()))?
        .trim();
    if token.is_empty() {
        return Err(NotificationError::Unsigned);
    }
    let (_, payload) =
        verify_with_bank_keys(transport, |keys| jws::verify_compact(token, keys)).await?;
    let claims: Value = serde_json::from_slice(&payload)
        .map_err(|_| NotificationError::Malformed("the event token is not JSON".into()))?;
    obie_subject(&claims, transport.client_id())
}

/// The rid and rty of a verified Security Event Token, if it is addressed to `client_id`.
pub(crate) fn obie_subject(
    claims: &Value,
    client_id: &str,
) -> Result<NotifiedPayment, NotificationError> {
    let addressed = match &claims["aud"] {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => auds.iter().any(|aud| aud == client_id),
        _ => false,
    };
    if !addressed {
        return Err(NotificationError::WrongAudience);
    }
    let subject = &claims["events"][OBIE_EVENT]["subject"];
    let malformed = |what: &str| NotificationError::Malformed(format!("the event has no {what}"));
    let id = subject[OBIE_RID].as_str().filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| malformed("rid"))?;
    let resource = match subject[OBIE_RTY].as_str() {
        Some("domestic-payment") => NotifiedResource::Payment,
        Some("domestic-payment-consent") => NotifiedResource::Consent,
        _ => return Err(malformed("known rty")),
    };
    Ok(NotifiedPayment {
        id: id.to_string(),
        resource,
        status_hint: None,
    })
}

/// A Berlin Group notification: the Digest binds the body, the detached signature (the
/// bank's key) binds both.
pub(crate) async fn verify_berlin(
    transport: &Transport,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<NotifiedPayment, NotificationError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header("x-jws-signature") else {
        return Err(NotificationError::Unsigned);
    };
    let expected = format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)));
    if header("digest") != Some(expected.as_str()) {
        return Err(NotificationError::Malformed(
            "the Digest is missing or does not match the body".into(),
        ));
    }
    verify_with_bank_keys(transport, |keys| {
        jws::verify_detached(signature, body, keys)
    })
    .await?;
    berlin_subject(body)
}

/// The paymentId (and claimed status) of a verified Berlin Group notification body.
pub(crate) fn berlin_subject(body: &[u8]) -> Result<NotifiedPayment, NotificationError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| NotificationError::Malformed("the body is not JSON".into()))?;
    let id = body["paymentId"].as_str().filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| NotificationError::Malformed("no paymentId".into()))?;
    Ok(NotifiedPayment {
        id: id.to_string(),
        resource: NotifiedResource::Payment,
        status_hint: body["transactionStatus"].as_str().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(aud: Value, rty: &str) -> Value {
        json!({"aud": aud, "events": {OBIE_EVENT: {"subject": {
            "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
            OBIE_RID: "pay-1", OBIE_RTY: rty,
        }}}})
    }

    #[test]
    fn an_obie_event_names_its_resource_only_to_its_audience() {
        let payment = obie_subject(&token(json!("node"), "domestic-payment"), "node").unwrap();
        assert_eq!(payment.id, "pay-1");
        assert_eq!(payment.resource, NotifiedResource::Payment);
        let consent = obie_subject(
            &token(json!(["x", "node"]), "domestic-payment-consent"),
            "node",
        );
        assert_eq!(consent.unwrap().resource, NotifiedResource::Consent);
        assert!(matches!(
            obie_subject(&token(json!("other"), "domestic-payment"), "node"),
            Err(NotificationError::WrongAudience)
        ));
        assert!(matches!(
            obie_subject(&token(json!("node"), "account"), "node"),
            Err(NotificationError::Malformed(_))
        ));
        assert!(matches!(
            obie_subject(&json!({"aud": "node"}), "node"),
            Err(NotificationError::Malformed(_))
        ));
    }

    #[test]
    fn a_berlin_body_names_its_payment() {
        let body = br#"{"paymentId":"p-9","transactionStatus":"ACSC"}"#;
        let payment = berlin_subject(body).unwrap();
        assert_eq!(payment.id, "p-9");
        assert_eq!(payment.status_hint.as_deref(), Some("ACSC"));
        assert!(berlin_subject(b"{\"paymentId\":\"\"}").is_err());
        assert!(berlin_subject(b"not json").is_err());
    }

    #[test]
    fn only_keys_unavailable_is_our_side() {
        let ours = NotificationError::KeysUnavailable(ConnectorError::Unknown("x".into()));
        assert!(!ours.is_client_error());
        assert!(NotificationError::Unsigned.is_client_error());
        assert!(refused(JwsError::BadSignature).is_client_error());
        assert!(matches!(
            refused(JwsError::Malformed),
            NotificationError::Malformed(_)
        ));
    }
}
