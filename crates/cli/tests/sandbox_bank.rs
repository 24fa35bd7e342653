//! `croupier sandbox bank` as its own process, for each protocol: tokens, key registration,
//! pay-ins authorised on the bank's page, pre-authorised payouts, settlement, idempotency
//! (across a restart too), one payment per consent, signatures and digests, Confirmation of
//! Payee, camt.053 statements that balance, and the faults.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::SandboxProcess;
use croupier_payments::camt053;
use croupier_payments::jws::{verify_detached, Jwks, SigningKey};
use serde_json::{json, Map, Value};

const CLIENT_ID: &str = "croupier-test";
const CLIENT_SECRET: &str = "s3cret";
const PISP: &str = "/open-banking/v3.1/pisp";

/// One HTTP answer.
struct Answer {
    status: u16,
    signature: Option<String>,
    location: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// A running sandbox bank and a client of it.
struct Bank {
    process: SandboxProcess,
    base: String,
    agent: ureq::Agent,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

impl Bank {
    fn start(protocol: &str, dir: &Path, extra: &[&str]) -> Bank {
        let mut args = vec![
            "--protocol",
            protocol,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--seed",
            "7",
        ];
        if !extra.contains(&"--settle-ms") {
            args.extend_from_slice(&["--settle-ms", "100"]);
        }
        args.extend_from_slice(extra);
        let process = SandboxProcess::start("bank", dir, &args);
        let base = format!("http://{}", process.addr());
        Bank {
            process,
            base,
            agent: agent(Duration::from_secs(10)),
        }
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) {
        common::stop(&mut self.process.child);
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&str>,
    ) -> Answer {
        send_with(&self.agent, &self.base, method, path, headers, body).expect("the bank answers")
    }

    fn basic() -> (&'static str, String) {
        let credentials = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        ("authorization", format!("Basic {credentials}"))
    }

    fn token(&self) -> String {
        let form = [
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            Bank::basic(),
        ];
        let answer = self.send(
            "POST",
            "/token",
            &form,
            Some("grant_type=client_credentials"),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["access_token"].as_str().unwrap().to_string()
    }

    fn register(&self, key: &SigningKey) {
        let body = json!({ "jwks": key.jwks() }).to_string();
        let answer = self.send("POST", "/register", &[Bank::basic()], Some(&body));
        assert_eq!(answer.status, 201, "{}", answer.text);
    }

    fn get(&self, path: &str, token: &str) -> Answer {
        self.send(
            "GET",
            path,
            &[("authorization", format!("Bearer {token}"))],
            None,
        )
    }

    fn bank_jwks(&self) -> Jwks {
        serde_json::from_str(&self.send("GET", "/jwks.json", &[], None).text).unwrap()
    }

    /// An OBIE POST: signed by `key`, with an idempotency key.
    fn obie_post(
        &self,
        path: &str,
        token: &str,
        key: &SigningKey,
        idempotency: &str,
        body: &Value,
    ) -> Answer {
        let body = body.to_string();
        let signature = obie_signature(key, body.as_bytes());
        let headers = [
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".to_string()),
            ("x-idempotency-key", idempotency.to_string()),
            ("x-fapi-financial-id", "sandbox".to_string()),
            ("x-jws-signature", signature),
        ];
        self.send("POST", &format!("{PISP}{path}"), &headers, Some(&body))
    }

    /// A Berlin Group initiation with its Digest and X-Request-ID.
    fn berlin_post(&self, token: &str, request_id: &str, body: &Value) -> Answer {
        let body = body.to_string();
        let headers = [
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".to_string()),
            ("x-request-id", request_id.to_string()),
            ("psu-ip-address", "192.0.2.1".to_string()),
            ("digest", digest(body.as_bytes())),
        ];
        self.send(
            "POST",
            "/v1/payments/sepa-credit-transfers",
            &headers,
            Some(&body),
        )
    }

    /// Polls `path` until `field` is `want` (or fails after a few seconds).
    fn wait_for(&self, path: &str, token: &str, pointer: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer = self.get(path, token).json();
            if answer.pointer(pointer).and_then(Value::as_str) == Some(want) {
                return answer;
            }
            assert!(Instant::now() < deadline, "{path}: never {want}: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn statement(&self, account: &str) -> camt053::Statement {
        let today = today();
        let path = format!("/sandbox/accounts/{account}/statement?from=2000-01-01&to={today}");
        let answer = self.send("GET", &path, &[Bank::basic()], None);
        assert_eq!(answer.status, 200, "{}", answer.text);
        let statement = camt053::parse(&answer.text).expect("a camt.053 statement");
        assert_eq!(statement.computed_closing_minor(), statement.closing_minor);
        statement
    }
}

fn send_with(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> Option<Answer> {
    let url = format!("{base}{path}");
    let response = if method == "GET" {
        let mut request = agent.get(&url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.call()
    } else {
        let mut request = agent.post(&url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send(body.unwrap_or_default())
    };
    let mut response = response.ok()?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let signature = header("x-jws-signature");
    let location = header("location");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some(Answer {
        status,
        signature,
        location,
        text,
    })
}

fn obie_signature(key: &SigningKey, body: &[u8]) -> String {
    let mut claims = Map::new();
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims.insert("http://openbanking.org.uk/iat".into(), now_s.into());
    claims.insert("http://openbanking.org.uk/iss".into(), CLIENT_ID.into());
    claims.insert("http://openbanking.org.uk/tan".into(), "127.0.0.1".into());
    claims.insert(
        "crit".into(),
        json!([
            "http://openbanking.org.uk/iat",
            "http://openbanking.org.uk/iss",
            "http://openbanking.org.uk/tan"
        ]),
    );
    key.sign_detached(body, claims).unwrap()
}

fn digest(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let (y, m, d) = croupier_core::compliance::civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn consent_body(amount: &str, e2e: &str, debtor: Option<&Value>, creditor: &Value) -> Value {
    let mut initiation = json!({
        "InstructionIdentification": e2e,
        "EndToEndIdentification": e2e,
        "InstructedAmount": {"Amount": amount, "Currency": "GBP"},
        "CreditorAccount": creditor,
        "RemittanceInformation": {"Reference": e2e},
    });
    if let Some(debtor) = debtor {
        initiation["DebtorAccount"] = debtor.clone();
    }
    json!({"Data": {"Initiation": initiation}, "Risk": {}})
}

fn payment_body(consent: &Value) -> Value {
    json!({"Data": {"ConsentId": consent["Data"]["ConsentId"], "Initiation": consent["Data"]["Initiation"]}, "Risk": {}})
}

/// The operator's account of `scheme` as the OBIE account information lists it.
fn obie_operator_account(bank: &Bank, token: &str, scheme: &str) -> Value {
    let accounts = bank.get("/open-banking/v3.1/aisp/accounts", token).json();
    let accounts = accounts["Data"]["Account"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let account = accounts
        .iter()
        .find(|a| a["Account"][0]["SchemeName"] == scheme)
        .expect(scheme);
    assert_eq!(account["Account"][0]["Name"], "Croupier Operator");
    account["Account"][0].clone()
}

#[test]
fn obie_pay_ins_and_payouts_settle_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::start("obie", dir.path(), &[]);
    let form = (
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    );
    let wrong = (
        "authorization",
        format!("Basic {}", STANDARD.encode("croupier-test:nope")),
    );
    let answer = bank.send(
        "POST",
        "/token",
        &[form.clone(), wrong],
        Some("grant_type=client_credentials"),
    );
    assert_eq!(
        (answer.status, answer.json()["error"].clone()),
        (401, json!("invalid_client"))
    );
    let answer = bank.send(
        "POST",
        "/token",
        &[form, Bank::basic()],
        Some("grant_type=password"),
    );
    assert_eq!(answer.status, 400);
    let token = bank.token();
    let key = SigningKey::generate().unwrap();
    bank.register(&key);
    let operator = obie_operator_account(&bank, &token, "UK.OBIE.SortCodeAccountNumber");
    let operator_id = operator["Identification"].as_str().unwrap().to_string();

    // A pay-in: the customer authorises it on the bank's page.
    let pay_in = consent_body("12.34", "dep-1", None, &operator);
    let answer = bank.obie_post("/domestic-payment-consents", "nope", &key, "k1", &pay_in);
    assert_eq!(answer.status, 401);
    let answer = bank.obie_post("/domestic-payment-consents", &token, &key, "k1", &pay_in);
    assert_eq!(answer.status, 201, "{}", answer.text);
    verify_detached(
        answer.signature.as_deref().unwrap(),
        answer.text.as_bytes(),
        &bank.bank_jwks(),
    )
    .unwrap();
    let consent = answer.json();
    assert_eq!(consent["Data"]["Status"], "AwaitingAuthorisation");
    let consent_id = consent["Data"]["ConsentId"].as_str().unwrap().to_string();
    let again = bank
        .obie_post("/domestic-payment-consents", &token, &key, "k1", &pay_in)
        .json();
    assert_eq!(again["Data"]["ConsentId"], consent_id.as_str());
    let other = consent_body("12.35", "dep-1", None, &operator);
    let answer = bank.obie_post("/domestic-payment-consents", &token, &key, "k1", &other);
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["Errors"][0]["ErrorCode"],
        "UK.OBIE.Resource.ConsentMismatch"
    );

    // Signatures: over another body, or by an unregistered key, are refused.
    let forger = SigningKey::generate().unwrap();
    let answer = bank.obie_post("/domestic-payment-consents", &token, &forger, "k9", &pay_in);
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["Errors"][0]["ErrorCode"],
        "UK.OBIE.Signature.Invalid"
    );
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("x-idempotency-key", "k8".to_string()),
        ("x-jws-signature", obie_signature(&key, b"{}")),
    ];
    let answer = bank.send(
        "POST",
        &format!("{PISP}/domestic-payment-consents"),
        &headers,
        Some(&pay_in.to_string()),
    );
    assert_eq!(
        answer.json()["Errors"][0]["ErrorCode"],
        "UK.OBIE.Signature.Invalid"
    );

    let answer = bank.obie_post(
        "/domestic-payments",
        &token,
        &key,
        "p0",
        &payment_body(&consent),
    );
    assert_eq!(
        answer.json()["Errors"][0]["ErrorCode"],
        "UK.OBIE.Resource.InvalidConsentStatus"
    );
    let page = bank.send(
        "GET",
        &format!("/authorize?consent_id={consent_id}"),
        &[],
        None,
    );
    assert!(page.text.contains("12.34 GBP"), "{}", page.text);
    let redirect = format!(
        "/authorize?consent_id={consent_id}&approve=1&redirect_uri=http://example.test/back"
    );
    let answer = bank.send("GET", &redirect, &[], None);
    assert_eq!(answer.status, 303);
    let location = answer.location.unwrap();
    assert_eq!(
        location,
        format!("http://example.test/back?consent_id={consent_id}&status=Authorised")
    );

    let answer = bank.obie_post(
        "/domestic-payments",
        &token,
        &key,
        "p1",
        &payment_body(&consent),
    );
    assert_eq!(answer.status, 201, "{}", answer.text);
    let payment_id = answer.json()["Data"]["DomesticPaymentId"]
        .as_str()
        .unwrap()
        .to_string();
    // One payment per consent, whatever the key.
    let again = bank
        .obie_post(
            "/domestic-payments",
            &token,
            &key,
            "p2",
            &payment_body(&consent),
        )
        .json();
    assert_eq!(again["Data"]["DomesticPaymentId"], payment_id.as_str());
    let path = format!("{PISP}/domestic-payments/{payment_id}");
    bank.wait_for(&path, &token, "/Data/Status", "AcceptedSettlementCompleted");

    // A payout from the operator's own account to another bank: pre-authorised.
    let creditor = json!({"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "20000012345678", "Name": "Jane Smith"});
    let payout = consent_body("2.00", "wd-1", Some(&operator), &creditor);
    let consent = bank
        .obie_post("/domestic-payment-consents", &token, &key, "k2", &payout)
        .json();
    assert_eq!(consent["Data"]["Status"], "Authorised");
    let answer = bank.obie_post(
        "/domestic-payments",
        &token,
        &key,
        "p3",
        &payment_body(&consent),
    );
    let payout_id = answer.json()["Data"]["DomesticPaymentId"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{PISP}/domestic-payments/{payout_id}");
    bank.wait_for(&path, &token, "/Data/Status", "AcceptedSettlementCompleted");
    // More than the operator has: rejected, AM04.
    let too_much = consent_body("2000000.00", "wd-2", Some(&operator), &creditor);
    let consent = bank
        .obie_post("/domestic-payment-consents", &token, &key, "k3", &too_much)
        .json();
    let answer = bank
        .obie_post(
            "/domestic-payments",
            &token,
            &key,
            "p4",
            &payment_body(&consent),
        )
        .json();
    assert_eq!(answer["Data"]["Status"], "Rejected");
    assert_eq!(answer["Data"]["StatusDetail"]["StatusReason"], "AM04");

    let statement = bank.statement(&operator_id);
    let moves: Vec<(u64, bool, &str)> = statement
        .entries
        .iter()
        .map(|e| (e.amount_minor, e.credit, e.end_to_end_id.as_str()))
        .collect();
    assert_eq!(moves, vec![(1234, true, "dep-1"), (200, false, "wd-1")]);
    assert_eq!(statement.closing_minor, 100_000_000 + 1234 - 200);
    assert_eq!(statement.entries[0].bank_reference, payment_id);

    // A restart: tokens are gone, everything else is kept.
    bank.stop();
    let bank = Bank::start("obie", dir.path(), &[]);
    assert_eq!(bank.get(&path, &token).status, 401);
    let token = bank.token();
    let again = bank
        .obie_post("/domestic-payment-consents", &token, &key, "k1", &pay_in)
        .json();
    assert_eq!(again["Data"]["ConsentId"], consent_id.as_str());
    bank.wait_for(&path, &token, "/Data/Status", "AcceptedSettlementCompleted");
    assert_eq!(bank.statement(&operator_id), statement);
    bank.stop();
}

fn berlin_body(amount: &str, e2e: &str, debtor: Option<&str>, creditor: &str) -> Value {
    let mut body = json!({
        "endToEndIdentification": e2e,
        "instructedAmount": {"currency": "EUR", "amount": amount},
        "creditorAccount": {"iban": creditor},
        "creditorName": "Croupier Operator",
        "remittanceInformationUnstructured": e2e,
    });
    if let Some(debtor) = debtor {
        body["debtorAccount"] = json!({ "iban": debtor });
    }
    body
}

const STATUS: &str = "/v1/payments/sepa-credit-transfers";

#[test]
fn berlin_group_pay_ins_and_payouts_settle_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::start("berlin-group", dir.path(), &[]);
    let token = bank.token();
    let accounts = bank.get("/v1/accounts", &token).json();
    let eur = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "EUR")
        .unwrap()
        .clone();
    let iban = eur["iban"].as_str().unwrap().to_string();

    let pay_in = berlin_body("10.00", "dep-7", None, &iban);
    let request_id = "3f2c1a9e-1111-4a2b-9c3d-000000000001";
    let answer = bank.berlin_post(&token, request_id, &pay_in);
    assert_eq!(answer.status, 201, "{}", answer.text);
    let created = answer.json();
    assert_eq!(created["transactionStatus"], "RCVD");
    let id = created["paymentId"].as_str().unwrap().to_string();
    let sca = created["_links"]["scaRedirect"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        bank.berlin_post(&token, request_id, &pay_in).json()["paymentId"],
        id.as_str()
    );
    let headers = [
        ("authorization", format!("Bearer {token}")),
        (
            "x-request-id",
            "3f2c1a9e-1111-4a2b-9c3d-000000000002".to_string(),
        ),
        ("psu-ip-address", "192.0.2.1".to_string()),
        ("digest", digest(b"something else")),
    ];
    let answer = bank.send("POST", STATUS, &headers, Some(&pay_in.to_string()));
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["tppMessages"][0]["code"], "FORMAT_ERROR");

    let approve = format!("{}&approve=1", sca.trim_start_matches(&bank.base));
    assert_eq!(
        bank.send("GET", &approve, &[], None).json()["status"],
        "ACTC"
    );
    bank.wait_for(
        &format!("{STATUS}/{id}/status"),
        &token,
        "/transactionStatus",
        "ACSC",
    );

    // A payout to another bank: authorised at once.
    let payout = berlin_body("3.00", "wd-7", Some(&iban), "DE89370400440532013000");
    let created = bank
        .berlin_post(&token, "3f2c1a9e-1111-4a2b-9c3d-000000000003", &payout)
        .json();
    assert_eq!(created["transactionStatus"], "ACTC");
    assert!(created["_links"]["scaRedirect"].is_null());
    let payout_id = created["paymentId"].as_str().unwrap().to_string();
    bank.wait_for(
        &format!("{STATUS}/{payout_id}/status"),
        &token,
        "/transactionStatus",
        "ACSC",
    );
    let too_much = berlin_body("9999999.00", "wd-8", Some(&iban), "DE89370400440532013000");
    let created = bank
        .berlin_post(&token, "3f2c1a9e-1111-4a2b-9c3d-000000000004", &too_much)
        .json();
    assert_eq!(created["transactionStatus"], "RJCT");
    // Regression: the initiation's answer of an at-once rejection left out its reason.
    assert_eq!(created["tppMessages"][0]["code"], "AM04");
    let status = bank
        .get(
            &format!("{STATUS}/{}/status", created["paymentId"].as_str().unwrap()),
            &token,
        )
        .json();
    assert_eq!(status["tppMessages"][0]["code"], "AM04");

    let statement = bank.statement(&iban);
    assert_eq!(statement.entries.len(), 2);
    assert_eq!(statement.closing_minor, 100_000_000 + 1000 - 300);
    bank.stop();

    // A payout due while the bank is down settles when it is back.
    let mut bank = Bank::start("berlin-group", dir.path(), &["--settle-ms", "1000"]);
    let token = bank.token();
    let payout = berlin_body("1.00", "wd-9", Some(&iban), "DE89370400440532013000");
    let request_id = "3f2c1a9e-1111-4a2b-9c3d-000000000005";
    let created = bank.berlin_post(&token, request_id, &payout).json();
    assert_eq!(created["transactionStatus"], "ACTC");
    bank.process.child.kill().unwrap();
    bank.process.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let bank = Bank::start("berlin-group", dir.path(), &[]);
    let token = bank.token();
    let again = bank.berlin_post(&token, request_id, &payout).json();
    assert_eq!(again["paymentId"], created["paymentId"]);
    let path = format!("{STATUS}/{}/status", created["paymentId"].as_str().unwrap());
    bank.wait_for(&path, &token, "/transactionStatus", "ACSC");
    assert_eq!(
        bank.statement(&iban).closing_minor,
        100_000_000 + 1000 - 300 - 100
    );
    bank.stop();
}

#[test]
fn confirmation_of_payee_matches_names_on_accounts_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::start("berlin-group", dir.path(), &[]);
    let token = bank.token();
    let account = json!({
        "account": {"sort_code": "200000", "account_number": "12345678"},
        "name": "Jane Smith", "currency": "GBP", "balance": "50.00",
    });
    let wrong = (
        "authorization",
        format!("Basic {}", STANDARD.encode("croupier-test:nope")),
    );
    let answer = bank.send(
        "POST",
        "/sandbox/accounts",
        &[wrong],
        Some(&account.to_string()),
    );
    assert_eq!(answer.status, 401);
    let answer = bank.send(
        "POST",
        "/sandbox/accounts",
        &[Bank::basic()],
        Some(&account.to_string()),
    );
    assert_eq!(answer.status, 201, "{}", answer.text);
    let view = bank
        .send(
            "GET",
            "/sandbox/accounts/20000012345678",
            &[Bank::basic()],
            None,
        )
        .json();
    assert_eq!(view["balance"], "50.00");
    let cop = |identification: &str, name: &str| {
        let body = json!({"Data": {"SchemeName": "SortCodeAccountNumber", "Identification": identification, "Name": name, "AccountType": "Personal"}});
        let headers = [("authorization", format!("Bearer {token}"))];
        let answer = bank.send(
            "POST",
            "/confirmation-of-payee",
            &headers,
            Some(&body.to_string()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["Data"]["VerificationReport"].clone()
    };
    assert_eq!(cop("20000012345678", "jane smith")["Matched"], true);
    let close = cop("20000012345678", "J Smith");
    assert_eq!(
        (
            close["Matched"].clone(),
            close["ReasonCode"].clone(),
            close["Name"].clone()
        ),
        (json!(false), json!("MBAM"), json!("Jane Smith"))
    );
    assert_eq!(cop("20000012345678", "Bob Jones")["ReasonCode"], "ANNM");
    assert_eq!(cop("20000099999999", "Jane Smith")["ReasonCode"], "AC01");
    bank.stop();
}

#[test]
fn faults_hold_an_accepted_answer_and_a_down_bank_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::start(
        "obie",
        dir.path(),
        &["--fault-timeout-after-accept-percent", "100", "--down"],
    );
    assert_eq!(bank.send("GET", "/health", &[], None).status, 503);
    assert_eq!(
        bank.send("POST", "/sandbox/up", &[Bank::basic()], Some(""))
            .status,
        200
    );
    assert_eq!(bank.send("GET", "/health", &[], None).status, 200);
    let token = bank.token();
    let key = SigningKey::generate().unwrap();
    bank.register(&key);
    let operator = obie_operator_account(&bank, &token, "UK.OBIE.IBAN");
    let mut pay_in = consent_body("5.00", "dep-3", None, &operator);
    pay_in["Data"]["Initiation"]["InstructedAmount"]["Currency"] = json!("EUR");

    // The consent is made and recorded, but its answer never comes in time...
    let body = pay_in.to_string();
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("x-idempotency-key", "t1".to_string()),
        ("x-jws-signature", obie_signature(&key, body.as_bytes())),
    ];
    let impatient = agent(Duration::from_millis(500));
    let path = format!("{PISP}/domestic-payment-consents");
    assert!(send_with(&impatient, &bank.base, "POST", &path, &headers, Some(&body)).is_none());
    // ...and the resend with the same key learns it at once.
    let answer = bank.obie_post("/domestic-payment-consents", &token, &key, "t1", &pay_in);
    assert_eq!(answer.status, 201, "{}", answer.text);
    let id = answer.json()["Data"]["ConsentId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        bank.get(&format!("{path}/{id}"), &token).json()["Data"]["Status"],
        "AwaitingAuthorisation"
    );

    assert_eq!(
        bank.send("POST", "/sandbox/down", &[Bank::basic()], Some(""))
            .status,
        200
    );
    let answer = bank.get(&format!("{path}/{id}"), &token);
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["Code"], "503");
    assert_eq!(
        bank.send("POST", "/sandbox/up", &[Bank::basic()], Some(""))
            .status,
        200
    );
    assert_eq!(bank.get(&format!("{path}/{id}"), &token).status, 200);
    bank.stop();
}

/// A callback receiver: answers 200 to every POST and hands over (headers, body).
fn receiver() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(str::to_string)
                })
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = sender.send((head, body));
        }
    });
    (url, received)
}

#[test]
fn notifications_are_signed_and_say_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::start("berlin-group", dir.path(), &[]);
    let token = bank.token();
    let accounts = bank.get("/v1/accounts", &token).json();
    let iban = accounts["accounts"][0]["iban"]
        .as_str()
        .unwrap()
        .to_string();
    let (url, received) = receiver();
    let body = berlin_body("1.50", "dep-n", None, &iban).to_string();
    let headers = [
        ("authorization", format!("Bearer {token}")),
        (
            "x-request-id",
            "3f2c1a9e-1111-4a2b-9c3d-0000000000aa".to_string(),
        ),
        ("psu-ip-address", "192.0.2.1".to_string()),
        ("digest", digest(body.as_bytes())),
        ("tpp-notification-uri", url),
    ];
    let created = bank.send("POST", STATUS, &headers, Some(&body)).json();
    let id = created["paymentId"].as_str().unwrap().to_string();
    bank.send(
        "GET",
        &format!("/authorize?payment_id={id}&approve=1"),
        &[],
        None,
    );
    let jwks = bank.bank_jwks();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (head, body) = received
            .recv_timeout(Duration::from_secs(5))
            .expect("a notification");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap()
        };
        assert_eq!(header("digest"), digest(&body));
        verify_detached(&header("x-jws-signature"), &body, &jwks).expect("signed by the bank");
        let note: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(note["paymentId"], id.as_str());
        statuses.push(note["transactionStatus"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, ["ACTC", "ACSC"]);
    bank.stop();
}
