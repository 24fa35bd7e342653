//! The seamless-wallet layer game providers call: bet (player → house), win (house → player)
//! and rollback (reverse an unsettled bet exactly once), keyed by the provider's transaction id.

use crate::ids::{AccountId, LedgerCode, TransferId};

/// Longest provider transaction id or round id, in bytes.
pub const WALLET_KEY_LEN_MAX: usize = 128;

/// Why a transaction id or round id is unusable. Callers (the API) check keys with
/// `check_wallet_key` before proposing: the log codec refuses to carry a bad key, so a command
/// holding one is a caller bug and makes `encode_proposal` and `Ledger::apply` panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WalletKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {WALLET_KEY_LEN_MAX} bytes")]
    TooLong,
}

/// Every wallet key (transaction id, round id) has 1 to `WALLET_KEY_LEN_MAX` bytes.
pub fn check_wallet_key(key: &str) -> Result<(), WalletKeyError> {
    if key.is_empty() {
        return Err(WalletKeyError::Empty);
    }
    if key.len() > WALLET_KEY_LEN_MAX {
        return Err(WalletKeyError::TooLong);
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletBet {
    pub transaction_id: String,
    pub player_id: AccountId,
    pub round_id: String,
    pub amount: u64,
    pub ledger: LedgerCode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletWin {
    pub transaction_id: String,
    pub player_id: AccountId,
    pub round_id: String,
    pub amount: u64,
    pub ledger: LedgerCode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRollback {
    pub transaction_id: String,
    pub player_id: AccountId,
    pub round_id: String,
    pub rolled_back_transaction_id: String,
}

impl WalletBet {
    pub fn check_keys(&self) -> Result<(), WalletKeyError> {
        check_wallet_key(&self.transaction_id)?;
        check_wallet_key(&self.round_id)
    }
}

impl WalletWin {
    pub fn check_keys(&self) -> Result<(), WalletKeyError> {
        check_wallet_key(&self.transaction_id)?;
        check_wallet_key(&self.round_id)
    }
}

impl WalletRollback {
    pub fn check_keys(&self) -> Result<(), WalletKeyError> {
        check_wallet_key(&self.transaction_id)?;
        check_wallet_key(&self.round_id)?;
        check_wallet_key(&self.rolled_back_transaction_id)
    }
}

/// The answer to a wallet call. A repeated transaction id with the same body gets the stored
/// original answer (balance included); with a different body, `TransactionConflict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalletOutcome {
    /// Done. `balance` is the player's available balance right after this call;
    /// `transfer_id` is the ledger transfer made, if money moved.
    Ok {
        balance: u128,
        transfer_id: Option<TransferId>,
    },
    /// The bet exceeds the available balance; nothing moved.
    InsufficientFunds { balance: u128 },
    /// The transaction id was used before with a different body.
    TransactionConflict,
    /// The player account does not exist.
    PlayerNotFound,
    /// The account exists but is not of kind player.
    NotAPlayerAccount,
    /// The request's ledger is not the player account's ledger.
    LedgerMismatch,
    /// The player account is closed (bets only; wins and rollbacks are always accepted).
    PlayerAccountClosed,
    /// A bet whose transaction id was already rolled back (the rollback arrived first).
    BetAlreadyRolledBack,
    /// A rollback of a bet whose round was already settled by a win.
    BetAlreadySettled,
    /// The rolled-back transaction id names a win, the rollback itself, or a bet of another
    /// player.
    RollbackTargetInvalid,
    /// A bet of amount zero. (A win of zero is accepted: providers send it to close a lost
    /// round; it settles the round and moves no money.)
    AmountMustNotBeZero,
    /// The rollback names the player's bet but another round than the bet's: a provider bug
    /// (or a forged call) that must not refund anything.
    RoundMismatch,
    /// Refused by the player's responsible-gambling limits, exclusion or KYC level
    /// (`crate::compliance`); nothing moved.
    Refused(crate::compliance::Refusal),
}

impl WalletOutcome {
    pub fn is_ok(self) -> bool {
        matches!(self, WalletOutcome::Ok { .. })
    }

    /// True when the call moved money (a ledger transfer was made).
    pub fn moved_money(self) -> bool {
        matches!(
            self,
            WalletOutcome::Ok {
                transfer_id: Some(_),
                ..
            }
        )
    }

    /// Stable snake_case code, as the API spells it.
    pub fn code(self) -> &'static str {
        match self {
            WalletOutcome::Ok { .. } => "ok",
            WalletOutcome::InsufficientFunds { .. } => "insufficient_funds",
            WalletOutcome::TransactionConflict => "transaction_conflict",
            WalletOutcome::PlayerNotFound => "player_not_found",
            WalletOutcome::NotAPlayerAccount => "not_a_player_account",
            WalletOutcome::LedgerMismatch => "ledger_mismatch",
            WalletOutcome::PlayerAccountClosed => "player_account_closed",
            WalletOutcome::BetAlreadyRolledBack => "bet_already_rolled_back",
            WalletOutcome::BetAlreadySettled => "bet_already_settled",
            WalletOutcome::RollbackTargetInvalid => "rollback_target_invalid",
            WalletOutcome::AmountMustNotBeZero => "amount_must_not_be_zero",
            WalletOutcome::RoundMismatch => "round_mismatch",
            WalletOutcome::Refused(refusal) => refusal.code(),
        }
    }
}

/// What the ledger remembers under a wallet transaction id: the request and the answer it got,
/// so a retry gets the same answer forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletEntry {
    Bet {
        request: WalletBet,
        outcome: WalletOutcome,
    },
    Win {
        request: WalletWin,
        outcome: WalletOutcome,
    },
    Rollback {
        request: WalletRollback,
        outcome: WalletOutcome,
    },
    /// A rollback named this id before any bet with it arrived: a late bet is refused.
    Tombstone {
        player_id: AccountId,
        round_id: String,
        rollback_transaction_id: String,
    },
}

impl WalletEntry {
    /// The event type this entry is published as.
    pub fn event_type(&self) -> &'static str {
        match self {
            WalletEntry::Bet { .. } => "wallet_bet",
            WalletEntry::Win { .. } => "wallet_win",
            WalletEntry::Rollback { .. } => "wallet_rollback",
            WalletEntry::Tombstone { .. } => "wallet_tombstone",
        }
    }

    /// The answer a request under this entry's id gets (a tombstone answers a late bet).
    pub fn outcome(&self) -> WalletOutcome {
        match self {
            WalletEntry::Bet { outcome, .. }
            | WalletEntry::Win { outcome, .. }
            | WalletEntry::Rollback { outcome, .. } => *outcome,
            WalletEntry::Tombstone { .. } => WalletOutcome::BetAlreadyRolledBack,
        }
    }

    pub fn player_id(&self) -> AccountId {
        match self {
            WalletEntry::Bet { request, .. } => request.player_id,
            WalletEntry::Win { request, .. } => request.player_id,
            WalletEntry::Rollback { request, .. } => request.player_id,
            WalletEntry::Tombstone { player_id, .. } => *player_id,
        }
    }
}
