//! `croupier audit operators --server ADDR`: the operator audit trail of a running node, read
//! page by page and checked here rather than trusted: each action's hash is recomputed from
//! its fields (`croupier_core::operators`, the same layout the node hashed) and must name the
//! action before it. A regulator's copy of the output, with its final head, can later be
//! compared with the head the node shows.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use croupier_core::command::check_operator_key_id;
use croupier_core::operators::{verify_chain, AuditHash, CommandKind, OperatorAction};
use serde_json::Value;

use crate::bench_cmd::client::{parse_server_address, within, HttpConnection};
use crate::operator_key::{CredentialsRefused, KeyArgs};

/// Actions asked for per page (the route's largest page).
const PAGE_ACTIONS: u64 = 1_000;
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct OperatorsArgs {
    /// Any node's HTTP API: host:port or http://host:port.
    #[arg(long, value_name = "ADDR")]
    server: String,
    /// The first action to read; its `prev_hash` is taken on trust (0: the whole trail).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Print only the summary, not one line per action.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    key: KeyArgs,
}

pub fn run(args: OperatorsArgs) -> anyhow::Result<ExitCode> {
    let addr = parse_server_address(&args.server).context("--server")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(walk(addr, &args));
    match outcome {
        Ok(Walked::Whole { actions, head }) => {
            println!(
                "operator trail verified: {actions} actions, head {}",
                hex::encode(head)
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(Walked::Broken { seq }) => {
            eprintln!("operator trail BROKEN at action {seq}: its hash or its link to the action before does not hold");
            Ok(ExitCode::from(1))
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

enum Walked {
    Whole { actions: u64, head: AuditHash },
    Broken { seq: u64 },
}

async fn walk(addr: SocketAddr, args: &OperatorsArgs) -> anyhow::Result<Walked> {
    let mut connection = HttpConnection::open(addr).await?;
    let (mut next, mut prev) = (args.from, None);
    loop {
        let page = fetch_page(&mut connection, args, next).await?;
        let actions = page["actions"]
            .as_array()
            .context("the answer has no actions")?
            .iter()
            .map(action_of)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Some(first) = actions.first() else {
            let head = prev.unwrap_or([0; 32]);
            return Ok(Walked::Whole {
                actions: next - args.from,
                head,
            });
        };
        let start = prev.unwrap_or(first.prev_hash);
        let head = match verify_chain(start, next, &actions) {
            Ok(head) => head,
            Err(seq) => return Ok(Walked::Broken { seq }),
        };
        if !args.quiet {
            actions.iter().for_each(print_action);
        }
        (next, prev) = (next + actions.len() as u64, Some(head));
        let at_the_end = page["next"].is_null() && page["count"].as_u64() == Some(next);
        if at_the_end && page["head"].as_str() != Some(hex::encode(head).as_str()) {
            bail!(
                "the node's head {} is not the hash of its last action",
                page["head"]
            );
        }
        if page["next"].is_null() {
            return Ok(Walked::Whole {
                actions: next - args.from,
                head,
            });
        }
    }
}

async fn fetch_page(
    connection: &mut HttpConnection,
    args: &OperatorsArgs,
    from: u64,
) -> anyhow::Result<Value> {
    let path = format!("/v1/audit/operators?from={from}&limit={PAGE_ACTIONS}");
    let request = connection.request_json_as("GET", &path, None, args.key.bearer());
    let answer = within(PAGE_TIMEOUT, request).await?;
    if answer.status != 200 {
        let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned();
        let mut message = format!("the node answered {}: {body}", answer.status);
        if let Some(refused) =
            CredentialsRefused::from_status(answer.status, args.key.key().is_some())
        {
            message = format!("{message}; {}", refused.hint());
        }
        bail!("{message}");
    }
    serde_json::from_slice(&answer.body).context("the answer is not JSON")
}

/// An action as the API prints it, back into the record the node hashed.
fn action_of(json: &Value) -> anyhow::Result<OperatorAction> {
    let number = |name: &str| {
        json[name]
            .as_u64()
            .with_context(|| format!("action without {name}: {json}"))
    };
    let small = |name: &str| -> anyhow::Result<u32> { Ok(u32::try_from(number(name)?)?) };
    let hash = |name: &str| -> anyhow::Result<AuditHash> {
        let text = json[name]
            .as_str()
            .with_context(|| format!("action without {name}"))?;
        let bytes = hex::decode(text).with_context(|| format!("{name} is not hex"))?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{name} is not 32 bytes"))
    };
    let name = json["action"].as_str().context("action without a kind")?;
    let key_id = json["key_id"].as_str().context("action without key_id")?;
    if !check_operator_key_id(key_id) {
        bail!("action with a malformed key_id {key_id:?}");
    }
    let subject = match json.get("subject").and_then(Value::as_str) {
        Some(text) => text
            .parse()
            .with_context(|| format!("subject {text:?} is not an id"))?,
        None => 0,
    };
    Ok(OperatorAction {
        seq: number("seq")?,
        timestamp: number("timestamp")?,
        key_id: key_id.to_owned(),
        kind: CommandKind::from_name(name).with_context(|| format!("unknown action {name:?}"))?,
        items: small("items")?,
        rejected: small("rejected")?,
        subject,
        transfer_seq_first: number("transfer_seq_first")?,
        transfers: small("transfers")?,
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
    })
}

fn print_action(action: &OperatorAction) {
    let subject = match action.subject {
        0 => String::new(),
        id => format!(" subject {id}"),
    };
    let transfers = match action.transfers {
        0 => String::new(),
        n => format!(
            " transfers #{}..#{}",
            action.transfer_seq_first,
            action.transfer_seq_first + u64::from(n) - 1
        ),
    };
    println!(
        "{:>8}  {}  {:<16} {:<16} items {} refused {}{subject}{transfers}",
        action.seq,
        action.timestamp,
        action.key_id,
        action.kind.name(),
        action.items,
        action.rejected,
    );
}
