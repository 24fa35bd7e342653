//! The demo's simulated players: each logs in and bets over HTTP on the node's own listener,
//! with its own session, exactly as a player's browser does (authentication, rate limits,
//! validation and the ledger's checks all apply).
//!
//! Bounded on purpose: one request in flight per bot and a pause of 1.5 to 4 s between bets,
//! so six bots add a few requests a second. They stop before the server does.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::PASSWORD;
use crate::bench_cmd::client::{within, HttpConnection};

const PAUSE_MS_MIN: u64 = 1_500;
const PAUSE_MS_SPREAD: u64 = 2_500;
/// A bot's stakes per spot, in cents, before the table's limits.
const STAKES: [u64; 6] = [10, 20, 50, 100, 200, 500];
const SPOTS_PER_BET_MAX: u64 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The running bots; `stop` ends them.
pub struct Bots {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bots {
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts one bot per username against the node at `addr`.
pub fn spawn(addr: SocketAddr, usernames: Vec<String>) -> Bots {
    let (stop, stopped) = watch::channel(false);
    let tasks = usernames
        .into_iter()
        .enumerate()
        .map(|(n, username)| {
            let bot = Bot {
                addr,
                username,
                rng: ChaCha8Rng::seed_from_u64(seed(n)),
                connection: None,
                token: None,
            };
            tokio::spawn(bot.run(stopped.clone()))
        })
        .collect();
    Bots { stop, tasks }
}

/// Different bets each start and each bot (nothing depends on these being unpredictable).
fn seed(n: usize) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    now ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

struct Bot {
    addr: SocketAddr,
    username: String,
    rng: ChaCha8Rng,
    connection: Option<HttpConnection>,
    token: Option<String>,
}

impl Bot {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        loop {
            let pause = PAUSE_MS_MIN + self.below(PAUSE_MS_SPREAD);
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(Duration::from_millis(pause)) => {}
            }
            if let Err(error) = within(REQUEST_TIMEOUT, self.turn()).await {
                // A closed window, a restart, a full queue: the next turn starts afresh.
                tracing::debug!(bot = %self.username, error = %format!("{error:#}"), "demo bot");
                self.connection = None;
            }
        }
    }

    /// One bet on a random open table.
    async fn turn(&mut self) -> anyhow::Result<()> {
        let token = match self.token.clone() {
            Some(token) => token,
            None => self.login().await?,
        };
        let tables = self.call("GET", "/v1/tables", None, &token).await?;
        let open: Vec<&Value> = tables
            .as_array()
            .context("the table list is not an array")?
            .iter()
            .filter(|table| table["state"] == "open")
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        let table = open[self.below(open.len() as u64) as usize].clone();
        let body = self
            .bet(&table)
            .context("a table without spots or limits")?;
        let path = format!("/v1/tables/{}/bets", table["id"]);
        self.call("POST", &path, Some(body), &token).await?;
        Ok(())
    }

    async fn login(&mut self) -> anyhow::Result<String> {
        let body = json!({"username": self.username, "password": PASSWORD});
        let answer = self
            .call("POST", "/v1/players/login", Some(body), "")
            .await?;
        let token = answer["token"].as_str().context("login without a token")?;
        self.token = Some(token.to_string());
        Ok(token.to_string())
    }

    /// A bet of 1 to 3 distinct spots with stakes within the table's limits.
    fn bet(&mut self, table: &Value) -> Option<Value> {
        let spots = table["spots"].as_array().filter(|s| !s.is_empty())?;
        let (bet_min, bet_max) = (table["bet_min"].as_u64()?, table["bet_max"].as_u64()?);
        let count = 1 + self.below(SPOTS_PER_BET_MAX);
        let mut chosen: Vec<Value> = Vec::new();
        for _ in 0..count {
            let spot = &spots[self.below(spots.len() as u64) as usize];
            if chosen.iter().any(|c| c["bet"] == *spot) {
                continue;
            }
            let stake = STAKES[self.below(STAKES.len() as u64) as usize];
            chosen.push(json!({"bet": spot, "amount": stake.clamp(bet_min, bet_max)}));
        }
        let bet_id = (self.rng.next_u64() >> 1).max(1).to_string();
        Some(json!({"bet_id": bet_id, "round_id": table["round_id"], "spots": chosen}))
    }

    /// One request with the bot's session; the answer's JSON if it is a 200.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> anyhow::Result<Value> {
        if self.connection.is_none() {
            self.connection = Some(HttpConnection::open(self.addr).await?);
        }
        let connection = self.connection.as_mut().expect("opened above");
        let body = body.map(|b| b.to_string().into_bytes());
        let bearer = (!token.is_empty()).then_some(token);
        let answer = connection
            .request_json_as(method, path, body.as_deref(), bearer)
            .await?;
        if answer.status == 401 {
            // The session expired or was revoked: log in again next turn.
            self.token = None;
        }
        if answer.status != 200 {
            let text = String::from_utf8_lossy(&answer.body);
            bail!("{method} {path} answered {}: {text}", answer.status);
        }
        serde_json::from_slice(&answer.body).context("an answer that is not JSON")
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.rng.next_u64() % bound.max(1)
    }
}
