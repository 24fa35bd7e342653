//! Binary codec for log entries (`Proposal`) and ledger snapshots.
//!
//! Written by hand, not derived with serde/bincode, because this format *is* the product: every
//! log entry ever written must decode the same way on every replica, on every version, forever
//! (the audit replays it from genesis). So it is little-endian, fixed-width where it can be
//! (a transfer is 86 bytes), versioned by its first byte, deterministic (maps are written in
//! sorted order, objects in creation order, so two replicas with the same state produce
//! byte-identical snapshots) and canonical (the decoder accepts only what the encoder writes).
//! Decoding never panics: any byte string either decodes or yields a `DecodeError`, and it
//! never allocates more than the input could hold.
//!
//! Proposal, version 1:
//! ```text
//! u8 version | u64 timestamp_ns | u32 command count | commands
//! command = u8 tag, then
//!   1 create_accounts:  u32 n, n × (u128 id, u64 ledger, u8 kind, u16 flags)            27 B each
//!   2 create_transfers: u32 n, n × (u128 id, u128 debit, u128 credit, u64 amount,
//!                                   u64 ledger, u16 flags, u128 pending_id, u32 timeout_s) 86 B each
//!   3 wallet_bet, 4 wallet_win: key transaction_id, u128 player, key round, u64 amount, u64 ledger
//!   5 wallet_rollback: key transaction_id, u128 player, key round, key rolled_back_transaction_id
//!   6 tick
//! key = u16 length (1..=WALLET_KEY_LEN_MAX) + UTF-8 bytes
//! ```
//! Snapshot, version 1:
//! ```text
//! u8 version | u64 clock | u64 wallet_sequence | u64 expiry_sequence
//! u32 n accounts (creation order): u128 id, u64 ledger, u8 kind, u16 flags, u16 flags_at_creation,
//!                                  u128 debits_pending, debits_posted, credits_pending, credits_posted,
//!                                  u64 timestamp
//! u64 n transfers (creation order): transfer as in a proposal + u64 timestamp
//! u64 n wallet entries (by key):   key, u8 kind, body (see `write_wallet_entry`)
//! u64 n settled rounds (by player, round): u128 player, key round
//! ```
//! Pending statuses, expiry deadlines, histories and per-ledger sums are not stored: decoding
//! rebuilds them by replaying the transfers and refuses a snapshot whose balances disagree.

use crate::command::{Command, Proposal};
use crate::ids::LedgerCode;
use crate::ledger::{Ledger, SnapshotParts, WalletEntry};
use crate::types::{
    Account, AccountFlags, AccountKind, NewAccount, NewTransfer, Transfer, TransferFlags,
};
use crate::wallet::{check_wallet_key, WalletBet, WalletOutcome, WalletRollback, WalletWin};

pub const PROPOSAL_FORMAT_VERSION: u8 = 1;
pub const SNAPSHOT_FORMAT_VERSION: u8 = 1;

/// Encoded size of one item of a create_accounts command.
pub const ACCOUNT_ENCODED_BYTES: usize = 16 + 8 + 1 + 2;
/// Encoded size of one item of a create_transfers command.
pub const TRANSFER_ENCODED_BYTES: usize = 16 * 3 + 8 + 8 + 2 + 16 + 4;
const SNAPSHOT_ACCOUNT_BYTES: usize = ACCOUNT_ENCODED_BYTES + 2 + 16 * 4 + 8;
const SNAPSHOT_TRANSFER_BYTES: usize = TRANSFER_ENCODED_BYTES + 8;
/// Smallest encodings, used to bound counts by the bytes left before allocating.
const COMMAND_BYTES_MIN: usize = 1;
const WALLET_ENTRY_BYTES_MIN: usize = 2 + 1 + 1 + 16 + 2 + 1;
const SETTLED_ROUND_BYTES_MIN: usize = 16 + 2 + 1;

const TAG_CREATE_ACCOUNTS: u8 = 1;
const TAG_CREATE_TRANSFERS: u8 = 2;
const TAG_WALLET_BET: u8 = 3;
const TAG_WALLET_WIN: u8 = 4;
const TAG_WALLET_ROLLBACK: u8 = 5;
const TAG_TICK: u8 = 6;

const ENTRY_BET: u8 = 1;
const ENTRY_WIN: u8 = 2;
const ENTRY_ROLLBACK: u8 = 3;
const ENTRY_TOMBSTONE: u8 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated input at byte {offset}")]
    Truncated { offset: usize },
    #[error("invalid {what} at byte {offset}")]
    Invalid { what: &'static str, offset: usize },
    #[error("unsupported format version {0}")]
    Version(u8),
    /// The snapshot parsed but does not describe a consistent ledger.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

/// Appends the encoding of `proposal` to `out`.
///
/// Panics if a wallet key is empty or longer than `WALLET_KEY_LEN_MAX`: callers check keys
/// (`WalletBet::check_keys` and friends) before proposing, and such an entry could never be
/// decoded again.
pub fn encode_proposal(proposal: &Proposal, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u8(PROPOSAL_FORMAT_VERSION);
    w.u64(proposal.timestamp_ns);
    w.count_u32(proposal.commands.len());
    for command in &proposal.commands {
        w.command(command);
    }
}

pub fn decode_proposal(bytes: &[u8]) -> Result<Proposal, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != PROPOSAL_FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let timestamp_ns = r.u64()?;
    let count = r.count_u32(COMMAND_BYTES_MIN)?;
    let mut commands = Vec::with_capacity(count);
    for _ in 0..count {
        commands.push(r.command()?);
    }
    r.finish()?;
    Ok(Proposal {
        timestamp_ns,
        commands,
    })
}

/// Appends a deterministic snapshot of `ledger` to `out`.
pub fn encode_ledger(ledger: &Ledger, out: &mut Vec<u8>) {
    out.reserve(
        32 + ledger.accounts.len() * SNAPSHOT_ACCOUNT_BYTES
            + ledger.transfers.len() * SNAPSHOT_TRANSFER_BYTES,
    );
    let mut w = Writer(out);
    w.u8(SNAPSHOT_FORMAT_VERSION);
    w.u64(ledger.clock);
    w.u64(ledger.wallet_sequence);
    w.u64(ledger.expiry_sequence);
    w.count_u32(ledger.accounts.len());
    for entry in &ledger.accounts {
        w.snapshot_account(&entry.account, entry.flags_at_creation);
    }
    w.u64(ledger.transfers.len() as u64);
    for transfer in &ledger.transfers {
        w.snapshot_transfer(transfer);
    }
    let mut wallet: Vec<(&String, &WalletEntry)> = ledger.wallet.iter().collect();
    wallet.sort_unstable_by(|a, b| a.0.cmp(b.0));
    w.u64(wallet.len() as u64);
    for (key, entry) in wallet {
        w.key(key);
        w.wallet_entry(entry);
    }
    let mut settled: Vec<(u128, &str)> = ledger
        .settled_rounds
        .iter()
        .flat_map(|(player, rounds)| rounds.iter().map(move |round| (*player, round.as_str())))
        .collect();
    settled.sort_unstable();
    w.u64(settled.len() as u64);
    for (player, round) in settled {
        w.u128(player);
        w.key(round);
    }
}

pub fn decode_ledger(bytes: &[u8]) -> Result<Ledger, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let clock = r.u64()?;
    let wallet_sequence = r.u64()?;
    let expiry_sequence = r.u64()?;
    let account_count = r.count_u32(SNAPSHOT_ACCOUNT_BYTES)?;
    let mut accounts = Vec::with_capacity(account_count);
    for _ in 0..account_count {
        accounts.push(r.snapshot_account()?);
    }
    let transfer_count = r.count_u64(SNAPSHOT_TRANSFER_BYTES)?;
    let mut transfers = Vec::with_capacity(transfer_count);
    for _ in 0..transfer_count {
        transfers.push(r.snapshot_transfer()?);
    }
    let wallet_count = r.count_u64(WALLET_ENTRY_BYTES_MIN)?;
    let mut wallet: Vec<(String, WalletEntry)> = Vec::with_capacity(wallet_count);
    for _ in 0..wallet_count {
        let offset = r.offset;
        let key = r.key()?;
        if wallet.last().is_some_and(|(previous, _)| *previous >= key) {
            return Err(DecodeError::Invalid {
                what: "wallet key order",
                offset,
            });
        }
        let entry = r.wallet_entry(&key)?;
        wallet.push((key, entry));
    }
    let settled_count = r.count_u64(SETTLED_ROUND_BYTES_MIN)?;
    let mut settled_rounds: Vec<(u128, String)> = Vec::with_capacity(settled_count);
    for _ in 0..settled_count {
        let offset = r.offset;
        let round = (r.u128()?, r.key()?);
        if settled_rounds
            .last()
            .is_some_and(|previous| *previous >= round)
        {
            return Err(DecodeError::Invalid {
                what: "settled round order",
                offset,
            });
        }
        settled_rounds.push(round);
    }
    r.finish()?;
    let parts = SnapshotParts {
        clock,
        wallet_sequence,
        expiry_sequence,
        accounts,
        transfers,
        wallet,
        settled_rounds,
    };
    Ledger::from_snapshot_parts(parts).map_err(DecodeError::Inconsistent)
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u128(&mut self, value: u128) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn count_u32(&mut self, count: usize) {
        self.u32(u32::try_from(count).expect("more than u32::MAX items in one command"));
    }
    fn key(&mut self, key: &str) {
        if let Err(error) = check_wallet_key(key) {
            panic!("wallet key cannot be encoded: {error}");
        }
        self.u16(key.len() as u16);
        self.0.extend_from_slice(key.as_bytes());
    }

    fn command(&mut self, command: &Command) {
        match command {
            Command::CreateAccounts(items) => {
                self.u8(TAG_CREATE_ACCOUNTS);
                self.count_u32(items.len());
                self.0.reserve(items.len() * ACCOUNT_ENCODED_BYTES);
                for a in items {
                    self.u128(a.id);
                    self.u64(a.ledger.to_u64());
                    self.u8(a.kind.to_u8());
                    self.u16(a.flags.bits());
                }
            }
            Command::CreateTransfers(items) => {
                self.u8(TAG_CREATE_TRANSFERS);
                self.count_u32(items.len());
                self.0.reserve(items.len() * TRANSFER_ENCODED_BYTES);
                for t in items {
                    self.transfer_fields(
                        t.id,
                        t.debit_account_id,
                        t.credit_account_id,
                        t.amount,
                        t.ledger,
                    );
                    self.u16(t.flags.bits());
                    self.u128(t.pending_id);
                    self.u32(t.timeout_s);
                }
            }
            Command::WalletBet(bet) => {
                self.u8(TAG_WALLET_BET);
                self.key(&bet.transaction_id);
                self.u128(bet.player_id);
                self.key(&bet.round_id);
                self.u64(bet.amount);
                self.u64(bet.ledger.to_u64());
            }
            Command::WalletWin(win) => {
                self.u8(TAG_WALLET_WIN);
                self.key(&win.transaction_id);
                self.u128(win.player_id);
                self.key(&win.round_id);
                self.u64(win.amount);
                self.u64(win.ledger.to_u64());
            }
            Command::WalletRollback(rollback) => {
                self.u8(TAG_WALLET_ROLLBACK);
                self.key(&rollback.transaction_id);
                self.u128(rollback.player_id);
                self.key(&rollback.round_id);
                self.key(&rollback.rolled_back_transaction_id);
            }
            Command::Tick => self.u8(TAG_TICK),
        }
    }

    fn transfer_fields(
        &mut self,
        id: u128,
        debit: u128,
        credit: u128,
        amount: u64,
        ledger: LedgerCode,
    ) {
        self.u128(id);
        self.u128(debit);
        self.u128(credit);
        self.u64(amount);
        self.u64(ledger.to_u64());
    }

    fn snapshot_account(&mut self, a: &Account, flags_at_creation: AccountFlags) {
        self.u128(a.id);
        self.u64(a.ledger.to_u64());
        self.u8(a.kind.to_u8());
        self.u16(a.flags.bits());
        self.u16(flags_at_creation.bits());
        self.u128(a.debits_pending);
        self.u128(a.debits_posted);
        self.u128(a.credits_pending);
        self.u128(a.credits_posted);
        self.u64(a.timestamp);
    }

    fn snapshot_transfer(&mut self, t: &Transfer) {
        self.transfer_fields(
            t.id,
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.ledger,
        );
        self.u16(t.flags.bits());
        self.u128(t.pending_id);
        self.u32(t.timeout_s);
        self.u64(t.timestamp);
    }

    /// The key is written by the caller; requests do not repeat their transaction id.
    fn wallet_entry(&mut self, entry: &WalletEntry) {
        match entry {
            WalletEntry::Bet {
                request,
                outcome,
                rolled_back,
            } => {
                self.u8(ENTRY_BET);
                self.u128(request.player_id);
                self.key(&request.round_id);
                self.u64(request.amount);
                self.u64(request.ledger.to_u64());
                self.outcome(outcome);
                self.u8(u8::from(*rolled_back));
            }
            WalletEntry::Win { request, outcome } => {
                self.u8(ENTRY_WIN);
                self.u128(request.player_id);
                self.key(&request.round_id);
                self.u64(request.amount);
                self.u64(request.ledger.to_u64());
                self.outcome(outcome);
            }
            WalletEntry::Rollback { request, outcome } => {
                self.u8(ENTRY_ROLLBACK);
                self.u128(request.player_id);
                self.key(&request.round_id);
                self.key(&request.rolled_back_transaction_id);
                self.outcome(outcome);
            }
            WalletEntry::Tombstone {
                player_id,
                round_id,
                rollback_transaction_id,
            } => {
                self.u8(ENTRY_TOMBSTONE);
                self.u128(*player_id);
                self.key(round_id);
                self.key(rollback_transaction_id);
            }
        }
    }

    fn outcome(&mut self, outcome: &WalletOutcome) {
        match *outcome {
            WalletOutcome::Ok {
                balance,
                transfer_id,
            } => {
                self.u8(OUTCOME_OK);
                self.u128(balance);
                match transfer_id {
                    Some(id) => {
                        self.u8(1);
                        self.u128(id);
                    }
                    None => self.u8(0),
                }
            }
            WalletOutcome::InsufficientFunds { balance } => {
                self.u8(OUTCOME_INSUFFICIENT_FUNDS);
                self.u128(balance);
            }
            other => self.u8(plain_outcome_tag(other)),
        }
    }
}

const OUTCOME_OK: u8 = 0;
const OUTCOME_INSUFFICIENT_FUNDS: u8 = 1;
/// Outcomes without fields, by stable tag (2..). Append only.
const PLAIN_OUTCOMES: [WalletOutcome; 9] = [
    WalletOutcome::TransactionConflict,
    WalletOutcome::PlayerNotFound,
    WalletOutcome::NotAPlayerAccount,
    WalletOutcome::LedgerMismatch,
    WalletOutcome::PlayerAccountClosed,
    WalletOutcome::BetAlreadyRolledBack,
    WalletOutcome::BetAlreadySettled,
    WalletOutcome::RollbackTargetInvalid,
    WalletOutcome::AmountMustNotBeZero,
];

fn plain_outcome_tag(outcome: WalletOutcome) -> u8 {
    let index = PLAIN_OUTCOMES
        .iter()
        .position(|plain| *plain == outcome)
        .expect("outcome has fields");
    2 + index as u8
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self
            .offset
            .checked_add(N)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                offset: self.bytes.len(),
            });
        };
        let chunk: [u8; N] = self.bytes[self.offset..end]
            .try_into()
            .expect("length checked");
        self.offset = end;
        Ok(chunk)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.take()?))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// A count whose items (each at least `item_bytes_min`) must fit in what is left, so a
    /// corrupt count cannot make the decoder allocate more than the input could hold.
    fn checked_count(&self, count: u64, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let fits = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(item_bytes_min))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(DecodeError::Truncated {
                offset: self.bytes.len(),
            });
        }
        Ok(count as usize)
    }

    fn count_u32(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let count = self.u32()?;
        self.checked_count(u64::from(count), item_bytes_min)
    }

    fn count_u64(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let count = self.u64()?;
        self.checked_count(count, item_bytes_min)
    }

    fn invalid(&self, what: &'static str, offset: usize) -> DecodeError {
        DecodeError::Invalid { what, offset }
    }

    fn key(&mut self) -> Result<String, DecodeError> {
        let offset = self.offset;
        let len = usize::from(self.u16()?);
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                offset: self.bytes.len(),
            });
        };
        let text = std::str::from_utf8(&self.bytes[self.offset..end])
            .map_err(|_| self.invalid("UTF-8 key", offset))?;
        check_wallet_key(text).map_err(|_| self.invalid("wallet key length", offset))?;
        self.offset = end;
        Ok(text.to_owned())
    }

    fn ledger(&mut self) -> Result<LedgerCode, DecodeError> {
        let offset = self.offset;
        LedgerCode::from_u64(self.u64()?).map_err(|_| self.invalid("ledger code", offset))
    }

    fn kind(&mut self) -> Result<AccountKind, DecodeError> {
        let offset = self.offset;
        AccountKind::from_u8(self.u8()?).ok_or(self.invalid("account kind", offset))
    }

    fn account_flags(&mut self) -> Result<AccountFlags, DecodeError> {
        let offset = self.offset;
        AccountFlags::from_bits(self.u16()?).ok_or(self.invalid("account flags", offset))
    }

    fn transfer_flags(&mut self) -> Result<TransferFlags, DecodeError> {
        let offset = self.offset;
        TransferFlags::from_bits(self.u16()?).ok_or(self.invalid("transfer flags", offset))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.invalid("trailing bytes", self.offset));
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            TAG_CREATE_ACCOUNTS => {
                let count = self.count_u32(ACCOUNT_ENCODED_BYTES)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let id = self.u128()?;
                    let ledger = self.ledger()?;
                    let kind = self.kind()?;
                    let flags = self.account_flags()?;
                    items.push(NewAccount {
                        id,
                        ledger,
                        kind,
                        flags,
                    });
                }
                Ok(Command::CreateAccounts(items))
            }
            TAG_CREATE_TRANSFERS => {
                let count = self.count_u32(TRANSFER_ENCODED_BYTES)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.new_transfer()?);
                }
                Ok(Command::CreateTransfers(items))
            }
            TAG_WALLET_BET => {
                let (transaction_id, player_id, round_id, amount, ledger) =
                    self.wallet_money_fields()?;
                Ok(Command::WalletBet(WalletBet {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                }))
            }
            TAG_WALLET_WIN => {
                let (transaction_id, player_id, round_id, amount, ledger) =
                    self.wallet_money_fields()?;
                Ok(Command::WalletWin(WalletWin {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                }))
            }
            TAG_WALLET_ROLLBACK => {
                let transaction_id = self.key()?;
                let player_id = self.u128()?;
                let round_id = self.key()?;
                let rolled_back_transaction_id = self.key()?;
                Ok(Command::WalletRollback(WalletRollback {
                    transaction_id,
                    player_id,
                    round_id,
                    rolled_back_transaction_id,
                }))
            }
            TAG_TICK => Ok(Command::Tick),
            _ => Err(self.invalid("command tag", offset)),
        }
    }

    fn new_transfer(&mut self) -> Result<NewTransfer, DecodeError> {
        Ok(NewTransfer {
            id: self.u128()?,
            debit_account_id: self.u128()?,
            credit_account_id: self.u128()?,
            amount: self.u64()?,
            ledger: self.ledger()?,
            flags: self.transfer_flags()?,
            pending_id: self.u128()?,
            timeout_s: self.u32()?,
        })
    }

    fn wallet_money_fields(
        &mut self,
    ) -> Result<(String, u128, String, u64, LedgerCode), DecodeError> {
        Ok((
            self.key()?,
            self.u128()?,
            self.key()?,
            self.u64()?,
            self.ledger()?,
        ))
    }

    fn snapshot_account(&mut self) -> Result<(Account, AccountFlags), DecodeError> {
        let account = Account {
            id: self.u128()?,
            ledger: self.ledger()?,
            kind: self.kind()?,
            flags: self.account_flags()?,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            timestamp: 0,
        };
        let flags_at_creation = self.account_flags()?;
        let account = Account {
            debits_pending: self.u128()?,
            debits_posted: self.u128()?,
            credits_pending: self.u128()?,
            credits_posted: self.u128()?,
            timestamp: self.u64()?,
            ..account
        };
        Ok((account, flags_at_creation))
    }

    fn snapshot_transfer(&mut self) -> Result<Transfer, DecodeError> {
        let t = self.new_transfer()?;
        Ok(Transfer {
            id: t.id,
            debit_account_id: t.debit_account_id,
            credit_account_id: t.credit_account_id,
            amount: t.amount,
            ledger: t.ledger,
            flags: t.flags,
            pending_id: t.pending_id,
            timeout_s: t.timeout_s,
            timestamp: self.u64()?,
        })
    }

    fn wallet_entry(&mut self, key: &str) -> Result<WalletEntry, DecodeError> {
        let offset = self.offset;
        let transaction_id = key.to_owned();
        match self.u8()? {
            ENTRY_BET => {
                let (player_id, round_id, amount, ledger) =
                    (self.u128()?, self.key()?, self.u64()?, self.ledger()?);
                let outcome = self.outcome()?;
                let flag_offset = self.offset;
                let rolled_back = match self.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(self.invalid("rolled_back flag", flag_offset)),
                };
                let request = WalletBet {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                };
                Ok(WalletEntry::Bet {
                    request,
                    outcome,
                    rolled_back,
                })
            }
            ENTRY_WIN => {
                let (player_id, round_id, amount, ledger) =
                    (self.u128()?, self.key()?, self.u64()?, self.ledger()?);
                let outcome = self.outcome()?;
                let request = WalletWin {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                };
                Ok(WalletEntry::Win { request, outcome })
            }
            ENTRY_ROLLBACK => {
                let (player_id, round_id, rolled_back_transaction_id) =
                    (self.u128()?, self.key()?, self.key()?);
                let outcome = self.outcome()?;
                let request = WalletRollback {
                    transaction_id,
                    player_id,
                    round_id,
                    rolled_back_transaction_id,
                };
                Ok(WalletEntry::Rollback { request, outcome })
            }
            ENTRY_TOMBSTONE => Ok(WalletEntry::Tombstone {
                player_id: self.u128()?,
                round_id: self.key()?,
                rollback_transaction_id: self.key()?,
            }),
            _ => Err(self.invalid("wallet entry kind", offset)),
        }
    }

    fn outcome(&mut self) -> Result<WalletOutcome, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            OUTCOME_OK => {
                let balance = self.u128()?;
                let flag_offset = self.offset;
                let transfer_id = match self.u8()? {
                    0 => None,
                    1 => Some(self.u128()?),
                    _ => return Err(self.invalid("transfer presence flag", flag_offset)),
                };
                Ok(WalletOutcome::Ok {
                    balance,
                    transfer_id,
                })
            }
            OUTCOME_INSUFFICIENT_FUNDS => Ok(WalletOutcome::InsufficientFunds {
                balance: self.u128()?,
            }),
            tag => PLAIN_OUTCOMES
                .get(usize::from(tag) - 2)
                .copied()
                .ok_or(self.invalid("wallet outcome", offset)),
        }
    }
}
