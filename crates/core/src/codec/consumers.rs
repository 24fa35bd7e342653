//! The feed consumers' part of the codec: command 16, result 9 and the checkpoint's consumer
//! cursors section (version 11). A name is u16-length-prefixed and must pass
//! `check_consumer_name` (canonical: nothing the encoder could not have written).

use super::{DecodeError, Reader, Writer};
use crate::consumers::{check_consumer_name, ConsumerAck, ConsumerCursors, ConsumerOutcome};
use crate::consumers::{CONSUMERS_MAX, CONSUMER_NAME_BYTES_MAX};

pub(super) const TAG_CONSUMER_ACK: u8 = 16;
pub(super) const RESULT_TAG_CONSUMER: u8 = 9;

impl Writer<'_> {
    fn consumer_name(&mut self, name: &str) {
        assert!(check_consumer_name(name), "consumer name cannot be encoded");
        self.u16(name.len() as u16);
        self.0.extend_from_slice(name.as_bytes());
    }

    pub(super) fn consumer_ack(&mut self, ack: &ConsumerAck) {
        self.u8(TAG_CONSUMER_ACK);
        self.consumer_name(&ack.name);
        self.u64(ack.position);
    }

    pub(super) fn consumer_outcome(&mut self, outcome: ConsumerOutcome) {
        self.u8(RESULT_TAG_CONSUMER);
        self.u8(outcome.to_u8());
    }

    /// Count, then (name, position) in name order.
    pub(super) fn checkpoint_consumers(&mut self, cursors: &ConsumerCursors) {
        self.u64(cursors.len() as u64);
        for (name, position) in cursors.iter() {
            self.consumer_name(name);
            self.u64(position);
        }
    }
}

impl Reader<'_> {
    fn consumer_name(&mut self) -> Result<String, DecodeError> {
        let offset = self.offset;
        let len = usize::from(self.u16()?);
        if len > CONSUMER_NAME_BYTES_MAX {
            return Err(self.invalid("consumer name", offset));
        }
        let bytes = self.slice(len)?;
        match std::str::from_utf8(bytes) {
            Ok(name) if check_consumer_name(name) => Ok(name.to_owned()),
            _ => Err(self.invalid("consumer name", offset)),
        }
    }

    /// After its tag.
    pub(super) fn consumer_ack(&mut self) -> Result<ConsumerAck, DecodeError> {
        Ok(ConsumerAck {
            name: self.consumer_name()?,
            position: self.u64()?,
        })
    }

    /// After its tag.
    pub(super) fn consumer_outcome(&mut self) -> Result<ConsumerOutcome, DecodeError> {
        let offset = self.offset;
        ConsumerOutcome::from_u8(self.u8()?).ok_or(self.invalid("consumer outcome", offset))
    }

    pub(super) fn checkpoint_consumers(&mut self) -> Result<ConsumerCursors, DecodeError> {
        let offset = self.offset;
        let count = self.u64()?;
        if count > CONSUMERS_MAX as u64 {
            return Err(self.invalid("consumer count", offset));
        }
        let mut cursors = ConsumerCursors::default();
        for _ in 0..count {
            let offset = self.offset;
            let name = self.consumer_name()?;
            let position = self.u64()?;
            if !cursors.restore(name, position) {
                return Err(self.invalid("consumer order", offset));
            }
        }
        Ok(cursors)
    }
}
