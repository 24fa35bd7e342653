//! The operator audit trail: one record per command an operator's key asked for
//! (`Command::ByOperator`), saying who (the key id), what (the command's kind, how many items,
//! how many were refused, the first object it named, the transfers it created) and when (ledger
//! time). The records form their own SHA-256 chain: each hash covers the previous record's hash
//! and this record's fields, and the ledger carries the chain's head in its hot state (and so in
//! every checkpoint). The Raft log that carried the commands is compacted away behind
//! checkpoints; this trail is kept for good in history, and cutting, reordering or editing one
//! record breaks every hash after it.
//!
//! The record layout lives here rather than in `codec` because the ledger hashes it while it
//! applies (and `codec` already depends on the ledger for checkpoints).

use sha2::{Digest, Sha256};

use crate::command::{Command, CommandResult, OPERATOR_KEY_ID_LEN_MAX};
use crate::players::PlayerOutcome;
use crate::types::{CreateAccountResult, CreateTransferResult};

pub type AuditHash = [u8; 32];

/// Size of one operator record in history (fixed, so record `seq` lives at
/// `seq × OPERATOR_RECORD_BYTES` plus framing):
/// `u64 seq | u64 timestamp | u8 key_len | [32] key_id (zero padded) | u8 kind | u32 items
/// | u32 rejected | u128 subject | u64 transfer_seq_first | u32 transfers | [32] prev_hash
/// | [32] hash`.
pub const OPERATOR_RECORD_BYTES: usize =
    8 + 8 + 1 + OPERATOR_KEY_ID_LEN_MAX + 1 + 4 + 4 + 16 + 8 + 4 + 32 + 32;
/// The hashed part: everything but the record's own hash.
const HASHED_BYTES: usize = OPERATOR_RECORD_BYTES - 32;

/// What kind of command an operator asked for (the command's codec tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    CreateAccounts = 1,
    CreateTransfers = 2,
    WalletBet = 3,
    WalletWin = 4,
    WalletRollback = 5,
    Tick = 6,
    CreatePlayer = 7,
    OpenSession = 8,
    CloseSession = 9,
    RevokeSessions = 10,
    Table = 13,
    Compliance = 14,
    Payment = 15,
    ConsumerAck = 16,
}

impl CommandKind {
    const ALL: [CommandKind; 14] = [
        CommandKind::CreateAccounts,
        CommandKind::CreateTransfers,
        CommandKind::WalletBet,
        CommandKind::WalletWin,
        CommandKind::WalletRollback,
        CommandKind::Tick,
        CommandKind::CreatePlayer,
        CommandKind::OpenSession,
        CommandKind::CloseSession,
        CommandKind::RevokeSessions,
        CommandKind::Table,
        CommandKind::Compliance,
        CommandKind::Payment,
        CommandKind::ConsumerAck,
    ];

    /// The kind of a command that is not itself an operator wrapper.
    pub fn of(command: &Command) -> CommandKind {
        match command {
            Command::CreateAccounts(_) => CommandKind::CreateAccounts,
            Command::CreateTransfers(_) => CommandKind::CreateTransfers,
            Command::WalletBet(_) => CommandKind::WalletBet,
            Command::WalletWin(_) => CommandKind::WalletWin,
            Command::WalletRollback(_) => CommandKind::WalletRollback,
            Command::Tick => CommandKind::Tick,
            Command::CreatePlayer(_) => CommandKind::CreatePlayer,
            Command::OpenSession(_) => CommandKind::OpenSession,
            Command::CloseSession(_) => CommandKind::CloseSession,
            Command::RevokeSessions(_) => CommandKind::RevokeSessions,
            Command::Table(_) => CommandKind::Table,
            Command::Compliance(_) => CommandKind::Compliance,
            Command::Payment(_) => CommandKind::Payment,
            Command::ConsumerAck(_) => CommandKind::ConsumerAck,
            Command::ByOperator { .. } => panic!("operator commands are never nested"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::CreateAccounts => "create_accounts",
            CommandKind::CreateTransfers => "create_transfers",
            CommandKind::WalletBet => "wallet_bet",
            CommandKind::WalletWin => "wallet_win",
            CommandKind::WalletRollback => "wallet_rollback",
            CommandKind::Tick => "tick",
            CommandKind::CreatePlayer => "create_player",
            CommandKind::OpenSession => "open_session",
            CommandKind::CloseSession => "close_session",
            CommandKind::RevokeSessions => "revoke_sessions",
            CommandKind::Table => "table",
            CommandKind::Compliance => "compliance",
            CommandKind::Payment => "payment",
            CommandKind::ConsumerAck => "consumer_ack",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<CommandKind> {
        CommandKind::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
    }

    /// The kind whose `name` this is (how the API prints it).
    pub fn from_name(name: &str) -> Option<CommandKind> {
        CommandKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// One operator action as history keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAction {
    /// The n-th operator action of the ledger (0-based): its place in the trail.
    pub seq: u64,
    /// The ledger clock after the command applied (ns).
    pub timestamp: u64,
    pub key_id: String,
    pub kind: CommandKind,
    /// Items the command carried (accounts, transfers; 1 for a wallet or player command).
    pub items: u32,
    /// Items the ledger refused (any result but ok).
    pub rejected: u32,
    /// The first object the command named: account, transfer or player id (0: none).
    pub subject: u128,
    /// The transfers the command created are `transfer_seq_first..+transfers` in history.
    pub transfer_seq_first: u64,
    pub transfers: u32,
    pub prev_hash: AuditHash,
    pub hash: AuditHash,
}

/// The trail's length and the hash of its last record (zero before the first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperatorChain {
    pub count: u64,
    pub head: AuditHash,
}

impl OperatorAction {
    /// The record that follows `chain` for a command and its result; the chain advances.
    pub(crate) fn append(
        chain: &mut OperatorChain,
        timestamp: u64,
        key_id: &str,
        command: &Command,
        result: &CommandResult,
        transfers: std::ops::Range<u64>,
    ) -> OperatorAction {
        let (items, rejected) = item_counts(result);
        let mut action = OperatorAction {
            seq: chain.count,
            timestamp,
            key_id: key_id.to_string(),
            kind: CommandKind::of(command),
            items,
            rejected,
            subject: subject_of(command, result),
            transfer_seq_first: transfers.start,
            transfers: u32::try_from(transfers.end - transfers.start)
                .expect("one command's transfers"),
            prev_hash: chain.head,
            hash: [0; 32],
        };
        action.hash = action.computed_hash();
        chain.count += 1;
        chain.head = action.hash;
        action
    }

    /// SHA-256 over every field but `hash` (`prev_hash` included): what `hash` must be.
    pub fn computed_hash(&self) -> AuditHash {
        let mut bytes = Vec::with_capacity(OPERATOR_RECORD_BYTES);
        self.encode(&mut bytes);
        Sha256::digest(&bytes[..HASHED_BYTES]).into()
    }

    /// Appends the fixed-size record (see `OPERATOR_RECORD_BYTES`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        assert!(crate::command::check_operator_key_id(&self.key_id));
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.push(self.key_id.len() as u8);
        let mut key = [0u8; OPERATOR_KEY_ID_LEN_MAX];
        key[..self.key_id.len()].copy_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&key);
        out.push(self.kind.code());
        out.extend_from_slice(&self.items.to_le_bytes());
        out.extend_from_slice(&self.rejected.to_le_bytes());
        out.extend_from_slice(&self.subject.to_le_bytes());
        out.extend_from_slice(&self.transfer_seq_first.to_le_bytes());
        out.extend_from_slice(&self.transfers.to_le_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.hash);
        assert_eq!(out.len() - start, OPERATOR_RECORD_BYTES);
    }

    /// Reads a record back; `None` unless the bytes are exactly what `encode` writes (the
    /// hash is not checked here: the chain check is the reader's, with the previous record).
    pub fn decode(bytes: &[u8]) -> Option<OperatorAction> {
        if bytes.len() != OPERATOR_RECORD_BYTES {
            return None;
        }
        let mut r = Fields { bytes, at: 0 };
        let seq = u64::from_le_bytes(r.take());
        let timestamp = u64::from_le_bytes(r.take());
        let [key_len] = r.take::<1>();
        let key: [u8; OPERATOR_KEY_ID_LEN_MAX] = r.take();
        let key_len = usize::from(key_len);
        let key_id = std::str::from_utf8(key.get(..key_len)?).ok()?.to_string();
        let padded_with_zeros = key[key_len..].iter().all(|&b| b == 0);
        let kind = CommandKind::from_code(r.take::<1>()[0])?;
        let action = OperatorAction {
            seq,
            timestamp,
            kind,
            items: u32::from_le_bytes(r.take()),
            rejected: u32::from_le_bytes(r.take()),
            subject: u128::from_le_bytes(r.take()),
            transfer_seq_first: u64::from_le_bytes(r.take()),
            transfers: u32::from_le_bytes(r.take()),
            prev_hash: r.take(),
            hash: r.take(),
            key_id,
        };
        let valid = padded_with_zeros
            && crate::command::check_operator_key_id(&action.key_id)
            && action.rejected <= action.items;
        valid.then_some(action)
    }
}

struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    /// The next `N` bytes; the caller checked the total length.
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let field = self.bytes[self.at..self.at + N]
            .try_into()
            .expect("length checked");
        self.at += N;
        field
    }
}

fn item_counts(result: &CommandResult) -> (u32, u32) {
    let count = |n: usize| u32::try_from(n).expect("items per command fit u32");
    match result {
        CommandResult::Accounts(results) => (
            count(results.len()),
            count(
                results
                    .iter()
                    .filter(|r| **r != CreateAccountResult::Ok)
                    .count(),
            ),
        ),
        CommandResult::Transfers(results) => (
            count(results.len()),
            count(
                results
                    .iter()
                    .filter(|r| **r != CreateTransferResult::Ok)
                    .count(),
            ),
        ),
        CommandResult::Wallet(outcome) => (1, u32::from(!outcome.is_ok())),
        CommandResult::Player(outcome) => (1, u32::from(outcome.code() != "ok")),
        CommandResult::Table(outcome) => (1, u32::from(!outcome.is_ok())),
        CommandResult::Compliance(outcome) => (1, u32::from(outcome.code() != "ok")),
        CommandResult::Payment(outcome) => (1, u32::from(outcome.code() != "ok")),
        CommandResult::Consumer(outcome) => (1, u32::from(outcome.code() != "ok")),
        CommandResult::Tick => (0, 0),
    }
}

fn subject_of(command: &Command, result: &CommandResult) -> u128 {
    match (command, result) {
        (Command::CreateAccounts(items), _) => items.first().map_or(0, |a| a.id),
        (Command::CreateTransfers(items), _) => items.first().map_or(0, |t| t.id),
        (Command::WalletBet(bet), _) => bet.player_id,
        (Command::WalletWin(win), _) => win.player_id,
        (Command::WalletRollback(rollback), _) => rollback.player_id,
        (
            Command::CreatePlayer(_),
            CommandResult::Player(PlayerOutcome::PlayerCreated { player_id }),
        ) => *player_id,
        (Command::OpenSession(session), _) => session.player_id,
        (Command::RevokeSessions(player), _) => *player,
        (Command::Compliance(command), _) => command.player_id().unwrap_or(0),
        (Command::Payment(command), _) => command.payment_id(),
        _ => 0,
    }
}

/// Checks that `actions` (consecutive, from `seq` of the first) form an unbroken chain from
/// `prev_hash`: each record's hash is right and names its predecessor. Returns the head, or
/// the seq of the first record that breaks the chain.
pub fn verify_chain<'a>(
    mut prev_hash: AuditHash,
    mut next_seq: u64,
    actions: impl IntoIterator<Item = &'a OperatorAction>,
) -> Result<AuditHash, u64> {
    for action in actions {
        let linked = action.seq == next_seq && action.prev_hash == prev_hash;
        if !linked || action.computed_hash() != action.hash {
            return Err(action.seq);
        }
        prev_hash = action.hash;
        next_seq += 1;
    }
    Ok(prev_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::WalletOutcome;

    fn action(chain: &mut OperatorChain, key: &str) -> OperatorAction {
        let result = CommandResult::Wallet(WalletOutcome::PlayerNotFound);
        let command = Command::Tick;
        OperatorAction::append(chain, 7, key, &command, &result, 3..3)
    }

    #[test]
    fn a_record_decodes_to_itself_and_its_hash_covers_every_field() {
        let mut chain = OperatorChain::default();
        let first = action(&mut chain, "ops-1");
        let mut bytes = Vec::new();
        first.encode(&mut bytes);
        assert_eq!(OperatorAction::decode(&bytes), Some(first.clone()));
        for at in 0..HASHED_BYTES {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            if let Some(edited) = OperatorAction::decode(&changed) {
                assert_ne!(
                    edited.computed_hash(),
                    edited.hash,
                    "byte {at} is not covered"
                );
            }
        }
    }

    #[test]
    fn the_chain_breaks_at_a_removed_or_edited_record() {
        let mut chain = OperatorChain::default();
        let trail: Vec<_> = (0..4).map(|_| action(&mut chain, "finance")).collect();
        assert_eq!(verify_chain([0; 32], 0, &trail), Ok(chain.head));
        let mut cut = trail.clone();
        cut.remove(1);
        assert_eq!(verify_chain([0; 32], 0, &cut), Err(2));
        let mut edited = trail.clone();
        edited[2].items = 9;
        assert_eq!(verify_chain([0; 32], 0, &edited), Err(2));
    }

    #[test]
    fn decoding_refuses_bad_key_ids_and_kinds() {
        let mut chain = OperatorChain::default();
        let mut bytes = Vec::new();
        action(&mut chain, "ops").encode(&mut bytes);
        let mut bad_kind = bytes.clone();
        bad_kind[8 + 8 + 1 + OPERATOR_KEY_ID_LEN_MAX] = 99;
        assert_eq!(OperatorAction::decode(&bad_kind), None);
        let mut long_key = bytes.clone();
        long_key[16] = 33;
        assert_eq!(OperatorAction::decode(&long_key), None);
        assert_eq!(OperatorAction::decode(&bytes[1..]), None);
    }
}
