//! Every report shape is validated against the UNODC goAML 5.0.1 schema with `xmllint`
//! (libxml2-utils, which the test script installs).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::*;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/goaml/goAMLSchema-5.0.1.xsd")
}

/// `xmllint --schema`'s verdict on `xml`: Ok, or its complaints.
fn validate(xml: &str) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schema_path())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint (Debian: libxml2-utils) must be installed for the goAML tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

fn entity() -> ReportingEntity {
    ReportingEntity {
        rentity_id: 4711,
        rentity_branch: "online casino".into(),
        reporting_user_code: "MLRO01".into(),
        operator_name: "Croupier Gaming Ltd".into(),
        currency_code_local: "EUR".into(),
        location: Address {
            address_type: "1".into(),
            address: "1 Harbour Street".into(),
            city: "Valletta".into(),
            country_code: "MT".into(),
        },
        transmode_code: "A".into(),
        funds_code: "A".into(),
        report_indicators: vec!["-".into()],
    }
}

fn case() -> ReportedCase {
    ReportedCase {
        case_id: 77,
        reasons: vec!["large_cash_24h".into(), "structuring".into()],
        score: 85,
        ruleset_version: "default-3".into(),
        opened_at_s: 1_780_000_000,
        opened_by: "aml".into(),
        decision: Some("report: source of funds not shown".into()),
        notes: vec![
            "2026-06-01T10:00:00Z, analyst-1: asked for <payslips> & bank statements".into(),
        ],
    }
}

fn person() -> ReportedPerson {
    ReportedPerson {
        full_name: Some("Mary Ann O'Brien".into()),
        birth_date: CivilDate::new(1990, 2, 28),
        residence: Some("IE".into()),
        username: "mary".into(),
        player_id: 1_000_001,
    }
}

fn movements() -> Vec<Movement> {
    vec![
        Movement {
            transfer_id: 9001,
            at_s: 1_779_990_000,
            amount_minor: 199_999,
            direction: Direction::ToPlayer,
            kind: "deposit",
            counterparty_account: 42,
        },
        Movement {
            transfer_id: 9002,
            at_s: 1_779_990_060,
            amount_minor: 5,
            direction: Direction::FromPlayer,
            kind: "bet",
            counterparty_account: 43,
        },
    ]
}

#[test]
fn report_with_movements_is_valid_goaml() {
    let xml =
        suspicious_transaction_report(&entity(), &case(), &person(), &movements(), 1_780_100_000)
            .unwrap();
    validate(&xml).unwrap();
    assert!(xml.contains("<report_code>STR</report_code>"));
    assert!(xml.contains("<amount_local>1999.99</amount_local>"));
    assert!(xml.contains("<amount_local>0.05</amount_local>"));
    assert!(xml.contains("<first_name>Mary Ann</first_name>"));
    assert!(
        xml.contains("<last_name>O&apos;Brien</last_name>")
            || xml.contains("<last_name>O'Brien</last_name>")
    );
    assert!(
        xml.contains("&lt;payslips&gt; &amp; bank"),
        "free text is escaped"
    );
    assert_eq!(xml.matches("<transaction>").count(), 2);
}

#[test]
fn report_without_movements_names_the_player_as_a_party() {
    let xml =
        suspicious_transaction_report(&entity(), &case(), &person(), &[], 1_780_100_000).unwrap();
    validate(&xml).unwrap();
    assert!(xml.contains("<activity>"));
    assert!(!xml.contains("<transaction>"));
}

#[test]
fn unverified_player_is_reported_as_unknown_with_the_username_as_alias() {
    let unverified = ReportedPerson {
        full_name: None,
        birth_date: None,
        residence: None,
        ..person()
    };
    let mut undecided = case();
    undecided.decision = None;
    undecided.ruleset_version = String::new();
    for moves in [movements(), Vec::new()] {
        let xml = suspicious_transaction_report(
            &entity(),
            &undecided,
            &unverified,
            &moves,
            1_780_100_000,
        )
        .unwrap();
        validate(&xml).unwrap();
        assert!(xml.contains("<first_name>UNKNOWN</first_name>"));
        assert!(xml.contains("<alias>mary</alias>"));
    }
}

#[test]
fn long_free_text_is_cut_to_what_the_schema_takes() {
    let mut long = case();
    long.notes = vec!["é".repeat(9_000)];
    let mut named = person();
    named.full_name = Some(format!("{} {}", "a".repeat(300), "b".repeat(300)));
    let xml = suspicious_transaction_report(&entity(), &long, &named, &movements(), 1_780_100_000)
        .unwrap();
    validate(&xml).unwrap();
}

#[test]
fn the_validator_rejects_a_broken_report() {
    // The test is only worth something if xmllint would say no.
    let xml =
        suspicious_transaction_report(&entity(), &case(), &person(), &movements(), 1_780_100_000)
            .unwrap()
            .replace(
                "<report_code>STR</report_code>",
                "<report_code>XYZ</report_code>",
            );
    assert!(validate(&xml).is_err());
}

#[test]
fn an_amount_goaml_cannot_carry_is_an_error_not_a_wrong_number() {
    let mut yen = entity();
    yen.currency_code_local = "JPY".into();
    let mut huge = movements();
    huge[0].amount_minor = u64::MAX;
    let error = suspicious_transaction_report(&yen, &case(), &person(), &huge, 1_780_100_000);
    assert!(matches!(
        error,
        Err(GoamlError::AmountOutOfRange { transfer_id: 9001 })
    ));
}

#[test]
fn dates_are_sql_dates_in_utc() {
    assert_eq!(sql_date(0), "1970-01-01T00:00:00");
    assert_eq!(sql_date(1_780_000_000), "2026-05-28T20:26:40");
}

#[test]
fn settings_the_schema_would_refuse_are_refused_up_front() {
    entity().validate().unwrap();
    let mut bad = entity();
    bad.reporting_user_code = "abc".into();
    assert!(matches!(
        bad.validate(),
        Err(GoamlConfigError::Length {
            field: "reporting_user_code",
            ..
        })
    ));
    let mut bad = entity();
    bad.currency_code_local = "eur".into();
    assert_eq!(bad.validate(), Err(GoamlConfigError::Currency));
    let mut bad = entity();
    bad.rentity_id = 0;
    assert_eq!(bad.validate(), Err(GoamlConfigError::RentityId));
    let mut bad = entity();
    bad.report_indicators.clear();
    assert_eq!(bad.validate(), Err(GoamlConfigError::Indicators));
}

#[test]
fn names_split_at_the_last_space() {
    assert_eq!(
        split_name(Some("Mary Ann O'Brien")),
        ("Mary Ann", "O'Brien")
    );
    assert_eq!(split_name(Some("Cher")), ("Cher", "Cher"));
    assert_eq!(split_name(Some("  ")), ("UNKNOWN", "UNKNOWN"));
    assert_eq!(split_name(None), ("UNKNOWN", "UNKNOWN"));
}
