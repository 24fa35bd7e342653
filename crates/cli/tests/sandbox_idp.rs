//! `croupier sandbox idp` as its own process: the JWKS it serves verifies the attestations it
//! issues (through `croupier_risk::identity`, as a node would), expired and under-age ones are
//! rejected by name, bad requests get a JSON refusal, and its key survives a restart.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Api, SandboxProcess};
use croupier_risk::identity::{verify_attestation, AgePolicy, TrustedIssuers, VerifiedIdentity};
use serde_json::{json, Value};

/// A running sandbox identity provider and the issuer it signs as.
struct Sandbox {
    process: SandboxProcess,
    api: Api,
    issuer: String,
}

impl Sandbox {
    /// Starts `croupier sandbox idp --listen 127.0.0.1:0 --data-dir DIR EXTRA`; its ready line
    /// names the port it took and its issuer.
    fn start(dir: &Path, extra: &[&str]) -> Sandbox {
        let process = SandboxProcess::start("idp", dir, extra);
        let (addr, issuer) = process.ready.split_once(" issuer ").expect(&process.ready);
        Sandbox {
            api: Api::new(format!("http://{addr}")),
            issuer: issuer.to_owned(),
            process,
        }
    }

    fn jwks(&self) -> Value {
        self.api.ok("/.well-known/jwks.json", None)
    }

    fn trusted(&self) -> TrustedIssuers {
        let mut trusted = TrustedIssuers::new();
        trusted
            .add_jwks(&self.issuer, &self.jwks().to_string())
            .expect("the served JWKS configures a trusted issuer");
        trusted
    }

    fn attestation(&self, request: &Value) -> String {
        let answer = self.api.ok("/v1/attestations", Some(request));
        answer["attestation"]
            .as_str()
            .expect("attestation")
            .to_owned()
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn verify(sandbox: &Sandbox, attestation: &str) -> Result<VerifiedIdentity, &'static str> {
    let trusted = sandbox.trusted();
    verify_attestation(attestation, &trusted, now_unix_s(), &AgePolicy::default())
        .map_err(|rejection| rejection.code())
}

fn adult_request() -> Value {
    json!({
        "subject": "player-17",
        "name": "Grace Hopper",
        "birth_date": "1990-12-09",
        "country": "US",
    })
}

#[test]
fn issued_attestations_verify_and_bad_ones_are_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path(), &[]);
    assert!(sandbox.issuer.starts_with("http://127.0.0.1:"));

    let discovery = sandbox.api.ok("/.well-known/openid-configuration", None);
    assert_eq!(discovery["issuer"], sandbox.issuer.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", sandbox.api.base).as_str()
    );
    assert_eq!(sandbox.jwks()["keys"][0]["alg"], "ES256");

    let identity = verify(&sandbox, &sandbox.attestation(&adult_request())).unwrap();
    assert_eq!(identity.issuer, sandbox.issuer);
    assert_eq!(identity.subject, "player-17");
    assert_eq!(identity.name.as_deref(), Some("Grace Hopper"));
    assert_eq!(identity.country, "US");
    assert!(identity.age_over_18);
    let ttl_s = identity.expires_at_unix_s - now_unix_s();
    assert!((3_500..=3_600).contains(&ttl_s), "default ttl: {ttl_s}");

    let mut expired = adult_request();
    expired["expires_at"] = json!(now_unix_s() - 60);
    let rejection = verify(&sandbox, &sandbox.attestation(&expired)).unwrap_err();
    assert_eq!(rejection, "attestation_expired");

    let mut under_age = adult_request();
    under_age["birth_date"] = json!("2015-03-01");
    let rejection = verify(&sandbox, &sandbox.attestation(&under_age)).unwrap_err();
    assert_eq!(rejection, "under_age");

    let mut not_yet = adult_request();
    not_yet["not_before"] = json!(now_unix_s() + 3_000);
    let rejection = verify(&sandbox, &sandbox.attestation(&not_yet)).unwrap_err();
    assert_eq!(rejection, "attestation_not_yet_valid");
}

#[test]
fn bad_requests_get_a_json_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path(), &[]);
    let mut both_expiries = adult_request();
    both_expiries["ttl_s"] = json!(60);
    both_expiries["expires_at"] = json!(now_unix_s() + 60);
    let cases = [
        (json!("{not json"), 400, "malformed_json"),
        (json!({"subject": "p"}), 422, "invalid_field"),
        (
            json!({"subject": "p", "country": "gb"}),
            422,
            "invalid_field",
        ),
        (
            json!({"subject": "", "country": "GB"}),
            422,
            "invalid_field",
        ),
        (
            json!({"subject": "p", "country": "GB", "birth_date": "1990-02-30"}),
            422,
            "invalid_field",
        ),
        (
            json!({"subject": "p", "country": "GB", "birthdate": "1990-01-01"}),
            422,
            "invalid_field",
        ),
        (
            json!({"subject": "p", "country": "GB", "ttl_s": 40_000_000}),
            422,
            "invalid_field",
        ),
        (both_expiries, 422, "invalid_field"),
    ];
    for (body, status, code) in cases {
        // A JSON string body is sent as its text: the first case is not JSON at all.
        let (got_status, answer) = match body.as_str() {
            Some(text) => post_text(&sandbox.api.base, text),
            None => sandbox.api.post("/v1/attestations", &body).unwrap(),
        };
        assert_eq!(
            (got_status, answer["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, answer) = sandbox.api.get("/v1/nothing").unwrap();
    assert_eq!((status, answer["code"].as_str()), (404, Some("not_found")));
}

fn post_text(base: &str, text: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{base}/v1/attestations"))
        .header("content-type", "application/json")
        .send(text)
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    (
        response.status().as_u16(),
        serde_json::from_str(&body).unwrap(),
    )
}

#[test]
fn the_key_is_kept_owner_only_and_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut first = Sandbox::start(dir.path(), &["--issuer", "https://idp.sandbox.test"]);
    assert_eq!(first.issuer, "https://idp.sandbox.test");
    let jwks = first.jwks();
    let attestation = first.attestation(&adult_request());
    common::stop(&mut first.process.child);

    let key_file = dir.path().join("idp-key.json");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let second = Sandbox::start(dir.path(), &["--issuer", "https://idp.sandbox.test"]);
    assert_eq!(second.jwks(), jwks);
    // What the first run issued still verifies against the second run's keys.
    assert!(verify(&second, &attestation).is_ok());

    let printed = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["sandbox", "idp", "--print-jwks", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&printed.stdout).unwrap(),
        jwks
    );

    // The kept key is ES256: asking for EdDSA on the same directory is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "sandbox",
            "idp",
            "--print-jwks",
            "--alg",
            "eddsa",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn an_eddsa_sandbox_issues_eddsa_attestations() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path(), &["--alg", "eddsa"]);
    let jwks = sandbox.jwks();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let mut request = adult_request();
    request["birth_date"] = Value::Null;
    request["age_over_18"] = json!(true);
    let identity = verify(&sandbox, &sandbox.attestation(&request)).unwrap();
    assert!(identity.age_over_18 && identity.birth_date.is_none());
}
