//! Helpers shared by the ledger's integration tests.
#![allow(dead_code)]

use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateAccountResult, CreateTransferResult,
    LedgerCode, MemoryLedger, NewAccount, NewTransfer, TransferFlags, WalletBet, WalletOutcome,
    WalletRollback, WalletWin,
};

pub const SECOND_NS: u64 = 1_000_000_000;
/// A plausible wall-clock start (2025-01-01) so tests look like real entries.
pub const T0: u64 = 1_735_689_600 * SECOND_NS;

pub fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

pub fn usd() -> LedgerCode {
    LedgerCode::parse("USD").unwrap()
}

pub fn account(id: u128, kind: AccountKind) -> NewAccount {
    NewAccount {
        id,
        ledger: eur(),
        kind,
        flags: AccountFlags::empty(),
    }
}

pub fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

pub fn pending(id: u128, debit: u128, credit: u128, amount: u64, timeout_s: u32) -> NewTransfer {
    NewTransfer {
        flags: TransferFlags::PENDING,
        timeout_s,
        ..transfer(id, debit, credit, amount)
    }
}

pub fn post(id: u128, pending_id: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        flags: TransferFlags::POST_PENDING_TRANSFER,
        pending_id,
        ..transfer(id, 0, 0, amount)
    }
}

pub fn void(id: u128, pending_id: u128) -> NewTransfer {
    NewTransfer {
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        pending_id,
        ..transfer(id, 0, 0, 0)
    }
}

pub fn linked(mut t: NewTransfer) -> NewTransfer {
    t.flags.insert(TransferFlags::LINKED);
    t
}

/// A ledger driven by an explicit clock, one entry per call.
pub struct Harness {
    pub ledger: MemoryLedger,
    pub now: u64,
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            ledger: MemoryLedger::new(),
            now: T0,
        }
    }

    /// A ledger with a system "bank" account (no limits) and these player accounts, each
    /// funded with `funds` from the bank.
    pub fn with_players(players: &[u128], funds: u64) -> Self {
        let mut h = Harness::new();
        let mut accounts = vec![account(BANK, AccountKind::System)];
        accounts.extend(players.iter().map(|&p| account(p, AccountKind::Player)));
        h.accounts_ok(accounts);
        if funds > 0 {
            let deposits = players
                .iter()
                .enumerate()
                .map(|(i, &p)| transfer(9_000_000 + i as u128, BANK, p, funds))
                .collect();
            assert!(h
                .transfers(deposits)
                .iter()
                .all(|r| *r == CreateTransferResult::Ok));
        }
        h
    }

    pub fn apply(&mut self, commands: Vec<Command>) -> Vec<CommandResult> {
        self.now += SECOND_NS;
        let results = self.ledger.apply(self.now, &commands);
        self.ledger
            .check_invariants()
            .expect("invariants hold after every entry");
        results
    }

    pub fn advance_s(&mut self, seconds: u64) {
        self.now += seconds * SECOND_NS;
    }

    pub fn accounts(&mut self, items: Vec<NewAccount>) -> Vec<CreateAccountResult> {
        match self.apply(vec![Command::CreateAccounts(items)]).pop() {
            Some(CommandResult::Accounts(results)) => results,
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn accounts_ok(&mut self, items: Vec<NewAccount>) {
        let results = self.accounts(items);
        assert!(
            results.iter().all(|r| *r == CreateAccountResult::Ok),
            "{results:?}"
        );
    }

    pub fn transfers(&mut self, items: Vec<NewTransfer>) -> Vec<CreateTransferResult> {
        match self.apply(vec![Command::CreateTransfers(items)]).pop() {
            Some(CommandResult::Transfers(results)) => results,
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn transfer(&mut self, item: NewTransfer) -> CreateTransferResult {
        self.transfers(vec![item])[0]
    }

    pub fn wallet(&mut self, command: Command) -> WalletOutcome {
        match self.apply(vec![command]).pop() {
            Some(CommandResult::Wallet(outcome)) => outcome,
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn bet(&mut self, tx: &str, player: u128, round: &str, amount: u64) -> WalletOutcome {
        self.wallet(Command::WalletBet(bet(tx, player, round, amount)))
    }

    pub fn win(&mut self, tx: &str, player: u128, round: &str, amount: u64) -> WalletOutcome {
        self.wallet(Command::WalletWin(win(tx, player, round, amount)))
    }

    pub fn rollback(&mut self, tx: &str, player: u128, round: &str, target: &str) -> WalletOutcome {
        self.wallet(Command::WalletRollback(rollback(tx, player, round, target)))
    }

    pub fn balances(&self, id: u128) -> [u128; 4] {
        let a = self.ledger.account(id).expect("account exists");
        [
            a.debits_pending,
            a.debits_posted,
            a.credits_pending,
            a.credits_posted,
        ]
    }

    pub fn balance(&self, player: u128) -> u128 {
        self.ledger.player_balance(player).expect("player exists").1
    }
}

pub const BANK: u128 = 1;

pub fn bet(tx: &str, player: u128, round: &str, amount: u64) -> WalletBet {
    WalletBet {
        transaction_id: tx.into(),
        player_id: player,
        round_id: round.into(),
        amount,
        ledger: eur(),
    }
}

pub fn win(tx: &str, player: u128, round: &str, amount: u64) -> WalletWin {
    WalletWin {
        transaction_id: tx.into(),
        player_id: player,
        round_id: round.into(),
        amount,
        ledger: eur(),
    }
}

pub fn rollback(tx: &str, player: u128, round: &str, target: &str) -> WalletRollback {
    WalletRollback {
        transaction_id: tx.into(),
        player_id: player,
        round_id: round.into(),
        rolled_back_transaction_id: target.into(),
    }
}
