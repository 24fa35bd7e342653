//! A case as a suspicious-transaction report (STR) in goAML XML, the UNODC format most
//! financial intelligence units (FIUs) take in.
//!
//! The report follows goAML schema 5.0.1 (`report` → header, `location`, `reason`, `action`,
//! then the player's money movements as `transaction`s, or, when there were none, the player
//! as a reported party of an `activity`; then `report_indicators`). The player is a `t_person`
//! (name, birth date and residence from the verified identity, the username as alias), the
//! operator a `t_entity`. The tests validate the output against the published XSD.
//!
//! An FIU ships the schema with its own lookup tables (transmission modes, funds types,
//! indicators): those codes are the reporting entity's configuration ([`ReportingEntity`]),
//! not constants here.
//!
//! Pure: the caller gathers the case, the identity and the movements and passes the report
//! time; the same inputs give the same bytes.

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::identity::CivilDate;
use croupier_core::money::{currency_exponent, decimal};

/// goAML caps free text (`comments_type`) at 8,000 characters.
const COMMENT_CHARS_MAX: usize = 8_000;
/// Names in `t_person` and `t_entity`.
const NAME_CHARS_MAX: usize = 100;
const ENTITY_NAME_CHARS_MAX: usize = 255;
const TRANSACTION_NUMBER_CHARS_MAX: usize = 100;
const LOCATION_CHARS_MAX: usize = 255;
/// `amount_local` (`sql_decimal`) is bounded at ±7.9e15 in major units.
const AMOUNT_MAJOR_MAX: u64 = 7_900_000_000_000_000;
/// `sql_date` starts at 1753-01-01; nothing we report is older than 1970.
const SECONDS_PER_DAY: u64 = 86_400;

/// Who reports, and the FIU lookup codes its reports use (`[compliance.goaml]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportingEntity {
    /// The reporting entity's id at the FIU (at least 1).
    pub rentity_id: u32,
    /// The branch or unit that reports (1 to 255 characters).
    pub rentity_branch: String,
    /// The goAML user who submits (4 to 50 characters).
    pub reporting_user_code: String,
    /// The operator's legal name, the counterparty of every movement.
    pub operator_name: String,
    /// ISO 4217 code of the currency the FIU counts in; movements in it are reported.
    pub currency_code_local: String,
    pub location: Address,
    /// The FIU's code for how a transaction was conducted (an online transfer, for us).
    pub transmode_code: String,
    /// The FIU's code for the type of funds on both sides of a movement.
    pub funds_code: String,
    /// The FIU's report indicator codes (at least one).
    pub report_indicators: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The FIU's address type code (`contact_type`: 1 to 4 in the generic schema).
    pub address_type: String,
    pub address: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: String,
}

/// Why a reporting entity's settings cannot make a valid report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoamlConfigError {
    #[error("rentity_id must be at least 1")]
    RentityId,
    #[error("{field} must have {min} to {max} characters")]
    Length {
        field: &'static str,
        min: usize,
        max: usize,
    },
    #[error("currency_code_local must be three capital letters (ISO 4217)")]
    Currency,
    #[error("location.country_code must be two capital letters (ISO 3166-1 alpha-2)")]
    Country,
    #[error("report_indicators must name at least one indicator code")]
    Indicators,
}

impl ReportingEntity {
    /// Checks what the schema would refuse, so a node refuses the settings at start rather
    /// than an FIU refusing a report later.
    pub fn validate(&self) -> Result<(), GoamlConfigError> {
        if self.rentity_id == 0 {
            return Err(GoamlConfigError::RentityId);
        }
        let lengths = [
            ("rentity_branch", &self.rentity_branch, 1, 255),
            ("reporting_user_code", &self.reporting_user_code, 4, 50),
            (
                "operator_name",
                &self.operator_name,
                1,
                ENTITY_NAME_CHARS_MAX,
            ),
            ("location.address", &self.location.address, 1, 100),
            ("location.city", &self.location.city, 1, 255),
            ("location.address_type", &self.location.address_type, 1, 10),
            ("transmode_code", &self.transmode_code, 1, 10),
            ("funds_code", &self.funds_code, 1, 10),
        ];
        for (field, value, min, max) in lengths {
            if !(min..=max).contains(&value.chars().count()) {
                return Err(GoamlConfigError::Length { field, min, max });
            }
        }
        let capitals = |code: &str, len: usize| {
            code.len() == len && code.bytes().all(|b| b.is_ascii_uppercase())
        };
        if !capitals(&self.currency_code_local, 3) {
            return Err(GoamlConfigError::Currency);
        }
        if !capitals(&self.location.country_code, 2) {
            return Err(GoamlConfigError::Country);
        }
        let indicator_ok = |code: &String| (1..=10).contains(&code.chars().count());
        if self.report_indicators.is_empty() || !self.report_indicators.iter().all(indicator_ok) {
            return Err(GoamlConfigError::Indicators);
        }
        Ok(())
    }
}

/// The reported player, as the ledger knows them.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportedPerson {
    /// The verified full name; `None` if the player never verified an identity.
    pub full_name: Option<String>,
    pub birth_date: Option<CivilDate>,
    /// Country of residence, ISO 3166-1 alpha-2.
    pub residence: Option<String>,
    pub username: String,
    pub player_id: u128,
}

impl std::fmt::Debug for ReportedPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportedPerson")
            .field("player_id", &self.player_id)
            .finish_non_exhaustive()
    }
}

/// The case being reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedCase {
    pub case_id: u128,
    pub reasons: Vec<String>,
    pub score: u8,
    pub ruleset_version: String,
    pub opened_at_s: u64,
    pub opened_by: String,
    /// The decision and what the operator wrote with it, once decided.
    pub decision: Option<String>,
    /// The case's notes, oldest first, each already "when, who: text".
    pub notes: Vec<String>,
}

/// Which way money moved, seen from the player's wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ToPlayer,
    FromPlayer,
}

/// One movement of the player's money in the local currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    /// The ledger's transfer id.
    pub transfer_id: u128,
    pub at_s: u64,
    /// Minor units of the local currency.
    pub amount_minor: u64,
    pub direction: Direction,
    /// What it was: `bet`, `win`, `deposit`, `withdrawal`, `transfer`.
    pub kind: &'static str,
    /// The other account's id.
    pub counterparty_account: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum GoamlError {
    #[error("transfer {transfer_id}'s amount is beyond what goAML's amount_local can carry")]
    AmountOutOfRange { transfer_id: u128 },
    #[error("writing the report: {0}")]
    Write(#[from] io::Error),
    #[error("the report is not UTF-8")]
    NotUtf8,
}

/// The case as a goAML STR, at `report_at_s`.
pub fn suspicious_transaction_report(
    entity: &ReportingEntity,
    case: &ReportedCase,
    person: &ReportedPerson,
    movements: &[Movement],
    report_at_s: u64,
) -> Result<String, GoamlError> {
    let exponent = currency_exponent(&entity.currency_code_local);
    for movement in movements {
        if movement.amount_minor / 10u64.pow(exponent) > AMOUNT_MAJOR_MAX {
            return Err(GoamlError::AmountOutOfRange {
                transfer_id: movement.transfer_id,
            });
        }
    }
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer.create_element("report").write_inner_content(|w| {
        header(w, entity, case, report_at_s)?;
        if movements.is_empty() {
            activity(w, case, person)?;
        } else {
            for movement in movements {
                transaction(w, entity, person, movement, exponent)?;
            }
        }
        w.create_element("report_indicators")
            .write_inner_content(|w| {
                for code in &entity.report_indicators {
                    text(w, "indicator", code)?;
                }
                Ok(())
            })?;
        Ok(())
    })?;
    // quick-xml writes only what it was given as `&str`, so this holds; an error, not an
    // empty report, if it ever did not.
    String::from_utf8(writer.into_inner()).map_err(|_| GoamlError::NotUtf8)
}

type Xml = Writer<Vec<u8>>;

fn text(w: &mut Xml, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn header(
    w: &mut Xml,
    entity: &ReportingEntity,
    case: &ReportedCase,
    report_at_s: u64,
) -> io::Result<()> {
    text(w, "rentity_id", &entity.rentity_id.to_string())?;
    text(w, "rentity_branch", &entity.rentity_branch)?;
    // E: submitted electronically.
    text(w, "submission_code", "E")?;
    text(w, "report_code", "STR")?;
    text(
        w,
        "entity_reference",
        &format!("croupier-case-{}", case.case_id),
    )?;
    text(w, "report_date", &sql_date(report_at_s))?;
    text(w, "currency_code_local", &entity.currency_code_local)?;
    text(w, "reporting_user_code", &entity.reporting_user_code)?;
    address(w, "location", &entity.location)?;
    text(w, "reason", &clip(&reason(case), COMMENT_CHARS_MAX))?;
    let action = case.decision.as_deref().unwrap_or("undecided");
    text(w, "action", &clip(action, COMMENT_CHARS_MAX))
}

fn reason(case: &ReportedCase) -> String {
    let ruleset = match case.ruleset_version.as_str() {
        "" => String::new(),
        version => format!(", rule set {version}"),
    };
    let mut reason = format!(
        "Case {} opened {} by {}: {} (score {}{ruleset}).",
        case.case_id,
        sql_date(case.opened_at_s),
        case.opened_by,
        case.reasons.join(", "),
        case.score,
    );
    for note in &case.notes {
        reason.push('\n');
        reason.push_str(note);
    }
    reason
}

fn address(w: &mut Xml, name: &str, address: &Address) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        text(w, "address_type", &address.address_type)?;
        text(w, "address", &address.address)?;
        text(w, "city", &address.city)?;
        text(w, "country_code", &address.country_code)
    })?;
    Ok(())
}

fn transaction(
    w: &mut Xml,
    entity: &ReportingEntity,
    person: &ReportedPerson,
    movement: &Movement,
    exponent: u32,
) -> io::Result<()> {
    let number = clip(
        &movement.transfer_id.to_string(),
        TRANSACTION_NUMBER_CHARS_MAX,
    );
    let description = format!(
        "{} (ledger transfer {}, other account {})",
        movement.kind, movement.transfer_id, movement.counterparty_account
    );
    w.create_element("transaction").write_inner_content(|w| {
        text(w, "transactionnumber", &number)?;
        text(
            w,
            "transaction_location",
            &clip(&entity.rentity_branch, LOCATION_CHARS_MAX),
        )?;
        text(w, "transaction_description", &description)?;
        text(w, "date_transaction", &sql_date(movement.at_s))?;
        text(w, "transmode_code", &entity.transmode_code)?;
        text(w, "amount_local", &decimal(movement.amount_minor, exponent))?;
        let player_country = person.residence.as_deref();
        let entity_country = entity.location.country_code.as_str();
        match movement.direction {
            Direction::FromPlayer => {
                side(w, "from", entity, Party::Person(person), player_country)?;
                side(w, "to", entity, Party::Operator, Some(entity_country))
            }
            Direction::ToPlayer => {
                side(w, "from", entity, Party::Operator, Some(entity_country))?;
                side(w, "to", entity, Party::Person(person), player_country)
            }
        }
    })?;
    Ok(())
}

enum Party<'a> {
    Person(&'a ReportedPerson),
    Operator,
}

/// `t_from` or `t_to`: funds code, the party, its country (the entity's when the player's
/// residence is unknown: the schema requires one).
fn side(
    w: &mut Xml,
    which: &str,
    entity: &ReportingEntity,
    party: Party<'_>,
    country: Option<&str>,
) -> io::Result<()> {
    let country = country.unwrap_or(&entity.location.country_code);
    w.create_element(format!("t_{which}").as_str())
        .write_inner_content(|w| {
            text(w, &format!("{which}_funds_code"), &entity.funds_code)?;
            match party {
                Party::Person(person) => t_person(w, &format!("{which}_person"), person)?,
                Party::Operator => {
                    w.create_element(format!("{which}_entity").as_str())
                        .write_inner_content(|w| {
                            text(
                                w,
                                "name",
                                &clip(&entity.operator_name, ENTITY_NAME_CHARS_MAX),
                            )
                        })?;
                }
            }
            text(w, &format!("{which}_country"), country)
        })?;
    Ok(())
}

/// The player as a `t_person`: a verified name is split at its last space (goAML wants first
/// and last names apart); an unverified player is `UNKNOWN UNKNOWN` with the username as alias.
fn t_person(w: &mut Xml, name: &str, person: &ReportedPerson) -> io::Result<()> {
    let (first, last) = split_name(person.full_name.as_deref());
    w.create_element(name).write_inner_content(|w| {
        text(w, "first_name", &clip(first, NAME_CHARS_MAX))?;
        text(w, "last_name", &clip(last, NAME_CHARS_MAX))?;
        if let Some(birth) = person.birth_date {
            text(w, "birthdate", &format!("{birth}T00:00:00"))?;
        }
        text(w, "alias", &clip(&person.username, NAME_CHARS_MAX))?;
        if let Some(residence) = &person.residence {
            text(w, "residence", residence)?;
        }
        text(w, "comments", &format!("player id {}", person.player_id))
    })?;
    Ok(())
}

fn split_name(full_name: Option<&str>) -> (&str, &str) {
    let name = full_name.map(str::trim).filter(|name| !name.is_empty());
    match name {
        None => ("UNKNOWN", "UNKNOWN"),
        Some(name) => match name.rsplit_once(char::is_whitespace) {
            Some((first, last)) if !first.trim().is_empty() => (first.trim(), last),
            _ => (name, name),
        },
    }
}

/// No movement in the local currency: the player is reported as a party of an activity.
fn activity(w: &mut Xml, case: &ReportedCase, person: &ReportedPerson) -> io::Result<()> {
    w.create_element("activity").write_inner_content(|w| {
        w.create_element("report_parties")
            .write_inner_content(|w| {
                w.create_element("report_party").write_inner_content(|w| {
                    t_person(w, "person", person)?;
                    if let Some(residence) = &person.residence {
                        text(w, "country", residence)?;
                    }
                    text(w, "is_suspected", "true")?;
                    text(
                        w,
                        "reason",
                        &clip(&case.reasons.join(", "), COMMENT_CHARS_MAX),
                    )
                })?;
                Ok(())
            })?;
        Ok(())
    })?;
    Ok(())
}

/// At most `chars_max` characters, cut on a character boundary.
fn clip(text: &str, chars_max: usize) -> String {
    text.chars().take(chars_max).collect()
}

/// `sql_date`: an `xs:dateTime` without a zone (goAML's dates are the reporting entity's
/// wall clock; ours are UTC, which the report's reason does not need to say twice).
fn sql_date(unix_s: u64) -> String {
    let date = CivilDate::from_unix_s(unix_s);
    let second_of_day = unix_s % SECONDS_PER_DAY;
    format!(
        "{date}T{:02}:{:02}:{:02}",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests;
