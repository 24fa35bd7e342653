use super::*;
use crate::bank::Protocol;
use crate::transport::fake::{auth_routes, FakeBank};

fn iban_party(name: &str) -> Party {
    Party {
        account: AccountRef::Iban {
            iban: "DE89 3704 0044 0532 0130 00".into(),
        },
        name: name.into(),
    }
}

fn sort_code_party(name: &str) -> Party {
    Party {
        account: AccountRef::SortCode {
            sort_code: "123456".into(),
            account_number: "12345678".into(),
        },
        name: name.into(),
    }
}

#[test]
fn a_request_id_is_a_deterministic_version_4_uuid() {
    let id = request_id("wd-1");
    assert_eq!(id, request_id("wd-1"));
    assert_ne!(id, request_id("wd-2"));
    assert_eq!(id.len(), 36);
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert!(matches!(
        parts[3].chars().next(),
        Some('8' | '9' | 'a' | 'b')
    ));
    let random = random_uuid().unwrap();
    assert_eq!(random.len(), 36);
    assert_ne!(random, random_uuid().unwrap());
}

#[test]
fn the_digest_is_sha_256_in_base64() {
    assert_eq!(
        digest(b""),
        "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn statuses_map_as_protocols_md_says() {
    let cases = [
        ("RCVD", true, Some(PaymentStatus::AwaitingAuthorisation)),
        ("RCVD", false, Some(PaymentStatus::Pending)),
        ("ACTC", true, Some(PaymentStatus::Pending)),
        ("ACCP", false, Some(PaymentStatus::Pending)),
        ("ACSP", false, Some(PaymentStatus::Pending)),
        ("PDNG", false, Some(PaymentStatus::Pending)),
        ("ACSC", false, Some(PaymentStatus::Settled)),
        ("ACCC", true, Some(PaymentStatus::Settled)),
        (
            "RJCT",
            false,
            Some(PaymentStatus::Rejected {
                reason: "rejected".into(),
            }),
        ),
        ("CANC", true, Some(PaymentStatus::Expired)),
        ("NOPE", false, None),
    ];
    for (status, pay_in, expected) in cases {
        assert_eq!(payment_status(status, None, pay_in), expected, "{status}");
    }
    let reason = tpp_reason(&json!({"tppMessages": [{"code": "AM04"}]}));
    assert_eq!(
        payment_status("RJCT", reason, false),
        Some(PaymentStatus::Rejected {
            reason: "AM04".into()
        })
    );
}

#[test]
fn an_initiation_has_the_specified_shape() {
    let debtor = iban_party("Operator");
    let creditor = sort_code_party("Jane Doe");
    let order = Order {
        key: "wd-1",
        reference: "withdrawal-1",
        amount_minor: 1234,
        currency: "EUR",
        debtor: Some(&debtor),
        creditor: &creditor,
        notification_url: None,
        redirect_url: None,
    };
    assert_eq!(
        initiation_body(&order),
        json!({
            "endToEndIdentification": "withdrawal-1",
            "debtorAccount": {"iban": "DE89370400440532013000"},
            "instructedAmount": {"currency": "EUR", "amount": "12.34"},
            "creditorAccount": {"bban": "12345612345678"},
            "creditorName": "Jane Doe",
            "remittanceInformationUnstructured": "withdrawal-1",
        })
    );
    assert_eq!(product(&creditor), DOMESTIC);
    assert_eq!(product(&debtor), SEPA);
}

#[test]
fn listed_accounts_become_parties() {
    let (currency, party) = listed_account(
        &json!({"currency": "EUR", "iban": "DE89370400440532013000", "name": "Croupier"}),
    )
    .unwrap();
    assert_eq!(currency, "EUR");
    assert_eq!(party.name, "Croupier");
    let (_, party) =
        listed_account(&json!({"currency": "GBP", "bban": "04123412345678", "ownerName": "C"}))
            .unwrap();
    assert!(matches!(party.account, AccountRef::SortCode { .. }));
    assert!(listed_account(&json!({"currency": "GBP"})).is_none());
}

#[tokio::test]
async fn a_payout_carries_its_headers_and_a_status_query_finds_its_product() {
    let bank = FakeBank::start(|seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/v1/payments/domestic-credit-transfers") => (
                201,
                json!({"transactionStatus": "ACTC", "paymentId": "p-1"}).to_string(),
            ),
            ("GET", "/v1/payments/domestic-credit-transfers/p-1/status") => {
                (200, json!({"transactionStatus": "ACSC"}).to_string())
            }
            _ => (
                404,
                json!({"tppMessages": [{"code": "RESOURCE_UNKNOWN"}]}).to_string(),
            ),
        }
    })
    .await;
    let connector = bank.connector(Protocol::BerlinGroup);
    let request = PayOutRequest {
        idempotency_key: "wd-3".into(),
        reference: "withdrawal-3".into(),
        amount_minor: 500,
        currency: "GBP".into(),
        debtor: iban_party("Operator"),
        creditor: sort_code_party("Jane Doe"),
        notification_url: Some("http://node/notify".into()),
    };
    let accepted = connector.pay_out(&request).await.unwrap();
    assert_eq!(accepted.payment_id, "p-1");
    assert_eq!(accepted.status, PaymentStatus::Pending);
    let sent = &bank.seen_at("/v1/payments/domestic-credit-transfers")[0];
    assert_eq!(
        sent.header("x-request-id"),
        Some(request_id("wd-3").as_str())
    );
    assert_eq!(sent.header("digest"), Some(digest(&sent.body).as_str()));
    assert_eq!(sent.header("psu-ip-address"), Some(PSU_IP_ADDRESS));
    assert_eq!(
        sent.header("tpp-notification-uri"),
        Some("http://node/notify")
    );
    assert_eq!(
        sent.json()["debtorAccount"]["iban"],
        "DE89370400440532013000"
    );
    let status = connector.pay_out_status("p-1").await.unwrap();
    assert_eq!(status, PaymentStatus::Settled);
    let error = connector.pay_out_status("p-404").await.unwrap_err();
    assert!(matches!(error, ConnectorError::Declined { code, .. } if code == "RESOURCE_UNKNOWN"));
}

#[tokio::test]
async fn a_pay_in_answers_the_sca_redirect() {
    let bank = FakeBank::start(|seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/v1/payments/sepa-credit-transfers") => (
                201,
                json!({"transactionStatus": "RCVD", "paymentId": "p-5",
                    "_links": {"scaRedirect": {"href": "/authorize?payment_id=p-5"}}})
                .to_string(),
            ),
            ("GET", "/v1/payments/sepa-credit-transfers/p-5/status") => {
                (200, json!({"transactionStatus": "RCVD"}).to_string())
            }
            _ => (404, "{}".into()),
        }
    })
    .await;
    let connector = bank.connector(Protocol::BerlinGroup);
    let started = connector
        .pay_in_start(&PayInRequest {
            idempotency_key: "dep-5".into(),
            reference: "deposit-5".into(),
            amount_minor: 100,
            currency: "EUR".into(),
            creditor: iban_party("Operator"),
            return_url: Some("http://node/back".into()),
            notification_url: None,
        })
        .await
        .unwrap();
    assert_eq!(started.consent_id, "p-5");
    let expected = format!(
        "{}/authorize?payment_id=p-5&redirect_uri=http%3A%2F%2Fnode%2Fback",
        bank.url()
    );
    assert_eq!(started.authorisation_url, expected);
    let sent = &bank.seen_at("/v1/payments/sepa-credit-transfers")[0];
    assert!(sent.json().get("debtorAccount").is_none());
    assert_eq!(sent.header("tpp-redirect-uri"), Some("http://node/back"));
    let handle = PayInHandle {
        consent_id: "p-5".into(),
        payment_id: None,
        idempotency_key: "dep-5".into(),
    };
    let progress = connector.pay_in_progress(&handle).await.unwrap();
    assert_eq!(progress.status, PaymentStatus::AwaitingAuthorisation);
    assert_eq!(progress.payment_id.as_deref(), Some("p-5"));
}

/// A bank that knows payment `p-6` only under the domestic product, answering `payment` for
/// it (or `status` with a Berlin Group error when not 200).
async fn payer_bank(status: u16, payment: Value) -> FakeBank {
    FakeBank::start(move |seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let unknown = json!({"tppMessages": [{"category": "ERROR", "code": "RESOURCE_UNKNOWN"}]});
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/v1/payments/domestic-credit-transfers/p-6") if status == 200 => {
                (200, payment.to_string())
            }
            ("GET", "/v1/payments/domestic-credit-transfers/p-6") => {
                let error =
                    json!({"tppMessages": [{"category": "ERROR", "code": "SERVICE_BLOCKED"}]});
                (status, error.to_string())
            }
            _ => (404, unknown.to_string()),
        }
    })
    .await
}

fn payer_handle(payment_id: Option<&str>) -> PayInHandle {
    PayInHandle {
        consent_id: "p-6".into(),
        payment_id: payment_id.map(str::to_string),
        idempotency_key: "dep-6".into(),
    }
}

#[tokio::test]
async fn the_payer_is_the_payments_debtor_under_whichever_product_knows_it() {
    let payment = json!({"endToEndIdentification": "6", "transactionStatus": "ACSC",
        "instructedAmount": {"currency": "GBP", "amount": "1.00"},
        "creditorAccount": {"bban": "04000000000001"}, "creditorName": "Croupier",
        "debtorAccount": {"bban": "12-34-56 12345678"}, "debtorName": "Jane Doe"});
    let bank = payer_bank(200, payment).await;
    let connector = bank.connector(Protocol::BerlinGroup);
    // The consent id is the payment id: the same answer with or without a payment id.
    for handle in [payer_handle(None), payer_handle(Some("p-6"))] {
        let payer = connector.pay_in_payer(&handle).await.unwrap();
        assert_eq!(payer, Some(sort_code_party("Jane Doe")));
    }
    let asked: Vec<String> = bank
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/payments/"))
        .map(|s| s.path)
        .collect();
    assert_eq!(
        asked[..2],
        [
            "/v1/payments/sepa-credit-transfers/p-6",
            "/v1/payments/domestic-credit-transfers/p-6"
        ]
    );
    assert!(bank
        .seen()
        .iter()
        .all(|s| s.method != "POST" || s.path == "/token"));
}

#[test]
fn a_debtor_we_cannot_pay_back_is_no_payer() {
    let with = |account: Value, name: Value| json!({"debtorAccount": account, "debtorName": name});
    let iban = json!({"iban": "DE89 3704 0044 0532 0130 00"});
    let unusable = [
        json!({"transactionStatus": "ACSC"}),
        with(json!({"maskedPan": "411111******1111"}), json!("Jane Doe")),
        with(json!({"msisdn": "+447700900123"}), json!("Jane Doe")),
        with(json!({"iban": "DE88370400440532013000"}), json!("Jane Doe")),
        with(json!({"bban": "1234"}), json!("Jane Doe")),
        with(
            json!({"iban": "DE89370400440532013000", "bban": "20000012345678"}),
            json!("Jane Doe"),
        ),
        with(iban.clone(), Value::Null),
        with(iban.clone(), json!("")),
    ];
    for payment in unusable {
        assert_eq!(payer_of(&payment), None, "{payment}");
    }
    let payer = payer_of(&with(iban, json!("Jane Doe"))).unwrap();
    assert_eq!(
        payer.account,
        AccountRef::Iban {
            iban: "DE89370400440532013000".into()
        }
    );
}

#[tokio::test]
async fn a_payer_lookup_fails_as_the_bank_did() {
    let bank = payer_bank(503, Value::Null).await;
    let connector = bank.connector(Protocol::BerlinGroup);
    let error = connector.pay_in_payer(&payer_handle(None)).await;
    assert!(
        matches!(error, Err(ConnectorError::Retryable(_))),
        "{error:?}"
    );
    // Known under no product: the bank's refusal.
    let unknown = PayInHandle {
        consent_id: "p-404".into(),
        ..payer_handle(None)
    };
    let error = connector.pay_in_payer(&unknown).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Declined { code, .. } if code == "RESOURCE_UNKNOWN"),
        "{error:?}"
    );
}
