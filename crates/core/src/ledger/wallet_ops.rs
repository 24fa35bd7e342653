//! The seamless-wallet layer: bet, win and rollback keyed by the provider's transaction id.
//!
//! Every decided answer is stored under its transaction id (a history record), so a retry with
//! the same body gets the original answer (balance included) and changes nothing; a different
//! body under the same id answers `TransactionConflict`. Answers that only say the request
//! cannot be judged yet (player not found, not a player, wrong ledger, zero bet) are not
//! stored: the same request may succeed once the account exists.

use super::{available_balance, Ledger, Movement};
use crate::history::{HistoryRecord, WalletRecord};
use crate::ids::{player_of_wallet, wallet_transfer_id, AccountId, LedgerCode, TransferId};
use crate::players::PlayerId;
use crate::types::{AccountFlags, AccountKind, Transfer, TransferFlags};
use crate::wallet::{WalletBet, WalletEntry, WalletOutcome, WalletRollback, WalletWin};

use WalletOutcome as O;

impl Ledger {
    pub(super) fn wallet_bet(&mut self, bet: &WalletBet) -> WalletOutcome {
        assert_keys(bet.check_keys());
        if let Some(entry) = self.wallet_entry(&bet.transaction_id) {
            return match entry {
                WalletEntry::Bet { request, outcome } if request == bet => *outcome,
                WalletEntry::Tombstone { .. } => O::BetAlreadyRolledBack,
                _ => O::TransactionConflict,
            };
        }
        let player_slot = match self.player_slot(bet.player_id, Some(bet.ledger)) {
            Ok(slot) => slot,
            Err(outcome) => return outcome,
        };
        if bet.amount == 0 {
            return O::AmountMustNotBeZero;
        }
        let outcome = self.decide_bet(bet, player_slot);
        let entry = WalletEntry::Bet {
            request: bet.clone(),
            outcome,
        };
        self.store_wallet(bet.transaction_id.clone(), entry);
        outcome
    }

    fn decide_bet(&mut self, bet: &WalletBet, player_slot: u32) -> WalletOutcome {
        let house_slot = self.ensure_house_account(bet.ledger);
        let player = self.account_at(player_slot);
        if player.flags.contains(AccountFlags::CLOSED) {
            return O::PlayerAccountClosed;
        }
        // Judged by the wallet's owner, whether the call named the player or the account.
        let owner = self.owner_of(player_slot);
        if let Err(refusal) = self.check_play(owner, bet.ledger, bet.amount) {
            return O::Refused(refusal);
        }
        let balance = available_balance(self.account_at(player_slot));
        if u128::from(bet.amount) > balance {
            return O::InsufficientFunds { balance };
        }
        let transfer_id = self.wallet_transfer(player_slot, house_slot, bet.amount);
        self.record_wager(owner, bet.ledger, bet.amount);
        O::Ok {
            balance: self.balance_of(player_slot),
            transfer_id: Some(transfer_id),
        }
    }

    /// Wins are accepted whatever the player's state (closed included). A win of zero settles
    /// the round without moving money.
    pub(super) fn wallet_win(&mut self, win: &WalletWin) -> WalletOutcome {
        assert_keys(win.check_keys());
        if let Some(entry) = self.wallet_entry(&win.transaction_id) {
            return match entry {
                WalletEntry::Win { request, outcome } if request == win => *outcome,
                _ => O::TransactionConflict,
            };
        }
        let player_slot = match self.player_slot(win.player_id, Some(win.ledger)) {
            Ok(slot) => slot,
            Err(outcome) => return outcome,
        };
        let house_slot = self.ensure_house_account(win.ledger);
        let transfer_id =
            (win.amount > 0).then(|| self.wallet_transfer(house_slot, player_slot, win.amount));
        self.record_return(self.owner_of(player_slot), win.ledger, win.amount);
        self.entry
            .settled
            .insert((win.player_id, win.round_id.clone()));
        let outcome = O::Ok {
            balance: self.balance_of(player_slot),
            transfer_id,
        };
        let entry = WalletEntry::Win {
            request: win.clone(),
            outcome,
        };
        self.store_wallet(win.transaction_id.clone(), entry);
        outcome
    }

    /// Reverses an unsettled bet exactly once; accepted whatever the player's state.
    pub(super) fn wallet_rollback(&mut self, rollback: &WalletRollback) -> WalletOutcome {
        assert_keys(rollback.check_keys());
        if let Some(entry) = self.wallet_entry(&rollback.transaction_id) {
            return match entry {
                WalletEntry::Rollback { request, outcome } if request == rollback => *outcome,
                _ => O::TransactionConflict,
            };
        }
        let player_slot = match self.player_slot(rollback.player_id, None) {
            Ok(slot) => slot,
            Err(outcome) => return outcome,
        };
        let outcome = self.decide_rollback(rollback, player_slot);
        let entry = WalletEntry::Rollback {
            request: rollback.clone(),
            outcome,
        };
        self.store_wallet(rollback.transaction_id.clone(), entry);
        outcome
    }

    fn decide_rollback(&mut self, rollback: &WalletRollback, player_slot: u32) -> WalletOutcome {
        let unchanged = O::Ok {
            balance: self.balance_of(player_slot),
            transfer_id: None,
        };
        let target = &rollback.rolled_back_transaction_id;
        if *target == rollback.transaction_id {
            return O::RollbackTargetInvalid;
        }
        let Some(entry) = self.wallet_entry(target) else {
            // The rollback overtook its bet: remember it so the late bet is refused.
            let tombstone = WalletEntry::Tombstone {
                player_id: rollback.player_id,
                round_id: rollback.round_id.clone(),
                rollback_transaction_id: rollback.transaction_id.clone(),
            };
            self.store_wallet(target.clone(), tombstone);
            return unchanged;
        };
        let (amount, ledger) = match entry {
            WalletEntry::Tombstone { player_id, .. } if *player_id == rollback.player_id => {
                return unchanged
            }
            WalletEntry::Bet { request, .. }
                if request.player_id == rollback.player_id
                    && request.round_id != rollback.round_id =>
            {
                // Settlement is judged by the rollback's round, so a wrong round could refund
                // a bet whose own round a win already settled: refuse, whatever the bet's state.
                return O::RoundMismatch;
            }
            WalletEntry::Bet { request, outcome } if request.player_id == rollback.player_id => {
                if !outcome.moved_money() || self.is_rolled_back(target) {
                    // The bet was refused and moved nothing, or it is already reversed.
                    return unchanged;
                }
                (request.amount, request.ledger)
            }
            _ => return O::RollbackTargetInvalid,
        };
        if self.is_settled(rollback.player_id, &rollback.round_id) {
            return O::BetAlreadySettled;
        }
        self.entry.rolled_back.insert(target.clone());
        // A registered player's refund goes to the wallet the bet came from.
        let player_slot = self
            .player_slot(rollback.player_id, Some(ledger))
            .expect("the bet's wallet exists");
        let house_slot = self.ensure_house_account(ledger);
        let transfer_id = self.wallet_transfer(house_slot, player_slot, amount);
        self.record_return(self.owner_of(player_slot), ledger, amount);
        O::Ok {
            balance: self.balance_of(player_slot),
            transfer_id: Some(transfer_id),
        }
    }

    /// Records a wallet decision: findable for the rest of this entry, persisted after it.
    fn store_wallet(&mut self, key: String, entry: WalletEntry) {
        assert!(
            !self.undo.active,
            "wallet calls are never part of a linked chain"
        );
        let previous = self.entry.wallet.insert(key.clone(), entry.clone());
        assert!(previous.is_none(), "wallet key stored twice in one entry");
        let timestamp = self.clock;
        self.entry.records.push(HistoryRecord::Wallet(WalletRecord {
            key,
            entry,
            timestamp,
        }));
    }

    /// Finds a player account for a wallet call (and checks its ledger when the call has one).
    fn player_slot(
        &self,
        player_id: AccountId,
        ledger: Option<LedgerCode>,
    ) -> Result<u32, WalletOutcome> {
        let account_id = match crate::ids::player_sequence(player_id) {
            None => player_id,
            // A registered player: the wallet in the call's currency (the first without one).
            Some(_) => {
                let player = self.directory.player(player_id).ok_or(O::PlayerNotFound)?;
                match ledger {
                    Some(ledger) => player.wallet(ledger).ok_or(O::LedgerMismatch)?,
                    None => player.first_wallet().1,
                }
            }
        };
        let slot = self.slot_of_account(account_id).ok_or(O::PlayerNotFound)?;
        let account = self.account_at(slot);
        if account.kind != AccountKind::Player {
            return Err(O::NotAPlayerAccount);
        }
        if ledger.is_some_and(|ledger| ledger != account.ledger) {
            return Err(O::LedgerMismatch);
        }
        Ok(slot)
    }

    /// The registered player whose wallet this is (an account that is no player's wallet is
    /// its own id, which has no compliance state).
    fn owner_of(&self, player_slot: u32) -> PlayerId {
        let account = self.account_at(player_slot).id;
        player_of_wallet(account).unwrap_or(account)
    }

    pub(super) fn balance_of(&self, player_slot: u32) -> u128 {
        available_balance(self.account_at(player_slot))
    }

    /// Moves `amount` between a player and the house as a posted transfer with the next wallet
    /// id. Callers have decided it may happen; the house has no limits and the player side is
    /// only ever debited after a balance check.
    pub(super) fn wallet_transfer(
        &mut self,
        debit_slot: u32,
        credit_slot: u32,
        amount: u64,
    ) -> TransferId {
        assert!(amount > 0);
        let id = wallet_transfer_id(self.wallet_sequence);
        self.wallet_sequence += 1;
        let timestamp = self.next_timestamp();
        let debit = self.account_at(debit_slot);
        let credit = self.account_at(credit_slot);
        assert_eq!(debit.ledger, credit.ledger);
        let transfer = Transfer {
            id,
            debit_account_id: debit.id,
            credit_account_id: credit.id,
            amount,
            ledger: debit.ledger,
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
            timestamp,
        };
        let movement = Movement::posted(u128::from(amount));
        self.insert_transfer(transfer, [debit_slot, credit_slot], 0, movement);
        id
    }
}

/// Keys are checked by the API before proposing and by the log decoder; a bad key here is a
/// caller bug, and storing it would make the history record undecodable.
fn assert_keys(checked: Result<(), crate::wallet::WalletKeyError>) {
    if let Err(error) = checked {
        panic!("wallet command with an invalid key reached the ledger: {error}");
    }
}
