//! Table events on the feed as JSON: one flat object per event, fields present when the event
//! kind has them (the live push will send the same shapes).

use croupier_core::tables::{round_parts, SpotStake, TableEvent, TableEventKind};
use serde::Serialize;

use crate::wire::IdOut;

#[derive(Debug, Default, Serialize)]
pub struct TableEventOut {
    pub table_id: u32,
    pub round_id: u64,
    /// The table's own event number (round-level events only): what a live client resumes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// SHA-256 of the server seed, hex (round_opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// Ledger time (ns) at which betting closes (round_opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bet_id: Option<IdOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player_id: Option<IdOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spots: Option<Vec<SpotOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stake: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid: Option<u64>,
    /// The player's available balance after the bet or its settlement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stakes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_total: Option<u128>,
    /// The revealed server seed, hex (round_drawn of an RNG round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_seed: Option<String>,
    /// The studio's Ed25519 signature of the result, hex (round_drawn of a studio round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub studio_signature: Option<String>,
    /// The game's encoding of the outcome, hex (round_drawn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Per spot, the return per unit staked in units of 1/10,000 (round_drawn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returns: Option<Vec<u64>>,
}

#[derive(Debug, Serialize)]
pub struct SpotOut {
    pub spot: u16,
    pub amount: u64,
}

fn spots_out(spots: &[SpotStake]) -> Vec<SpotOut> {
    spots
        .iter()
        .map(|s| SpotOut {
            spot: s.spot,
            amount: s.amount,
        })
        .collect()
}

pub fn table_event_out(event: &TableEvent) -> TableEventOut {
    let base = TableEventOut {
        table_id: round_parts(event.round_id).0,
        round_id: event.round_id,
        ..TableEventOut::default()
    };
    match &event.kind {
        TableEventKind::RoundOpened {
            seq,
            commitment,
            closes_at_ns,
        } => TableEventOut {
            seq: Some(*seq),
            commitment: Some(hex::encode(commitment)),
            closes_at: Some(*closes_at_ns),
            ..base
        },
        TableEventKind::BetPlaced {
            bet_id,
            player_id,
            spots,
            stake,
            balance,
        } => TableEventOut {
            bet_id: Some(IdOut(*bet_id)),
            player_id: Some(IdOut(*player_id)),
            spots: Some(spots_out(spots)),
            stake: Some(*stake),
            balance: Some(*balance),
            ..base
        },
        TableEventKind::BetsTotal {
            seq,
            bets,
            stakes_total,
        }
        | TableEventKind::RoundClosed {
            seq,
            bets,
            stakes_total,
        } => TableEventOut {
            seq: Some(*seq),
            bets: Some(*bets),
            stakes_total: Some(*stakes_total),
            ..base
        },
        TableEventKind::RoundDrawn { seq, draw } => TableEventOut {
            seq: Some(*seq),
            server_seed: draw.server_seed().map(hex::encode),
            studio_signature: draw.studio_signature().map(hex::encode),
            outcome: Some(hex::encode(&draw.outcome)),
            returns: Some(draw.returns.clone()),
            ..base
        },
        TableEventKind::BetSettled {
            bet_id,
            player_id,
            stake,
            paid,
            balance,
        } => TableEventOut {
            bet_id: Some(IdOut(*bet_id)),
            player_id: Some(IdOut(*player_id)),
            stake: Some(*stake),
            paid: Some(*paid),
            balance: Some(*balance),
            ..base
        },
        TableEventKind::RoundFinished {
            seq,
            bets,
            stakes_total,
            paid_total,
            ..
        } => TableEventOut {
            seq: Some(*seq),
            bets: Some(*bets),
            stakes_total: Some(*stakes_total),
            paid_total: Some(*paid_total),
            ..base
        },
    }
}
