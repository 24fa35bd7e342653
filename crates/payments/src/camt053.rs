//! ISO 20022 camt.053 bank-to-customer statements: written by the sandbox bank, read by reconciliation.
//!
//! Only the subset PROTOCOLS.md names is written and read: one `Stmt` per document, its account,
//! the opening (`OPBD`) and closing (`CLBD`) booked balances and one booked `Ntry` per movement
//! with its end-to-end id (the node's deposit or withdrawal id) and the bank's reference. A
//! document outside that subset (another message, several statements, a pending entry, an
//! amount in another currency) is refused rather than half read: reconciliation must not
//! balance on a guess.

use std::borrow::Cow;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{Reader, Writer};

use crate::money::{from_bank_amount, to_bank_amount};

/// The only message version read and written.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

/// One account's statement over a date range (dates `YYYY-MM-DD`, both inclusive).
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    /// An IBAN, or another identification (the sandbox: sort code + account number, 14 digits).
    pub account_id: String,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    pub from_date: String,
    pub to_date: String,
    /// Signed: a balance below zero is written as a `DBIT` balance.
    pub opening_minor: i128,
    pub closing_minor: i128,
    pub entries: Vec<Entry>,
}

// Account numbers are personal data: Debug shows only the last four characters.
impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail: String = self.account_id.chars().rev().take(4).collect();
        let tail: String = tail.chars().rev().collect();
        f.debug_struct("Statement")
            .field("account_id", &format_args!("…{tail}"))
            .field("currency", &self.currency)
            .field("from_date", &self.from_date)
            .field("to_date", &self.to_date)
            .field("opening_minor", &self.opening_minor)
            .field("closing_minor", &self.closing_minor)
            .field("entries", &self.entries)
            .finish()
    }
}

/// One booked movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub amount_minor: u64,
    /// True for money in (`CRDT`), false for money out (`DBIT`).
    pub credit: bool,
    /// `YYYY-MM-DD`.
    pub booking_date: String,
    /// The payment's reference as the payer set it.
    pub end_to_end_id: String,
    /// The bank's own id of the payment (`AcctSvcrRef`).
    pub bank_reference: String,
}

impl Statement {
    /// Opening balance plus the entries: equal to `closing_minor` in a statement that balances.
    pub fn computed_closing_minor(&self) -> i128 {
        self.entries.iter().fold(self.opening_minor, |sum, entry| {
            let amount = i128::from(entry.amount_minor);
            if entry.credit {
                sum + amount
            } else {
                sum - amount
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CamtError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("not a camt.053.001.08 document (root {0:?})")]
    NotCamt053(String),
    #[error("more than one Stmt in the document; only one is read")]
    SeveralStatements,
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{field}: {value:?} is not a valid amount in {currency}")]
    BadAmount {
        field: &'static str,
        value: String,
        currency: String,
    },
    #[error("{0} is in another currency than the account")]
    OtherCurrency(&'static str),
    #[error("{field}: {value:?} is not CRDT or DBIT")]
    BadIndicator { field: &'static str, value: String },
    #[error("an entry has status {0:?}; only booked (BOOK) entries are read")]
    NotBooked(String),
    #[error("{0}: not a date (YYYY-MM-DD)")]
    BadDate(&'static str),
}

/// The statement as a camt.053.001.08 document.
pub fn write(statement: &Statement) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = write_document(&mut writer, statement);
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

type XmlWriter = Writer<Vec<u8>>;

fn write_document(w: &mut XmlWriter, s: &Statement) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    // The creation time is the end of the statement's period: `write` stays a pure function.
    let created = format!("{}T23:59:59", s.to_date);
    let id = format!("{}-{}-{}", s.account_id, s.from_date, s.to_date);
    w.create_element("Document")
        .with_attribute(("xmlns", NAMESPACE))
        .write_inner_content(|w| {
            w.create_element("BkToCstmrStmt").write_inner_content(|w| {
                w.create_element("GrpHdr").write_inner_content(|w| {
                    text(w, "MsgId", &id)?;
                    text(w, "CreDtTm", &created)
                })?;
                w.create_element("Stmt").write_inner_content(|w| {
                    text(w, "Id", &id)?;
                    text(w, "CreDtTm", &created)?;
                    w.create_element("FrToDt").write_inner_content(|w| {
                        text(w, "FrDtTm", &format!("{}T00:00:00", s.from_date))?;
                        text(w, "ToDtTm", &created)
                    })?;
                    write_account(w, s)?;
                    write_balance(w, s, "OPBD", s.opening_minor, &s.from_date)?;
                    write_balance(w, s, "CLBD", s.closing_minor, &s.to_date)?;
                    for entry in &s.entries {
                        write_entry(w, s, entry)?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

fn text(w: &mut XmlWriter, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn is_iban(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() > 4
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
}

fn write_account(w: &mut XmlWriter, s: &Statement) -> std::io::Result<()> {
    w.create_element("Acct").write_inner_content(|w| {
        w.create_element("Id").write_inner_content(|w| {
            if is_iban(&s.account_id) {
                text(w, "IBAN", &s.account_id)
            } else {
                w.create_element("Othr")
                    .write_inner_content(|w| text(w, "Id", &s.account_id))?;
                Ok(())
            }
        })?;
        text(w, "Ccy", &s.currency)
    })?;
    Ok(())
}

fn write_amount(w: &mut XmlWriter, currency: &str, minor: u64) -> std::io::Result<()> {
    w.create_element("Amt")
        .with_attribute(("Ccy", currency))
        .write_text_content(BytesText::new(&to_bank_amount(minor, currency)))?;
    Ok(())
}

fn write_balance(
    w: &mut XmlWriter,
    s: &Statement,
    code: &str,
    minor: i128,
    date: &str,
) -> std::io::Result<()> {
    // A balance beyond u64 minor units cannot occur in the sandbox; saturate rather than panic.
    let magnitude = u64::try_from(minor.unsigned_abs()).unwrap_or(u64::MAX);
    w.create_element("Bal").write_inner_content(|w| {
        w.create_element("Tp").write_inner_content(|w| {
            w.create_element("CdOrPrtry")
                .write_inner_content(|w| text(w, "Cd", code))?;
            Ok(())
        })?;
        write_amount(w, &s.currency, magnitude)?;
        text(w, "CdtDbtInd", if minor < 0 { "DBIT" } else { "CRDT" })?;
        w.create_element("Dt")
            .write_inner_content(|w| text(w, "Dt", date))?;
        Ok(())
    })?;
    Ok(())
}

fn write_entry(w: &mut XmlWriter, s: &Statement, entry: &Entry) -> std::io::Result<()> {
    w.create_element("Ntry").write_inner_content(|w| {
        write_amount(w, &s.currency, entry.amount_minor)?;
        text(w, "CdtDbtInd", if entry.credit { "CRDT" } else { "DBIT" })?;
        w.create_element("Sts")
            .write_inner_content(|w| text(w, "Cd", "BOOK"))?;
        w.create_element("BookgDt")
            .write_inner_content(|w| text(w, "Dt", &entry.booking_date))?;
        text(w, "AcctSvcrRef", &entry.bank_reference)?;
        // Mandatory in the schema; the sandbox's movements are all transfers.
        w.create_element("BkTxCd").write_inner_content(|w| {
            w.create_element("Prtry")
                .write_inner_content(|w| text(w, "Cd", "TRF"))?;
            Ok(())
        })?;
        w.create_element("NtryDtls").write_inner_content(|w| {
            w.create_element("TxDtls").write_inner_content(|w| {
                w.create_element("Refs")
                    .write_inner_content(|w| text(w, "EndToEndId", &entry.end_to_end_id))?;
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

/// What the reader collects inside one `Bal` or `Ntry` before checking it.
#[derive(Default)]
struct Partial {
    code: Option<String>,
    amount: Option<String>,
    amount_currency: Option<String>,
    indicator: Option<String>,
    status: Option<String>,
    date: Option<String>,
    end_to_end_id: Option<String>,
    bank_reference: Option<String>,
}

/// Everything read from the document, before checking.
#[derive(Default)]
struct Collected {
    statements: usize,
    account_id: Option<String>,
    currency: Option<String>,
    from: Option<String>,
    to: Option<String>,
    balances: Vec<Partial>,
    entries: Vec<Partial>,
}

/// Reads a camt.053.001.08 statement written by `write` (or a bank keeping to the same subset).
pub fn parse(xml: &str) -> Result<Statement, CamtError> {
    let collected = collect(xml)?;
    check(collected)
}

fn collect(xml: &str) -> Result<Collected, CamtError> {
    // Not trimmed per text event: an entity splits a text into several events, and the
    // spaces around it are the value's. The whole value is trimmed when its element ends.
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text_raw = String::new();
    let mut out = Collected::default();
    loop {
        match reader.read_event() {
            Err(error) => return Err(CamtError::Xml(error.to_string())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(start)) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    check_root(&name, &start)?;
                }
                open(&mut out, &path, &name)?;
                if name == "Amt" {
                    let currency = start
                        .try_get_attribute("Ccy")
                        .map_err(|e| CamtError::Xml(e.to_string()))?
                        .and_then(|a| a.unescape_value().ok().map(Cow::into_owned));
                    if let Some(partial) = current_partial(&mut out, &path) {
                        partial.amount_currency = currency;
                    }
                }
                path.push(name);
                text_raw.clear();
            }
            Ok(Event::Empty(empty)) => {
                let name = String::from_utf8_lossy(empty.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    check_root(&name, &empty)?;
                }
            }
            Ok(Event::Text(t)) => {
                text_raw.push_str(&t.decode().map_err(|e| CamtError::Xml(e.to_string()))?)
            }
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| CamtError::Xml(e.to_string()))?;
                text_raw.push('&');
                text_raw.push_str(&name);
                text_raw.push(';');
            }
            Ok(Event::CData(c)) => {
                let raw = c.decode().map_err(|e| CamtError::Xml(e.to_string()))?;
                text_raw.push_str(&quick_xml::escape::escape(raw));
            }
            Ok(Event::End(_)) => {
                let value = quick_xml::escape::unescape(&text_raw)
                    .map_err(|e| CamtError::Xml(e.to_string()))?
                    .trim()
                    .to_string();
                text_raw.clear();
                store(&mut out, &path, value);
                path.pop();
            }
            Ok(_) => {}
        }
    }
    if out.statements == 0 {
        return Err(CamtError::Missing("BkToCstmrStmt/Stmt"));
    }
    Ok(out)
}

fn check_root(name: &str, start: &quick_xml::events::BytesStart) -> Result<(), CamtError> {
    let namespace = start
        .try_get_attribute("xmlns")
        .ok()
        .flatten()
        .and_then(|a| a.unescape_value().ok().map(Cow::into_owned))
        .unwrap_or_default();
    if name != "Document" || namespace != NAMESPACE {
        return Err(CamtError::NotCamt053(format!("{name} xmlns={namespace}")));
    }
    Ok(())
}

fn under(path: &[String], suffix: &[&str]) -> bool {
    path.len() >= suffix.len() && path[path.len() - suffix.len()..] == *suffix
}

/// An element opens: a new statement, balance or entry starts.
fn open(out: &mut Collected, path: &[String], name: &str) -> Result<(), CamtError> {
    let parent_is_stmt = under(path, &["BkToCstmrStmt", "Stmt"]);
    match name {
        "Stmt" if under(path, &["BkToCstmrStmt"]) => {
            out.statements += 1;
            if out.statements > 1 {
                return Err(CamtError::SeveralStatements);
            }
        }
        "Bal" if parent_is_stmt => out.balances.push(Partial::default()),
        "Ntry" if parent_is_stmt => out.entries.push(Partial::default()),
        _ => {}
    }
    Ok(())
}

/// The balance or entry being read, if the path is inside one.
fn current_partial<'a>(out: &'a mut Collected, path: &[String]) -> Option<&'a mut Partial> {
    match path.get(3).map(String::as_str) {
        Some("Bal") => out.balances.last_mut(),
        Some("Ntry") => out.entries.last_mut(),
        _ => None,
    }
}

/// An element closes with its text: file it by where it is.
fn store(out: &mut Collected, path: &[String], value: String) {
    // path: Document / BkToCstmrStmt / Stmt / ... An element with children has no text of
    // its own: it must not overwrite what its children said (Sts over Sts/Cd).
    if value.is_empty() || path.len() < 4 || path[1] != "BkToCstmrStmt" || path[2] != "Stmt" {
        return;
    }
    let rest: Vec<&str> = path[3..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["Acct", "Id", "IBAN"] | ["Acct", "Id", "Othr", "Id"] => out.account_id = Some(value),
        ["Acct", "Ccy"] => out.currency = Some(value),
        ["FrToDt", "FrDtTm"] => out.from = Some(value),
        ["FrToDt", "ToDtTm"] => out.to = Some(value),
        ["Bal", ..] | ["Ntry", ..] => {
            let Some(partial) = current_partial(out, path) else {
                return;
            };
            match &rest[1..] {
                ["Tp", "CdOrPrtry", "Cd"] => partial.code = Some(value),
                ["Amt"] => partial.amount = Some(value),
                ["CdtDbtInd"] => partial.indicator = Some(value),
                ["Sts", "Cd"] | ["Sts"] => partial.status = Some(value),
                ["Dt", "Dt"] | ["BookgDt", "Dt"] => partial.date = Some(value),
                ["Dt", "DtTm"] | ["BookgDt", "DtTm"] => partial.date = Some(value),
                ["AcctSvcrRef"] => partial.bank_reference = Some(value),
                ["NtryDtls", "TxDtls", "Refs", "EndToEndId"] => partial.end_to_end_id = Some(value),
                _ => {}
            }
        }
        _ => {}
    }
}

/// The date part of `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss`.
fn date_of(value: Option<String>, field: &'static str) -> Result<String, CamtError> {
    let value = value.ok_or(CamtError::Missing(field))?;
    let date = value.get(..10).ok_or(CamtError::BadDate(field))?;
    let b = date.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return Err(CamtError::BadDate(field));
    }
    Ok(date.to_string())
}

/// A partial's amount in minor units, signed by its indicator.
fn amount_of(p: &Partial, currency: &str, field: &'static str) -> Result<i128, CamtError> {
    let text = p.amount.clone().ok_or(CamtError::Missing(field))?;
    if p.amount_currency.as_deref().is_some_and(|c| c != currency) {
        return Err(CamtError::OtherCurrency(field));
    }
    let minor = from_bank_amount(&text, currency).ok_or_else(|| CamtError::BadAmount {
        field,
        value: text,
        currency: currency.to_string(),
    })?;
    match p.indicator.as_deref() {
        Some("CRDT") => Ok(i128::from(minor)),
        Some("DBIT") => Ok(-i128::from(minor)),
        other => Err(CamtError::BadIndicator {
            field,
            value: other.unwrap_or_default().to_string(),
        }),
    }
}

fn check(c: Collected) -> Result<Statement, CamtError> {
    let account_id = c.account_id.ok_or(CamtError::Missing("Acct/Id"))?;
    let currency = c.currency.ok_or(CamtError::Missing("Acct/Ccy"))?;
    let from_date = date_of(c.from, "FrToDt/FrDtTm")?;
    let to_date = date_of(c.to, "FrToDt/ToDtTm")?;
    let balance = |code: &str| c.balances.iter().find(|b| b.code.as_deref() == Some(code));
    let opening = balance("OPBD").ok_or(CamtError::Missing("Bal OPBD"))?;
    let closing = balance("CLBD").ok_or(CamtError::Missing("Bal CLBD"))?;
    let opening_minor = amount_of(opening, &currency, "Bal OPBD")?;
    let closing_minor = amount_of(closing, &currency, "Bal CLBD")?;
    let mut entries = Vec::with_capacity(c.entries.len());
    for partial in c.entries {
        let status = partial.status.clone().unwrap_or_default();
        if status != "BOOK" {
            return Err(CamtError::NotBooked(status));
        }
        let signed = amount_of(&partial, &currency, "Ntry/Amt")?;
        entries.push(Entry {
            amount_minor: u64::try_from(signed.unsigned_abs()).unwrap_or(u64::MAX),
            credit: partial.indicator.as_deref() == Some("CRDT"),
            booking_date: date_of(partial.date, "Ntry/BookgDt")?,
            end_to_end_id: partial.end_to_end_id.unwrap_or_default(),
            bank_reference: partial
                .bank_reference
                .ok_or(CamtError::Missing("Ntry/AcctSvcrRef"))?,
        });
    }
    Ok(Statement {
        account_id,
        currency,
        from_date,
        to_date,
        opening_minor,
        closing_minor,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(account_id: &str, currency: &str) -> Statement {
        Statement {
            account_id: account_id.into(),
            currency: currency.into(),
            from_date: "2025-01-01".into(),
            to_date: "2025-01-31".into(),
            opening_minor: -500,
            closing_minor: 1_234 - 500 - 99,
            entries: vec![
                Entry {
                    amount_minor: 1_234,
                    credit: true,
                    booking_date: "2025-01-02".into(),
                    end_to_end_id: "dep-1 <&>".into(),
                    bank_reference: "pay-1".into(),
                },
                Entry {
                    amount_minor: 99,
                    credit: false,
                    booking_date: "2025-01-03".into(),
                    end_to_end_id: "wd-1".into(),
                    bank_reference: "pay-2".into(),
                },
            ],
        }
    }

    #[test]
    fn a_statement_survives_a_round_trip_and_balances() {
        for statement in [
            sample("GB33BUKB20201555555555", "EUR"),
            sample("20201512345678", "GBP"),
            sample("GB33BUKB20201555555555", "JPY"),
        ] {
            let xml = write(&statement);
            assert!(xml.contains(NAMESPACE));
            let read = parse(&xml).unwrap();
            assert_eq!(read, statement);
            assert_eq!(read.computed_closing_minor(), read.closing_minor);
        }
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        let xml = write(&sample("GB33BUKB20201555555555", "EUR"));
        let other = xml.replace("camt.053.001.08", "camt.052.001.08");
        assert!(matches!(parse(&other), Err(CamtError::NotCamt053(_))));
        let pending = xml.replacen("<Cd>BOOK</Cd>", "<Cd>PDNG</Cd>", 1);
        assert!(matches!(parse(&pending), Err(CamtError::NotBooked(_))));
        let bad = xml.replacen(">12.34<", ">12.345<", 1);
        assert!(matches!(parse(&bad), Err(CamtError::BadAmount { .. })));
        let usd = xml.replacen("Ccy=\"EUR\">12.34", "Ccy=\"USD\">12.34", 1);
        assert!(matches!(parse(&usd), Err(CamtError::OtherCurrency(_))));
        assert!(matches!(parse("<Document"), Err(CamtError::Xml(_))));
        assert!(parse("").is_err());
        let no_close = xml.replace("CLBD", "XXXX");
        assert!(matches!(parse(&no_close), Err(CamtError::Missing(_))));
        let start = xml.find("<Stmt>").unwrap();
        let end = xml.find("</Stmt>").unwrap() + "</Stmt>".len();
        let twice = format!("{}{}", &xml[..end], &xml[start..]);
        assert!(matches!(parse(&twice), Err(CamtError::SeveralStatements)));
    }
}
