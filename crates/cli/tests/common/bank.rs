//! What the payments process tests share about a `croupier sandbox bank` child: the client
//! credentials they start it with, calls to its own set-up routes and its API, the operator's
//! camt.053 statement there, and `croupier payments reconcile` of a statement against a node.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use croupier_risk::identity::CivilDate;
use serde_json::{json, Value};

use super::Api;

/// The node's client at the sandbox banks (`--client-id`, `--client-secret`).
pub const CLIENT_ID: &str = "croupier";
pub const CLIENT_SECRET: &str = "secret";

/// Today (UTC) as the bank's statement dates it: `YYYY-MM-DD`.
pub fn today() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    CivilDate::from_unix_s(now.as_secs()).to_string()
}

/// A call to a sandbox bank's own routes (Basic client credentials): (status, body text).
pub fn bank_call(bank: &Api, path: &str, body: Option<&Value>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let url = format!("{}{path}", bank.base);
    let auth = format!("Basic {basic}");
    let answer = match body {
        Some(body) => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.to_string()),
        None => agent.get(&url).header("Authorization", &auth).call(),
    };
    let mut answer = answer.expect("the sandbox bank answers");
    let status = answer.status().as_u16();
    (status, answer.body_mut().read_to_string().unwrap())
}

/// Opens a customer's account (not the operator's: the bank does not list it as the client's)
/// at the sandbox bank, with nothing on it.
pub fn open_account(bank: &Api, account: Value, name: &str, currency: &str) {
    open_funded_account(bank, account, name, currency, "0");
}

/// `open_account` with `balance` on it ("250.00"): an account a player pays from.
pub fn open_funded_account(bank: &Api, account: Value, name: &str, currency: &str, balance: &str) {
    let body = json!({"account": account, "name": name, "currency": currency,
        "balance": balance, "holder": "customer"});
    let (status, answer) = bank_call(bank, "/sandbox/accounts", Some(&body));
    assert_eq!(status, 201, "{answer}");
}

/// The camt.053 statement of the operator's own account in `currency` at the bank (the one
/// the sandbox opened at its first start, found by its name among the client's accounts, as
/// the connector finds it).
pub fn operator_statement(bank: &Api, currency: &str, from: &str, to: &str) -> String {
    let accounts = bearer_get(bank, "/open-banking/v3.1/aisp/accounts");
    let operator = accounts["Data"]["Account"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Currency"] == currency && a["Account"][0]["Name"] == "Croupier Operator")
        .expect("the operator's account");
    let id = operator["Account"][0]["Identification"].as_str().unwrap();
    account_statement(bank, id, from, to)
}

/// The camt.053 statement of any account the bank holds (`id`: the IBAN or the 14 digits).
pub fn account_statement(bank: &Api, id: &str, from: &str, to: &str) -> String {
    let path = format!("/sandbox/accounts/{id}/statement?from={from}&to={to}");
    let (status, xml) = bank_call(bank, &path, None);
    assert_eq!(status, 200, "{xml}");
    xml
}

/// A GET of the bank's API with a fresh token, asked again past its 503 faults.
pub fn bearer_get(bank: &Api, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = try_bearer_get(bank, path) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: the bank does not answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn try_bearer_get(bank: &Api, path: &str) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let mut token = agent
        .post(format!("{}/token", bank.base))
        .send_form(form)
        .ok()?;
    let token: Value = serde_json::from_str(&token.body_mut().read_to_string().ok()?).ok()?;
    let token = token["access_token"].as_str()?;
    let mut answer = agent
        .get(format!("{}{path}", bank.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .ok()?;
    if answer.status().as_u16() != 200 {
        return None;
    }
    serde_json::from_str(&answer.body_mut().read_to_string().ok()?).ok()
}

/// `croupier payments reconcile` of `statement` for `connector` against the node at
/// `server`: (exit 0, its output).
pub fn reconcile(server: &str, connector: &str, statement: &Path) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["payments", "reconcile", "--connector", connector])
        .arg("--statement")
        .arg(statement)
        .args(["--server", server])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A player's deposit of `amount` EUR cents at bank-a, which its customer approves or
/// declines on the bank's page; answers the deposit once it is `settled` or `rejected`.
pub fn deposit_to_end(api: &Api, token: &str, id: u64, amount: u64, approve: bool) -> Value {
    let body = json!({"deposit_id": id.to_string(), "amount": amount, "ledger": "EUR",
        "connector": "bank-a"});
    let (status, started) = api.call("/v1/deposits", Some(token), Some(&body)).unwrap();
    assert_eq!(status, 201, "{started}");
    let url = started["authorisation_url"].as_str().unwrap();
    let decision = if approve { "&approve=1" } else { "&approve=0" };
    let (status, _) = Api::new(String::new())
        .call(&format!("{url}{decision}"), None, None)
        .unwrap();
    assert!(status < 400);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, answer) = api
            .call(&format!("/v1/deposits/{id}"), Some(token), None)
            .unwrap();
        if ["settled", "rejected"].contains(&answer["state"].as_str().unwrap_or("")) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "deposit {id} did not end: {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
