use super::*;
use crate::bank::{BankConnector, Protocol};
use crate::transport::fake::{auth_routes, FakeBank};

fn iban_party(name: &str) -> Party {
    Party {
        account: AccountRef::Iban {
            iban: "gb29 nwbk 6016 1331 9268 19".into(),
        },
        name: name.into(),
    }
}

fn sort_code_party(name: &str) -> Party {
    Party {
        account: AccountRef::SortCode {
            sort_code: "12-34-56".into(),
            account_number: "12345678".into(),
        },
        name: name.into(),
    }
}

#[test]
fn idempotency_keys_fit_forty_printable_characters_deterministically() {
    assert_eq!(idempotency_key("wd-42", "-c"), "wd-42-c");
    assert_eq!(idempotency_key("wd-42", ""), "wd-42");
    let long = "w".repeat(39);
    let consent = idempotency_key(&long, "-c");
    assert_eq!(consent.len(), 40);
    assert!(consent.ends_with("-c"));
    assert_eq!(consent, idempotency_key(&long, "-c"));
    assert_ne!(consent, idempotency_key(&"v".repeat(39), "-c"));
    assert_eq!(idempotency_key(&long, ""), long);
    let spaced = idempotency_key("a b", "");
    assert_eq!(spaced.len(), 40);
    assert!(spaced.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn an_initiation_has_the_specified_shape() {
    let creditor = sort_code_party("Jane Doe");
    let debtor = iban_party("Operator");
    let order = Order {
        key: "wd-1",
        reference: "withdrawal-1",
        amount_minor: 1234,
        currency: "GBP",
        debtor: Some(&debtor),
        creditor: &creditor,
    };
    let initiation = initiation(&order);
    assert_eq!(
        initiation,
        json!({
            "InstructionIdentification": "wd-1",
            "EndToEndIdentification": "withdrawal-1",
            "InstructedAmount": {"Amount": "12.34", "Currency": "GBP"},
            "DebtorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": "GB29NWBK60161331926819", "Name": "Operator"},
            "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "12345612345678", "Name": "Jane Doe"},
            "RemittanceInformation": {"Reference": "withdrawal-1"},
        })
    );
    let pay_in = initiation_of_pay_in(&creditor);
    assert!(pay_in.get("DebtorAccount").is_none());
    assert_eq!(
        pay_in["InstructionIdentification"].as_str().unwrap().len(),
        35
    );
}

fn initiation_of_pay_in(creditor: &Party) -> Value {
    let key = "k".repeat(50);
    initiation(&Order {
        key: &key,
        reference: "dep-1",
        amount_minor: 5,
        currency: "JPY",
        debtor: None,
        creditor,
    })
}

#[test]
fn payment_statuses_map_as_protocols_md_says() {
    let cases = [
        ("Pending", Some(PaymentStatus::Pending)),
        ("AcceptedSettlementInProcess", Some(PaymentStatus::Pending)),
        ("AcceptedSettlementCompleted", Some(PaymentStatus::Settled)),
        (
            "Rejected",
            Some(PaymentStatus::Rejected {
                reason: "rejected".into(),
            }),
        ),
        ("Weird", None),
    ];
    for (status, expected) in cases {
        assert_eq!(payment_status(status, None), expected, "{status}");
    }
    assert_eq!(
        payment_status("Rejected", Some("AM04".into())),
        Some(PaymentStatus::Rejected {
            reason: "AM04".into()
        })
    );
    let body = json!({"Data": {"DomesticPaymentId": "p1", "Status": "Rejected",
        "StatusDetail": {"Status": "Rejected", "StatusReason": "AC01"}}});
    let (id, status) = parse_payment(&body).unwrap();
    assert_eq!(id, "p1");
    assert_eq!(
        status,
        PaymentStatus::Rejected {
            reason: "AC01".into()
        }
    );
    assert!(matches!(
        parse_payment(&json!({})),
        Err(ConnectorError::Unknown(_))
    ));
}

#[test]
fn an_expired_consent_is_flagged() {
    let body = json!({"Data": {"ConsentId": "c", "Status": "Rejected", "Expired": true, "Initiation": {}}});
    let consent = parse_consent(&body).unwrap();
    assert!(consent.expired);
    assert!(matches!(
        parse_consent(&json!({"Data": {}})),
        Err(ConnectorError::Unknown(_))
    ));
}

#[test]
fn listed_accounts_become_parties() {
    let entry = json!({"AccountId": "a", "Currency": "GBP",
        "Account": [{"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "04123412345678", "Name": "Croupier Ltd"}]});
    let (currency, party) = listed_account(&entry).unwrap();
    assert_eq!(currency, "GBP");
    assert_eq!(party.name, "Croupier Ltd");
    assert_eq!(
        party.account,
        AccountRef::SortCode {
            sort_code: "041234".into(),
            account_number: "12345678".into()
        }
    );
    assert!(listed_account(
        &json!({"Currency": "GBP", "Account": [{"SchemeName": "X", "Identification": "1"}]})
    )
    .is_none());
}

/// A bank that pre-authorises consents and answers one payment per consent.
async fn payout_bank() -> FakeBank {
    FakeBank::start(|seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let body = seen.json();
        match seen.path.as_str() {
            "/open-banking/v3.1/pisp/domestic-payment-consents" => {
                let data = json!({"ConsentId": "c-1", "Status": "Authorised", "Initiation": body["Data"]["Initiation"]});
                (201, json!({"Data": data}).to_string())
            }
            "/open-banking/v3.1/pisp/domestic-payments" => {
                let data = json!({"DomesticPaymentId": "p-1", "ConsentId": body["Data"]["ConsentId"], "Status": "AcceptedSettlementInProcess"});
                (201, json!({"Data": data}).to_string())
            }
            _ => (404, "{}".into()),
        }
    })
    .await
}

#[tokio::test]
async fn a_payout_is_a_signed_consent_then_its_payment() {
    let bank = payout_bank().await;
    let connector = bank.connector(Protocol::Obie);
    let request = PayOutRequest {
        idempotency_key: "wd-7".into(),
        reference: "withdrawal-7".into(),
        amount_minor: 250,
        currency: "GBP".into(),
        debtor: iban_party("Operator"),
        creditor: sort_code_party("Jane Doe"),
        notification_url: None,
    };
    let accepted = connector.pay_out(&request).await.unwrap();
    assert_eq!(accepted.payment_id, "p-1");
    assert_eq!(accepted.status, PaymentStatus::Pending);
    let consent = &bank.seen_at("/open-banking/v3.1/pisp/domestic-payment-consents")[0];
    let payment = &bank.seen_at("/open-banking/v3.1/pisp/domestic-payments")[0];
    assert_eq!(consent.header("x-idempotency-key"), Some("wd-7-c"));
    assert_eq!(payment.header("x-idempotency-key"), Some("wd-7"));
    assert_eq!(consent.header("x-fapi-financial-id"), Some("bank-a"));
    assert_eq!(payment.json()["Data"]["ConsentId"], "c-1");
    assert_eq!(
        payment.json()["Data"]["Initiation"],
        consent.json()["Data"]["Initiation"]
    );
    assert_eq!(consent.json()["Risk"], json!({}));
    let BankConnector::Obie(obie) = &connector else {
        unreachable!()
    };
    let keys = obie.transport().signing_key_jwks();
    for seen in [consent, payment] {
        let signature = seen.header("x-jws-signature").unwrap();
        crate::jws::verify_detached(signature, &seen.body, &keys).unwrap();
        assert_eq!(seen.header("authorization"), Some("Bearer tok"));
    }
}

#[tokio::test]
async fn a_pay_in_moves_from_consent_to_payment() {
    let bank = FakeBank::start(|seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let initiation = json!({"InstructionIdentification": "dep-1"});
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/open-banking/v3.1/pisp/domestic-payment-consents") => {
                (201, json!({"Data": {"ConsentId": "c 2", "Status": "AwaitingAuthorisation"}}).to_string())
            }
            ("GET", "/open-banking/v3.1/pisp/domestic-payment-consents/c%202") => {
                (200, json!({"Data": {"ConsentId": "c 2", "Status": "Authorised", "Initiation": initiation}}).to_string())
            }
            ("POST", "/open-banking/v3.1/pisp/domestic-payments") => {
                (201, json!({"Data": {"DomesticPaymentId": "p-2", "Status": "Pending"}}).to_string())
            }
            ("GET", "/open-banking/v3.1/pisp/domestic-payments/p-2") => {
                (200, json!({"Data": {"DomesticPaymentId": "p-2", "Status": "AcceptedSettlementCompleted"}}).to_string())
            }
            _ => (404, "{}".into()),
        }
    })
    .await;
    let connector = bank.connector(Protocol::Obie);
    let started = connector
        .pay_in_start(&PayInRequest {
            idempotency_key: "dep-1".into(),
            reference: "deposit-1".into(),
            amount_minor: 1000,
            currency: "GBP".into(),
            creditor: iban_party("Operator"),
            return_url: Some("http://node/back?x=1".into()),
            notification_url: None,
        })
        .await
        .unwrap();
    assert_eq!(started.consent_id, "c 2");
    let expected = format!(
        "{}/authorize?consent_id=c+2&redirect_uri=http%3A%2F%2Fnode%2Fback%3Fx%3D1",
        bank.url()
    );
    assert_eq!(started.authorisation_url, expected);
    let mut handle = PayInHandle {
        consent_id: started.consent_id,
        payment_id: None,
        idempotency_key: "dep-1".into(),
    };
    let progress = connector.pay_in_progress(&handle).await.unwrap();
    assert_eq!(progress.status, PaymentStatus::Pending);
    assert_eq!(progress.payment_id.as_deref(), Some("p-2"));
    let payment = &bank.seen_at("/open-banking/v3.1/pisp/domestic-payments")[0];
    assert_eq!(
        payment.json()["Data"]["Initiation"]["InstructionIdentification"],
        "dep-1"
    );
    assert_eq!(payment.header("x-idempotency-key"), Some("dep-1"));
    handle.payment_id = progress.payment_id;
    let settled = connector.pay_in_progress(&handle).await.unwrap();
    assert_eq!(settled.status, PaymentStatus::Settled);
}

#[tokio::test]
async fn consent_states_before_a_payment() {
    for (consent, expected) in [
        (
            json!({"Status": "AwaitingAuthorisation"}),
            PaymentStatus::AwaitingAuthorisation,
        ),
        (
            json!({"Status": "Rejected", "Expired": true}),
            PaymentStatus::Expired,
        ),
        (
            json!({"Status": "Rejected"}),
            PaymentStatus::Rejected {
                reason: "rejected".into(),
            },
        ),
    ] {
        let bank = FakeBank::start(move |seen, _| {
            if let Some(answer) = auth_routes(seen) {
                return answer;
            }
            let mut data = consent.clone();
            data["ConsentId"] = "c".into();
            (200, json!({ "Data": data }).to_string())
        })
        .await;
        let handle = PayInHandle {
            consent_id: "c".into(),
            payment_id: None,
            idempotency_key: "k".into(),
        };
        let progress = bank
            .connector(Protocol::Obie)
            .pay_in_progress(&handle)
            .await
            .unwrap();
        assert_eq!(progress.status, expected);
        assert_eq!(progress.payment_id, None);
    }
}

#[tokio::test]
async fn a_consent_the_bank_did_not_pre_authorise_declines_the_payout() {
    let bank = FakeBank::start(|seen, _| {
        auth_routes(seen).unwrap_or((
            201,
            json!({"Data": {"ConsentId": "c", "Status": "AwaitingAuthorisation"}}).to_string(),
        ))
    })
    .await;
    let request = PayOutRequest {
        idempotency_key: "wd-8".into(),
        reference: "withdrawal-8".into(),
        amount_minor: 1,
        currency: "GBP".into(),
        debtor: iban_party("Not ours"),
        creditor: sort_code_party("Jane Doe"),
        notification_url: None,
    };
    let error = bank
        .connector(Protocol::Obie)
        .pay_out(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectorError::Declined { code, .. } if code == "consent_not_authorised")
    );
    assert!(bank
        .seen_at("/open-banking/v3.1/pisp/domestic-payments")
        .is_empty());
}

#[tokio::test]
async fn an_unreadable_payment_answer_is_unknown() {
    let bank = FakeBank::start(|seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        match seen.path.as_str() {
            "/open-banking/v3.1/pisp/domestic-payment-consents" => (
                201,
                json!({"Data": {"ConsentId": "c", "Status": "Authorised"}}).to_string(),
            ),
            _ => (201, "<html>".into()),
        }
    })
    .await;
    let request = PayOutRequest {
        idempotency_key: "wd-9".into(),
        reference: "withdrawal-9".into(),
        amount_minor: 1,
        currency: "GBP".into(),
        debtor: iban_party("Operator"),
        creditor: sort_code_party("Jane Doe"),
        notification_url: None,
    };
    let error = bank
        .connector(Protocol::Obie)
        .pay_out(&request)
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
}
