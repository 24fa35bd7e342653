//! Binary codec for log entries (`Proposal`) and ledger snapshots. (Skeleton.)

use crate::command::Proposal;
use crate::ledger::Ledger;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated input at byte {offset}")]
    Truncated { offset: usize },
    #[error("invalid {what} at byte {offset}")]
    Invalid { what: &'static str, offset: usize },
    #[error("unsupported format version {0}")]
    Version(u8),
}

pub fn encode_proposal(_proposal: &Proposal, _out: &mut Vec<u8>) {
    todo!()
}

pub fn decode_proposal(_bytes: &[u8]) -> Result<Proposal, DecodeError> {
    todo!()
}

pub fn encode_ledger(_ledger: &Ledger, _out: &mut Vec<u8>) {
    todo!()
}

pub fn decode_ledger(_bytes: &[u8]) -> Result<Ledger, DecodeError> {
    todo!()
}
