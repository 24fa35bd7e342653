//! `croupier rng` and `croupier fair` as a user runs them: outputs, exit codes (0 ok, 1 check
//! failed, 2 bad input) and clean ends of pipes.

use std::io::Read;
use std::process::{Command, Output, Stdio};

const SERVER: &str = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
const COMMITMENT: &str = "e0bc614e4fd035a488619799853b075143deea596c477b8dc077e309c0fe42e9";
const CLIENT: &str = "croupier-client-seed";

fn croupier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(args)
        .output()
        .expect("croupier runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

fn assert_refused(output: &Output, message: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    assert!(stderr(output).contains(message), "{}", stderr(output));
    assert!(!stderr(output).contains("panicked"));
}

#[test]
fn raw_writes_exactly_the_requested_bytes_and_never_repeats() {
    let first = croupier(&["rng", "raw", "--bytes", "100000"]);
    let second = croupier(&["rng", "raw", "--bytes", "100000"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(first.stdout.len(), 100_000);
    assert_eq!(second.stdout.len(), 100_000);
    assert_ne!(first.stdout, second.stdout);
}

#[test]
fn raw_without_bytes_ends_quietly_when_the_reader_closes_the_pipe() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["rng", "raw"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("croupier runs");
    let mut head = vec![0u8; 1 << 16];
    child
        .stdout
        .take()
        .expect("piped")
        .read_exact(&mut head)
        .expect("output flows");
    // stdout is dropped here: the reader is gone, as with `| head -c`.
    let output = child.wait_with_output().expect("croupier ends");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn scaled_prints_count_outcomes_within_the_range() {
    let output = croupier(&["rng", "scaled", "--range", "37", "--count", "10000"]);
    assert!(output.status.success());
    let outcomes: Vec<u64> = stdout(&output)
        .lines()
        .map(|l| l.parse().expect("integer"))
        .collect();
    assert_eq!(outcomes.len(), 10_000);
    assert!(outcomes.iter().all(|&o| o < 37));
    assert!(
        (0..37).all(|v| outcomes.contains(&v)),
        "10000 draws cover all 37 values"
    );
}

#[test]
fn scaled_refuses_an_empty_range() {
    assert_refused(
        &croupier(&["rng", "scaled", "--range", "0", "--count", "5"]),
        "--range",
    );
    assert_eq!(
        croupier(&["rng", "scaled", "--range", "-3", "--count", "5"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn statistical_test_of_a_seeded_stream_reports_every_gli_test_and_passes() {
    let output = croupier(&[
        "rng",
        "test",
        "--samples",
        "50000",
        "--seed",
        "croupier cli test",
    ]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let report = stdout(&output);
    for name in [
        "frequency-bytes",
        "frequency-die",
        "serial-pairs",
        "runs-up",
        "runs-bits",
        "serial-correlation",
        "gap",
        "poker",
        "coupon-collector",
        "permutation",
    ] {
        assert!(report.contains(name), "{name} missing from\n{report}");
    }
    assert!(
        report.contains("result: PASS (11/11 tests passed)"),
        "{report}"
    );
}

#[test]
fn statistical_test_refuses_too_few_samples() {
    assert_refused(&croupier(&["rng", "test", "--samples", "10"]), "--samples");
}

#[test]
fn fair_floats_match_the_independently_computed_vector() {
    let output = croupier(&[
        "fair",
        "floats",
        "--server-seed",
        SERVER,
        "--client-seed",
        CLIENT,
        "--nonce",
        "7",
        "--count",
        "10",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let floats: Vec<&str> = text.lines().collect();
    assert_eq!(floats.len(), 10);
    assert_eq!(floats[0], "0.18955748644657433");
    assert_eq!(floats[1], "0.21670514345169067");
    assert_eq!(
        floats[9], "0.606991954613477",
        "the 10th float comes from the second HMAC block"
    );
}

#[test]
fn fair_integers_follow_the_documented_rejection_mapping() {
    let output = croupier(&[
        "fair",
        "ints",
        "--server-seed",
        SERVER,
        "--client-seed",
        CLIENT,
        "--nonce",
        "7",
        "--range",
        "37",
        "--count",
        "10",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        "7 8 4 17 21 19 34 32 34 22"
    );
}

#[test]
fn fair_commit_and_verify_check_the_revealed_seed() {
    let commit = croupier(&["fair", "commit", "--server-seed", SERVER]);
    assert_eq!(stdout(&commit).trim(), COMMITMENT);

    let upper = COMMITMENT.to_uppercase();
    let ok = croupier(&[
        "fair",
        "verify",
        "--server-seed",
        SERVER,
        "--commitment",
        &upper,
        "--client-seed",
        CLIENT,
        "--nonce",
        "7",
        "--count",
        "1",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(
        stdout(&ok),
        format!("commitment: ok ({COMMITMENT})\n0.18955748644657433\n")
    );

    let other_seed = format!("{SERVER}0");
    let mismatch = croupier(&[
        "fair",
        "verify",
        "--server-seed",
        &other_seed,
        "--commitment",
        COMMITMENT,
        "--client-seed",
        CLIENT,
        "--nonce",
        "7",
    ]);
    assert_eq!(mismatch.status.code(), Some(1));
    assert!(stderr(&mismatch).contains("commitment mismatch"));
    assert_eq!(
        stdout(&mismatch),
        "",
        "no outcome is shown for an unproven seed"
    );
}

#[test]
fn fair_refuses_bad_seeds_and_hashes() {
    let args = [
        "fair",
        "floats",
        "--server-seed",
        "not-hex",
        "--client-seed",
        "c",
        "--nonce",
        "1",
    ];
    assert_refused(&croupier(&args), "hexadecimal");
    let args = [
        "fair",
        "verify",
        "--server-seed",
        SERVER,
        "--commitment",
        "abc",
        "--client-seed",
        "c",
        "--nonce",
        "1",
    ];
    assert_refused(&croupier(&args), "64 hexadecimal");
    let args = [
        "fair",
        "ints",
        "--server-seed",
        SERVER,
        "--client-seed",
        "c",
        "--nonce",
        "1",
        "--range",
        "0",
    ];
    assert_refused(&croupier(&args), "--range");
}

#[test]
fn fair_seed_prints_a_fresh_seed_with_its_commitment() {
    let output = croupier(&["fair", "seed"]);
    assert!(output.status.success());
    let text = stdout(&output);
    let seed = text
        .lines()
        .find_map(|l| l.strip_prefix("server_seed: "))
        .expect("seed line");
    let commitment = text
        .lines()
        .find_map(|l| l.strip_prefix("commitment: "))
        .expect("commitment line");
    assert_eq!(seed.len(), 64);
    assert_eq!(
        stdout(&croupier(&["fair", "commit", "--server-seed", seed])).trim(),
        commitment
    );
}

#[test]
fn fair_chain_seeds_verify_against_the_terminal_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.txt");
    let path_text = path.to_str().expect("utf-8 path");
    let created = croupier(&[
        "fair", "chain", "new", "--length", "100", "--out", path_text,
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let terminal = stdout(&created).trim().to_owned();
    let seeds: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(seeds.len(), 100);

    let at = |seed: &str, round: &str| {
        croupier(&[
            "fair",
            "chain",
            "verify",
            "--seed",
            seed,
            "--terminal",
            &terminal,
            "--round",
            round,
        ])
    };
    assert!(at(&seeds[0], "0").status.success());
    assert!(at(&seeds[42], "42").status.success());
    assert_eq!(at(&seeds[42], "41").status.code(), Some(1));

    let found = croupier(&[
        "fair",
        "chain",
        "verify",
        "--seed",
        &seeds[99],
        "--terminal",
        &terminal,
        "--length",
        "100",
    ]);
    assert!(stdout(&found).contains("round 99"), "{}", stdout(&found));

    let again = croupier(&["fair", "chain", "new", "--length", "5", "--out", path_text]);
    assert_refused(&again, "already exists");
}

#[test]
fn fair_verify_recomputes_game_outcomes_from_the_same_stream_as_fair_ints() {
    let bet = [
        "--server-seed",
        SERVER,
        "--client-seed",
        CLIENT,
        "--nonce",
        "7",
    ];
    let first_int = |range: &str| {
        let mut args = vec!["fair", "ints", "--range", range];
        args.extend_from_slice(&bet);
        let output = croupier(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().parse::<u32>().unwrap()
    };
    let outcome = |game: &str| {
        let mut args = vec![
            "fair",
            "verify",
            "--commitment",
            COMMITMENT,
            "--count",
            "1",
            "--game",
            game,
        ];
        args.extend_from_slice(&bet);
        let output = croupier(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        let line = text
            .lines()
            .find(|l| l.starts_with("outcome: "))
            .expect("an outcome line");
        line.trim_start_matches("outcome: ").to_owned()
    };
    assert_eq!(outcome("roulette"), format!("pocket {}", first_int("37")));
    let roll = first_int("10001");
    assert_eq!(
        outcome("dice"),
        format!("roll {}.{:02}", roll / 100, roll % 100)
    );
    assert!(outcome("crash").starts_with("crash point "));

    let mut args = vec![
        "fair",
        "verify",
        "--commitment",
        COMMITMENT,
        "--game",
        "no-such-game",
    ];
    args.extend_from_slice(&bet);
    let unknown = croupier(&args);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no-such-game"),
        "{}",
        stderr(&unknown)
    );
}
