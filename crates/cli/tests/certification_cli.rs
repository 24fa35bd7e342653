//! The lab's and the regulator's workflow through the real binary: `games keygen`, `games sign`,
//! `games verify --definitions --pubkey`, `certify --seed`, `serve` refusing definitions that
//! are not certified by a trusted key, and `fair crash` / `fair verify --game-hash` on a crash
//! hash chain.

use std::path::Path;
use std::process::{Command, Output};

fn croupier(args: &[&str]) -> Output {
    croupier_env(args, &[])
}

fn croupier_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("CROUPIER_CONFIG")
        .output()
        .expect("run croupier")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../games/definitions");

/// A copy of the shipped definitions (no manifest, no signature) in `dir`.
fn copy_definitions(dir: &Path) {
    for entry in std::fs::read_dir(SHIPPED).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A lab key in `dir`: (secret key file, public key hex).
fn keygen(dir: &Path) -> (String, String) {
    let key = dir.join("lab.secret").to_str().unwrap().to_string();
    let output = croupier(&["games", "keygen", "--out", &key]);
    assert!(output.status.success(), "{}", stderr(&output));
    (key, stdout(&output).trim().to_string())
}

fn signed_set() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let definitions = dir.path().join("games");
    std::fs::create_dir(&definitions).unwrap();
    copy_definitions(&definitions);
    let (key, public) = keygen(dir.path());
    let definitions = definitions.to_str().unwrap().to_string();
    let output = croupier(&[
        "games",
        "sign",
        "--key",
        &key,
        "--definitions",
        &definitions,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    (dir, definitions, public)
}

#[test]
fn keygen_writes_a_private_key_file_once_and_prints_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path());
    assert_eq!(public.len(), 64, "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = croupier(&["games", "keygen", "--out", &key]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a key file is never overwritten"
    );
}

#[test]
fn sign_then_verify_round_trips_and_other_keys_are_refused() {
    let (_dir, definitions, public) = signed_set();
    let ok = croupier(&[
        "games",
        "verify",
        "--definitions",
        &definitions,
        "--pubkey",
        &public,
    ]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).starts_with(&format!("MANIFEST.sig     OK, signed by {public}")));
    // Not trusted: the default trusted key is the development lab's.
    let untrusted = croupier(&["games", "verify", "--definitions", &definitions]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        stdout(&untrusted).contains("REFUSED"),
        "{}",
        stdout(&untrusted)
    );
}

#[test]
fn verify_refuses_a_patched_definition_under_the_old_signature() {
    let (_dir, definitions, public) = signed_set();
    let roulette = Path::new(&definitions).join("roulette.toml");
    let text = std::fs::read_to_string(&roulette).unwrap();
    std::fs::write(&roulette, text.replace("split = 17", "split = 18")).unwrap();
    let output = croupier(&[
        "games",
        "verify",
        "--definitions",
        &definitions,
        "--pubkey",
        &public,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let line = stdout(&output)
        .lines()
        .find(|l| l.starts_with("roulette"))
        .unwrap()
        .to_string();
    assert!(line.contains("MISMATCH"), "{line}");
    // Re-hashing the manifest to match breaks the signature instead.
    let manifest = Path::new(&definitions).join("MANIFEST");
    let sha = croupier_games::sha256_hex(&std::fs::read(&roulette).unwrap());
    let old = std::fs::read_to_string(&manifest).unwrap();
    let patched: String = old
        .lines()
        .map(|l| match l.ends_with("roulette.toml") {
            true => format!("{sha}  roulette.toml\n"),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&manifest, patched).unwrap();
    let output = croupier(&[
        "games",
        "verify",
        "--definitions",
        &definitions,
        "--pubkey",
        &public,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("MANIFEST.sig     REFUSED"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn serve_refuses_definitions_not_signed_by_a_trusted_key_in_one_line() {
    let (dir, definitions, _public) = signed_set();
    let data = dir.path().join("data");
    let output = croupier_env(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("CROUPIER_GAMES__DEFINITIONS_DIR", &definitions)],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: refusing to start") && text.contains("trusted"),
        "{text}"
    );
    assert!(
        !data.exists(),
        "nothing is opened before the games are certified"
    );
}

#[test]
fn certify_output_changes_when_one_byte_of_a_definition_changes() {
    let (_dir, definitions, _public) = signed_set();
    let seed = "000102030405060708090a0b0c0d0e0f";
    let certify = || {
        let output = croupier(&[
            "certify",
            "--seed",
            seed,
            "--definitions",
            &definitions,
            "--json",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let before = certify();
    assert_eq!(before["seed"], seed);
    let components = before["components"].as_array().unwrap();
    assert_eq!(components[0]["name"], "binary");
    assert_eq!(components[1]["name"], "definitions/MANIFEST");
    assert_eq!(components.len(), 2 + 7);
    let dice = Path::new(&definitions).join("dice.toml");
    let mut bytes = std::fs::read(&dice).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&dice, bytes).unwrap();
    let after = certify();
    let changed: Vec<_> = (0..components.len())
        .filter(|&i| before["components"][i] != after["components"][i])
        .map(|i| {
            before["components"][i]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(changed, ["definitions/dice.toml"]);
}

#[test]
fn certify_refuses_a_bad_seed_with_exit_2() {
    for seed in ["", "0011", "zz0102030405060708090a0b0c0d0e0f"] {
        let output = croupier(&["certify", "--seed", seed]);
        assert_eq!(output.status.code(), Some(2), "{seed}");
        assert!(stderr(&output).contains("--seed"), "{}", stderr(&output));
    }
}

/// Bustabit rounds 12,306,896 and 12,306,895 (see `crash.rs`: busts 10.91 and 4.26).
const SALT: &str = "00000000000000000001e08b7fd44f95e3e950ac65650a8031a6d5e1750e34be";
const ROUND_896: &str = "94aa062026624e59a0ace092568d5f46e21b9bf1d5173609db8645dd62bdfc44";
const ROUND_895: &str = "94e66d98029c61ecd27c4fb6b381d401c823cf3dfbdac9246756d5b655e125aa";

#[test]
fn fair_crash_matches_a_live_bustabit_round() {
    let output = croupier(&["fair", "crash", "--game-hash", ROUND_896, "--salt", SALT]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "10.91\n");
}

#[test]
fn fair_verify_accepts_a_chain_round_and_refuses_a_stranger() {
    let verify = |extra: &[&str]| {
        let mut args = vec!["fair", "verify", "--game-hash", ROUND_896, "--salt", SALT];
        args.extend_from_slice(extra);
        croupier(&args)
    };
    let ok = verify(&["--previous-hash", ROUND_895, "--link", "binary"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).ends_with("crash point: 10.91\n"),
        "{}",
        stdout(&ok)
    );
    let ok = verify(&["--chain-terminating-hash", ROUND_895, "--link", "binary"]);
    assert!(
        stdout(&ok).contains("1 hashes to the terminating hash"),
        "{}",
        stdout(&ok)
    );
    let wrong_link = verify(&["--previous-hash", ROUND_895]);
    assert_eq!(wrong_link.status.code(), Some(1));
    assert!(
        stderr(&wrong_link).contains("--link binary"),
        "{}",
        stderr(&wrong_link)
    );
    let missing = verify(&[]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn fair_verify_chain_rounds_of_fair_chain_new() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = dir.path().join("seeds");
    let output = croupier(&[
        "fair",
        "chain",
        "new",
        "--length",
        "5",
        "--out",
        seeds.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let terminal = stdout(&output).trim().to_string();
    let text = std::fs::read_to_string(&seeds).unwrap();
    let round_2 = text.lines().nth(2).unwrap();
    let output = croupier(&[
        "fair",
        "verify",
        "--game-hash",
        round_2,
        "--salt",
        "s",
        "--chain-terminating-hash",
        &terminal,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Round r of `fair chain new` is r + 1 hashes from the terminal hash.
    assert!(
        stdout(&output).contains("3 hashes to the terminating hash"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("round 2 of a `fair chain new` chain"),
        "{}",
        stdout(&output)
    );
}
