//! `GET /v1/certification?seed=HEX`: seeded verification of the running program. A bad or
//! missing seed is a 400 `invalid_seed`; a good one answers HMAC-SHA256 keyed with the seed
//! over the running executable and every certified game file, which a verifier holding the
//! same files recomputes on its own.

mod common;

use common::TestServer;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_hex(seed: &[u8], bytes: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed).unwrap();
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn certification_answers_400_invalid_seed_on_a_bad_or_missing_seed() {
    let server = TestServer::start();
    for query in [
        "",
        "?seed=",
        "?seed=abcd",
        "?seed=zz0102030405060708090a0b0c0d0e0f",
        "?seed=0102030405060708090a0b0c0d0e0f1",
    ] {
        let (status, body) = server.get(&format!("/v1/certification{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_seed", "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains("seed"), "{body}");
    }
    let too_long = "ab".repeat(65);
    let (status, body) = server.get(&format!("/v1/certification?seed={too_long}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_seed"))
    );
    let (status, body) = server.get("/v1/certification?seed=00&other=1");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_query"))
    );
}

#[test]
fn certification_answers_the_hmacs_a_verifier_computes_from_its_own_copies() {
    let server = TestServer::start();
    let seed = "00112233445566778899AABBCCDDEEFF0123456789abcdef";
    let (status, body) = server.get(&format!("/v1/certification?seed={seed}"));
    assert_eq!(status, 200, "{body}");
    let seed_bytes = hex::decode(seed).unwrap();
    assert_eq!(body["seed"], seed.to_ascii_lowercase());
    assert_eq!(
        body["signed_by"],
        croupier_games::certification::DEV_LAB_PUBLIC_KEY_HEX
    );
    let components = body["components"].as_array().unwrap();
    // The verifier's own copies: this test binary (the server runs in it) and the files.
    let binary = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let definitions = concat!(env!("CARGO_MANIFEST_DIR"), "/../games/definitions");
    let mut expected = vec![
        ("binary".to_string(), hmac_hex(&seed_bytes, &binary)),
        (
            "definitions/MANIFEST".to_string(),
            hmac_hex(
                &seed_bytes,
                &std::fs::read(format!("{definitions}/MANIFEST")).unwrap(),
            ),
        ),
    ];
    let mut games: Vec<String> = croupier_games::GAME_NAMES
        .iter()
        .map(|g| format!("{g}.toml"))
        .collect();
    games.sort();
    for file in games {
        let bytes = std::fs::read(format!("{definitions}/{file}")).unwrap();
        expected.push((format!("definitions/{file}"), hmac_hex(&seed_bytes, &bytes)));
    }
    let answered: Vec<(String, String)> = components
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hmac_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(answered, expected);
    // Another seed, other answers: a recorded answer cannot be replayed.
    let (_, other) = server.get("/v1/certification?seed=ffeeddccbbaa99887766554433221100");
    assert_ne!(
        other["components"][0]["hmac_sha256"],
        body["components"][0]["hmac_sha256"]
    );
}
