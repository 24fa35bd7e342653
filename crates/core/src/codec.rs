//! Binary codec for log entries (`Proposal`), history records and checkpoints of the hot state.
//!
//! Written by hand, not derived with serde/bincode, because this format *is* the product: every
//! log entry ever written must decode the same way on every replica, on every version, forever
//! (the audit replays it from genesis). So it is little-endian, fixed-width where it can be
//! (a transfer is 86 bytes), versioned by its first byte, deterministic (maps are written in
//! sorted order, objects in creation order, so two replicas with the same state produce
//! byte-identical checkpoints) and canonical (the decoder accepts only what the encoder writes).
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
//!   7 create_player: text username, text password_hash (PHC), u8 n, n × u64 ledger
//!   8 open_session: [32] token SHA-256, u128 player, u32 ttl_s
//!   9 close_session: [32] token SHA-256      10 revoke_sessions: u128 player
//!  11 by_operator: text key_id, command (any but 11 or 12): logged before the audit trail
//!  12 by_operator, recorded: the same, and applying it appends an operator trail record
//!  13 table: u8 kind, then
//!       1 configure: table config      2 open: u64 round | [32] commitment | u64 closes_at_ns
//!       3 bet: u128 bet_id | u128 player | u64 round | spots
//!       4 close, 6 settle, 7 void: u64 round      5 draw: u64 round | draw
//!       8 configure a studio table: table config | studio
//!       9 studio draw: u64 round | studio draw
//!      10 configure: table config | u32 bets_total_interval_ms | u8 has studio, [studio]
//!       (what is written now; 1 and 8 decode with an interval of 500 ms)
//!     table config = u32 table_id | u16 len + game | [32] definition SHA-256 | u64 ledger
//!       | u16 spots | u32 betting_window_ms | u32 draw_delay_ms | limits | u8 closed
//!     studio = [32] Ed25519 public key | u32 result_timeout_ms
//!     limits = u64 bet_min | u64 bet_max | u64 round_stake_max | u64 payout_max
//!       | u32 bets_per_round_max
//!     spots = u8 n (<= 64), n × (u16 spot, u64 amount)
//!     draw = [32] server seed | draw body      studio draw = [64] signature | draw body
//!     draw body = u16 n + outcome bytes (<= 512) | u16 n, n × u64 return
//!  14 compliance: u8 kind, then
//!       1 set limits: u128 player | u64 ledger | 9 × change (deposit, loss, wager × day, week,
//!         month) | change (session minutes); change = u8 0 absent, 1 set + u64, 2 remove
//!       2 self-exclude: u128 player | u16 days | u8 source (0 player, 1 operator, 2 register)
//!       3 lift self-exclusion: u128 player      4 time-out: u128 player | u16 days
//!       5 record identity: u128 player | identity      6 set KYC level: u128 player | u8 level
//!       7 set policy: policy
//!       8 deposit: u128 deposit id | u128 player | u64 ledger | u64 amount | u128 source
//!       9 case: u8 kind, then 1 open: u128 case | u128 player | u8 score | reasons | text
//!         ruleset version | u8 action | text by; 2 assign: u128 case | text assignee | text by;
//!         3 note: u128 case | u8 kind | text | text by; 4 decide: u128 case | u8 decision
//!         | text | text by (reasons = u8 n, n × text; text here = u16 n + UTF-8, may be empty)
//!       10 set reality check: u128 player | change (minutes; never absent)
//!       11 acknowledge reality check: u128 player
//!       12 observe identifiers: u128 player | seen
//!     seen = u8 mask (1 device, 2 instrument, 4 address) | the present [32] SHA-256 digests,
//!       in that order
//!     identity = u16 n + issuer | [32] subject SHA-256 | u16 n + name | u8 has birth date,
//!       [u32 days since 1970] | [2] country | u64 expires_at_s | [32] attestation SHA-256
//!     policy = requirements (default) | u16 n, n × ([2] country | requirements), by country
//!  15 payment: see `codec/payments.rs`
//!  16 consumer ack: u16 n + consumer name | u64 position (see `codec/consumers.rs`)
//!     requirements = u8 play | u8 deposit | u8 withdraw | u64 large_deposit_min
//!       | u8 large_deposit (KYC levels: 0 none, 1 basic, 2 enhanced)
//! text = u16 length + UTF-8 bytes (non-empty, bounded per field)
//! key = u16 length (1..=WALLET_KEY_LEN_MAX) + UTF-8 bytes
//! ```
//! History records (what `Ledger::apply` yields; see `crate::history`):
//! ```text
//! transfer record, exactly TRANSFER_RECORD_BYTES (128):
//!   u64 seq | u128 id | u128 debit | u128 credit | u64 amount | u64 ledger | u16 flags
//!   | u128 pending_id | u32 timeout_s | u64 timestamp | u64 prev_debit | u64 prev_credit
//!   | u64 pending_amount | 2 zero bytes
//! wallet record: u64 timestamp | key | u8 kind | body (see `wallet_entry`)
//! account (account_created events): as in a checkpoint, without the history pointer
//! operator action record, exactly `operators::OPERATOR_RECORD_BYTES` (see there)
//! table event: u64 round | u64 timestamp | u8 kind, then
//!   1 round opened: u64 seq | [32] commitment | u64 closes_at_ns
//!   2 bet placed: u128 bet_id | u128 player | spots | u64 stake | u128 balance
//!   3 round closed: u64 seq | u32 bets | u64 stakes_total      4 round drawn: u64 seq | draw
//!   8 studio round drawn: u64 seq | studio draw
//!   5 bet settled: u128 bet_id | u128 player | u64 stake | u64 paid | u128 balance
//!   6 round finished: u64 seq | u8 voided | u32 bets | u64 stakes_total | u128 paid_total
//! tagged record: u8 tag (1 account, 2 transfer, 3 wallet, 5 operator action, 6 table event)
//!   | record
//! event body: a tagged record, or for a transfer u8 4 | u64 seq (a reference into history)
//! ```
//! Checkpoint of the hot state, version 11 (`encode_checkpoint`; versions 10, 9, 8, 7, 6, 5, 4, 3 and 2
//! are read as well: 10 ends after the payments, 9 after the cases, 8 has no reality-check fields (no interval, never acknowledged, no
//! session sums), 7 ends after the tables (every player then has no compliance state), 6 has no studio in table configs and rounds and its draw flag is 0 or 1, 5's
//! rounds lack `totals_at` too, 4 ends after the operator chain, 3 after the sessions, 2 after
//! the pendings):
//! ```text
//! u8 version | u64 clock | u64 transfer_count | u64 wallet_sequence | u64 expiry_sequence
//! u64 n accounts (creation order): u128 id, u64 ledger, u8 kind, u16 flags,
//!     u16 flags_at_creation, u128 debits_pending, debits_posted, credits_pending,
//!     credits_posted, u64 timestamp, u64 newest_transfer
//! u64 n pending transfers (by sequence number): transfer record
//! u64 n players (registration order): u128 id, u64 created_at, text username,
//!     text password_hash, u8 n, n × (u64 ledger, u128 wallet account)
//! u64 n sessions (by token hash): [32] token SHA-256, u128 player, u64 expires_at
//! u64 operator actions | [32] hash of the last one (the audit trail's head)
//! u32 n tables (by id): table config | u8 has studio, [studio]
//!     | u32 bets_total_interval_ms (version 13 on; 500 before) | u32 next_round
//!     | u8 has current, [round]
//!     | u8 n recent (<= 10), n × round | u64 round events published
//! round = u64 id | u8 state | u64 opened_at | u64 closes_at | [32] commitment | limits
//!     | u32 draw_delay_ms | u8 has studio, [studio] | u8 draw (0 none, 1 draw, 2 studio draw)
//!     | [draw] | u32 settled_bets | u64 stakes_total
//!     | u128 paid_total | u64 finished_at | u64 totals_at | u32 n bets, n × (u128 bet_id | u128 player
//!     | u128 wallet | spots | u64 stake | u128 balance_after_bet | u8 settled | u64 paid
//!     | u128 balance_after_settlement)
//! compliance: policy | u64 n players (= the players above, registration order), n × (u8 KYC
//!     level | u8 has identity, [identity] | u64 self_excluded_until | u64 timed_out_until
//!     | limit (session minutes) | u64 session_started_at | u8 case flags (1 frozen,
//!     2 withdrawals held, 4 enhanced KYC required) | limit (reality-check minutes)
//!     | u64 reality check acknowledged_at | seen | u8 n wallets (distinct ledgers),
//!     n × (u64 ledger | 9 × limit | 3 × (u32 period | u128 deposited | u128 wagered
//!     | u128 returned) | u64 session started_at | u128 session wagered | u128 session returned))
//! then u64 n cases (by id): u128 id | u128 player | u64 opened_at | text by | u8 score | reasons
//!     | text ruleset version | u8 action | text assignee ("" none) | u8 n notes, n × (u64 at
//!     | text by | u8 kind | text) | u8 decided, [u8 decision | u64 at | text by]
//! limit = u8 has current, [u64] | u8 has pending, [u8 has value, [u64] | u64 effective_at]
//! then (version 10 on) the payments section (`codec/payments.rs`)
//! then (version 11 on) u64 n consumer cursors (by name): u16 n + name | u64 position
//! ```
//! Per-ledger sums, the id indexes and the expiry order are not stored: decoding rebuilds them
//! and refuses a checkpoint whose hot invariants do not hold.
//!
//! Command results, version 1 (`encode_results`: what the leader answers a follower that
//! forwarded a batch; one result per command, index-aligned):
//! ```text
//! u8 version | u32 result count | results
//! result = u8 tag, then
//!   1 accounts:  u32 n, n × u8 code (position in `CreateAccountResult::ALL`)
//!   2 transfers: u32 n, n × u8 code (position in `CreateTransferResult::ALL`)
//!   3 wallet:    outcome, as in a wallet record
//!   4 tick
//!   5 player: u8 outcome (1 created + u128 player, 2 username taken, 3 session opened +
//!     u64 expires_at, 4 sessions closed + u32 count, 5 player not found, 6 session not found)
//!   6 table: u8 outcome (its place in `codec::tables::OUTCOMES`), then u128 balance for
//!     bet_accepted and insufficient_funds, u32 bets + u8 finished for settled_bets
//!   7 compliance: u8 outcome (0 ok, 1 deposited + u128 balance, 2 refused + u8 refusal,
//!     3 player not found, 4 no wallet in currency, 5 self-exclusion active, 6 deposit refused
//!     + u8 transfer result code)
//! ```

mod compliance;
mod consumers;
mod payments;
mod players;
mod tables;

use std::io;

use crate::cases::ArchivedCase;
use crate::command::{Command, CommandResult, Proposal};
use crate::history::{HistoryRecord, StoredTransfer, WalletRecord};
use crate::ids::LedgerCode;
use crate::ledger::FrozenLedger;
use crate::ledger::Ledger;
use crate::operators::{OperatorAction, OperatorChain};
use crate::payments::ArchivedPayment;
use crate::types::{
    Account, AccountFlags, AccountKind, CreateAccountResult, CreateTransferResult, NewAccount,
    NewTransfer, Transfer, TransferFlags,
};
use crate::wallet::{
    check_wallet_key, WalletBet, WalletEntry, WalletOutcome, WalletRollback, WalletWin,
};

pub const PROPOSAL_FORMAT_VERSION: u8 = 1;
pub const CHECKPOINT_FORMAT_VERSION: u8 = 13;
/// Version 13 adds each table's `bets_total_interval_ms`.
const CHECKPOINT_FORMAT_VERSION_V12: u8 = 12;
/// Version 12 adds the clearing-account transfer ids to each payment record and ends with
/// u128 the case decided last (decided cases live in history from version 12 on).
const CHECKPOINT_FORMAT_VERSION_V11: u8 = 11;
const CHECKPOINT_FORMAT_VERSION_V10: u8 = 10;
const CHECKPOINT_FORMAT_VERSION_V9: u8 = 9;
/// Earlier checkpoint versions, still read: 10 has no consumer cursors, 9 no payments, 8 has no reality checks, 7 no compliance section, 6 no studios either, 5 no `totals_published_at_ns` in
/// its rounds either, 4 no tables, 3 no operator chain either, 2 no players either.
const CHECKPOINT_FORMAT_VERSION_V8: u8 = 8;
const CHECKPOINT_FORMAT_VERSION_V7: u8 = 7;
const CHECKPOINT_FORMAT_VERSION_V6: u8 = 6;
const CHECKPOINT_FORMAT_VERSION_V5: u8 = 5;
const CHECKPOINT_FORMAT_VERSION_V4: u8 = 4;
const CHECKPOINT_FORMAT_VERSION_V3: u8 = 3;
const CHECKPOINT_FORMAT_VERSION_V2: u8 = 2;
pub const RESULTS_FORMAT_VERSION: u8 = 1;
/// Size of one transfer record in history (fixed, so a record's place follows from its
/// sequence number).
pub const TRANSFER_RECORD_BYTES: usize = 128;
const TRANSFER_RECORD_USED_BYTES: usize = 8 + 16 * 3 + 8 + 8 + 2 + 16 + 4 + 8 * 4;
/// Encoded size of an account in a checkpoint.
pub const CHECKPOINT_ACCOUNT_BYTES: usize = ACCOUNT_ENCODED_BYTES + 2 + 16 * 4 + 8 + 8;
const CHECKPOINT_HEADER_BYTES: usize = 1 + 8 * 4;

const RECORD_TAG_ACCOUNT: u8 = 1;
const RECORD_TAG_TRANSFER: u8 = 2;
const RECORD_TAG_WALLET: u8 = 3;
/// An event body that names a transfer of history by sequence number instead of repeating it.
const RECORD_TAG_TRANSFER_REF: u8 = 4;
const RECORD_TAG_OPERATOR: u8 = 5;
const RECORD_TAG_TABLE: u8 = 6;
const RECORD_TAG_PAYMENT: u8 = 7;

/// The body of a committed event as stored: the record itself, or (for transfers, the bulk of
/// all events) a reference to the transfer record history already holds, so the event log
/// stays small and a transfer is written once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    Record(HistoryRecord),
    TransferRef(u64),
}

/// Appends the stored body of the event for `record`.
pub fn encode_event_body(record: &HistoryRecord, out: &mut Vec<u8>) {
    match record {
        HistoryRecord::Transfer(stored) => {
            out.push(RECORD_TAG_TRANSFER_REF);
            out.extend_from_slice(&stored.seq.to_le_bytes());
        }
        other => encode_record(other, out),
    }
}

pub fn decode_event_body(bytes: &[u8]) -> Result<EventBody, DecodeError> {
    match bytes.split_first() {
        Some((&RECORD_TAG_TRANSFER_REF, seq)) => {
            let mut r = Reader::new(seq);
            let seq = r.u64()?;
            r.finish()?;
            Ok(EventBody::TransferRef(seq))
        }
        _ => decode_record(bytes).map(EventBody::Record),
    }
}

/// Encoded size of one item of a create_accounts command.
pub const ACCOUNT_ENCODED_BYTES: usize = 16 + 8 + 1 + 2;
/// Encoded size of one item of a create_transfers command.
pub const TRANSFER_ENCODED_BYTES: usize = 16 * 3 + 8 + 8 + 2 + 16 + 4;
/// Smallest encodings, used to bound counts by the bytes left before allocating.
const COMMAND_BYTES_MIN: usize = 1;

const TAG_CREATE_ACCOUNTS: u8 = 1;
const TAG_CREATE_TRANSFERS: u8 = 2;
const TAG_WALLET_BET: u8 = 3;
const TAG_WALLET_WIN: u8 = 4;
const TAG_WALLET_ROLLBACK: u8 = 5;
const TAG_TICK: u8 = 6;

const RESULT_TAG_ACCOUNTS: u8 = 1;
const RESULT_TAG_TRANSFERS: u8 = 2;
const RESULT_TAG_WALLET: u8 = 3;
const RESULT_TAG_TICK: u8 = 4;
const RESULT_TAG_PLAYER: u8 = 5;
/// Smallest encoding of a result (a tick) and of an item code, to bound counts.
const RESULT_BYTES_MIN: usize = 1;
const RESULT_CODE_BYTES: usize = 1;

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
    /// The checkpoint parsed but does not describe a consistent ledger.
    #[error("inconsistent checkpoint: {0}")]
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

/// Appends the encoding of the results of one batch (see the module docs).
///
/// Result codes and wallet outcomes use the same bytes as the rest of the format (the codes'
/// stable positions, the wallet record's outcome), so a follower relaying the leader's answer
/// gives its client exactly what the leader computed.
pub fn encode_results(results: &[CommandResult], out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u8(RESULTS_FORMAT_VERSION);
    w.count_u32(results.len());
    for result in results {
        w.result(result);
    }
}

pub fn decode_results(bytes: &[u8]) -> Result<Vec<CommandResult>, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != RESULTS_FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let count = r.count_u32(RESULT_BYTES_MIN)?;
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        results.push(r.result()?);
    }
    r.finish()?;
    Ok(results)
}

/// Writes the deterministic checkpoint of a frozen ledger (see the module docs) to `out`.
/// Streams: memory stays O(1) whatever the number of accounts.
pub fn encode_checkpoint(frozen: &FrozenLedger, out: &mut impl io::Write) -> io::Result<()> {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut w = Writer(&mut buffer);
    w.u8(CHECKPOINT_FORMAT_VERSION);
    w.u64(frozen.clock);
    w.u64(frozen.transfer_count);
    w.u64(frozen.wallet_sequence);
    w.u64(frozen.expiry_sequence);
    w.u64(frozen.accounts.len() as u64);
    for entry in frozen.accounts.iter() {
        Writer(&mut buffer).checkpoint_account(entry);
        flush_when_full(&mut buffer, out)?;
    }
    let mut pendings: Vec<&StoredTransfer> = frozen
        .pendings
        .iter()
        .flatten()
        .map(|p| &p.stored)
        .collect();
    pendings.sort_unstable_by_key(|stored| stored.seq);
    Writer(&mut buffer).u64(pendings.len() as u64);
    for stored in pendings {
        encode_transfer_record(stored, &mut buffer);
        flush_when_full(&mut buffer, out)?;
    }
    Writer(&mut buffer).u64(frozen.players.len() as u64);
    for player in frozen.players.iter() {
        Writer(&mut buffer).checkpoint_player(player);
        flush_when_full(&mut buffer, out)?;
    }
    let mut sessions: Vec<_> = frozen.sessions.iter().flatten().collect();
    sessions.sort_unstable_by_key(|session| session.token_hash);
    Writer(&mut buffer).u64(sessions.len() as u64);
    for session in sessions {
        Writer(&mut buffer).checkpoint_session(session);
        flush_when_full(&mut buffer, out)?;
    }
    Writer(&mut buffer).u64(frozen.operators.count);
    buffer.extend_from_slice(&frozen.operators.head);
    Writer(&mut buffer).checkpoint_tables(frozen.tables.values().map(|table| table.as_ref()));
    flush_when_full(&mut buffer, out)?;
    // Players' compliance state, flushed per page of players like the accounts.
    let compliance = &frozen.compliance;
    Writer(&mut buffer).checkpoint_policy(&compliance.policy);
    Writer(&mut buffer).u64(compliance.players.len() as u64);
    for state in compliance.players.iter() {
        Writer(&mut buffer).checkpoint_player_compliance(state);
        flush_when_full(&mut buffer, out)?;
    }
    Writer(&mut buffer).checkpoint_cases(compliance.cases.values().map(|case| case.as_ref()));
    let payments = &frozen.payments;
    Writer(&mut buffer).checkpoint_payments(
        &payments.connectors,
        payments.deposits.values(),
        payments.withdrawals.values(),
    );
    Writer(&mut buffer).checkpoint_consumers(&frozen.consumers);
    Writer(&mut buffer).u128(compliance.last_closed);
    out.write_all(&buffer)
}

fn flush_when_full(buffer: &mut Vec<u8>, out: &mut impl io::Write) -> io::Result<()> {
    if buffer.len() >= 60 * 1024 {
        out.write_all(buffer)?;
        buffer.clear();
    }
    Ok(())
}

/// Reads a checkpoint back into a ledger, rebuilding indexes and sums, and refuses it unless
/// every hot invariant holds.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Ledger, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    let known = [
        CHECKPOINT_FORMAT_VERSION,
        CHECKPOINT_FORMAT_VERSION_V12,
        CHECKPOINT_FORMAT_VERSION_V11,
        CHECKPOINT_FORMAT_VERSION_V10,
        CHECKPOINT_FORMAT_VERSION_V9,
        CHECKPOINT_FORMAT_VERSION_V8,
        CHECKPOINT_FORMAT_VERSION_V7,
        CHECKPOINT_FORMAT_VERSION_V6,
        CHECKPOINT_FORMAT_VERSION_V5,
        CHECKPOINT_FORMAT_VERSION_V4,
        CHECKPOINT_FORMAT_VERSION_V3,
        CHECKPOINT_FORMAT_VERSION_V2,
    ];
    if !known.contains(&version) {
        return Err(DecodeError::Version(version));
    }
    let clock = r.u64()?;
    let counters = [r.u64()?, r.u64()?, r.u64()?];
    let account_count = r.count_u64(CHECKPOINT_ACCOUNT_BYTES)?;
    let mut ledger = Ledger::restore_begin(clock, counters, account_count);
    for _ in 0..account_count {
        let offset = r.offset;
        let (account, flags_at_creation, newest) = r.checkpoint_account()?;
        ledger
            .restore_account(account, flags_at_creation, newest)
            .map_err(|_| r.invalid("account (repeated id)", offset))?;
    }
    let pending_count = r.count_u64(TRANSFER_RECORD_BYTES)?;
    let mut previous_seq = None;
    for _ in 0..pending_count {
        let offset = r.offset;
        let stored = decode_transfer_record(r.slice(TRANSFER_RECORD_BYTES)?)?;
        // Canonical: the encoder writes pendings by sequence number, so any other order is
        // damage (and would re-encode to other bytes).
        if previous_seq.is_some_and(|previous| stored.seq <= previous) {
            return Err(r.invalid("pending transfer order", offset));
        }
        previous_seq = Some(stored.seq);
        ledger
            .restore_pending(stored)
            .map_err(|_| r.invalid("pending transfer", offset))?;
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V3 {
        decode_checkpoint_directory(&mut r, &mut ledger)?;
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V4 {
        let count = r.u64()?;
        let head = r.slice(32)?.try_into().expect("32 bytes");
        let empty_with_head = count == 0 && head != [0; 32];
        if empty_with_head {
            return Err(r.invalid("operator chain", r.offset - 32));
        }
        ledger.operators = OperatorChain { count, head };
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V5 {
        ledger.tables = r.checkpoint_tables(tables::TablesLayout {
            totals_time: version >= CHECKPOINT_FORMAT_VERSION_V6,
            studio: version >= CHECKPOINT_FORMAT_VERSION_V7,
            totals_interval: version >= CHECKPOINT_FORMAT_VERSION,
        })?;
    }
    let players = ledger.directory.players.len();
    if version >= CHECKPOINT_FORMAT_VERSION_V8 {
        let reality = version >= CHECKPOINT_FORMAT_VERSION_V9;
        let (policy, states) = r.checkpoint_compliance(players, reality)?;
        ledger.compliance.policy = policy;
        states
            .into_iter()
            .for_each(|state| ledger.compliance.players.push(state));
        let cases = r.checkpoint_cases()?;
        ledger.compliance.restore_cases(cases);
    } else {
        // Written before compliance state existed: every player starts with none.
        (0..players).for_each(|_| ledger.compliance.players.push(Default::default()));
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V10 {
        ledger.payments = r.checkpoint_payments(version)?;
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V11 {
        ledger.consumers = r.checkpoint_consumers()?;
    }
    if version >= CHECKPOINT_FORMAT_VERSION_V12 {
        ledger.compliance.last_closed = r.u128()?;
    }
    r.finish()?;
    ledger
        .check_hot_invariants()
        .map_err(DecodeError::Inconsistent)?;
    Ok(ledger)
}

/// Players in registration order, then sessions in token order (canonical: any other order is
/// damage).
fn decode_checkpoint_directory(r: &mut Reader, ledger: &mut Ledger) -> Result<(), DecodeError> {
    const PLAYER_BYTES_MIN: usize = 16 + 8 + 2 + 2 + 1;
    const SESSION_BYTES: usize = 32 + 16 + 8;
    let player_count = r.count_u64(PLAYER_BYTES_MIN)?;
    for _ in 0..player_count {
        let offset = r.offset;
        let player = r.checkpoint_player()?;
        ledger
            .directory
            .restore_player(player)
            .map_err(|what| r.invalid(what, offset))?;
    }
    let session_count = r.count_u64(SESSION_BYTES)?;
    let mut previous = None;
    for _ in 0..session_count {
        let offset = r.offset;
        let session = r.checkpoint_session()?;
        if previous.is_some_and(|previous| session.token_hash <= previous) {
            return Err(r.invalid("session order", offset));
        }
        previous = Some(session.token_hash);
        ledger
            .directory
            .restore_session(session)
            .map_err(|what| r.invalid(what, offset))?;
    }
    Ok(())
}

/// Smallest checkpoint: the header and two empty counts (version 2; version 3 adds two more).
pub const CHECKPOINT_BYTES_MIN: usize = CHECKPOINT_HEADER_BYTES + 16;

/// Appends the fixed-size record of a stored transfer.
pub fn encode_transfer_record(stored: &StoredTransfer, out: &mut Vec<u8>) {
    let start = out.len();
    let mut w = Writer(out);
    let t = &stored.transfer;
    w.u64(stored.seq);
    w.transfer_fields(
        t.id,
        t.debit_account_id,
        t.credit_account_id,
        t.amount,
        t.ledger,
    );
    w.u16(t.flags.bits());
    w.u128(t.pending_id);
    w.u32(t.timeout_s);
    w.u64(t.timestamp);
    w.u64(stored.prev_debit);
    w.u64(stored.prev_credit);
    w.u64(stored.pending_amount);
    debug_assert_eq!(out.len() - start, TRANSFER_RECORD_USED_BYTES);
    out.resize(start + TRANSFER_RECORD_BYTES, 0);
}

pub fn decode_transfer_record(bytes: &[u8]) -> Result<StoredTransfer, DecodeError> {
    let mut r = Reader::new(bytes);
    let seq = r.u64()?;
    let new = r.new_transfer()?;
    let timestamp = r.u64()?;
    let stored = StoredTransfer {
        seq,
        transfer: Transfer {
            id: new.id,
            debit_account_id: new.debit_account_id,
            credit_account_id: new.credit_account_id,
            amount: new.amount,
            ledger: new.ledger,
            flags: new.flags,
            pending_id: new.pending_id,
            timeout_s: new.timeout_s,
            timestamp,
        },
        prev_debit: r.u64()?,
        prev_credit: r.u64()?,
        pending_amount: r.u64()?,
    };
    let padding_offset = r.offset;
    if r.take::<2>()? != [0, 0] {
        return Err(r.invalid("transfer record padding", padding_offset));
    }
    r.finish()?;
    Ok(stored)
}

pub fn encode_wallet_record(record: &WalletRecord, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u64(record.timestamp);
    w.key(&record.key);
    w.wallet_entry(&record.entry);
}

pub fn decode_wallet_record(bytes: &[u8]) -> Result<WalletRecord, DecodeError> {
    let mut r = Reader::new(bytes);
    let timestamp = r.u64()?;
    let key = r.key()?;
    let entry = r.wallet_entry(&key)?;
    r.finish()?;
    Ok(WalletRecord {
        key,
        entry,
        timestamp,
    })
}

/// A record of the wallet log: a wallet decision, a payment that turned final, or a decided
/// AML case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletLogRecord {
    Wallet(WalletRecord),
    Payment(ArchivedPayment),
    Case(ArchivedCase),
}

/// The book byte of an archived case in the wallet log (payments use 1 and 2).
const BOOK_CASE: u8 = 3;

/// An archived payment as the wallet log holds it: u64 timestamp and an empty key (no wallet
/// key is empty, so a reader tells the two kinds apart there), then u8 book (1 deposit, 2
/// withdrawal) and the record as the checkpoint writes it.
pub fn encode_archived_payment(payment: &ArchivedPayment, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u64(payment.updated_at_ns());
    w.u16(0);
    w.archived_payment(payment);
}

/// A decided case as the wallet log holds it: u64 time of the decision, an empty key, u8 3,
/// then the case as the checkpoint writes it and u128 the case decided before it.
pub fn encode_archived_case(archived: &ArchivedCase, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u64(archived.case.updated_at_ns());
    w.u16(0);
    w.u8(BOOK_CASE);
    w.archived_case(archived);
}

/// Appends the wallet-log bytes of a record the wallet log holds (a wallet decision, an
/// archived payment or case); false, appending nothing, for any other record.
pub fn encode_wallet_log_record(record: &HistoryRecord, out: &mut Vec<u8>) -> bool {
    match record {
        HistoryRecord::Wallet(wallet) => encode_wallet_record(wallet, out),
        HistoryRecord::PaymentArchived(payment) => encode_archived_payment(payment, out),
        HistoryRecord::CaseArchived(archived) => encode_archived_case(archived, out),
        _ => return false,
    }
    true
}

/// Decodes any kind of wallet-log record (see `encode_archived_payment`,
/// `encode_archived_case`).
pub fn decode_wallet_log_record(bytes: &[u8]) -> Result<WalletLogRecord, DecodeError> {
    if bytes.get(8..10) != Some(&[0, 0]) {
        return decode_wallet_record(bytes).map(WalletLogRecord::Wallet);
    }
    let mut r = Reader::new(&bytes[10..]);
    let record = match bytes.get(10) {
        Some(&BOOK_CASE) => {
            r.u8()?;
            WalletLogRecord::Case(r.archived_case()?)
        }
        _ => WalletLogRecord::Payment(r.archived_payment(CHECKPOINT_FORMAT_VERSION)?),
    };
    r.finish()?;
    Ok(record)
}

/// Appends a record with its tag: the body of an event.
pub fn encode_record(record: &HistoryRecord, out: &mut Vec<u8>) {
    match record {
        HistoryRecord::AccountCreated(account) => {
            out.push(RECORD_TAG_ACCOUNT);
            Writer(out).account(account);
        }
        HistoryRecord::Transfer(stored) => {
            out.push(RECORD_TAG_TRANSFER);
            encode_transfer_record(stored, out);
        }
        HistoryRecord::Wallet(record) => {
            out.push(RECORD_TAG_WALLET);
            encode_wallet_record(record, out);
        }
        HistoryRecord::OperatorAction(action) => {
            out.push(RECORD_TAG_OPERATOR);
            action.encode(out);
        }
        HistoryRecord::Table(event) => {
            out.push(RECORD_TAG_TABLE);
            Writer(out).table_event(event);
        }
        HistoryRecord::Payment(event) => {
            out.push(RECORD_TAG_PAYMENT);
            Writer(out).payment_event(event);
        }
        HistoryRecord::PaymentArchived(_) | HistoryRecord::CaseArchived(_) => {
            panic!("an archived payment or case is not an event (HistoryRecord::is_event)")
        }
    }
}

pub fn decode_record(bytes: &[u8]) -> Result<HistoryRecord, DecodeError> {
    let (&tag, body) = bytes
        .split_first()
        .ok_or(DecodeError::Truncated { offset: 0 })?;
    match tag {
        RECORD_TAG_ACCOUNT => {
            let mut r = Reader::new(body);
            let account = r.account()?;
            r.finish()?;
            Ok(HistoryRecord::AccountCreated(account))
        }
        RECORD_TAG_TRANSFER => decode_transfer_record(body).map(HistoryRecord::Transfer),
        RECORD_TAG_WALLET => decode_wallet_record(body).map(HistoryRecord::Wallet),
        RECORD_TAG_TABLE => {
            let mut r = Reader::new(body);
            let event = r.table_event()?;
            r.finish()?;
            Ok(HistoryRecord::Table(event))
        }
        RECORD_TAG_PAYMENT => {
            let mut r = Reader::new(body);
            let event = r.payment_event()?;
            r.finish()?;
            Ok(HistoryRecord::Payment(event))
        }
        RECORD_TAG_OPERATOR => OperatorAction::decode(body)
            .map(HistoryRecord::OperatorAction)
            .ok_or(DecodeError::Invalid {
                what: "operator action record",
                offset: 1,
            }),
        _ => Err(DecodeError::Invalid {
            what: "record tag",
            offset: 0,
        }),
    }
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
            Command::Table(command) => self.table_command(command),
            Command::Compliance(command) => self.compliance_command(command),
            Command::Payment(command) => self.payment_command(command),
            Command::ConsumerAck(ack) => self.consumer_ack(ack),
            other => {
                let encoded = self.player_command(other);
                assert!(encoded, "every command has an encoding");
            }
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

    fn account(&mut self, a: &Account) {
        self.u128(a.id);
        self.u64(a.ledger.to_u64());
        self.u8(a.kind.to_u8());
        self.u16(a.flags.bits());
        self.u128(a.debits_pending);
        self.u128(a.debits_posted);
        self.u128(a.credits_pending);
        self.u128(a.credits_posted);
        self.u64(a.timestamp);
    }

    fn checkpoint_account(&mut self, entry: &crate::ledger::AccountEntry) {
        let a = &entry.account;
        self.u128(a.id);
        self.u64(a.ledger.to_u64());
        self.u8(a.kind.to_u8());
        self.u16(a.flags.bits());
        self.u16(entry.flags_at_creation.bits());
        self.u128(a.debits_pending);
        self.u128(a.debits_posted);
        self.u128(a.credits_pending);
        self.u128(a.credits_posted);
        self.u64(a.timestamp);
        self.u64(entry.newest_transfer);
    }

    /// The key is written by the caller; requests do not repeat their transaction id.
    fn wallet_entry(&mut self, entry: &WalletEntry) {
        match entry {
            WalletEntry::Bet { request, outcome } => {
                self.u8(ENTRY_BET);
                self.u128(request.player_id);
                self.key(&request.round_id);
                self.u64(request.amount);
                self.u64(request.ledger.to_u64());
                self.outcome(outcome);
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

    fn result(&mut self, result: &CommandResult) {
        match result {
            CommandResult::Accounts(codes) => {
                self.u8(RESULT_TAG_ACCOUNTS);
                self.codes(codes.iter().map(|code| code.to_u8()));
            }
            CommandResult::Transfers(codes) => {
                self.u8(RESULT_TAG_TRANSFERS);
                self.codes(codes.iter().map(|code| code.to_u8()));
            }
            CommandResult::Wallet(outcome) => {
                self.u8(RESULT_TAG_WALLET);
                self.outcome(outcome);
            }
            CommandResult::Tick => self.u8(RESULT_TAG_TICK),
            CommandResult::Player(outcome) => {
                self.u8(RESULT_TAG_PLAYER);
                self.player_outcome(outcome);
            }
            CommandResult::Table(outcome) => {
                self.u8(tables::RESULT_TAG_TABLE);
                self.table_outcome(outcome);
            }
            CommandResult::Compliance(outcome) => {
                self.u8(compliance::RESULT_TAG_COMPLIANCE);
                self.compliance_outcome(outcome);
            }
            CommandResult::Payment(outcome) => {
                self.u8(payments::RESULT_TAG_PAYMENT);
                self.payment_outcome(outcome);
            }
            CommandResult::Consumer(outcome) => self.consumer_outcome(*outcome),
        }
    }

    fn codes(&mut self, codes: impl ExactSizeIterator<Item = u8>) {
        self.count_u32(codes.len());
        self.0.extend(codes);
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
            WalletOutcome::Refused(refusal) => {
                self.u8(OUTCOME_REFUSED);
                self.u8(refusal.to_u8());
            }
            other => self.u8(plain_outcome_tag(other)),
        }
    }
}

const OUTCOME_OK: u8 = 0;
const OUTCOME_INSUFFICIENT_FUNDS: u8 = 1;
/// After the plain outcomes' tags (2..=11): u8 `Refusal`.
const OUTCOME_REFUSED: u8 = 12;
/// Outcomes without fields, by stable tag (2..). Append only.
const PLAIN_OUTCOMES: [WalletOutcome; 10] = [
    WalletOutcome::TransactionConflict,
    WalletOutcome::PlayerNotFound,
    WalletOutcome::NotAPlayerAccount,
    WalletOutcome::LedgerMismatch,
    WalletOutcome::PlayerAccountClosed,
    WalletOutcome::BetAlreadyRolledBack,
    WalletOutcome::BetAlreadySettled,
    WalletOutcome::RollbackTargetInvalid,
    WalletOutcome::AmountMustNotBeZero,
    WalletOutcome::RoundMismatch,
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
            tables::TAG_TABLE => Ok(Command::Table(self.table_command()?)),
            compliance::TAG_COMPLIANCE => Ok(Command::Compliance(self.compliance_command()?)),
            payments::TAG_PAYMENT => Ok(Command::Payment(self.payment_command()?)),
            consumers::TAG_CONSUMER_ACK => Ok(Command::ConsumerAck(self.consumer_ack()?)),
            tag => self.player_command(tag, offset),
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

    fn slice(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError::Truncated {
                offset: self.bytes.len(),
            })?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn account(&mut self) -> Result<Account, DecodeError> {
        Ok(Account {
            id: self.u128()?,
            ledger: self.ledger()?,
            kind: self.kind()?,
            flags: self.account_flags()?,
            debits_pending: self.u128()?,
            debits_posted: self.u128()?,
            credits_pending: self.u128()?,
            credits_posted: self.u128()?,
            timestamp: self.u64()?,
        })
    }

    fn checkpoint_account(&mut self) -> Result<(Account, AccountFlags, u64), DecodeError> {
        let (id, ledger, kind, flags) = (
            self.u128()?,
            self.ledger()?,
            self.kind()?,
            self.account_flags()?,
        );
        let flags_at_creation = self.account_flags()?;
        let account = Account {
            id,
            ledger,
            kind,
            flags,
            debits_pending: self.u128()?,
            debits_posted: self.u128()?,
            credits_pending: self.u128()?,
            credits_posted: self.u128()?,
            timestamp: self.u64()?,
        };
        Ok((account, flags_at_creation, self.u64()?))
    }

    fn wallet_entry(&mut self, key: &str) -> Result<WalletEntry, DecodeError> {
        let offset = self.offset;
        let transaction_id = key.to_owned();
        match self.u8()? {
            ENTRY_BET => {
                let (player_id, round_id, amount, ledger) =
                    (self.u128()?, self.key()?, self.u64()?, self.ledger()?);
                let outcome = self.outcome()?;
                let request = WalletBet {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                };
                Ok(WalletEntry::Bet { request, outcome })
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

    fn result(&mut self) -> Result<CommandResult, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            RESULT_TAG_ACCOUNTS => {
                let codes = self.codes(CreateAccountResult::from_u8, "account result code")?;
                Ok(CommandResult::Accounts(codes))
            }
            RESULT_TAG_TRANSFERS => {
                let codes = self.codes(CreateTransferResult::from_u8, "transfer result code")?;
                Ok(CommandResult::Transfers(codes))
            }
            RESULT_TAG_WALLET => Ok(CommandResult::Wallet(self.outcome()?)),
            RESULT_TAG_TICK => Ok(CommandResult::Tick),
            RESULT_TAG_PLAYER => Ok(CommandResult::Player(self.player_outcome()?)),
            tables::RESULT_TAG_TABLE => Ok(CommandResult::Table(self.table_outcome()?)),
            compliance::RESULT_TAG_COMPLIANCE => {
                Ok(CommandResult::Compliance(self.compliance_outcome()?))
            }
            payments::RESULT_TAG_PAYMENT => Ok(CommandResult::Payment(self.payment_outcome()?)),
            consumers::RESULT_TAG_CONSUMER => Ok(CommandResult::Consumer(self.consumer_outcome()?)),
            _ => Err(self.invalid("result tag", offset)),
        }
    }

    fn codes<T>(
        &mut self,
        from_u8: fn(u8) -> Option<T>,
        what: &'static str,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.count_u32(RESULT_CODE_BYTES)?;
        let mut codes = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = self.offset;
            codes.push(from_u8(self.u8()?).ok_or(self.invalid(what, offset))?);
        }
        Ok(codes)
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
            OUTCOME_REFUSED => {
                let offset = self.offset;
                let refusal = crate::compliance::Refusal::from_u8(self.u8()?);
                Ok(WalletOutcome::Refused(
                    refusal.ok_or(self.invalid("refusal", offset))?,
                ))
            }
            tag => PLAIN_OUTCOMES
                .get(usize::from(tag) - 2)
                .copied()
                .ok_or(self.invalid("wallet outcome", offset)),
        }
    }
}
