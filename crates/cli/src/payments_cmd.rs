//! `croupier payments`: the operator's side of the banks. `reconcile` matches a bank's
//! statement (ISO 20022 camt.053) against what the ledger recorded through that bank's
//! connector, and reports every mismatch: a movement on one side only, an amount or a
//! direction that differs, a statement that does not add up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use croupier_payments::camt053::{self, Statement};
use serde_json::Value;

use crate::operator_key::KeyArgs;

#[derive(Subcommand)]
pub enum PaymentsCommand {
    /// Match a bank statement (camt.053 XML) against the ledger's payments through one
    /// connector; exits 1 if anything does not match.
    Reconcile(ReconcileArgs),
}

#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The bank's statement of the operator's account (camt.053.001.08 XML).
    #[arg(long, value_name = "FILE")]
    statement: PathBuf,
    /// The connector the statement's bank is configured as (`[[payments.connectors]] id`).
    #[arg(long)]
    connector: String,
    /// Any node's HTTP API: host:port or http://host:port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    server: String,
    #[command(flatten)]
    key: KeyArgs,
}

pub fn run(command: PaymentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PaymentsCommand::Reconcile(args) => reconcile(&args),
    }
}

/// One side's view of the movements, by direction and reference ("in 42": a deposit's, "out
/// 42": a withdrawal's; their ids are separate spaces, so a deposit and a withdrawal sharing a
/// number must not be added together): +amount for money in, -amount for money out.
type Movements = BTreeMap<String, i128>;

fn movement_key(money_in: bool, reference: &str) -> String {
    let direction = if money_in { "in" } else { "out" };
    format!("{direction} {reference}")
}

fn reconcile(args: &ReconcileArgs) -> anyhow::Result<ExitCode> {
    let xml = std::fs::read_to_string(&args.statement)
        .with_context(|| format!("reading {}", args.statement.display()))?;
    let statement = camt053::parse(&xml).context("the statement is not camt.053 we can read")?;
    let ledger = ledger_movements(args, &statement)?;
    let mut bank = Movements::new();
    for entry in &statement.entries {
        let signed = i128::from(entry.amount_minor) * if entry.credit { 1 } else { -1 };
        let key = movement_key(entry.credit, &entry.end_to_end_id);
        *bank.entry(key).or_default() += signed;
    }
    let mut mismatches = Vec::new();
    if statement.computed_closing_minor() != statement.closing_minor {
        mismatches.push(format!(
            "statement_unbalanced opening {} + entries = {} but closing is {}",
            statement.opening_minor,
            statement.computed_closing_minor(),
            statement.closing_minor
        ));
    }
    for (reference, amount) in &bank {
        match ledger.get(reference) {
            None => mismatches.push(format!("missing_in_ledger {reference} {amount:+}")),
            Some(recorded) if recorded != amount => mismatches.push(format!(
                "amount_differs {reference} bank {amount:+} ledger {recorded:+}"
            )),
            Some(_) => {}
        }
    }
    for (reference, amount) in &ledger {
        if !bank.contains_key(reference) {
            mismatches.push(format!("missing_in_statement {reference} {amount:+}"));
        }
    }
    let net = |side: &Movements| side.values().sum::<i128>();
    println!(
        "statement {} {} {}..{}: {} entries, net {:+}; ledger ({}): {} movements, net {:+}",
        statement.account_id,
        statement.currency,
        statement.from_date,
        statement.to_date,
        statement.entries.len(),
        net(&bank),
        args.connector,
        ledger.len(),
        net(&ledger)
    );
    for mismatch in &mismatches {
        println!("{mismatch}");
    }
    println!("{} mismatches", mismatches.len());
    Ok(match mismatches.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// The ledger's movements through the connector over the statement's days, in its currency.
fn ledger_movements(args: &ReconcileArgs, statement: &Statement) -> anyhow::Result<Movements> {
    let base = match args.server.starts_with("http://") {
        true => args.server.clone(),
        false => format!("http://{}", args.server),
    };
    let url = format!(
        "{base}/v1/payments/connectors/{}/movements?from={}&to={}",
        args.connector, statement.from_date, statement.to_date
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(&url);
    if let Some(key) = args.key.bearer() {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let mut answer = request.call().with_context(|| format!("asking {base}"))?;
    let status = answer.status().as_u16();
    let text = answer
        .body_mut()
        .read_to_string()
        .context("the node's answer")?;
    let body: Value = serde_json::from_str(&text).context("the node's answer is not JSON")?;
    if status != 200 {
        bail!("the node answered {status}: {body}");
    }
    let mut movements = Movements::new();
    for movement in body["movements"].as_array().into_iter().flatten() {
        if movement["ledger"] != statement.currency.as_str() {
            continue;
        }
        let amount = i128::from(movement["amount"].as_u64().unwrap_or_default());
        let money_in = movement["kind"] == "deposit";
        let signed = if money_in { amount } else { -amount };
        let reference = movement["reference"].as_str().unwrap_or_default();
        *movements
            .entry(movement_key(money_in, reference))
            .or_default() += signed;
    }
    Ok(movements)
}
