//! The connectors against the sandbox bank (in this process, on 127.0.0.1:0), for each
//! protocol: a deposit authorised on the bank's page and settled, a payout settled, the same
//! payout resent answering the same payment, notifications verified and forged ones refused,
//! Confirmation of Payee, a wrong client secret declined and a stopped bank retryable; and the
//! account a deposit came from, as the bank reports it, paid back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use croupier_payments::bank::{BankConnector, ConnectorConfig, Protocol, TlsClient};
use croupier_payments::jws::SigningKey;
use croupier_payments::notify::NotifiedResource;
use croupier_payments::sandbox::{self, SandboxBank};
use croupier_payments::{
    AccountRef, Connector, ConnectorError, Party, PayInHandle, PayInRequest, PayOutRequest,
    PayeeMatch, PaymentStatus,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

const CLIENT_ID: &str = "node-test";
const CLIENT_SECRET: &str = "s3cret";
/// How long a payment may take to settle here (the bank settles in 50 ms).
const SETTLE_WAIT_MS: u64 = 10_000;

/// A sandbox bank running in this process.
struct Sandbox {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    async fn start(protocol: sandbox::Protocol) -> Sandbox {
        Sandbox::start_with(protocol, false).await
    }

    /// `tls`: HTTPS with client certificates required (certificates in DIR/tls).
    async fn start_with(protocol: sandbox::Protocol, tls: bool) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = sandbox::Config {
            protocol,
            data_dir: dir.path().to_path_buf(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            settle_ms: 50,
            consent_ttl_s: 600,
            latency_ms: 0,
            faults: sandbox::Faults::default(),
            down: false,
            operator_balance: "1000000.00".into(),
            seed: Some(7),
            payments_max: 10_000,
            accounts_max: 1_000,
            notify_queue_max: 1_000,
            tls,
            hold_s: 1,
        };
        let bank = SandboxBank::open(config, addr).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bank.serve(listener, async move {
            let _ = stopped.await;
        }));
        let scheme = if tls { "https" } else { "http" };
        Sandbox {
            base_url: format!("{scheme}://{addr}"),
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Opens (or replaces) an account at the bank: the player's, for payouts.
    async fn open_account(&self, account: &AccountRef, name: &str, currency: &str) {
        self.open_account_with(account, name, currency, "0").await;
    }

    /// `open_account` with `balance` on it (a payer's).
    async fn open_account_with(
        &self,
        account: &AccountRef,
        name: &str,
        currency: &str,
        balance: &str,
    ) {
        let body = json!({"account": account, "name": name, "currency": currency,
            "balance": balance, "holder": "customer"});
        let answer = reqwest::Client::new()
            .post(format!("{}/sandbox/accounts", self.base_url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    }

    /// An account's balance at the bank, as it writes it ("100.00").
    async fn balance(&self, account: &AccountRef) -> String {
        let id = identification(account);
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/sandbox/accounts/{id}", self.base_url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["balance"].as_str().unwrap().to_string()
    }

    /// `open_account` over the bank's HTTPS, with the operator's client certificate.
    async fn open_account_tls(&self, account: &AccountRef, name: &str, currency: &str) {
        let dir = self._dir.path().join(sandbox::tls::TLS_DIR_NAME);
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let mut identity = read(sandbox::tls::CLIENT_CERT_FILE);
        identity.extend(read(sandbox::tls::CLIENT_KEY_FILE));
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&read(sandbox::tls::CA_FILE)).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(&identity).unwrap())
            .build()
            .unwrap();
        let body = json!({"account": account, "name": name, "currency": currency, "balance": "0",
            "holder": "customer"});
        let answer = client
            .post(format!("{}/sandbox/accounts", self.base_url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One notification as the node's callback received it.
struct Received {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// The node's callback: every POST is passed on.
async fn callback() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/notify", post(receive))
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/notify"), receiver)
}

async fn receive(
    State(sender): State<mpsc::UnboundedSender<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let _ = sender.send(Received {
        headers,
        body: body.to_vec(),
    });
    "ok"
}

fn connector(base_url: &str, protocol: Protocol, secret: &str) -> BankConnector {
    connector_with_tls(base_url, protocol, secret, TlsClient::default())
}

fn connector_with_tls(
    base_url: &str,
    protocol: Protocol,
    secret: &str,
    tls: TlsClient,
) -> BankConnector {
    BankConnector::new(ConnectorConfig {
        id: "bank-a".into(),
        protocol,
        base_url: base_url.into(),
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        signing_key: Arc::new(SigningKey::generate().unwrap()),
        operator_accounts: Default::default(),
        timeout_ms: 5_000,
        tls,
    })
    .unwrap()
}

/// How the sandbox names an account in its routes: the IBAN, or the 14 digits.
fn identification(account: &AccountRef) -> String {
    match account {
        AccountRef::Iban { iban } => iban.clone(),
        AccountRef::SortCode {
            sort_code,
            account_number,
        } => format!("{sort_code}{account_number}"),
    }
}

/// A deposit: started, approved on the bank's page, followed until settled.
async fn deposit(bank: &BankConnector, operator: &Party, currency: &str, notify: &str) -> String {
    deposit_from(bank, operator, currency, Some(notify), None)
        .await
        .payment_id
        .unwrap()
}

/// A deposit paid from `payer` (None: the sandbox customer) and settled: its handle.
async fn deposit_from(
    bank: &BankConnector,
    operator: &Party,
    currency: &str,
    notify: Option<&str>,
    payer: Option<&AccountRef>,
) -> PayInHandle {
    let request = PayInRequest {
        idempotency_key: format!("dep-{currency}-1"),
        reference: format!("deposit-{currency}-1"),
        amount_minor: 2_500,
        currency: currency.into(),
        creditor: operator.clone(),
        return_url: None,
        notification_url: notify.map(str::to_string),
    };
    let started = bank.pay_in_start(&request).await.unwrap();
    let mut handle = PayInHandle {
        consent_id: started.consent_id.clone(),
        payment_id: None,
        idempotency_key: request.idempotency_key.clone(),
    };
    let waiting = bank.pay_in_progress(&handle).await.unwrap();
    assert_eq!(waiting.status, PaymentStatus::AwaitingAuthorisation);
    let from = payer.map_or(String::new(), |a| format!("&account={}", identification(a)));
    let page = reqwest::get(format!("{}&approve=1{from}", started.authorisation_url))
        .await
        .unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let deadline = Instant::now() + Duration::from_millis(SETTLE_WAIT_MS);
    loop {
        let progress = bank.pay_in_progress(&handle).await.unwrap();
        assert!(progress.payment_id.is_some(), "{progress:?}");
        handle.payment_id = progress.payment_id;
        match progress.status {
            PaymentStatus::Settled => return handle,
            PaymentStatus::Pending => {}
            other => panic!("the deposit went {other:?}"),
        }
        assert!(Instant::now() < deadline, "the deposit did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A payout settled; the same request again answers the same payment.
async fn payout(bank: &BankConnector, operator: &Party, player: &Party, currency: &str) -> String {
    let request = PayOutRequest {
        idempotency_key: format!("wd-{currency}-1"),
        reference: format!("withdrawal-{currency}-1"),
        amount_minor: 1_000,
        currency: currency.into(),
        debtor: operator.clone(),
        creditor: player.clone(),
        notification_url: None,
    };
    let accepted = bank.pay_out(&request).await.unwrap();
    assert!(!accepted.status.is_final() || accepted.status == PaymentStatus::Settled);
    let deadline = Instant::now() + Duration::from_millis(SETTLE_WAIT_MS);
    while bank.pay_out_status(&accepted.payment_id).await.unwrap() != PaymentStatus::Settled {
        assert!(Instant::now() < deadline, "the payout did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = bank.pay_out(&request).await.unwrap();
    assert_eq!(again.payment_id, accepted.payment_id);
    accepted.payment_id
}

async fn confirmation_of_payee(bank: &BankConnector, player: &Party) {
    assert_eq!(
        bank.confirm_payee(player).await.unwrap(),
        PayeeMatch::Matched
    );
    let typo = Party {
        account: player.account.clone(),
        name: "Jane Dou".into(),
    };
    let close = bank.confirm_payee(&typo).await.unwrap();
    assert_eq!(
        close,
        PayeeMatch::CloseMatch {
            actual_name: player.name.clone()
        }
    );
    let stranger = Party {
        account: player.account.clone(),
        name: "Somebody Else".into(),
    };
    assert_eq!(
        bank.confirm_payee(&stranger).await.unwrap(),
        PayeeMatch::NotMatched
    );
    let nobody = Party {
        account: AccountRef::Iban {
            iban: "FR1420041010050500013M02606".into(),
        },
        name: "Jane Doe".into(),
    };
    assert_eq!(
        bank.confirm_payee(&nobody).await.unwrap(),
        PayeeMatch::AccountNotFound
    );
}

/// Waits for a notification about one of `ids` and checks that it verifies.
async fn a_verified_notification(
    bank: &BankConnector,
    notes: &mut mpsc::UnboundedReceiver<Received>,
    ids: &[&str],
) -> Received {
    let deadline = Duration::from_millis(SETTLE_WAIT_MS);
    loop {
        let note = tokio::time::timeout(deadline, notes.recv())
            .await
            .expect("no notification came")
            .unwrap();
        let notified = bank.verify_notification(&note.headers, &note.body).await;
        let notified = notified.unwrap();
        if ids.contains(&notified.id.as_str()) {
            return note;
        }
    }
}

/// A fresh connector to whatever listens at `base_url` with a wrong secret, and to nothing.
async fn refusals(base_url: &str, protocol: Protocol, operator: &Party, player: &Party) {
    let wrong = connector(base_url, protocol, "wrong-secret");
    let request = PayOutRequest {
        idempotency_key: "wd-wrong".into(),
        reference: "withdrawal-wrong".into(),
        amount_minor: 1,
        currency: "GBP".into(),
        debtor: operator.clone(),
        creditor: player.clone(),
        notification_url: None,
    };
    let error = wrong.pay_out(&request).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Declined { .. }),
        "{error:?}"
    );
    assert!(matches!(
        wrong.prepare(None).await,
        Err(ConnectorError::Declined { .. })
    ));
}

async fn stopped_bank_is_retryable(mut sandbox: Sandbox, protocol: Protocol) {
    let base_url = sandbox.base_url.clone();
    sandbox.stop();
    drop(sandbox);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = connector(&base_url, protocol, CLIENT_SECRET);
        match fresh.pay_out_status("anything").await {
            Err(ConnectorError::Retryable(_)) => return,
            other => assert!(Instant::now() < deadline, "still answering: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Many payouts at once through one connector (one token, one pool): each its own payment.
async fn concurrent_payouts(bank: &BankConnector, operator: &Party, player: &Party) {
    let calls = (0..40).map(|n| {
        let (bank, operator, player) = (bank.clone(), operator.clone(), player.clone());
        tokio::spawn(async move {
            let request = PayOutRequest {
                idempotency_key: format!("wd-many-{n}"),
                reference: format!("withdrawal-many-{n}"),
                amount_minor: 100,
                currency: "GBP".into(),
                debtor: operator,
                creditor: player,
                notification_url: None,
            };
            bank.pay_out(&request).await.unwrap().payment_id
        })
    });
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obie_end_to_end() {
    let sandbox = Sandbox::start(sandbox::Protocol::Obie).await;
    let bank = connector(&sandbox.base_url, Protocol::Obie, CLIENT_SECRET);
    let (notify_url, mut notes) = callback().await;
    bank.prepare(Some(&notify_url)).await.unwrap();
    bank.prepare(Some(&notify_url)).await.unwrap();
    let operator = bank.operator_account("GBP").await.unwrap();
    assert!(matches!(operator.account, AccountRef::SortCode { .. }));
    let player = Party {
        account: AccountRef::SortCode {
            sort_code: "200000".into(),
            account_number: "12345678".into(),
        },
        name: "Jane Doe".into(),
    };
    sandbox
        .open_account(&player.account, &player.name, "GBP")
        .await;

    let deposit_id = deposit(&bank, &operator, "GBP", &notify_url).await;
    let payout_id = payout(&bank, &operator, &player, "GBP").await;
    assert_ne!(deposit_id, payout_id);
    let note = a_verified_notification(&bank, &mut notes, &[&payout_id]).await;
    let notified = bank.verify_notification(&note.headers, &note.body).await;
    assert_eq!(notified.unwrap().resource, NotifiedResource::Payment);
    obie_forgeries(&bank, &note).await;
    concurrent_payouts(&bank, &operator, &player).await;
    confirmation_of_payee(&bank, &player).await;
    refusals(&sandbox.base_url, Protocol::Obie, &operator, &player).await;
    stopped_bank_is_retryable(sandbox, Protocol::Obie).await;
}

/// A token signed by another key, a tampered token, and no token are all refused.
async fn obie_forgeries(bank: &BankConnector, genuine: &Received) {
    let headers = &genuine.headers;
    let token = std::str::from_utf8(&genuine.body).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut typ = Map::new();
    typ.insert("typ".into(), "JWT".into());
    let forger = SigningKey::generate().unwrap();
    let forged = forger.sign_compact(&claims, typ).unwrap();
    let refused = bank.verify_notification(headers, forged.as_bytes()).await;
    assert!(refused.unwrap_err().is_client_error());
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut altered: Value = serde_json::from_slice(&claims).unwrap();
    altered["aud"] = "someone-else".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(altered.to_string());
    let tampered = parts.join(".");
    assert!(bank
        .verify_notification(headers, tampered.as_bytes())
        .await
        .is_err());
    assert!(bank.verify_notification(headers, b"").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berlin_group_end_to_end() {
    let sandbox = Sandbox::start(sandbox::Protocol::BerlinGroup).await;
    let bank = connector(&sandbox.base_url, Protocol::BerlinGroup, CLIENT_SECRET);
    bank.prepare(None).await.unwrap();
    let (notify_url, mut notes) = callback().await;
    let operator = bank.operator_account("EUR").await.unwrap();
    assert!(matches!(operator.account, AccountRef::Iban { .. }));
    let player = Party {
        account: AccountRef::Iban {
            iban: "DE89370400440532013000".into(),
        },
        name: "Jane Doe".into(),
    };
    sandbox
        .open_account(&player.account, &player.name, "EUR")
        .await;

    let deposit_id = deposit(&bank, &operator, "EUR", &notify_url).await;
    let note = a_verified_notification(&bank, &mut notes, &[&deposit_id]).await;
    berlin_forgeries(&bank, &note).await;
    payout(&bank, &operator, &player, "EUR").await;
    confirmation_of_payee(&bank, &player).await;
    let gbp_operator = bank.operator_account("GBP").await.unwrap();
    refusals(
        &sandbox.base_url,
        Protocol::BerlinGroup,
        &gbp_operator,
        &player,
    )
    .await;
    stopped_bank_is_retryable(sandbox, Protocol::BerlinGroup).await;
}

/// A changed body (with or without a matching Digest), another key's signature and no
/// signature are all refused.
async fn berlin_forgeries(bank: &BankConnector, genuine: &Received) {
    let mut body: Value = serde_json::from_slice(&genuine.body).unwrap();
    body["paymentId"] = "someone-elses".into();
    let body = body.to_string().into_bytes();
    let refused = bank.verify_notification(&genuine.headers, &body).await;
    assert!(refused.unwrap_err().is_client_error());
    let mut headers = genuine.headers.clone();
    let digest = format!("SHA-256={}", STANDARD.encode(Sha256::digest(&body)));
    headers.insert("digest", digest.parse().unwrap());
    assert!(bank.verify_notification(&headers, &body).await.is_err());
    let forger = SigningKey::generate().unwrap();
    let signature = forger.sign_detached(&body, Map::new()).unwrap();
    headers.insert("x-jws-signature", signature.parse().unwrap());
    assert!(bank.verify_notification(&headers, &body).await.is_err());
    headers.remove("x-jws-signature");
    assert!(bank.verify_notification(&headers, &body).await.is_err());
}

/// What the sandbox made in DIR/tls: its CA, and the operator's certificate and key.
fn sandbox_tls(sandbox: &Sandbox, with_client_certificate: bool) -> TlsClient {
    let dir = sandbox._dir.path().join(sandbox::tls::TLS_DIR_NAME);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let mut identity = read(sandbox::tls::CLIENT_CERT_FILE);
    identity.extend(read(sandbox::tls::CLIENT_KEY_FILE));
    TlsClient {
        ca_pem: Some(read(sandbox::tls::CA_FILE)),
        identity_pem: with_client_certificate.then_some(identity),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_over_mutual_tls_pays_out_and_refuses_a_client_without_its_certificate() {
    let sandbox = Sandbox::start_with(sandbox::Protocol::Obie, true).await;
    assert!(sandbox.base_url.starts_with("https://"));
    let tls = sandbox_tls(&sandbox, true);
    let bank = connector_with_tls(&sandbox.base_url, Protocol::Obie, CLIENT_SECRET, tls);
    bank.prepare(None).await.unwrap();
    let operator = bank.operator_account("GBP").await.unwrap();
    let player = Party {
        account: AccountRef::SortCode {
            sort_code: "200000".into(),
            account_number: "55779911".into(),
        },
        name: "Jane Doe".into(),
    };
    sandbox
        .open_account_tls(&player.account, &player.name, "GBP")
        .await;
    payout(&bank, &operator, &player, "GBP").await;

    // No client certificate: the handshake is refused, nothing reaches the bank.
    let anonymous = sandbox_tls(&sandbox, false);
    let stranger = connector_with_tls(&sandbox.base_url, Protocol::Obie, CLIENT_SECRET, anonymous);
    let refused = stranger.prepare(None).await;
    assert!(
        matches!(refused, Err(ConnectorError::Retryable(_))),
        "{refused:?}"
    );
    // Not trusting the bank's CA: refused too.
    let untrusting = connector(&sandbox.base_url, Protocol::Obie, CLIENT_SECRET);
    assert!(matches!(
        untrusting.prepare(None).await,
        Err(ConnectorError::Retryable(_))
    ));
}

/// Regression: the connector took the first account of a currency in the bank's list as the
/// operator's, so a second account of ours sorting first moved the operator's money. Now
/// several are refused until the configuration names one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_operator_accounts_in_a_currency_are_refused_until_the_configuration_names_one() {
    let sandbox = Sandbox::start(sandbox::Protocol::BerlinGroup).await;
    let second = AccountRef::Iban {
        iban: "AT611904300234573201".into(),
    };
    let body = json!({"account": second, "name": "Croupier Operator", "currency": "EUR",
        "balance": "10.00", "holder": "client"});
    let answer = reqwest::Client::new()
        .post(format!("{}/sandbox/accounts", sandbox.base_url))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let guessing = connector(&sandbox.base_url, Protocol::BerlinGroup, CLIENT_SECRET);
    guessing.prepare(None).await.unwrap();
    match guessing.operator_account("EUR").await {
        Err(ConnectorError::Declined { code, .. }) => {
            assert_eq!(code, "ambiguous_operator_account")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        guessing.operator_account("GBP").await.is_ok(),
        "one GBP account: no doubt"
    );
    let named = Party {
        account: second,
        name: "Croupier Operator".into(),
    };
    let configured = BankConnector::new(ConnectorConfig {
        id: "bank-b".into(),
        protocol: Protocol::BerlinGroup,
        base_url: sandbox.base_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        signing_key: Arc::new(SigningKey::generate().unwrap()),
        operator_accounts: [("EUR".to_string(), named.clone())].into(),
        timeout_ms: 5_000,
        tls: TlsClient::default(),
    })
    .unwrap();
    assert_eq!(configured.operator_account("EUR").await.unwrap(), named);
}

/// A deposit paid from a player's account: the bank names that account (and its holder) as
/// the payer, by the payment id or, once that is forgotten, by the consent alone; a payout
/// of the amount to it from the operator's account (a refused deposit's return) gives the
/// player their money back.
async fn the_payer_is_reported_and_paid_back(
    protocol: sandbox::Protocol,
    connector_protocol: Protocol,
    currency: &str,
    payer: Party,
) {
    let sandbox = Sandbox::start(protocol).await;
    let bank = connector(&sandbox.base_url, connector_protocol, CLIENT_SECRET);
    bank.prepare(None).await.unwrap();
    let operator = bank.operator_account(currency).await.unwrap();
    sandbox
        .open_account_with(&payer.account, &payer.name, currency, "100.00")
        .await;
    let handle = deposit_from(&bank, &operator, currency, None, Some(&payer.account)).await;
    assert_eq!(sandbox.balance(&payer.account).await, "75.00");
    let forgotten = PayInHandle {
        payment_id: None,
        ..handle.clone()
    };
    // A connector keeps nothing between calls: a fresh one (a restarted node) finds it too.
    let fresh = connector(&sandbox.base_url, connector_protocol, CLIENT_SECRET);
    for (connector, handle) in [(&bank, &handle), (&fresh, &forgotten)] {
        let reported = connector.pay_in_payer(handle).await.unwrap();
        assert_eq!(reported.as_ref(), Some(&payer));
    }
    let back = PayOutRequest {
        idempotency_key: format!("{}-r", handle.idempotency_key),
        reference: "R1".into(),
        amount_minor: 2_500,
        currency: currency.into(),
        debtor: operator,
        creditor: payer.clone(),
        notification_url: None,
    };
    let accepted = bank.pay_out(&back).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(SETTLE_WAIT_MS);
    while bank.pay_out_status(&accepted.payment_id).await.unwrap() != PaymentStatus::Settled {
        assert!(Instant::now() < deadline, "the return did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sandbox.balance(&payer.account).await, "100.00");
    if connector_protocol == Protocol::Obie {
        // A payout's consent did not ask for the refund account: its payment reports none.
        let payout = PayInHandle {
            payment_id: Some(accepted.payment_id),
            ..handle
        };
        assert_eq!(bank.pay_in_payer(&payout).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obie_bank_reports_a_deposits_payer_as_its_refund_account() {
    let payer = Party {
        account: AccountRef::SortCode {
            sort_code: "200000".into(),
            account_number: "87654321".into(),
        },
        name: "Jane Payer".into(),
    };
    the_payer_is_reported_and_paid_back(sandbox::Protocol::Obie, Protocol::Obie, "GBP", payer)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_berlin_group_bank_reports_a_deposits_payer_as_its_debtor() {
    let payer = Party {
        account: AccountRef::Iban {
            iban: "DE89370400440532013000".into(),
        },
        name: "Jane Payer".into(),
    };
    the_payer_is_reported_and_paid_back(
        sandbox::Protocol::BerlinGroup,
        Protocol::BerlinGroup,
        "EUR",
        payer,
    )
    .await;
}
