//! Table events as the live push sends them: one flat JSON object per round-level event, with
//! the table's own `seq`, the ledger time as RFC 3339, and what a screen needs to show and check
//! the round (the outcome's label, the provably-fair inputs).

use std::time::{Duration, UNIX_EPOCH};

use croupier_core::tables::{
    round_parts, seed_commitment, DrawProof, PlayerId, TableEvent, TableEventKind,
};
use serde::Serialize;

/// What the live push says about one table event, before any player's own part is added.
#[derive(Debug, Default, Serialize)]
pub struct LiveOut {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub table_id: u32,
    pub round_id: u64,
    pub seq: u64,
    /// Ledger time of the event (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// Set on the first message after a gap: the client's `after` was no longer retained.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missed: bool,
    /// `rng` (the certified generator, provably fair) or `studio` (a live studio's signed
    /// result): round_opened, round_drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// SHA-256 of the server seed's hex text (round_opened, round_drawn of an RNG round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<String>,
    /// The provably-fair client seed and nonce the outcome is drawn with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stakes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_total: Option<u128>,
    /// The revealed server seed (round_drawn of an RNG round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_seed: Option<String>,
    /// The studio's Ed25519 signature of the result (round_drawn of a studio round, hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub studio_signature: Option<String>,
    /// The game's encoding of the outcome, hex (round_drawn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The outcome in words, e.g. `17` or `10 x2` (round_drawn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The subscribed player's own result (round_settled, round_voided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player: Option<PlayerResult>,
}

/// One player's bets in a finished round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlayerResult {
    pub bets: u32,
    pub stake: u64,
    pub paid: u64,
    /// The player's available balance after the last of these bets was settled.
    pub balance: u128,
}

impl PlayerResult {
    pub fn add(&mut self, stake: u64, paid: u64, balance: u128) {
        self.bets += 1;
        self.stake += stake;
        self.paid += paid;
        self.balance = balance;
    }
}

pub const SOURCE_RNG: &str = "rng";
pub const SOURCE_STUDIO: &str = "studio";

/// A round opened with a zero commitment is a studio round (the state machine refuses any
/// other commitment at a studio table, and SHA-256 never yields zero for an RNG round).
fn is_studio_commitment(kind: &TableEventKind) -> bool {
    matches!(kind, TableEventKind::RoundOpened { commitment, .. } if *commitment == [0; 32])
}

pub fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// A round-level event as a live message (`None` for the per-bet events, which the hub folds
/// into players' results). `label` names a drawn outcome.
pub fn live_out(
    event: &TableEvent,
    label: impl FnOnce(&[u8]) -> Option<String>,
) -> Option<LiveOut> {
    let (table_id, number) = round_parts(event.round_id);
    let base = |kind, seq| LiveOut {
        kind,
        table_id,
        round_id: event.round_id,
        seq,
        timestamp: rfc3339(event.timestamp),
        ..LiveOut::default()
    };
    let fair = |out: LiveOut| LiveOut {
        source: Some(SOURCE_RNG),
        client_seed: Some(crate::tables::scheduler::client_seed(table_id)),
        nonce: Some(number),
        ..out
    };
    let out = match &event.kind {
        // A studio round commits to nothing (its commitment is zero).
        TableEventKind::RoundOpened {
            seq, closes_at_ns, ..
        } if is_studio_commitment(&event.kind) => LiveOut {
            source: Some(SOURCE_STUDIO),
            closes_at: Some(rfc3339(*closes_at_ns)),
            ..base("round_opened", *seq)
        },
        TableEventKind::RoundOpened {
            seq,
            commitment,
            closes_at_ns,
        } => fair(LiveOut {
            commitment: Some(hex::encode(commitment)),
            closes_at: Some(rfc3339(*closes_at_ns)),
            ..base("round_opened", *seq)
        }),
        TableEventKind::BetsTotal {
            seq,
            bets,
            stakes_total,
        } => totals(base("bets_total", *seq), *bets, *stakes_total),
        TableEventKind::RoundClosed {
            seq,
            bets,
            stakes_total,
        } => totals(base("round_closed", *seq), *bets, *stakes_total),
        TableEventKind::RoundDrawn { seq, draw } => {
            let drawn = LiveOut {
                outcome: Some(hex::encode(&draw.outcome)),
                label: label(&draw.outcome),
                ..base("round_drawn", *seq)
            };
            match &draw.proof {
                DrawProof::ServerSeed(seed) => fair(LiveOut {
                    commitment: Some(hex::encode(seed_commitment(seed))),
                    server_seed: Some(hex::encode(seed)),
                    ..drawn
                }),
                DrawProof::Studio { signature } => LiveOut {
                    source: Some(SOURCE_STUDIO),
                    studio_signature: Some(hex::encode(signature)),
                    ..drawn
                },
            }
        }
        TableEventKind::RoundFinished {
            seq,
            bets,
            stakes_total,
            paid_total,
            ..
        } => LiveOut {
            paid_total: Some(*paid_total),
            ..totals(base(event.event_type(), *seq), *bets, *stakes_total)
        },
        TableEventKind::BetPlaced { .. } | TableEventKind::BetSettled { .. } => return None,
    };
    Some(out)
}

fn totals(out: LiveOut, bets: u32, stakes_total: u64) -> LiveOut {
    LiveOut {
        bets: Some(bets),
        stakes_total: Some(stakes_total),
        ..out
    }
}

/// The settled bet an event reports, if it is one: (player, stake, paid, balance after).
pub fn settled_bet(event: &TableEvent) -> Option<(PlayerId, u64, u64, u128)> {
    match event.kind {
        TableEventKind::BetSettled {
            player_id,
            stake,
            paid,
            balance,
            ..
        } => Some((player_id, stake, paid, balance)),
        _ => None,
    }
}

pub fn to_json(out: &LiveOut) -> String {
    serde_json::to_string(out).expect("live messages serialize")
}
