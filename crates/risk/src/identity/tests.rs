//! The verifier against attestations signed here, one behaviour per test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::issue::Issuer;
use super::*;

const ISSUER: &str = "https://idp.example";
/// 2025-06-15T12:00:00Z.
const NOW_UNIX_S: u64 = 1_749_988_800;
const SECRET_A: [u8; 32] = [7; 32];
const SECRET_B: [u8; 32] = [9; 32];

fn issuer(alg: SigningAlg) -> Issuer {
    Issuer::from_secret(ISSUER, alg, &SECRET_A).unwrap()
}

/// An adult's claims, valid for an hour around `NOW_UNIX_S`.
fn adult_claims() -> AttestationClaims {
    AttestationClaims {
        iss: None,
        sub: Some("player-4711".into()),
        iat: Some(NOW_UNIX_S - 10),
        exp: Some(NOW_UNIX_S + 3_600),
        nbf: None,
        name: Some("Ada Lovelace".into()),
        birthdate: Some("1990-12-10".into()),
        age_over_18: None,
        country: Some("GB".into()),
        address: None,
    }
}

fn verify(
    compact: &str,
    trusted: &TrustedIssuers,
) -> Result<VerifiedIdentity, AttestationRejection> {
    verify_attestation(compact, trusted, NOW_UNIX_S, &AgePolicy::default())
}

/// The code of the rejection of `claims` signed by the ES256 test issuer.
fn rejection_of(claims: &AttestationClaims) -> &'static str {
    let issuer = issuer(SigningAlg::Es256);
    let compact = issuer.sign(claims).unwrap();
    verify(&compact, &issuer.trusted_issuers().unwrap())
        .expect_err("rejected")
        .code()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn assert_valid(alg: SigningAlg) {
    let issuer = issuer(alg);
    let compact = issuer.sign(&adult_claims()).unwrap();
    let identity = verify(&compact, &issuer.trusted_issuers().unwrap()).unwrap();
    assert_eq!(identity.issuer, ISSUER);
    assert_eq!(identity.subject, "player-4711");
    assert_eq!(identity.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(identity.birth_date, CivilDate::new(1990, 12, 10));
    assert!(identity.age_over_18);
    assert_eq!(identity.country, "GB");
    assert_eq!(identity.expires_at_unix_s, NOW_UNIX_S + 3_600);
    let digest: [u8; 32] = Sha256::digest(compact.as_bytes()).into();
    assert_eq!(identity.attestation_sha256, digest);
}

#[test]
fn a_valid_es256_attestation_verifies() {
    assert_valid(SigningAlg::Es256);
}

#[test]
fn a_valid_eddsa_attestation_verifies() {
    assert_valid(SigningAlg::EdDsa);
}

#[test]
fn an_attestation_past_its_exp_is_expired_from_the_exp_second_on() {
    let mut claims = adult_claims();
    claims.exp = Some(NOW_UNIX_S);
    assert_eq!(rejection_of(&claims), "attestation_expired");
    claims.exp = Some(NOW_UNIX_S + 1);
    let issuer = issuer(SigningAlg::Es256);
    let compact = issuer.sign(&claims).unwrap();
    assert!(verify(&compact, &issuer.trusted_issuers().unwrap()).is_ok());
}

#[test]
fn nbf_or_iat_more_than_a_minute_ahead_is_not_yet_valid() {
    let mut claims = adult_claims();
    claims.nbf = Some(NOW_UNIX_S + FUTURE_SKEW_S_MAX + 1);
    assert_eq!(rejection_of(&claims), "attestation_not_yet_valid");
    let mut claims = adult_claims();
    claims.iat = Some(NOW_UNIX_S + FUTURE_SKEW_S_MAX + 1);
    assert_eq!(rejection_of(&claims), "attestation_not_yet_valid");

    let mut within_skew = adult_claims();
    within_skew.iat = Some(NOW_UNIX_S + FUTURE_SKEW_S_MAX);
    within_skew.nbf = Some(NOW_UNIX_S + FUTURE_SKEW_S_MAX);
    let issuer = issuer(SigningAlg::Es256);
    let compact = issuer.sign(&within_skew).unwrap();
    assert!(verify(&compact, &issuer.trusted_issuers().unwrap()).is_ok());
}

#[test]
fn an_attestation_from_an_issuer_not_trusted_is_refused() {
    let stranger =
        Issuer::from_secret("https://other.example", SigningAlg::Es256, &SECRET_A).unwrap();
    let compact = stranger.sign(&adult_claims()).unwrap();
    let trusted = issuer(SigningAlg::Es256).trusted_issuers().unwrap();
    assert_eq!(
        verify(&compact, &trusted).unwrap_err().code(),
        "issuer_not_trusted"
    );
}

#[test]
fn an_unknown_kid_is_refused_as_not_trusted() {
    let signer = Issuer::from_secret(ISSUER, SigningAlg::Es256, &SECRET_B).unwrap();
    let compact = signer.sign(&adult_claims()).unwrap();
    let trusted = issuer(SigningAlg::Es256).trusted_issuers().unwrap();
    assert_eq!(
        verify(&compact, &trusted).unwrap_err().code(),
        "issuer_not_trusted"
    );
}

#[test]
fn a_kid_naming_a_key_of_another_alg_is_refused() {
    let es256 = issuer(SigningAlg::Es256);
    let eddsa = issuer(SigningAlg::EdDsa);
    let mut trusted = es256.trusted_issuers().unwrap();
    trusted.add_jwk_set(ISSUER, &eddsa.jwks()).unwrap();
    // An EdDSA token whose header names the ES256 key.
    let compact = eddsa.sign(&adult_claims()).unwrap();
    let (_, rest) = compact.split_once('.').unwrap();
    let header = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, es256.kid());
    let forged = format!("{}.{rest}", b64(header.as_bytes()));
    assert_eq!(
        verify(&forged, &trusted).unwrap_err().code(),
        "issuer_not_trusted"
    );
}

#[test]
fn a_tampered_payload_fails_the_signature_and_reveals_nothing_else() {
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
        let issuer = issuer(alg);
        let trusted = issuer.trusted_issuers().unwrap();
        let compact = issuer.sign(&adult_claims()).unwrap();
        let parts: Vec<&str> = compact.split('.').collect();
        // Expired and under age, too: the signature is checked before either.
        let mut altered = adult_claims();
        altered.iss = Some(ISSUER.into());
        altered.birthdate = Some("2015-01-01".into());
        altered.exp = Some(NOW_UNIX_S - 1);
        let payload = b64(&serde_json::to_vec(&altered).unwrap());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&tampered, &trusted).unwrap_err().code(),
            "signature_invalid"
        );
    }
}

#[test]
fn an_attestation_signed_by_another_key_fails_the_signature() {
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
        let trusted = issuer(alg).trusted_issuers().unwrap();
        let impostor = Issuer::from_secret(ISSUER, alg, &SECRET_B).unwrap();
        let compact = impostor.sign(&adult_claims()).unwrap();
        // Without a kid every key of the issuer for the alg is tried, and none verifies.
        let (header, rest) = compact.split_once('.').unwrap();
        assert!(!header.is_empty());
        let no_kid = format!(r#"{{"alg":"{}"}}"#, alg.jws_name());
        let stripped = format!("{}.{rest}", b64(no_kid.as_bytes()));
        assert_eq!(
            verify(&stripped, &trusted).unwrap_err().code(),
            "signature_invalid"
        );
    }
}

#[test]
fn the_eighteenth_birthday_is_adult_and_the_day_before_is_under_age() {
    let issuer = issuer(SigningAlg::EdDsa);
    let trusted = issuer.trusted_issuers().unwrap();
    let mut claims = adult_claims();
    claims.birthdate = Some("2007-06-15".into());
    let birthday_18 = CivilDate::new(2025, 6, 15).unwrap().unix_s_at_midnight() as u64;
    for (now_unix_s, expected) in [
        (birthday_18, Ok(())),
        (birthday_18 + 86_399, Ok(())),
        (birthday_18 - 1, Err("under_age")),
        (birthday_18 - 86_400, Err("under_age")),
    ] {
        claims.iat = Some(now_unix_s - 10);
        claims.exp = Some(now_unix_s + 600);
        let compact = issuer.sign(&claims).unwrap();
        let verdict = verify_attestation(&compact, &trusted, now_unix_s, &AgePolicy::default());
        assert_eq!(
            verdict.map(|_| ()).map_err(|r| r.code()),
            expected,
            "at {now_unix_s}"
        );
    }
}

#[test]
fn age_over_18_false_is_under_age() {
    let mut claims = adult_claims();
    claims.birthdate = None;
    claims.age_over_18 = Some(false);
    assert_eq!(rejection_of(&claims), "under_age");
    // A birth date saying adult does not outweigh it: any "under" claim wins.
    claims.birthdate = Some("1990-12-10".into());
    assert_eq!(rejection_of(&claims), "under_age");
}

#[test]
fn age_over_18_true_without_a_birth_date_is_enough_for_eighteen_but_not_twenty_one() {
    let issuer = issuer(SigningAlg::Es256);
    let trusted = issuer.trusted_issuers().unwrap();
    let mut claims = adult_claims();
    claims.birthdate = None;
    claims.age_over_18 = Some(true);
    let compact = issuer.sign(&claims).unwrap();
    let identity = verify(&compact, &trusted).unwrap();
    assert!(identity.age_over_18 && identity.birth_date.is_none());
    let policy_21 = AgePolicy { age_min_years: 21 };
    let verdict = verify_attestation(&compact, &trusted, NOW_UNIX_S, &policy_21);
    assert_eq!(verdict.unwrap_err().code(), "claims_missing");
}

#[test]
fn missing_claims_are_named() {
    type Remove = fn(&mut AttestationClaims);
    let cases: [(&str, Remove); 5] = [
        ("sub", |c| c.sub = None),
        ("empty sub", |c| c.sub = Some(String::new())),
        ("country", |c| c.country = None),
        ("exp", |c| c.exp = None),
        ("age", |c| c.birthdate = None),
    ];
    for (what, remove) in cases {
        let mut claims = adult_claims();
        remove(&mut claims);
        assert_eq!(rejection_of(&claims), "claims_missing", "{what}");
    }
}

#[test]
fn alg_none_and_hs256_are_malformed() {
    let trusted = issuer(SigningAlg::Es256).trusted_issuers().unwrap();
    let mut claims = adult_claims();
    claims.iss = Some(ISSUER.into());
    let payload = b64(&serde_json::to_vec(&claims).unwrap());
    for (alg, signature) in [
        ("none", String::new()),
        ("HS256", b64(&[1; 32])),
        ("es256", b64(&[1; 64])),
    ] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let compact = format!("{header}.{payload}.{signature}");
        assert_eq!(
            verify(&compact, &trusted).unwrap_err().code(),
            "attestation_malformed",
            "{alg}"
        );
    }
}

#[test]
fn text_that_is_not_a_compact_jws_is_malformed() {
    let issuer = issuer(SigningAlg::Es256);
    let trusted = issuer.trusted_issuers().unwrap();
    let good = issuer.sign(&adult_claims()).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let crit_header = b64(br#"{"alg":"ES256","crit":["exp"],"exp":1}"#);
    let bad_date = {
        let mut claims = adult_claims();
        claims.birthdate = Some("1990-02-30".into());
        b64(&serde_json::to_vec(&claims).unwrap())
    };
    for compact in [
        String::new(),
        "not a token".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]),
        format!("{crit_header}.{}.{}", parts[1], parts[2]),
        format!("{}.{bad_date}.{}", parts[0], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            "A".repeat(ATTESTATION_BYTES_MAX),
            parts[2]
        ),
    ] {
        let code = verify(&compact, &trusted).unwrap_err().code();
        assert_eq!(code, "attestation_malformed", "{compact:.60}");
    }
    let mut lower_case_country = adult_claims();
    lower_case_country.country = Some("gb".into());
    assert_eq!(rejection_of(&lower_case_country), "attestation_malformed");
}

#[test]
fn debug_output_redacts_personal_data() {
    let issuer = issuer(SigningAlg::Es256);
    let compact = issuer.sign(&adult_claims()).unwrap();
    let identity = verify(&compact, &issuer.trusted_issuers().unwrap()).unwrap();
    let printed = format!("{identity:?} {:?}", adult_claims());
    for personal in ["player-4711", "Ada", "Lovelace", "1990", "12-10"] {
        assert!(!printed.contains(personal), "{personal} in {printed}");
    }
    assert!(
        printed.contains("<redacted>") && printed.contains("GB"),
        "{printed}"
    );
}

#[test]
fn an_issuer_prints_no_private_key_and_keeps_its_key_for_the_same_secret() {
    let first = issuer(SigningAlg::Es256);
    let again = issuer(SigningAlg::Es256);
    assert_eq!(first.jwks(), again.jwks());
    assert_ne!(
        first.jwks(),
        Issuer::from_secret(ISSUER, SigningAlg::Es256, &SECRET_B)
            .unwrap()
            .jwks()
    );
    let printed = format!("{first:?}");
    assert!(
        !printed.contains("secret") && !printed.contains("encoding"),
        "{printed}"
    );
    assert!(printed.contains(first.kid()));
}

#[test]
fn a_jwks_document_configures_p256_and_ed25519_keys_and_skips_others() {
    let es256 = issuer(SigningAlg::Es256).public_jwk().clone();
    let eddsa = issuer(SigningAlg::EdDsa).public_jwk().clone();
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa-1"},
        {"kty": "EC", "crv": "P-256", "x": es256.x, "y": es256.y, "kid": "ec-1"},
        {"kty": "OKP", "crv": "Ed25519", "x": eddsa.x, "kid": "ed-1"},
        {"kty": "OKP", "crv": "Ed25519", "x": eddsa.x, "kid": "ed-enc", "use": "enc"},
    ]});
    let mut trusted = TrustedIssuers::new();
    trusted.add_jwks(ISSUER, &jwks.to_string()).unwrap();
    let keys = &trusted.get(ISSUER).unwrap().keys;
    let kids: Vec<_> = keys.iter().map(|k| (k.kid().unwrap(), k.alg())).collect();
    assert_eq!(
        kids,
        [("ec-1", SigningAlg::Es256), ("ed-1", SigningAlg::EdDsa)]
    );

    // The same JWKS again clashes on its kids, and adds nothing.
    let again = trusted.add_jwks(ISSUER, &jwks.to_string()).unwrap_err();
    assert!(
        matches!(again, IssuerConfigError::DuplicateKid { .. }),
        "{again}"
    );
    assert_eq!(trusted.get(ISSUER).unwrap().keys.len(), 2);
}

#[test]
fn a_jwks_with_a_bad_key_or_no_usable_key_is_refused() {
    let es256 = issuer(SigningAlg::Es256).public_jwk().clone();
    let off_curve = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": es256.x, "y": es256.x},
    ]});
    let short = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]});
    let wrong_alg = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": es256.x, "y": es256.y, "alg": "EdDSA"},
    ]});
    let only_rsa = serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
    let mut trusted = TrustedIssuers::new();
    for jwks in [off_curve, short, wrong_alg] {
        let error = trusted.add_jwks(ISSUER, &jwks.to_string()).unwrap_err();
        assert!(
            matches!(error, IssuerConfigError::InvalidKey { .. }),
            "{error}"
        );
    }
    let error = trusted.add_jwks(ISSUER, &only_rsa.to_string()).unwrap_err();
    assert!(
        matches!(error, IssuerConfigError::NoUsableKey { .. }),
        "{error}"
    );
    let error = trusted.add_jwks(ISSUER, "{\"keys\": 3}").unwrap_err();
    assert!(matches!(error, IssuerConfigError::Json(_)), "{error}");
    assert!(trusted.is_empty());
}

#[test]
fn trusted_issuers_deserialize_from_a_list_of_issuer_and_jwks() {
    let es256 = issuer(SigningAlg::Es256);
    let config = serde_json::json!([{"issuer": ISSUER, "jwks": es256.jwks()}]);
    let trusted: TrustedIssuers = serde_json::from_value(config).unwrap();
    let compact = es256.sign(&adult_claims()).unwrap();
    assert!(verify(&compact, &trusted).is_ok());

    let empty_jwks = serde_json::json!([{"issuer": ISSUER, "jwks": {"keys": []}}]);
    assert!(serde_json::from_value::<TrustedIssuers>(empty_jwks).is_err());
}
