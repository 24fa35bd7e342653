//! Linked chains, as TigerBeetle runs them: items flagged `linked` chain with the next item of
//! the same command and succeed or fail together.
//!
//! - The first member that does not answer `ok` breaks the chain: the effects of the members
//!   before it are undone (in reverse), it keeps its own code and every other member answers
//!   `linked_event_failed`.
//! - `exists` is not `ok`: a retried chain does not half-apply (TigerBeetle does the same,
//!   `result_status != .created` breaks the chain in `execute_create`).
//! - The last item of a command carrying `linked` leaves the chain open: it answers
//!   `linked_event_chain_open` and the chain fails.
//! - Every item takes a timestamp, whatever its result; a rollback does not rewind the clock.

use super::Ledger;
use crate::types::{
    AccountFlags, CreateAccountResult, CreateTransferResult, NewAccount, NewTransfer, TransferFlags,
};

pub(super) trait ChainItem {
    fn is_linked(&self) -> bool;
}

impl ChainItem for NewAccount {
    fn is_linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }
}

impl ChainItem for NewTransfer {
    fn is_linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }
}

pub(super) trait ChainResult: Copy + PartialEq {
    const OK: Self;
    const LINKED_EVENT_FAILED: Self;
    const LINKED_EVENT_CHAIN_OPEN: Self;
}

impl ChainResult for CreateAccountResult {
    const OK: Self = CreateAccountResult::Ok;
    const LINKED_EVENT_FAILED: Self = CreateAccountResult::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = CreateAccountResult::LinkedEventChainOpen;
}

impl ChainResult for CreateTransferResult {
    const OK: Self = CreateTransferResult::Ok;
    const LINKED_EVENT_FAILED: Self = CreateTransferResult::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = CreateTransferResult::LinkedEventChainOpen;
}

impl Ledger {
    pub(super) fn run_chained<I: ChainItem, R: ChainResult>(
        &mut self,
        items: &[I],
        create: fn(&mut Ledger, &I, u64) -> R,
    ) -> Vec<R> {
        let mut results: Vec<R> = Vec::with_capacity(items.len());
        let mut chain_start: Option<usize> = None;
        let mut chain_broken = false;
        for (index, item) in items.iter().enumerate() {
            let timestamp = self.next_timestamp();
            let linked = item.is_linked();
            if linked && chain_start.is_none() {
                chain_start = Some(index);
                assert!(!chain_broken);
                self.chain_open();
            }
            let result = if linked && index == items.len() - 1 {
                R::LINKED_EVENT_CHAIN_OPEN
            } else if chain_broken {
                R::LINKED_EVENT_FAILED
            } else {
                create(self, item, timestamp)
            };
            if result != R::OK {
                if let Some(start) = chain_start {
                    if !chain_broken {
                        chain_broken = true;
                        self.chain_discard();
                        results[start..index].fill(R::LINKED_EVENT_FAILED);
                    }
                }
            }
            results.push(result);
            if chain_start.is_some() && (!linked || result == R::LINKED_EVENT_CHAIN_OPEN) {
                if !chain_broken {
                    self.chain_persist();
                }
                chain_start = None;
                chain_broken = false;
            }
        }
        assert!(chain_start.is_none() && !chain_broken && !self.undo.active);
        results
    }

    fn chain_open(&mut self) {
        assert!(!self.undo.active && self.undo.ops.is_empty());
        self.undo.active = true;
    }

    fn chain_persist(&mut self) {
        assert!(self.undo.active);
        self.undo.active = false;
        self.undo.ops.clear();
    }

    fn chain_discard(&mut self) {
        assert!(self.undo.active);
        self.undo.active = false;
        let mut ops = std::mem::take(&mut self.undo.ops);
        while let Some(op) = ops.pop() {
            self.undo_one(op);
        }
        self.undo.ops = ops;
    }
}
