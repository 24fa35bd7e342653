//! Money in and out through banks end to end, every part its own process: two sandbox banks
//! of different protocols (`croupier sandbox bank`, UK Open Banking and Berlin Group) and a
//! `croupier serve` node that knows them from its config file. Deposits authorised on the
//! bank's page settle once; a declined one leaves no trace; one the ledger refuses when the
//! bank settles it goes back to the account it came from; withdrawals are reserved, decided
//! and paid with no human step, held when Confirmation of Payee says the name is wrong, and
//! failed over to the other bank when the cheaper one is down, always where the routing rules
//! for the player's verified country allow.

mod common;

use std::time::{Duration, Instant};

use common::bank::{
    account_statement, open_account, open_funded_account, operator_statement, reconcile, today,
    CLIENT_ID, CLIENT_SECRET,
};
use common::{free_port, serve_logged, Api, SandboxProcess};
use croupier_payments::camt053;
use serde_json::{json, Value};

/// Where a deposit's life ends (a refused one is still to be sent back).
const DEPOSIT_FINAL: [&str; 5] = [
    "settled",
    "rejected",
    "expired",
    "returned",
    "return_failed",
];
/// The identity provider's issuer name the node trusts when a world has identities.
const ISSUER: &str = "https://idp.test";

struct World {
    node: common::Node,
    banks: Vec<(SandboxProcess, Api)>,
    /// The identity provider, when the world has one (`Options::identities`).
    idp: Option<(SandboxProcess, Api)>,
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
    /// Extra lines for bank-b's connector section.
    bank_b_rule: &'a str,
    /// A sandbox identity provider the node trusts: players can verify their identity, and
    /// so have a country.
    identities: bool,
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
    let (idp, compliance) = match options.identities {
        true => {
            let (idp, config) = identity_provider(dir.path());
            (Some(idp), config)
        }
        false => (None, String::new()),
    };
    let config = format!(
        "[payments]\npoll_interval_ms = 50\nrequest_timeout_ms = {}\nexplore_ppm = 0\n\
         public_url = \"http://127.0.0.1:{port}\"\n{}{}{compliance}",
        options.request_timeout_ms.unwrap_or(2_000),
        connector("bank-a", &a, "obie", 10, options.bank_a_rule),
        connector("bank-b", &b, "berlin-group", 50, options.bank_b_rule),
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
    let node = serve_logged(&serve_args, port, dir.path());
    World {
        node,
        banks: vec![a, b],
        idp,
        port,
        serve_args,
        _dir: dir,
    }
}

/// A sandbox identity provider (data in `dir/idp`) and the node's config lines trusting it.
fn identity_provider(dir: &std::path::Path) -> ((SandboxProcess, Api), String) {
    let idp_dir = dir.join("idp");
    let idp = SandboxProcess::start("idp", &idp_dir, &["--issuer", ISSUER]);
    let jwks = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["sandbox", "idp", "--print-jwks", "--data-dir"])
        .arg(&idp_dir)
        .output()
        .unwrap();
    assert!(jwks.status.success());
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, &jwks.stdout).unwrap();
    let api = Api::new(format!("http://{}", idp.addr()));
    let config = format!(
        "[compliance]\n[[compliance.identity_issuers]]\nissuer = \"{ISSUER}\"\n\
         jwks_file = {jwks_file:?}\n"
    );
    ((idp, api), config)
}

/// A connector's TLS lines for the sandbox certificates in `dir`.
fn tls_files(dir: &str) -> String {
    format!(
        "ca_file = \"{dir}/ca.pem\"\nclient_cert_file = \"{dir}/client.pem\"\n\
         client_key_file = \"{dir}/client-key.pem\"\n"
    )
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
        let url = self.open_deposit(player, id, amount, connector);
        authorise(&url, approve, None);
        self.wait_state(player, &format!("/v1/deposits/{id}"), &DEPOSIT_FINAL)
    }

    /// Opens a deposit in EUR through `connector`: the bank's page where the player
    /// authorises it.
    fn open_deposit(&self, player: &Player, id: u64, amount: u64, connector: &str) -> String {
        let body = json!({"deposit_id": id.to_string(), "amount": amount, "ledger": "EUR",
            "connector": connector});
        let (status, started) = self.call(player, "/v1/deposits", Some(&body));
        assert_eq!(status, 201, "{started}");
        assert_eq!(started["state"], "awaiting_authorisation");
        started["authorisation_url"].as_str().unwrap().to_owned()
    }

    /// The player's daily deposit limit in EUR set to `amount` (a lower one applies at once).
    fn limit_deposits(&self, player: &Player, amount: u64) {
        let path = format!("/v1/players/{}/limits", player.id);
        let body = json!({"ledger": "EUR", "deposit": {"day": amount}});
        let (status, limits) = self
            .node
            .api
            .put(&path, Some(&player.token), &body)
            .unwrap();
        assert_eq!(status, 200, "{limits}");
    }

    /// The player's identity verified at the world's identity provider: `name`, of `country`.
    fn verify(&self, player: &Player, username: &str, name: &str, country: &str) {
        let (_, idp) = self.idp.as_ref().expect("a world with identities");
        let request = json!({"subject": username, "name": name, "birth_date": "1980-02-29",
            "country": country});
        let attestation = idp.ok("/v1/attestations", Some(&request));
        let body = json!({"attestation": attestation["attestation"]});
        let path = format!("/v1/players/{}/identity", player.id);
        let (status, verified) = self.call(player, &path, Some(&body));
        assert_eq!(status, 200, "{verified}");
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

/// The player's decision on the bank's page; `from`: the account the player pays from (the
/// IBAN; else the bank's own sandbox customer's).
fn authorise(url: &str, approve: bool, from: Option<&str>) {
    let decision = if approve { "&approve=1" } else { "&approve=0" };
    let from = from.map_or(String::new(), |iban| format!("&account={iban}"));
    let (status, page) = Api::new(String::new())
        .call(&format!("{url}{decision}{from}"), None, None)
        .unwrap();
    assert!(status < 400, "{status} {page}");
}

const PAYEE_IBAN: &str = "GB33BUKB20201555555555";

/// Today's camt.053 statement of the operator's EUR account at the bank.
fn eur_statement(bank: &Api) -> String {
    let today = today();
    operator_statement(bank, "EUR", &today, &today)
}

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
    let statement = eur_statement(&world.banks[0].1);
    let file = world._dir.path().join("statement.xml");
    std::fs::write(&file, &statement).unwrap();
    let (matched, report) = reconcile(&world.node.api.base, "bank-a", &file);
    assert!(matched && report.contains("0 mismatches"), "{report}");
    let tampered = statement.replacen(">100.00<", ">100.01<", 1);
    assert_ne!(
        tampered, statement,
        "the payout's amount is in the statement"
    );
    std::fs::write(&file, &tampered).unwrap();
    let (matched, report) = reconcile(&world.node.api.base, "bank-a", &file);
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
    open_account(
        &world.banks[0].1,
        json!({ "iban": PAYEE_IBAN }),
        "Jane Smith",
        "EUR",
    );
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
    world.node = serve_logged(&world.serve_args, world.port, world._dir.path());
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
    let statement = eur_statement(&world.banks[1].1);
    let debits = statement.matches("<CdtDbtInd>DBIT</CdtDbtInd>").count();
    assert_eq!(debits, 1, "{statement}");
    let file = world._dir.path().join("statement-b.xml");
    std::fs::write(&file, &statement).unwrap();
    let (matched, report) = reconcile(&world.node.api.base, "bank-b", &file);
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
    let statement = eur_statement(&world.banks[0].1);
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

/// A camt.053 statement's entries as (end-to-end id, credit?, amount), sorted.
fn entries(xml: &str) -> Vec<(String, bool, u64)> {
    let statement = camt053::parse(xml).expect("camt.053");
    let mut entries: Vec<_> = statement
        .entries
        .iter()
        .map(|e| (e.end_to_end_id.clone(), e.credit, e.amount_minor))
        .collect();
    entries.sort();
    entries
}

/// The player lowers their deposit limit below two deposits they opened under it, then pays
/// them at each bank: the banks settle them, the ledger refuses the credit, and the node sends
/// the money back to the account it came from, which each bank reports (UK Open Banking: the
/// payment's refund account; Berlin Group: its debtor). The player's balance never moves;
/// each bank's statement shows the deposit's credit and the return's debit (reference
/// `R{id}`), the payer's statement the same the other way round, and reconciles.
#[test]
fn a_deposit_refused_when_the_bank_settles_it_goes_back_to_the_account_it_came_from() {
    let world = start();
    let player = world.player("refused");
    world.limit_deposits(&player, 50_000);
    let payers = [
        ("bank-a", "GB82WEST12345698765432"),
        ("bank-b", "NL91ABNA0417164300"),
    ];
    let mut pages = Vec::new();
    for (index, (connector, iban)) in payers.iter().enumerate() {
        let bank = &world.banks[index].1;
        open_funded_account(bank, json!({ "iban": iban }), "Re Fused", "EUR", "500.00");
        // Under the limit: it opens.
        pages.push(world.open_deposit(&player, index as u64 + 1, 20_000, connector));
    }
    // Lower, before the player pays: the ledger refuses both when the banks settle them.
    world.limit_deposits(&player, 10_000);
    for (url, (_, iban)) in pages.iter().zip(payers) {
        authorise(url, true, Some(iban));
    }
    for (index, (connector, iban)) in payers.iter().enumerate() {
        let id = index as u64 + 1;
        let path = format!("/v1/deposits/{id}");
        let returned = world.wait_state(&player, &path, &DEPOSIT_FINAL);
        assert_eq!(
            (returned["state"].as_str(), returned["reason"].as_str()),
            (Some("returned"), Some("deposit_limit_reached")),
            "{returned}"
        );
        world.check_returned_at_bank(index, connector, iban, id);
    }
    assert_eq!(world.balance(&player), 0);
    // The returns account held both for a while and holds nothing now.
    let eur = croupier_core::ids::LedgerCode::parse("EUR").unwrap();
    let returns = croupier_core::ids::returns_account_id(eur);
    assert_eq!(world.posted(returns), (40_000, 40_000));
}

impl World {
    /// Bank `index`'s statements today: the operator's shows deposit `id`'s credit of 200.00
    /// and its return's debit (`R{id}`), the payer's account (`iban`) the same the other way
    /// round; and the operator's reconciles with the ledger.
    fn check_returned_at_bank(&self, index: usize, connector: &str, iban: &str, id: u64) {
        let today = today();
        let bank = &self.banks[index].1;
        let statement = operator_statement(bank, "EUR", &today, &today);
        let expected = [
            (id.to_string(), true, 20_000),
            (format!("R{id}"), false, 20_000),
        ];
        assert_eq!(entries(&statement), expected, "{connector}");
        let paid_back = entries(&account_statement(bank, iban, &today, &today));
        let mirrored = expected.map(|(reference, credit, amount)| (reference, !credit, amount));
        assert_eq!(paid_back, mirrored, "{connector}");
        let file = self._dir.path().join(format!("statement-{connector}.xml"));
        std::fs::write(&file, &statement).unwrap();
        let (matched, report) = reconcile(&self.node.api.base, connector, &file);
        assert!(matched && report.contains("0 mismatches"), "{report}");
    }

    /// A ledger account's (credits posted, debits posted).
    fn posted(&self, account_id: u128) -> (u128, u128) {
        let path = format!("/v1/accounts/{account_id}");
        let (status, account) = self.node.api.get(&path).unwrap();
        assert_eq!(status, 200, "{account}");
        // Written as a number or a string: the amount either way.
        let amount = |field: &str| {
            let text = account[field].to_string();
            text.trim_matches('"').parse().expect("an amount")
        };
        (amount("credits_posted"), amount("debits_posted"))
    }

    /// Decides case `case_id` (`clear`, `restrict`...) through the case API.
    fn decide_case(&self, case_id: &str, decision: &str) {
        let body = json!({"decision": decision, "text": "payments test"});
        let path = format!("/v1/cases/{case_id}/decision");
        let (status, answer) = self.node.api.post(&path, &body).unwrap();
        assert_eq!(status, 200, "{answer}");
    }
}

/// Regression: a withdrawal routed again after its case was cleared, or failed over to
/// another bank, was routed as if the player had no country (the driver passed none), so a
/// connector restricted to the player's verified country was never chosen: the cleared one
/// went to a bank the rules did not pick, or was rejected for want of a route, and the failed
/// over one waited for the dead bank for ever. Both banks here take only players of GB.
#[test]
fn a_withdrawal_routed_again_after_its_case_or_a_fail_over_obeys_the_players_country() {
    let options = Options {
        bank_a_rule: "countries = [\"GB\"]",
        bank_b_rule: "countries = [\"GB\"]",
        identities: true,
        ..Options::default()
    };
    let world = start_with(&options);
    let player = world.player("briton");
    world.verify(&player, "briton", "Jane Smith", "GB");
    let settled = world.deposit(&player, 1, 20_000, "bank-b", true);
    assert_eq!(settled["state"], "settled", "{settled}");

    // Held: Confirmation of Payee at bank-a (the cheaper bank the rule allows) says the
    // account is someone else's.
    open_account(
        &world.banks[0].1,
        json!({ "iban": PAYEE_IBAN }),
        "Jane Smith",
        "EUR",
    );
    let other = json!({"iban": PAYEE_IBAN, "name": "John Doe"});
    let (status, _) = world.withdraw(&player, 10, 5_000, other);
    assert_eq!(status, 202);
    let held = world.finished_withdrawal(&player, 10);
    assert_eq!(held["state"], "held", "{held}");
    assert!(
        held["reasons"].to_string().contains("cop_no_match"),
        "{held}"
    );
    world.decide_case(held["case_id"].as_str().unwrap(), "clear");
    // Cleared: routed again by the player's country, to bank-a.
    let paid = world.wait_state(
        &player,
        "/v1/withdrawals/10",
        &["paid", "refunded", "rejected"],
    );
    assert_eq!(
        (paid["state"].as_str(), paid["connector"].as_str()),
        (Some("paid"), Some("bank-a")),
        "{paid}"
    );
    let reasons = paid["reasons"].to_string();
    assert!(
        reasons.contains("case_cleared") && reasons.contains("route:bank-a"),
        "{reasons}"
    );

    // bank-a goes down: the next payout fails over to bank-b, which the rule allows too.
    let mut world = world;
    drop(world.banks.remove(0));
    let account = json!({"sort_code": "20-20-15", "account_number": "55555555",
        "name": "Jane Smith"});
    let (status, _) = world.withdraw(&player, 11, 3_000, account);
    assert_eq!(status, 202);
    let failed_over = world.finished_withdrawal(&player, 11);
    assert_eq!(
        (
            failed_over["state"].as_str(),
            failed_over["connector"].as_str()
        ),
        (Some("paid"), Some("bank-b")),
        "{failed_over}"
    );
    assert_eq!(
        failed_over["attempts"][0]["connector"], "bank-a",
        "{failed_over}"
    );
    assert_eq!(world.balance(&player), 12_000);
}
