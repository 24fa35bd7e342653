//! `croupier cluster`: look at and change the membership of a running cluster through any
//! node's HTTP API (`status`, `add-node`, `remove-node`, `transfer-leader`), and run a cluster
//! of local processes for development and fault drills (`local`, `restart-node`).
//!
//! Exit codes: 0 done, 1 the server refused or could not be reached (its message is printed),
//! 2 bad usage.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::bench_cmd::client::{self, HttpConnection};
use crate::operator_key::{CredentialsRefused, KeyArgs};

pub(crate) mod config;
mod local;
mod process;
mod status;

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Every node's role, term, log position and addresses, as one node sees them.
    Status(StatusArgs),
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    AddNode(AddNodeArgs),
    /// Remove a node from the membership.
    RemoveNode(NodeArgs),
    /// Hand leadership to a node.
    TransferLeader(NodeArgs),
    /// Run a cluster of local `croupier serve` processes in the foreground until Ctrl-C.
    ///
    /// Node i (from 0) has node id i+1, serves HTTP on 127.0.0.1:BASE_PORT+i and peers on
    /// 127.0.0.1:BASE_PORT+100+i; its data is in DIR/node-i, its output in DIR/node-i.log, its
    /// pid in DIR/node-i.pid; DIR/cluster.toml is the membership. Re-running on the same
    /// directory restarts the same cluster.
    Local(local::LocalArgs),
    /// Start node I (from 0) of a `cluster local` directory again, detached.
    ///
    /// For a node that was stopped or killed: it gets the same command line, data directory,
    /// log and pid file as `cluster local` gave it. Returns once the node answers HTTP.
    RestartNode(local::RestartArgs),
}

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Any node's HTTP API: host:port or http://host:port.
    #[arg(long, value_name = "ADDR")]
    server: String,
    /// Give up on an answer after this many seconds [default: 10; 300 for add-node, which
    /// waits until the new node caught up].
    #[arg(long)]
    timeout_s: Option<u64>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's JSON answer as it is.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct AddNodeArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The new node's id.
    #[arg(long)]
    node_id: u64,
    /// The new node's node-to-node address (its --peer-listen).
    #[arg(long, value_name = "ADDR")]
    peer_addr: String,
    /// The new node's HTTP API address (its --listen).
    #[arg(long, value_name = "ADDR")]
    api_addr: String,
}

#[derive(clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The node to act on.
    #[arg(long)]
    node_id: u64,
}

const TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Adding a node waits on the server until the node caught up, which can take a while.
const ADD_NODE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

pub fn run(cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    let (server, request) = match cmd {
        ClusterCommand::Local(args) => return local::run_local(args),
        ClusterCommand::RestartNode(args) => return local::run_restart(args),
        cmd => admin_request(cmd)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(request.send(server)) {
        Ok(output) => {
            std::io::Write::write_all(&mut std::io::stdout(), output.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

/// One admin call: what to send and how to show the answer.
#[derive(Debug)]
struct AdminRequest {
    method: &'static str,
    path: String,
    body: Option<Value>,
    timeout: Duration,
    /// Print the answer's JSON as it is rather than as a table.
    raw: bool,
    /// Printed when the call succeeded (before the new status, when the answer carries one).
    done: String,
}

impl AdminRequest {
    fn new(method: &'static str, path: String, done: String) -> Self {
        AdminRequest {
            method,
            path,
            body: None,
            timeout: TIMEOUT_DEFAULT,
            raw: false,
            done,
        }
    }
}

/// Checks the arguments and turns them into the call to make (no network yet).
fn admin_request(cmd: ClusterCommand) -> anyhow::Result<(ServerArgs, AdminRequest)> {
    let (server, mut call) = match cmd {
        ClusterCommand::Status(args) => {
            let mut call = AdminRequest::new("GET", "/v1/cluster/status".into(), String::new());
            call.raw = args.json;
            (args.server, call)
        }
        ClusterCommand::AddNode(args) => {
            check_node_id(args.node_id)?;
            check_host_port("--peer-addr", &args.peer_addr)?;
            check_host_port("--api-addr", &args.api_addr)?;
            let done = format!("node {} added\n", args.node_id);
            let mut call = AdminRequest::new("POST", "/v1/cluster/nodes".into(), done);
            call.body = Some(json!({
                "node_id": args.node_id, "peer_addr": args.peer_addr, "api_addr": args.api_addr
            }));
            call.timeout = ADD_NODE_TIMEOUT_DEFAULT;
            (args.server, call)
        }
        ClusterCommand::RemoveNode(args) => {
            check_node_id(args.node_id)?;
            let path = format!("/v1/cluster/nodes/{}", args.node_id);
            let done = format!("node {} removed\n", args.node_id);
            (args.server, AdminRequest::new("DELETE", path, done))
        }
        ClusterCommand::TransferLeader(args) => {
            check_node_id(args.node_id)?;
            let done = format!("leadership transferred to node {}\n", args.node_id);
            let mut call = AdminRequest::new("POST", "/v1/cluster/leader".into(), done);
            call.body = Some(json!({"node_id": args.node_id}));
            (args.server, call)
        }
        ClusterCommand::Local(_) | ClusterCommand::RestartNode(_) => {
            unreachable!("run handles the local commands itself")
        }
    };
    if let Some(seconds) = server.timeout_s {
        if seconds == 0 {
            bail!("--timeout-s: must be at least 1");
        }
        call.timeout = Duration::from_secs(seconds);
    }
    client::parse_server_address(&server.server).context("--server")?;
    Ok((server, call))
}

impl AdminRequest {
    /// Sends the call to `server`; the text to print, or an error carrying the server's message.
    async fn send(self, server: ServerArgs) -> anyhow::Result<String> {
        let addr = client::parse_server_address(&server.server)?;
        let sent_key = server.key.key().is_some();
        let body = self.body.as_ref().map(|body| body.to_string().into_bytes());
        let answer = client::within(self.timeout, async {
            let mut connection = HttpConnection::open(addr).await?;
            connection
                .request_json_as(
                    self.method,
                    &self.path,
                    body.as_deref(),
                    server.key.bearer(),
                )
                .await
        })
        .await
        .with_context(|| format!("cannot reach the server at {addr}"))?;
        let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if answer.status >= 400 {
            let mut message = error_message(addr, answer.status, parsed.as_ref(), &answer.body);
            if let Some(refused) = CredentialsRefused::from_status(answer.status, sent_key) {
                message = format!("{message}; {}", refused.hint());
            }
            bail!("{message}");
        }
        match parsed {
            Some(value) if self.raw => Ok(format!("{value}\n")),
            Some(value) if value.get("nodes").is_some() => {
                Ok(format!("{}{}", self.done, status::format_status(&value)?))
            }
            _ => Ok(self.done),
        }
    }
}

/// `{"error","message"}` answers as `server 127.0.0.1:8000 refused (409 not_leader): ...`.
fn error_message(addr: SocketAddr, status: u16, parsed: Option<&Value>, body: &[u8]) -> String {
    let field = |name: &str| {
        parsed
            .and_then(|value| value.get(name))
            .and_then(Value::as_str)
    };
    match (field("error"), field("message")) {
        (Some(code), Some(message)) => {
            format!("server {addr} refused ({status} {code}): {message}")
        }
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
            format!("server {addr} answered {status}: {}", text.trim())
        }
    }
}

fn check_node_id(node_id: u64) -> anyhow::Result<()> {
    if node_id == 0 {
        bail!("--node-id: node ids start at 1");
    }
    Ok(())
}

/// A node's own address must be host:port: the cluster hands it to other nodes as it is.
fn check_host_port(flag: &str, addr: &str) -> anyhow::Result<()> {
    let valid = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid || addr.contains('/') {
        bail!("{flag} {addr:?}: expected host:port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cluster: ClusterCommand,
    }

    fn request_of(argv: &[&str]) -> anyhow::Result<AdminRequest> {
        let cli = Cli::try_parse_from([&["cluster"], argv].concat()).unwrap();
        admin_request(cli.cluster).map(|(_, request)| request)
    }

    #[test]
    fn admin_commands_map_to_the_contract_routes() {
        let status = request_of(&["status", "--server", "127.0.0.1:8000", "--json"]).unwrap();
        assert_eq!(
            (status.method, status.path.as_str(), status.raw),
            ("GET", "/v1/cluster/status", true)
        );
        let add = request_of(&[
            "add-node",
            "--server",
            "http://127.0.0.1:8000",
            "--node-id",
            "4",
            "--peer-addr",
            "127.0.0.1:8103",
            "--api-addr",
            "127.0.0.1:8003",
        ])
        .unwrap();
        assert_eq!(
            (add.method, add.path.as_str()),
            ("POST", "/v1/cluster/nodes")
        );
        assert_eq!(
            add.body.unwrap(),
            json!({"node_id": 4, "peer_addr": "127.0.0.1:8103", "api_addr": "127.0.0.1:8003"})
        );
        assert_eq!(add.timeout, ADD_NODE_TIMEOUT_DEFAULT);
        let remove = request_of(&[
            "remove-node",
            "--server",
            "127.0.0.1:1",
            "--node-id",
            "4",
            "--timeout-s",
            "3",
        ])
        .unwrap();
        assert_eq!(
            (remove.method, remove.path.as_str()),
            ("DELETE", "/v1/cluster/nodes/4")
        );
        assert_eq!(remove.timeout, Duration::from_secs(3));
        let transfer = request_of(&[
            "transfer-leader",
            "--server",
            "127.0.0.1:1",
            "--node-id",
            "2",
        ])
        .unwrap();
        assert_eq!(
            (transfer.method, transfer.body.unwrap()),
            ("POST", json!({"node_id": 2}))
        );
    }

    #[test]
    fn admin_commands_refuse_bad_ids_addresses_and_timeouts() {
        for (argv, complaint) in [
            (
                &["remove-node", "--server", "127.0.0.1:1", "--node-id", "0"][..],
                "--node-id",
            ),
            (&["status", "--server", "localhost"], "--server"),
            (&["status", "--server", "https://a:1"], "--server"),
            (
                &["status", "--server", "127.0.0.1:1", "--timeout-s", "0"],
                "--timeout-s",
            ),
            (
                &[
                    "add-node",
                    "--server",
                    "127.0.0.1:1",
                    "--node-id",
                    "4",
                    "--peer-addr",
                    "a",
                    "--api-addr",
                    "a:1",
                ],
                "--peer-addr",
            ),
            (
                &[
                    "add-node",
                    "--server",
                    "127.0.0.1:1",
                    "--node-id",
                    "4",
                    "--peer-addr",
                    "a:1",
                    "--api-addr",
                    "http://a:1",
                ],
                "--api-addr",
            ),
        ] {
            let error = request_of(argv).map(|_| ()).unwrap_err();
            assert!(
                format!("{error:#}").contains(complaint),
                "{argv:?}: {error:#}"
            );
        }
    }

    #[test]
    fn error_answers_quote_the_servers_code_and_message() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let body = json!({"error": "not_leader", "message": "node 2 leads"});
        assert_eq!(
            error_message(addr, 503, Some(&body), b""),
            "server 127.0.0.1:8000 refused (503 not_leader): node 2 leads"
        );
        assert_eq!(
            error_message(addr, 502, None, b"bad gateway\n"),
            "server 127.0.0.1:8000 answered 502: bad gateway"
        );
    }
}
