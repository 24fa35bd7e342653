use std::sync::atomic::AtomicUsize;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::io::{Read, Write};

use base64::Engine;

use super::fake::{auth_routes, FakeBank};
use super::*;
use crate::bank::{BankConnector, Protocol};
use crate::connector::Connector;

fn declined_code(error: &ConnectorError) -> &str {
    match error {
        ConnectorError::Declined { code, .. } => code,
        other => panic!("not declined: {other:?}"),
    }
}

#[test]
fn statuses_are_classified_as_the_table_says() {
    let retryable = [408, 429, 503];
    let unknown = [500, 502, 504, 302, 101];
    for status in retryable {
        let error = classify_status(StatusCode::from_u16(status).unwrap(), b"");
        assert!(matches!(error, ConnectorError::Retryable(_)), "{status}");
    }
    for status in unknown {
        let error = classify_status(StatusCode::from_u16(status).unwrap(), b"");
        assert!(matches!(error, ConnectorError::Unknown(_)), "{status}");
    }
    let obie = br#"{"Code":"400","Id":"x","Message":"m","Errors":[{"ErrorCode":"UK.OBIE.Field.Invalid","Message":"bad amount"}]}"#;
    let error = classify_status(StatusCode::BAD_REQUEST, obie);
    assert_eq!(declined_code(&error), "UK.OBIE.Field.Invalid");
    assert!(error.to_string().contains("bad amount"));
    let berlin = br#"{"tppMessages":[{"category":"ERROR","code":"FORMAT_ERROR","text":"t"}]}"#;
    let error = classify_status(StatusCode::BAD_REQUEST, berlin);
    assert_eq!(declined_code(&error), "FORMAT_ERROR");
    let oauth = br#"{"error":"invalid_client"}"#;
    let error = classify_status(StatusCode::UNAUTHORIZED, oauth);
    assert_eq!(declined_code(&error), "invalid_client");
    let error = classify_status(StatusCode::NOT_FOUND, b"<html>");
    assert_eq!(declined_code(&error), "http_404");
}

#[test]
fn a_bank_message_is_kept_short() {
    let long = "x".repeat(1_000);
    let body = json!({"Errors": [{"ErrorCode": "C", "Message": long}]}).to_string();
    let (code, message) = bank_error(body.as_bytes()).unwrap();
    assert_eq!(code, "C");
    assert_eq!(message.chars().count(), BANK_MESSAGE_CHARS_MAX);
    assert!(bank_error(b"{\"Errors\":[{}]}").is_none());
}

#[test]
fn a_verification_report_is_a_payee_match() {
    let report = |r: Value| json!({"Data": {"VerificationReport": r}});
    let cases = [
        (
            json!({"Matched": true, "ReasonCode": null}),
            PayeeMatch::Matched,
        ),
        (
            json!({"Matched": false, "ReasonCode": "MBAM", "Name": "Jane Doe"}),
            PayeeMatch::CloseMatch {
                actual_name: "Jane Doe".into(),
            },
        ),
        (
            json!({"Matched": false, "ReasonCode": "MBAM"}),
            PayeeMatch::NotMatched,
        ),
        (
            json!({"Matched": false, "ReasonCode": "ANNM"}),
            PayeeMatch::NotMatched,
        ),
        (
            json!({"Matched": false, "ReasonCode": "AC01"}),
            PayeeMatch::AccountNotFound,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(payee_match(&report(body)).unwrap(), expected);
    }
    let unreadable = payee_match(&json!({"Data": {}})).unwrap_err();
    assert!(matches!(unreadable, ConnectorError::Unknown(_)));
}

#[test]
fn identifications_and_segments() {
    assert_eq!(
        normalise_iban("gb29 nwbk 6016 1331 9268 19"),
        "GB29NWBK60161331926819"
    );
    assert_eq!(
        sort_code_identification("12-34-56", "1234 5678"),
        "12345612345678"
    );
    assert_eq!(
        split_sort_code("12345612345678"),
        Some(AccountRef::SortCode {
            sort_code: "123456".into(),
            account_number: "12345678".into()
        })
    );
    assert_eq!(split_sort_code("1234"), None);
    assert_eq!(segment("ab-C_1.~"), "ab-C_1.~");
    assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
}

fn transport(base_url: &str, timeout_ms: u64) -> Transport {
    Transport::new(TransportConfig {
        id: "bank-a".into(),
        base_url: base_url.into(),
        client_id: "node".into(),
        client_secret: "secret".into(),
        signing_key: Arc::new(SigningKey::generate().unwrap()),
        operator_accounts: Default::default(),
        tls: Default::default(),
        timeout_ms,
    })
    .unwrap()
}

#[test]
fn an_obie_signature_carries_the_claims_and_verifies() {
    let transport = transport("http://127.0.0.1:9101", 1_000);
    let body = br#"{"Data":{}}"#;
    let signature = transport.sign_obie(body).unwrap();
    let header =
        crate::jws::verify_detached(&signature, body, &transport.signing_key.jwks()).unwrap();
    assert_eq!(header[OBIE_ISS], "node");
    assert_eq!(header[OBIE_TAN], "127.0.0.1:9101");
    assert!(header[OBIE_IAT].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(header["crit"], json!([OBIE_IAT, OBIE_ISS, OBIE_TAN]));
    assert_eq!(header["typ"], "JOSE");
    assert_eq!(header["cty"], "application/json");
    let encoded = signature.split('.').next().unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded["alg"], "PS256");
}

#[tokio::test]
async fn nothing_listening_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let transport = transport(&format!("http://{addr}"), 1_000);
    let error = transport
        .send_open(&ApiRequest::get("/x".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Retryable(_)), "{error:?}");
}

/// A bank that reads the request, then either holds the connection or sends half an answer
/// and drops it (plain threads: the test needs no async I/O).
fn mute_bank(hold: bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer);
                if hold {
                    std::thread::sleep(Duration::from_secs(5));
                } else {
                    let half = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{";
                    let _ = socket.write_all(half);
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn no_answer_after_sending_is_unknown() {
    for hold in [true, false] {
        let transport = transport(&mute_bank(hold), 300);
        let error = transport
            .send_open(&ApiRequest::get("/x".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ConnectorError::Unknown(_)),
            "hold {hold}: {error:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let bank = FakeBank::start(|seen, _| {
        if seen.path == "/token" {
            std::thread::sleep(Duration::from_millis(50));
        }
        auth_routes(seen).unwrap_or((200, r#"{"ok":true}"#.into()))
    })
    .await;
    let transport = Arc::new(transport(&bank.url(), 2_000));
    let calls = (0..20).map(|_| {
        let transport = Arc::clone(&transport);
        tokio::spawn(async move { transport.send(&ApiRequest::get("/x".into())).await })
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(bank.seen_at("/token").len(), 1);
    let api = bank.seen_at("/x");
    assert_eq!(api.len(), 20);
    assert!(api
        .iter()
        .all(|s| s.header("authorization") == Some("Bearer tok")));
    let form = String::from_utf8(bank.seen_at("/token")[0].body.clone()).unwrap();
    assert!(form.contains("grant_type=client_credentials"));
    assert!(form.contains("client_id=node") && form.contains("client_secret=secret"));
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_registers_once_then_declines() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tokens);
    let bank = FakeBank::start(move |seen, _| {
        if seen.path == "/token" {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let body = json!({"access_token": format!("tok{n}"), "token_type": "Bearer", "expires_in": 3600});
            return (200, body.to_string());
        }
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        match (seen.path.as_str(), seen.header("authorization")) {
            ("/x", Some("Bearer tok1")) => (200, "{}".into()),
            _ => (401, r#"{"Errors":[{"ErrorCode":"UK.OBIE.Unauthorized"}]}"#.into()),
        }
    })
    .await;
    let transport = transport(&bank.url(), 2_000);
    transport.send(&ApiRequest::get("/x".into())).await.unwrap();
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
    assert_eq!(bank.seen_at("/register").len(), 1);
    let register = &bank.seen_at("/register")[0];
    assert!(register
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(
        register.json()["jwks"]["keys"][0]["kid"],
        transport.signing_key.kid()
    );
    let error = transport
        .send(&ApiRequest::get("/y".into()))
        .await
        .unwrap_err();
    assert_eq!(declined_code(&error), "UK.OBIE.Unauthorized");
}

#[tokio::test]
async fn a_refused_client_is_declined_and_a_broken_token_endpoint_retryable() {
    let bank = FakeBank::start(|seen, _| match seen.path.as_str() {
        "/token" => (401, r#"{"error":"invalid_client"}"#.into()),
        _ => (200, "{}".into()),
    })
    .await;
    let error = transport(&bank.url(), 2_000)
        .send(&ApiRequest::get("/x".into()))
        .await
        .unwrap_err();
    assert_eq!(declined_code(&error), "invalid_client");
    assert!(bank.seen_at("/x").is_empty());
    let bank = FakeBank::start(|_, _| (503, r#"{"Code":"503"}"#.into())).await;
    let error = transport(&bank.url(), 2_000)
        .send(&ApiRequest::get("/x".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Retryable(_)), "{error:?}");
}

#[tokio::test]
async fn a_refused_signature_registers_the_key_and_retries_once() {
    let bank = FakeBank::start(|seen, index| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        if index < 3 {
            let body = r#"{"Errors":[{"ErrorCode":"UK.OBIE.Signature.Invalid","Message":"no trusted key"}]}"#;
            return (400, body.into());
        }
        (201, r#"{"Data":{"ConsentId":"c1","Status":"AwaitingAuthorisation"}}"#.into())
    })
    .await;
    let connector = bank.connector(Protocol::Obie);
    let BankConnector::Obie(obie) = &connector else {
        unreachable!()
    };
    let party = Party {
        account: AccountRef::Iban {
            iban: "GB29NWBK60161331926819".into(),
        },
        name: "Operator".into(),
    };
    let started = obie
        .pay_in_start(&crate::connector::PayInRequest {
            idempotency_key: "dep-1".into(),
            reference: "dep-1".into(),
            amount_minor: 1234,
            currency: "GBP".into(),
            creditor: party,
            return_url: None,
            notification_url: None,
        })
        .await
        .unwrap();
    assert_eq!(started.consent_id, "c1");
    let paths: Vec<String> = bank.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/token",
            "/open-banking/v3.1/pisp/domestic-payment-consents",
            "/register",
            "/open-banking/v3.1/pisp/domestic-payment-consents",
            "/jwks.json"
        ]
    );
}
