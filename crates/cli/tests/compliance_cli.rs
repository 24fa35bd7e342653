//! Identity attestations and the national self-exclusion register end to end, every part its
//! own process: `croupier sandbox idp` issues attestations, `croupier sandbox register` holds
//! self-excluded people, and a `croupier serve` node trusts the first (its JWKS file in the
//! node's config) and asks the second. Valid, expired, untrusted, tampered and under-age
//! attestations; a register match at verification and one found later by the sweep.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{free_port, serve, Api, SandboxProcess};
use serde_json::{json, Value};

struct World {
    idp: Api,
    register: Api,
    node: common::Node,
    _processes: Vec<SandboxProcess>,
    _dir: tempfile::TempDir,
}

/// The reporting entity goAML exports report as (the generic UNODC schema's lookup codes).
const GOAML: &str = r#"[compliance.goaml]
rentity_id = 4711
rentity_branch = "online casino"
reporting_user_code = "MLRO01"
operator_name = "Croupier Test Gaming Ltd"
currency_code_local = "EUR"
transmode_code = "A"
funds_code = "A"
report_indicators = ["-"]
location = { address_type = "1", address = "1 Harbour Street", city = "Valletta", country_code = "MT" }
"#;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn start() -> World {
    let dir = tempfile::tempdir().unwrap();
    let idp_dir = dir.path().join("idp");
    let idp = SandboxProcess::start("idp", &idp_dir, &["--issuer", "https://idp.test"]);
    let register = SandboxProcess::start("register", &dir.path().join("register"), &[]);
    let jwks = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["sandbox", "idp", "--print-jwks", "--data-dir"])
        .arg(&idp_dir)
        .output()
        .unwrap();
    assert!(jwks.status.success());
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks.stdout).unwrap();
    let config = format!(
        "[compliance]\nregister_url = \"http://{}\"\nregister_sweep_interval_s = 1\n\
         [[compliance.identity_issuers]]\nissuer = \"https://idp.test\"\njwks_file = {:?}\n{GOAML}",
        register.addr(),
        jwks_file
    );
    let config_file = dir.path().join("croupier.toml");
    std::fs::write(&config_file, config).unwrap();
    let data = dir.path().join("node");
    let args = [
        "--config".as_ref(),
        config_file.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let log = dir.path().join("serve.log");
    let node = serve(&args, free_port(), &log, Duration::from_secs(60));
    World {
        idp: Api::new(format!("http://{}", idp.addr())),
        register: Api::new(format!("http://{}", register.addr())),
        node,
        _processes: vec![idp, register],
        _dir: dir,
    }
}

impl World {
    /// A registered player (the test is a local operator in protected mode) and its session.
    fn player(&self, name: &str) -> (String, String) {
        let body = json!({"username": name, "password": "correct horse", "currencies": ["EUR"]});
        let created = self.node.api.ok("/v1/players", Some(&body));
        let login = json!({"username": name, "password": "correct horse"});
        let session = self.node.api.ok("/v1/players/login", Some(&login));
        let id = created["player_id"].as_str().unwrap().to_owned();
        (id, session["token"].as_str().unwrap().to_owned())
    }

    fn attestation(&self, idp: &Api, request: Value) -> String {
        let answer = idp.ok("/v1/attestations", Some(&request));
        answer["attestation"].as_str().unwrap().to_owned()
    }

    fn verify(&self, player: &(String, String), attestation: &str) -> (u16, Value) {
        let path = format!("/v1/players/{}/identity", player.0);
        let body = json!({"attestation": attestation});
        self.node
            .api
            .call(&path, Some(&player.1), Some(&body))
            .unwrap()
    }

    fn compliance(&self, player: &(String, String)) -> Value {
        let path = format!("/v1/players/{}/compliance", player.0);
        let (status, view) = self.node.api.call(&path, Some(&player.1), None).unwrap();
        assert_eq!(status, 200, "{view}");
        view
    }
}

fn person(subject: &str, name: &str, birth_date: &str) -> Value {
    json!({"subject": subject, "name": name, "birth_date": birth_date, "country": "GB"})
}

#[test]
fn attestations_are_verified_by_signature_issuer_expiry_and_age() {
    let world = start();
    let alice = world.player("alice");
    let before = world.compliance(&alice);
    assert_eq!(before["kyc_level"], "none");
    let valid = world.attestation(&world.idp, person("a-1", "Alice Example", "1990-04-01"));
    let (status, verified) = world.verify(&alice, &valid);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["kyc_level"], "basic");
    assert_eq!(verified["country"], "GB");
    assert_eq!(verified["register_match"], false);
    let after = world.compliance(&alice);
    assert_eq!(after["identity_issuer"], "https://idp.test");
    assert_eq!(after["country"], "GB");

    let bob = world.player("bob");
    let mut expired = person("b-1", "Bob Example", "1985-01-01");
    expired["expires_at"] = json!(now_s() - 10);
    let expired = world.attestation(&world.idp, expired);
    let young_year = 2026 - 16;
    let under_age = person("b-1", "Bob Example", &format!("{young_year}-01-01"));
    let under_age = world.attestation(&world.idp, under_age);
    let other_dir = tempfile::tempdir().unwrap();
    let other = SandboxProcess::start("idp", other_dir.path(), &[]);
    let other_api = Api::new(format!("http://{}", other.addr()));
    let untrusted = world.attestation(&other_api, person("b-1", "Bob Example", "1985-01-01"));
    let impostor_dir = tempfile::tempdir().unwrap();
    let impostor = SandboxProcess::start(
        "idp",
        impostor_dir.path(),
        &["--issuer", "https://idp.test"],
    );
    let impostor_api = Api::new(format!("http://{}", impostor.addr()));
    let forged = world.attestation(&impostor_api, person("b-1", "Bob Example", "1985-01-01"));
    let tampered =
        tamper(&world.attestation(&world.idp, person("b-1", "Bob Example", "1985-01-01")));
    for (attestation, code) in [
        (expired, "attestation_expired"),
        (under_age, "under_age"),
        (untrusted, "issuer_not_trusted"),
        // Signed by a key the node was never given (its kid names none of the issuer's).
        (forged, "issuer_not_trusted"),
        (tampered, "signature_invalid"),
        ("not a jws".to_string(), "attestation_malformed"),
    ] {
        let (status, refused) = world.verify(&bob, &attestation);
        assert_eq!(
            (status, refused["error"].as_str()),
            (422, Some(code)),
            "{refused}"
        );
    }
    assert_eq!(world.compliance(&bob)["kyc_level"], "none");
}

/// The payload with its country changed, the signature kept.
fn tamper(attestation: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = attestation.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["country"] = json!("MT");
    let payload = engine.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[test]
fn the_national_register_self_excludes_at_verification_and_in_the_sweep() {
    let world = start();
    let listed = json!({"name": "Bob Example", "birth_date": "1980-05-05", "days": 365});
    world.register.ok("/v1/exclusions", Some(&listed));
    let bob = world.player("bob");
    let attestation = world.attestation(&world.idp, person("b-2", "BOB  example", "1980-05-05"));
    let (status, verified) = world.verify(&bob, &attestation);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["register_match"], true);
    assert!(world.compliance(&bob)["self_excluded_until"].is_string());
    let bet = json!({"transaction_id": "t1", "player_id": bob.0, "round_id": "r1", "amount": 1, "ledger": "EUR"});
    let (status, refused) = world.node.api.post("/v1/wallet/bet", &bet).unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("self_excluded"))
    );

    // Carol verifies first and registers afterwards: the sweep finds her.
    let carol = world.player("carol");
    let attestation = world.attestation(&world.idp, person("c-1", "Carol Example", "1970-07-07"));
    let (_, verified) = world.verify(&carol, &attestation);
    assert_eq!(verified["register_match"], false);
    let listed = json!({"name": "Carol Example", "birth_date": "1970-07-07"});
    world.register.ok("/v1/exclusions", Some(&listed));
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.compliance(&carol)["self_excluded_until"].is_null() {
        assert!(Instant::now() < deadline, "the sweep never excluded carol");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `xmllint --schema` over the UNODC goAML 5.0.1 schema: Ok, or its complaints.
fn validate_goaml(xml: &str, dir: &std::path::Path) -> Result<(), String> {
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/goaml/goAMLSchema-5.0.1.xsd");
    let file = dir.join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let output = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schema)
        .arg(&file)
        .output()
        .expect("xmllint (Debian: libxml2-utils) must be installed for the goAML tests");
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

fn get_text(base: &str, path: &str) -> (u16, String, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut response = agent.get(format!("{base}{path}")).call().unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), content_type, text)
}

#[test]
fn a_case_the_pipeline_opened_exports_as_a_goaml_report_the_schema_accepts() {
    let world = start();
    let alice = world.player("alice");
    let attestation =
        world.attestation(&world.idp, person("a-9", "Alice May Example", "1990-04-01"));
    assert_eq!(world.verify(&alice, &attestation).0, 200);
    let cashier = json!([{"id": "900", "ledger": "EUR", "kind": "system"}]);
    world.node.api.ok("/v1/accounts", Some(&cashier));
    // EUR 2,500 at once: the AML pipeline's large-transaction rule opens a case.
    let deposit = json!({"deposit_id": "1", "amount": 250_000, "source_account_id": "900"});
    world
        .node
        .api
        .ok(&format!("/v1/players/{}/deposits", alice.0), Some(&deposit));
    let bet = json!({"transaction_id": "g1", "player_id": alice.0, "round_id": "r1", "amount": 1_000, "ledger": "EUR"});
    world.node.api.ok("/v1/wallet/bet", Some(&bet));
    let deadline = Instant::now() + Duration::from_secs(30);
    let case_id = loop {
        if let Some((200, Value::Array(cases))) = world.node.api.get("/v1/cases?state=open") {
            if let Some(case) = cases
                .iter()
                .find(|case| case["player_id"] == alice.0.as_str())
            {
                break case["id"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline never opened a case"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let decision = json!({"decision": "report", "text": "source of funds not shown"});
    world
        .node
        .api
        .ok(&format!("/v1/cases/{case_id}/decision"), Some(&decision));

    let (status, content_type, xml) =
        get_text(&world.node.api.base, &format!("/v1/cases/{case_id}/goaml"));
    assert_eq!(status, 200, "{xml}");
    assert!(
        content_type.starts_with("application/xml"),
        "{content_type}"
    );
    validate_goaml(&xml, world._dir.path()).unwrap_or_else(|errors| panic!("{errors}\n{xml}"));
    assert!(xml.contains("<report_code>STR</report_code>"));
    assert!(xml.contains(&format!("croupier-case-{case_id}")));
    assert!(xml.contains("<first_name>Alice May</first_name>"));
    assert!(xml.contains("<birthdate>1990-04-01T00:00:00</birthdate>"));
    assert!(xml.contains("<amount_local>2500.00</amount_local>"));
    assert!(xml.contains("<amount_local>10.00</amount_local>"));
    assert!(
        xml.contains("report by "),
        "the decision is the report's action"
    );
    assert_eq!(xml.matches("<transaction>").count(), 2);

    let (status, _, body) = get_text(&world.node.api.base, "/v1/cases/12345/goaml");
    assert_eq!(status, 404, "{body}");
}

/// The reasons of a synchronous withdrawal score of `player`.
fn withdrawal_reasons(world: &World, player: &str) -> Vec<Value> {
    let body = json!({"player_id": player, "amount": 5_000, "ledger": "EUR"});
    let score = world.node.api.ok("/v1/risk/withdrawal-score", Some(&body));
    score["reasons"].as_array().cloned().unwrap_or_default()
}

#[test]
fn five_players_verified_at_one_address_are_flagged_by_the_scoring() {
    let world = start();
    let cashier = json!([{"id": "900", "ledger": "EUR", "kind": "system"}]);
    world.node.api.ok("/v1/accounts", Some(&cashier));
    let writings = [
        "1 Harbour Street, Valletta",
        "1 harbour street valletta",
        "1 HARBOUR STREET,  VALLETTA",
        "1 Harbour Street; Valletta.",
        "1, Harbour Street, Valletta",
    ];
    let shared = json!("shared_address");
    let mut ids: Vec<String> = Vec::new();
    for (n, address) in writings.iter().enumerate() {
        if n == 4 {
            // Four residents: a household, under the default bar of five.
            std::thread::sleep(Duration::from_millis(1_500));
            assert!(!withdrawal_reasons(&world, &ids[3]).contains(&shared));
        }
        let player = world.player(&format!("resident{n}"));
        let mut claims = person(&format!("r-{n}"), &format!("Resident {n}"), "1980-01-01");
        claims["address"] = json!(address);
        let attestation = world.attestation(&world.idp, claims);
        assert_eq!(world.verify(&player, &attestation).0, 200);
        let deposit = json!({"deposit_id": (10 + n).to_string(), "amount": 5_000, "source_account_id": "900"});
        world.node.api.ok(
            &format!("/v1/players/{}/deposits", player.0),
            Some(&deposit),
        );
        ids.push(player.0);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !withdrawal_reasons(&world, &ids[4]).contains(&shared) {
        assert!(
            Instant::now() < deadline,
            "the fifth resident is never flagged"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
