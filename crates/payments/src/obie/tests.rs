use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::bank::{BankConnector, Protocol};
use crate::transport::fake::{auth_routes, AnswerSignature, FakeBank, Seen};

const CONSENTS: &str = "/open-banking/v3.1/pisp/domestic-payment-consents";
const PAYMENTS: &str = "/open-banking/v3.1/pisp/domestic-payments";

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

/// A bank that pre-authorises consents, answers one payment per consent (p-1, whatever the
/// key) and says p-1 settled when asked; `signing` says how it signs each 2xx answer.
async fn payout_bank(
    signing: impl Fn(&Seen, usize) -> AnswerSignature + Send + Sync + 'static,
) -> FakeBank {
    let script = |seen: &Seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", CONSENTS) => {
                let initiation = &seen.json()["Data"]["Initiation"];
                let data =
                    json!({"ConsentId": "c-1", "Status": "Authorised", "Initiation": initiation});
                (201, json!({ "Data": data }).to_string())
            }
            ("POST", PAYMENTS) => {
                let consent_id = &seen.json()["Data"]["ConsentId"];
                let data = json!({"DomesticPaymentId": "p-1", "ConsentId": consent_id, "Status": "AcceptedSettlementInProcess"});
                (201, json!({ "Data": data }).to_string())
            }
            ("GET", "/open-banking/v3.1/pisp/domestic-payments/p-1") => {
                let data =
                    json!({"DomesticPaymentId": "p-1", "Status": "AcceptedSettlementCompleted"});
                (200, json!({ "Data": data }).to_string())
            }
            _ => (404, "{}".into()),
        }
    };
    FakeBank::start_signing(script, signing).await
}

fn payout_request(key: &str) -> PayOutRequest {
    PayOutRequest {
        idempotency_key: key.into(),
        reference: format!("withdrawal-{key}"),
        amount_minor: 250,
        currency: "GBP".into(),
        debtor: iban_party("Operator"),
        creditor: sort_code_party("Jane Doe"),
        notification_url: None,
    }
}

/// Signs every answer genuinely but the first one to a POST at `path`, signed `first`.
fn first_answer_at(
    path: &'static str,
    first: AnswerSignature,
) -> impl Fn(&Seen, usize) -> AnswerSignature + Send + Sync + 'static {
    let answered = AtomicUsize::new(0);
    move |seen, _| {
        let at_path = seen.method == "POST" && seen.path == path;
        if at_path && answered.fetch_add(1, Ordering::SeqCst) == 0 {
            first
        } else {
            AnswerSignature::Genuine
        }
    }
}

#[tokio::test]
async fn a_payout_is_a_signed_consent_then_its_payment() {
    let bank = payout_bank(|_, _| AnswerSignature::Genuine).await;
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
    // Both answers' signatures were checked against one fetch of the bank's keys, which the
    // next payout reuses.
    connector.pay_out(&payout_request("wd-8")).await.unwrap();
    assert_eq!(bank.seen_at("/jwks.json").len(), 1);
}

#[tokio::test]
async fn a_forged_signature_on_a_payment_answer_is_an_unknown_outcome_the_same_bank_settles() {
    for forgery in [AnswerSignature::Stranger, AnswerSignature::Tampered] {
        let bank = payout_bank(first_answer_at(PAYMENTS, forgery)).await;
        let connector = bank.connector(Protocol::Obie);
        let error = connector
            .pay_out(&payout_request("wd-7"))
            .await
            .unwrap_err();
        // The bank may have paid: never retryable, so never sent to another connector.
        assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
        // Resolved at the same bank with the same key: the bank answers the first payment,
        // whose status query then settles it.
        let accepted = connector.pay_out(&payout_request("wd-7")).await.unwrap();
        assert_eq!(accepted.payment_id, "p-1");
        let status = connector.pay_out_status("p-1").await.unwrap();
        assert_eq!(status, PaymentStatus::Settled);
        let keys: Vec<_> = bank
            .seen_at(PAYMENTS)
            .iter()
            .map(|s| s.header("x-idempotency-key").map(str::to_string))
            .collect();
        assert_eq!(keys, [Some("wd-7".to_string()), Some("wd-7".to_string())]);
        // A kid the bank does not list refetches its keys only if the last fetch is old: a
        // burst of forgeries is not a burst of requests to the bank.
        assert_eq!(bank.seen_at("/jwks.json").len(), 1);
    }
}

#[tokio::test]
async fn an_unsigned_payment_answer_is_an_unknown_outcome_the_next_status_query_settles() {
    let script = |seen: &Seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let initiation = json!({"InstructionIdentification": "dep-3"});
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/open-banking/v3.1/pisp/domestic-payment-consents/c-3") => {
                let data =
                    json!({"ConsentId": "c-3", "Status": "Authorised", "Initiation": initiation});
                (200, json!({ "Data": data }).to_string())
            }
            ("POST", PAYMENTS) => {
                let data =
                    json!({"DomesticPaymentId": "p-3", "Status": "AcceptedSettlementCompleted"});
                (201, json!({ "Data": data }).to_string())
            }
            _ => (404, "{}".into()),
        }
    };
    let signing = first_answer_at(PAYMENTS, AnswerSignature::Absent);
    let bank = FakeBank::start_signing(script, signing).await;
    let connector = bank.connector(Protocol::Obie);
    let handle = PayInHandle {
        consent_id: "c-3".into(),
        payment_id: None,
        idempotency_key: "dep-3-p".into(),
    };
    let error = connector.pay_in_progress(&handle).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
    // The deposit's next status query submits the consent's payment again under the same
    // key; the bank answers the payment it already has, signed this time.
    let progress = connector.pay_in_progress(&handle).await.unwrap();
    assert_eq!(progress.status, PaymentStatus::Settled);
    assert_eq!(progress.payment_id.as_deref(), Some("p-3"));
    let payments = bank.seen_at(PAYMENTS);
    assert_eq!(payments.len(), 2);
    assert!(payments
        .iter()
        .all(|s| s.header("x-idempotency-key") == Some("dep-3-p")));
}

#[tokio::test]
async fn an_unsigned_error_answer_is_classified_as_usual() {
    let bank = FakeBank::start_signing(
        |seen, _| {
            let refusal = json!({"Code": "400", "Errors": [{"ErrorCode": "UK.OBIE.Field.Invalid", "Message": "no"}]});
            auth_routes(seen).unwrap_or((400, refusal.to_string()))
        },
        |_, _| AnswerSignature::Absent,
    )
    .await;
    let error = bank
        .connector(Protocol::Obie)
        .pay_out(&payout_request("wd-11"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Declined { code, .. } if code == "UK.OBIE.Field.Invalid"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_forged_signature_on_a_consent_answer_is_retryable() {
    for forgery in [
        AnswerSignature::Tampered,
        AnswerSignature::Stranger,
        AnswerSignature::Absent,
    ] {
        let bank = payout_bank(first_answer_at(CONSENTS, forgery)).await;
        let connector = bank.connector(Protocol::Obie);
        let error = connector
            .pay_out(&payout_request("wd-10"))
            .await
            .unwrap_err();
        // Nothing was paid: the consent's status is not believed, no payment is sent.
        assert!(matches!(error, ConnectorError::Retryable(_)), "{error:?}");
        assert!(bank.seen_at(PAYMENTS).is_empty());
        let accepted = connector.pay_out(&payout_request("wd-10")).await.unwrap();
        assert_eq!(accepted.payment_id, "p-1");
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

#[tokio::test]
async fn a_pay_in_consent_asks_the_bank_for_the_refund_account_and_a_payout_consent_does_not() {
    let bank = payout_bank(|_, _| AnswerSignature::Genuine).await;
    let connector = bank.connector(Protocol::Obie);
    connector.pay_out(&payout_request("wd-12")).await.unwrap();
    let request = PayInRequest {
        idempotency_key: "dep-12".into(),
        reference: "12".into(),
        amount_minor: 100,
        currency: "GBP".into(),
        creditor: iban_party("Operator"),
        return_url: None,
        notification_url: None,
    };
    // The fake pre-authorises every consent: a pay-in refuses only a Rejected one.
    connector.pay_in_start(&request).await.unwrap();
    let consents = bank.seen_at(CONSENTS);
    assert!(consents[0].json()["Data"]
        .get("ReadRefundAccount")
        .is_none());
    assert_eq!(consents[1].json()["Data"]["ReadRefundAccount"], "Yes");
}

/// A bank whose consent `c-4` is `consent_status`, whose one payment `p-4` reports `refund`
/// as its `Data.Refund` (none if Null), and answers `payment_get` instead when asked for it.
async fn payer_bank(consent_status: &'static str, refund: Value, payment_get: u16) -> FakeBank {
    let script = move |seen: &Seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let initiation = json!({"InstructionIdentification": "dep-4-p"});
        let mut payment = json!({"DomesticPaymentId": "p-4", "ConsentId": "c-4",
            "Status": "AcceptedSettlementCompleted"});
        if !refund.is_null() {
            payment["Refund"] = refund.clone();
        }
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/open-banking/v3.1/pisp/domestic-payment-consents/c-4") => {
                let data = json!({"ConsentId": "c-4", "Status": consent_status,
                    "Initiation": initiation});
                (200, json!({ "Data": data }).to_string())
            }
            ("POST", PAYMENTS) => (201, json!({ "Data": payment }).to_string()),
            ("GET", "/open-banking/v3.1/pisp/domestic-payments/p-4") if payment_get == 200 => {
                (200, json!({ "Data": payment }).to_string())
            }
            ("GET", "/open-banking/v3.1/pisp/domestic-payments/p-4") => {
                let error = json!({"Code": payment_get.to_string(),
                    "Errors": [{"ErrorCode": "UK.OBIE.Resource.NotFound", "Message": "no"}]});
                (payment_get, error.to_string())
            }
            _ => (404, "{}".into()),
        }
    };
    FakeBank::start(script).await
}

fn payer_handle(payment_id: Option<&str>) -> PayInHandle {
    PayInHandle {
        consent_id: "c-4".into(),
        payment_id: payment_id.map(str::to_string),
        idempotency_key: "dep-4-p".into(),
    }
}

#[tokio::test]
async fn the_payer_is_the_payments_refund_account_found_again_by_its_consent() {
    let refund = json!({"Account": {"SchemeName": "UK.OBIE.SortCodeAccountNumber",
        "Identification": "20-00-00 12345678", "Name": "Jane Doe"}});
    let bank = payer_bank("Consumed", refund, 200).await;
    let connector = bank.connector(Protocol::Obie);
    let expected = Some(Party {
        account: AccountRef::SortCode {
            sort_code: "200000".into(),
            account_number: "12345678".into(),
        },
        name: "Jane Doe".into(),
    });
    // Its payment id known: only the payment is read.
    let payer = connector.pay_in_payer(&payer_handle(Some("p-4"))).await;
    assert_eq!(payer.unwrap(), expected);
    assert!(bank.seen_at(PAYMENTS).is_empty());
    // Forgotten (a restart): the consumed consent's payment, submitted again under the
    // deposit's key, answers the same payment (signed), which is then read.
    let payer = connector.pay_in_payer(&payer_handle(None)).await;
    assert_eq!(payer.unwrap(), expected);
    let submitted = bank.seen_at(PAYMENTS);
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].header("x-idempotency-key"), Some("dep-4-p"));
    assert_eq!(submitted[0].json()["Data"]["ConsentId"], "c-4");
    assert_eq!(bank.seen_at("/jwks.json").len(), 1);
    // Account numbers stay out of Debug output (and so out of logs).
    let shown = format!("{expected:?}");
    assert!(
        !shown.contains("12345678") && !shown.contains("Jane"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_consent_with_no_payment_has_no_payer_and_submits_nothing() {
    for status in ["AwaitingAuthorisation", "Authorised", "Rejected"] {
        let refund = json!({"Account": {"SchemeName": "UK.OBIE.IBAN",
            "Identification": "GB29NWBK60161331926819", "Name": "Jane Doe"}});
        let bank = payer_bank(status, refund, 200).await;
        let payer = bank
            .connector(Protocol::Obie)
            .pay_in_payer(&payer_handle(None))
            .await;
        assert_eq!(payer.unwrap(), None, "{status}");
        // Asking who paid never makes a payment.
        assert!(bank.seen_at(PAYMENTS).is_empty(), "{status}");
    }
}

#[tokio::test]
async fn a_refund_account_we_cannot_pay_back_is_no_payer() {
    let account = |scheme: &str, identification: &str, name: Value| {
        json!({"Account": {"SchemeName": scheme, "Identification": identification,
            "Name": name}})
    };
    let unusable = [
        Value::Null,
        json!({}),
        account("UK.OBIE.PAN", "4111111111111111", json!("Jane Doe")),
        account("UK.OBIE.IBAN", "GB30NWBK60161331926819", json!("Jane Doe")),
        account(
            "UK.OBIE.SortCodeAccountNumber",
            "2000001234567",
            json!("Jane Doe"),
        ),
        account("UK.OBIE.IBAN", "GB29NWBK60161331926819", Value::Null),
        account("UK.OBIE.IBAN", "GB29NWBK60161331926819", json!("  ")),
        json!({"Account": {"SchemeName": "UK.OBIE.IBAN", "Identification": 29}}),
    ];
    for refund in unusable {
        let data = json!({ "Refund": refund });
        assert_eq!(refund_account(&data), None, "{data}");
    }
    let spaced = account("IBAN", "gb29 nwbk 6016 1331 9268 19", json!(" Jane Doe "));
    let normalised = Party {
        account: AccountRef::Iban {
            iban: "GB29NWBK60161331926819".into(),
        },
        name: "Jane Doe".into(),
    };
    assert_eq!(
        refund_account(&json!({ "Refund": spaced })),
        Some(normalised)
    );
    // The whole way: a bank that reports no refund account says nobody we can pay.
    let bank = payer_bank("Consumed", Value::Null, 200).await;
    let payer = bank
        .connector(Protocol::Obie)
        .pay_in_payer(&payer_handle(Some("p-4")))
        .await;
    assert_eq!(payer.unwrap(), None);
}

#[tokio::test]
async fn a_payer_lookup_fails_as_the_bank_did() {
    let refund = json!({"Account": {"SchemeName": "UK.OBIE.IBAN",
        "Identification": "GB29NWBK60161331926819", "Name": "Jane Doe"}});
    let bank = payer_bank("Consumed", refund.clone(), 404).await;
    let error = bank
        .connector(Protocol::Obie)
        .pay_in_payer(&payer_handle(Some("p-4")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Declined { code, .. } if code == "UK.OBIE.Resource.NotFound"),
        "{error:?}"
    );
    let bank = payer_bank("Consumed", refund.clone(), 503).await;
    let error = bank
        .connector(Protocol::Obie)
        .pay_in_payer(&payer_handle(Some("p-4")))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Retryable(_)), "{error:?}");
    // The resubmission's answer is believed only when the bank signed it.
    let script = |seen: &Seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let consent = json!({"ConsentId": "c-4", "Status": "Consumed", "Initiation": {}});
        let payment = json!({"DomesticPaymentId": "p-4", "Status": "AcceptedSettlementCompleted"});
        match seen.method.as_str() {
            "GET" => (200, json!({ "Data": consent }).to_string()),
            _ => (201, json!({ "Data": payment }).to_string()),
        }
    };
    let signing = first_answer_at(PAYMENTS, AnswerSignature::Stranger);
    let bank = FakeBank::start_signing(script, signing).await;
    let error = bank
        .connector(Protocol::Obie)
        .pay_in_payer(&payer_handle(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
}

/// Regression: GET answers were believed unsigned, so a forged status could mark a payout
/// paid and a forged refund account could send a deposit's return to a stranger.
#[tokio::test]
async fn a_status_or_payer_answer_not_signed_by_the_bank_is_not_believed() {
    let payment_get = |seen: &Seen| seen.method == "GET" && seen.path.starts_with(PAYMENTS);
    for forgery in [
        AnswerSignature::Absent,
        AnswerSignature::Tampered,
        AnswerSignature::Stranger,
    ] {
        let forged_once = AtomicUsize::new(0);
        let signing = move |seen: &Seen, _| {
            if payment_get(seen) && forged_once.fetch_add(1, Ordering::SeqCst) == 0 {
                forgery
            } else {
                AnswerSignature::Genuine
            }
        };
        let bank = payout_bank(signing).await;
        let connector = bank.connector(Protocol::Obie);
        let error = connector.pay_out_status("p-1").await.unwrap_err();
        // Neither paid nor failed: asked again at the same bank, whose signed answer settles.
        assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
        let status = connector.pay_out_status("p-1").await.unwrap();
        assert_eq!(status, PaymentStatus::Settled);
    }
    let refund = json!({"Account": {"SchemeName": "UK.OBIE.IBAN",
        "Identification": "GB29NWBK60161331926819", "Name": "Mallory"}});
    let script = move |seen: &Seen, _| {
        if let Some(answer) = auth_routes(seen) {
            return answer;
        }
        let payment = json!({"DomesticPaymentId": "p-4", "Status": "AcceptedSettlementCompleted",
            "Refund": refund});
        (200, json!({ "Data": payment }).to_string())
    };
    let bank = FakeBank::start_signing(script, |_, _| AnswerSignature::Stranger).await;
    let error = bank
        .connector(Protocol::Obie)
        .pay_in_payer(&payer_handle(Some("p-4")))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");
}
