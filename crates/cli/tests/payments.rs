//! Money in and out through banks end to end, every part its own process: two sandbox banks
//! of different protocols (`croupier sandbox bank`, UK Open Banking and Berlin Group) and a
//! `croupier serve` node that knows them from its config file. Deposits authorised on the
//! bank's page settle once; a declined one leaves no trace; withdrawals are reserved, decided
//! and paid with no human step, held when Confirmation of Payee says the name is wrong, and
//! failed over to the other bank when the cheaper one is down.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{free_port, serve, Api, SandboxProcess};
use serde_json::{json, Value};

const CLIENT_ID: &str = "croupier";
const CLIENT_SECRET: &str = "secret";

struct World {
    node: common::Node,
    banks: Vec<(SandboxProcess, Api)>,
    port: u16,
    serve_args: Vec<std::ffi::OsString>,
    _dir: tempfile::TempDir,
}

fn bank(dir: &std::path::Path, protocol: &str, faults: &[&str]) -> (SandboxProcess, Api) {
    let mut args = vec![
        "--protocol",
        protocol,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ];
    if !faults.contains(&"--settle-ms") {
        args.extend_from_slice(&["--settle-ms", "50"]);
    }
    args.extend_from_slice(faults);
    let process = SandboxProcess::start("bank", dir, &args);
    let api = Api::new(format!("http://{}", process.addr()));
    (process, api)
}

/// How a world differs from the plain one.
#[derive(Default)]
struct Options<'a> {
    bank_a_faults: &'a [&'a str],
    bank_b_faults: &'a [&'a str],
    /// Extra lines for bank-a's connector section (a routing rule).
    bank_a_rule: &'a str,
    request_timeout_ms: Option<u64>,
    /// bank-a serves HTTPS only and requires the node's client certificate.
    bank_a_tls: bool,
}

fn start() -> World {
    start_with(&Options::default())
}

fn start_with(options: &Options<'_>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut a_args = options.bank_a_faults.to_vec();
    if options.bank_a_tls {
        a_args.push("--tls");
    }
    let a = bank(&dir.path().join("bank-a"), "obie", &a_args);
    let b = bank(
        &dir.path().join("bank-b"),
        "berlin-group",
        options.bank_b_faults,
    );
    let port = free_port();
    let connector =
        |id: &str, bank: &(SandboxProcess, Api), protocol: &str, cost: u64, rule: &str| {
            // A TLS bank's ready line ends with its certificates' directory.
            let (scheme, tls) = match bank.0.ready.split(' ').nth(2) {
                Some(tls) => ("https", tls_files(tls)),
                None => ("http", String::new()),
            };
            format!(
                "[[payments.connectors]]\nid = \"{id}\"\nprotocol = \"{protocol}\"\n\
             base_url = \"{scheme}://{}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{CLIENT_SECRET}\"\ncost_fixed = {cost}\n{rule}\n{tls}",
                bank.0.addr()
            )
        };
    let config = format!(
        "[payments]\npoll_interval_ms = 50\nrequest_timeout_ms = {}\nexplore_ppm = 0\n\
         public_url = \"http://127.0.0.1:{port}\"\n{}{}",
        options.request_timeout_ms.unwrap_or(2_000),
        connector("bank-a", &a, "obie", 10, options.bank_a_rule),
        connector("bank-b", &b, "berlin-group", 50, ""),
    );
    let config_file = dir.path().join("croupier.toml");
    std::fs::write(&config_file, config).unwrap();
    let data = dir.path().join("node");
    let serve_args: Vec<std::ffi::OsString> = vec![
        "--config".into(),
        config_file.into(),
        "--data-dir".into(),
        data.into(),
    ];
    let node = serve_node(&serve_args, port, dir.path());
    World {
        node,
        banks: vec![a, b],
        port,
        serve_args,
        _dir: dir,
    }
}

/// A connector's TLS lines for the sandbox certificates in `dir`.
fn tls_files(dir: &str) -> String {
    format!(
        "ca_file = \"{dir}/ca.pem\"\nclient_cert_file = \"{dir}/client.pem\"\n\
         client_key_file = \"{dir}/client-key.pem\"\n"
    )
}

fn serve_node(args: &[std::ffi::OsString], port: u16, dir: &std::path::Path) -> common::Node {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
    let log = dir.join(format!(
        "serve-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    serve(&args, port, &log, Duration::from_secs(60))
}

struct Player {
    id: String,
    token: String,
}

impl World {
    fn player(&self, name: &str) -> Player {
        let body = json!({"username": name, "password": "correct horse", "currencies": ["EUR"]});
        let created = self.node.api.ok("/v1/players", Some(&body));
        let login = json!({"username": name, "password": "correct horse"});
        let session = self.node.api.ok("/v1/players/login", Some(&login));
        Player {
            id: created["player_id"].as_str().unwrap().to_owned(),
            token: session["token"].as_str().unwrap().to_owned(),
        }
    }

    fn call(&self, player: &Player, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.node.api.call(path, Some(&player.token), body).unwrap()
    }

    fn balance(&self, player: &Player) -> u64 {
        let path = format!("/v1/wallet/{}/balance", player.id);
        let (status, answer) = self.call(player, &path, None);
        assert_eq!(status, 200, "{answer}");
        answer["balance"].as_u64().unwrap()
    }

    /// Polls `path` until its state is one of `states` (10 s at most).
    fn wait_state(&self, player: &Player, path: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, answer) = self.call(player, path, None);
            assert_eq!(status, 200, "{answer}");
            if states.contains(&answer["state"].as_str().unwrap_or_default()) {
                return answer;
            }
            assert!(Instant::now() < deadline, "still {answer} at {path}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A deposit through `connector`, authorised (or declined) on the bank's page.
    fn deposit(
        &self,
        player: &Player,
        id: u64,
        amount: u64,
        connector: &str,
        approve: bool,
    ) -> Value {
        let body = json!({"deposit_id": id.to_string(), "amount": amount, "ledger": "EUR",
            "connector": connector});
        let (status, started) = self.call(player, "/v1/deposits", Some(&body));
        assert_eq!(status, 201, "{started}");
        assert_eq!(started["state"], "awaiting_authorisation");
        let url = started["authorisation_url"].as_str().unwrap();
        let decision = if approve { "&approve=1" } else { "&approve=0" };
        let (status, page) = Api::new(String::new())
            .call(&format!("{url}{decision}"), None, None)
            .unwrap();
        assert!(status < 400, "{status} {page}");
        let path = format!("/v1/deposits/{id}");
        self.wait_state(
            player,
            &path,
            &["settled", "rejected", "expired", "refused"],
        )
    }

    fn withdraw(&self, player: &Player, id: u64, amount: u64, account: Value) -> (u16, Value) {
        let body = json!({"withdrawal_id": id.to_string(), "amount": amount, "ledger": "EUR",
            "account": account});
        self.call(player, "/v1/withdrawals", Some(&body))
    }

    fn finished_withdrawal(&self, player: &Player, id: u64) -> Value {
        let path = format!("/v1/withdrawals/{id}");
        self.wait_state(player, &path, &["paid", "refunded", "held", "rejected"])
    }
}

const PAYEE_IBAN: &str = "GB33BUKB20201555555555";

#[test]
fn deposits_settle_once_and_withdrawals_are_paid_held_or_failed_over_with_no_human_step() {
    let world = start();
    let player = world.player("payer");

    // Deposits through each protocol settle once; a retry answers the same deposit.
    let settled = world.deposit(&player, 1, 25_000, "bank-a", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    let body = json!({"deposit_id": "1", "amount": 25_000, "ledger": "EUR", "connector": "bank-a"});
    let (status, again) = world.call(&player, "/v1/deposits", Some(&body));
    assert_eq!(
        (status, again["state"].as_str()),
        (201, Some("settled")),
        "{again}"
    );
    let settled = world.deposit(&player, 2, 5_000, "bank-b", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    assert_eq!(world.balance(&player), 30_000);
    // Declined at the bank: no trace in the balance.
    let declined = world.deposit(&player, 3, 7_000, "bank-a", false);
    assert_eq!(declined["state"], "rejected", "{declined}");
    assert_eq!(world.balance(&player), 30_000);

    // A withdrawal: reserved at once, routed to the cheaper bank, paid.
    let account = json!({"iban": "GB33 BUKB 2020 1555 5555 55", "name": "Pay Er"});
    let (status, requested) = world.withdraw(&player, 10, 10_000, account.clone());
    assert_eq!(status, 202, "{requested}");
    let paid = world.finished_withdrawal(&player, 10);
    assert_eq!(paid["state"], "paid", "{paid}");
    assert_eq!(paid["connector"], "bank-a");
    let reasons = paid["reasons"].to_string();
    assert!(reasons.contains("route:bank-a"), "{reasons}");
    assert_eq!(world.balance(&player), 20_000);

    // The bank's statement matches the ledger to the cent; a tampered one does not.
    let statement = operator_statement(&world.banks[0].1);
    let file = world._dir.path().join("statement.xml");
    std::fs::write(&file, &statement).unwrap();
    let (matched, report) = reconcile(&world, "bank-a", &file);
    assert!(matched && report.contains("0 mismatches"), "{report}");
    let tampered = statement.replacen(">100.00<", ">100.01<", 1);
    assert_ne!(
        tampered, statement,
        "the payout's amount is in the statement"
    );
    std::fs::write(&file, &tampered).unwrap();
    let (matched, report) = reconcile(&world, "bank-a", &file);
    assert!(
        !matched && report.contains("amount_differs out 10"),
        "{report}"
    );

    // A notification not signed by the bank is refused (a real one only wakes the driver).
    let forged = world
        .node
        .api
        .call(
            "/v1/payments/notifications/bank-a",
            None,
            Some(&json!({"paymentId": "x"})),
        )
        .unwrap();
    assert_eq!(
        (forged.0, forged.1["error"].as_str()),
        (400, Some("notification_rejected"))
    );

    // Bad input: refused with a reason, nothing reserved.
    let (status, refused) = world.withdraw(&player, 11, 1_000_000, account.clone());
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("insufficient_funds"))
    );
    let bad_iban = json!({"iban": "GB34BUKB20201555555555", "name": "Pay Er"});
    let (status, refused) = world.withdraw(&player, 12, 100, bad_iban);
    assert_eq!(
        (status, refused["field"].as_str()),
        (400, Some("account.iban")),
        "{refused}"
    );
    assert_eq!(world.balance(&player), 20_000);

    // Confirmation of Payee says the account is someone else's: held, the money reserved, and
    // the case the hold opened holds the player's later withdrawals too.
    open_bank_account(&world.banks[0].1, PAYEE_IBAN, "Jane Smith");
    let other = json!({"iban": PAYEE_IBAN, "name": "John Doe"});
    let (status, _) = world.withdraw(&player, 13, 2_000, other);
    assert_eq!(status, 202);
    let held = world.finished_withdrawal(&player, 13);
    assert_eq!(held["state"], "held", "{held}");
    assert!(
        held["reasons"].to_string().contains("cop_no_match"),
        "{held}"
    );
    assert!(held["case_id"].is_string(), "{held}");
    assert_eq!(world.balance(&player), 18_000);

    let (status, _) = world.withdraw(&player, 14, 1_000, account.clone());
    assert_eq!(status, 202);
    let held = world.finished_withdrawal(&player, 14);
    assert!(
        held["reasons"].to_string().contains("withdrawals_held"),
        "{held}"
    );

    // The cheaper bank goes down: another player's payout fails over to the other one.
    let second = world.player("second");
    let settled = world.deposit(&second, 20, 9_000, "bank-b", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    let mut world = world;
    drop(world.banks.remove(0));
    let account = json!({"sort_code": "20-20-15", "account_number": "55555555", "name": "Sec Ond"});
    let (status, _) = world.withdraw(&second, 21, 3_000, account);
    assert_eq!(status, 202);
    let failed_over = world.finished_withdrawal(&second, 21);
    assert_eq!(failed_over["state"], "paid", "{failed_over}");
    assert_eq!(failed_over["connector"], "bank-b", "{failed_over}");
    assert_eq!(
        failed_over["attempts"][0]["connector"], "bank-a",
        "{failed_over}"
    );
    assert_eq!(world.balance(&second), 6_000);
}

/// `croupier payments reconcile` against the node: (exit 0, stdout).
fn reconcile(world: &World, connector: &str, statement: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "payments",
            "reconcile",
            "--connector",
            connector,
            "--statement",
        ])
        .arg(statement)
        .args(["--server", &world.node.api.base])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Today's camt.053 statement of the operator's EUR account at the sandbox bank (found through
/// the bank's account information, as the connector finds it).
fn operator_statement(bank: &Api) -> String {
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
        .unwrap();
    let token: Value = serde_json::from_str(&token.body_mut().read_to_string().unwrap()).unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let mut accounts = agent
        .get(format!("{}/open-banking/v3.1/aisp/accounts", bank.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let accounts: Value =
        serde_json::from_str(&accounts.body_mut().read_to_string().unwrap()).unwrap();
    let eur = accounts["Data"]["Account"]
        .as_array()
        .unwrap()
        .iter()
        .find(|account| account["Currency"] == "EUR")
        .expect("an operator EUR account");
    let iban = eur["Account"][0]["Identification"].as_str().unwrap();
    let today = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .unwrap();
    let today = String::from_utf8(today.stdout).unwrap().trim().to_owned();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let mut statement = agent
        .get(format!(
            "{}/sandbox/accounts/{iban}/statement?from={today}&to={today}",
            bank.base
        ))
        .header("Authorization", format!("Basic {basic}"))
        .call()
        .unwrap();
    assert_eq!(statement.status().as_u16(), 200);
    statement.body_mut().read_to_string().unwrap()
}

/// Opens an account at the sandbox bank (its own set-up route, client credentials).
fn open_bank_account(bank: &Api, iban: &str, name: &str) {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let body = json!({"account": {"iban": iban}, "name": name, "currency": "EUR", "balance": "0.00",
            "holder": "customer"});
    let answer = ureq::post(format!("{}/sandbox/accounts", bank.base))
        .config()
        .http_status_as_error(false)
        .build()
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
}

/// The node is killed while the bank holds its answer to a payout it has accepted: the payout
/// is in the bank but not in the ledger. The restarted node sends it again with the same key,
/// the bank answers the payment it has, and the player is paid once.
#[test]
fn a_payout_interrupted_by_a_crash_is_sent_again_with_the_same_key_and_paid_once() {
    let options = Options {
        // Only bank-b pays EUR; it holds every answer to new work for a minute.
        bank_a_rule: "currencies = [\"GBP\"]",
        bank_b_faults: &[
            "--fault-timeout-after-accept-percent",
            "100",
            "--hold-s",
            "60",
        ],
        request_timeout_ms: Some(30_000),
        ..Options::default()
    };
    let mut world = start_with(&options);
    let player = world.player("crash");
    let settled = world.deposit(&player, 1, 10_000, "bank-a", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    let account = json!({"iban": PAYEE_IBAN, "name": "Cra Sh"});
    let (status, _) = world.withdraw(&player, 5, 4_000, account);
    assert_eq!(status, 202);
    // Sending, with no payment id recorded: the bank has it and holds the answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, seen) = world.call(&player, "/v1/withdrawals/5", None);
        if seen["state"] == "sending" {
            assert!(seen["attempts"][0]["payment_id"].is_null(), "{seen}");
            break;
        }
        assert!(Instant::now() < deadline, "{seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    world.node.child.kill().unwrap();
    world.node.child.wait().unwrap();
    world.node = serve_node(&world.serve_args, world.port, world._dir.path());
    let session = json!({"username": "crash", "password": "correct horse"});
    let token = world.node.api.ok("/v1/players/login", Some(&session));
    let player = Player {
        id: player.id,
        token: token["token"].as_str().unwrap().to_owned(),
    };
    let paid = world.finished_withdrawal(&player, 5);
    assert_eq!(paid["state"], "paid", "{paid}");
    assert_eq!(paid["attempts"].as_array().unwrap().len(), 1, "{paid}");
    assert_eq!(world.balance(&player), 6_000);
    // One payout at the bank, and the statement matches the ledger.
    let statement = operator_statement(&world.banks[1].1);
    let debits = statement.matches("<CdtDbtInd>DBIT</CdtDbtInd>").count();
    assert_eq!(debits, 1, "{statement}");
    let file = world._dir.path().join("statement-b.xml");
    std::fs::write(&file, &statement).unwrap();
    let (matched, report) = reconcile(&world, "bank-b", &file);
    assert!(matched, "{report}");
}

/// Regression: a bank that went down after accepting a payout (its payment id recorded, not
/// settled yet) made the status query fail as retryable, and the driver failed the payout over
/// to the other bank: the player could have been paid twice. Once the bank has the payment,
/// only its status ends the attempt.
#[test]
fn a_payout_the_bank_accepted_is_never_failed_over_when_that_bank_goes_down() {
    let options = Options {
        // bank-a takes the payout and settles it only after a minute.
        bank_a_faults: &["--settle-ms", "60000"],
        ..Options::default()
    };
    let mut world = start_with(&options);
    let player = world.player("patient");
    let settled = world.deposit(&player, 1, 10_000, "bank-b", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    let account = json!({"iban": PAYEE_IBAN, "name": "Pat Ient"});
    let (status, _) = world.withdraw(&player, 7, 2_500, account);
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, seen) = world.call(&player, "/v1/withdrawals/7", None);
        if seen["attempts"][0]["payment_id"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "{seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(world.banks.remove(0));
    // Many polls of the dead bank later: still that one attempt, nothing at bank-b.
    std::thread::sleep(Duration::from_secs(2));
    let (_, seen) = world.call(&player, "/v1/withdrawals/7", None);
    assert_eq!(seen["state"], "sending", "{seen}");
    assert_eq!(seen["attempts"].as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(world.balance(&player), 7_500);
    let statement = operator_statement(&world.banks[0].1);
    assert!(
        !statement.contains("<CdtDbtInd>DBIT</CdtDbtInd>"),
        "{statement}"
    );
}

/// bank-a speaks only HTTPS and refuses a client without the certificate it issued (mutual
/// TLS, as real banks do): the node pays out through it with the certificate from its config.
/// TLS files beside an http address are refused at start.
#[test]
fn a_bank_behind_mutual_tls_pays_out_with_the_nodes_client_certificate() {
    let options = Options {
        bank_a_tls: true,
        ..Options::default()
    };
    let world = start_with(&options);
    assert!(
        world.banks[0].0.ready.contains(" https "),
        "{}",
        world.banks[0].0.ready
    );
    let player = world.player("secure");
    let settled = world.deposit(&player, 1, 10_000, "bank-b", true);
    assert_eq!(settled["state"], "settled", "{settled}");
    let account = json!({"iban": PAYEE_IBAN, "name": "Sec Ure"});
    let (status, _) = world.withdraw(&player, 2, 3_000, account);
    assert_eq!(status, 202);
    let paid = world.finished_withdrawal(&player, 2);
    assert_eq!(
        (paid["state"].as_str(), paid["connector"].as_str()),
        (Some("paid"), Some("bank-a")),
        "{paid}"
    );
    assert_eq!(world.balance(&player), 7_000);

    let tls = world.banks[0].0.ready.split(' ').nth(2).unwrap().to_owned();
    let config = format!(
        "[[payments.connectors]]\nid = \"bank-a\"\nprotocol = \"obie\"\n\
         base_url = \"http://{}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{}",
        world.banks[0].0.addr(),
        tls_files(&tls)
    );
    let file = world._dir.path().join("plain.toml");
    std::fs::write(&file, config).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(world._dir.path().join("plain"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("not https"),
        "{stderr}"
    );
}
