//! What the scoring reads from the event feed: one money movement of one player, already
//! reduced by the caller to amounts, kinds and digests (never personal data).

use std::fmt;

/// The longest ledger (currency) code, as in the ledger (`croupier_core::ids`).
pub const LEDGER_CODE_LEN_MAX: usize = 8;

/// A ledger's code (`EUR`, `GBP`, `CHIPS`): 1 to 8 of `A-Z`, `0-9`, `_`. Its
/// [`LedgerCode::to_u64`] is the ledger's own packing (the bytes big-endian, zero-padded), so
/// the caller converts the ledger's code with `LedgerCode::from_u64(code.to_u64())`, without
/// text. Owned and `Copy`: no allocation per event.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerCode([u8; LEDGER_CODE_LEN_MAX]);

impl LedgerCode {
    /// `None` unless `text` is 1 to [`LEDGER_CODE_LEN_MAX`] of `A-Z`, `0-9`, `_`.
    pub fn parse(text: &str) -> Option<LedgerCode> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > LEDGER_CODE_LEN_MAX {
            return None;
        }
        let allowed = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_';
        if !bytes.iter().all(allowed) {
            return None;
        }
        let mut packed = [0u8; LEDGER_CODE_LEN_MAX];
        packed[..bytes.len()].copy_from_slice(bytes);
        Some(LedgerCode(packed))
    }

    /// The ledger's packed form (`croupier_core::ids::LedgerCode::to_u64`).
    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// The inverse of [`LedgerCode::to_u64`]; `None` for a value `parse` cannot produce.
    pub fn from_u64(packed: u64) -> Option<LedgerCode> {
        let bytes = packed.to_be_bytes();
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LEDGER_CODE_LEN_MAX);
        let text = std::str::from_utf8(&bytes[..len]).ok()?;
        LedgerCode::parse(text).filter(|code| code.0 == bytes)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LEDGER_CODE_LEN_MAX);
        // ASCII by construction (`parse` is the only way in), so this never falls back.
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }
}

impl fmt::Debug for LedgerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LedgerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a money event did, from the player's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Money in from outside (a payment provider).
    Deposit,
    /// Money out to outside.
    Withdrawal,
    /// A stake on a game round.
    Bet,
    /// Winnings paid on a game round.
    Win,
    /// A stake given back (round voided, bet rolled back).
    Refund,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 5] = [
        EventKind::Deposit,
        EventKind::Withdrawal,
        EventKind::Bet,
        EventKind::Win,
        EventKind::Refund,
    ];

    /// The name rules compare with: `kind == "withdrawal"`.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Deposit => "deposit",
            EventKind::Withdrawal => "withdrawal",
            EventKind::Bet => "bet",
            EventKind::Win => "win",
            EventKind::Refund => "refund",
        }
    }
}

/// A SHA-256 digest the caller computed of a device id, a payment instrument or a postal
/// address (normalised and salted as it sees fit): the engine compares digests, it never
/// sees the data.
pub type Digest = [u8; 32];

/// One money event of one player, as the scoring sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoneyEvent {
    /// When the ledger applied it (the log entry's time), ns since the Unix epoch.
    pub at_ns: u64,
    pub player_id: u128,
    pub ledger: LedgerCode,
    pub kind: EventKind,
    /// In the ledger's minor units (cents for `EUR`).
    pub amount: u64,
    /// The game round of a bet, win or refund.
    pub round_id: Option<u64>,
    /// For a bet: the outcomes it covers, numbered `0..spot_count` by the game (roulette:
    /// the pockets; a coin flip: 0 and 1). Empty when unknown; then the bet takes no part in
    /// the collusion facts.
    pub spots: Vec<u16>,
    /// For a bet: how many outcomes the round has (0 when unknown).
    pub spot_count: u16,
    pub device_id: Option<Digest>,
    pub instrument_id: Option<Digest>,
    pub address_id: Option<Digest>,
}

impl MoneyEvent {
    /// An event with no round and no digests: a base the caller fills in.
    pub fn new(
        at_ns: u64,
        player_id: u128,
        ledger: LedgerCode,
        kind: EventKind,
        amount: u64,
    ) -> MoneyEvent {
        MoneyEvent {
            at_ns,
            player_id,
            ledger,
            kind,
            amount,
            round_id: None,
            spots: Vec::new(),
            spot_count: 0,
            device_id: None,
            instrument_id: None,
            address_id: None,
        }
    }
}
