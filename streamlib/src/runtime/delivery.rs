//! Delivery reports: the producer's context remembers the offset of every acknowledged record
//! per partition (the changelog checkpoints) and what failed: a copy of each record the broker
//! refused for a reason that may be its own (see [`super::refusal`]), and the first other error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::record::RawRecord;
use crate::task::SourceCoordinates;

use super::refusal::is_refusal;
use super::to_raw;

/// What a produced record is; travels with it to its delivery report.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) role: Role,
    /// The input being processed when the record was produced, when there was one.
    pub(crate) source: Option<SourceCoordinates>,
}

/// What travels with one produced record to its delivery report.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) origin: Arc<Origin>,
    /// The record's timestamp: librdkafka reports none for a failed delivery, and a record
    /// sent again must keep it.
    pub(crate) timestamp: i64,
}

/// The part a produced record plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// An output or repartition record: a refusal goes to the production handler.
    Output,
    /// A store's changelog record: a refusal is fatal, the store cannot skip a write.
    Changelog,
    /// A dead letter: a refusal is fatal, the record it stands for can go nowhere else.
    DeadLetter,
}

/// A record the broker did not take, for a reason that may be its own or a batch mate's
/// ([`super::refusal`]).
pub(crate) struct Refused {
    pub(crate) error: KafkaError,
    pub(crate) record: RawRecord,
    pub(crate) origin: Arc<Origin>,
}

/// Delivery failures since the last [`DeliveryTracker::take_failures`].
#[derive(Default)]
pub(crate) struct Failures {
    pub(crate) refused: Vec<Refused>,
    /// The first failure of another kind (kept without its record).
    pub(crate) other: Option<KafkaError>,
}

/// Delivery reports of one producer; clones share them.
#[derive(Clone, Default)]
pub(crate) struct DeliveryTracker(Arc<Reports>);

#[derive(Default)]
struct Reports {
    acked: Mutex<HashMap<(String, i32), i64>>,
    failures: Mutex<Failures>,
}

impl DeliveryTracker {
    /// Offset of the last acknowledged record of `topic`/`partition`.
    pub(crate) fn acked_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let acked = self
            .0
            .acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        acked.get(&(topic.to_string(), partition)).copied()
    }

    /// The failures reported since the last call.
    pub(crate) fn take_failures(&self) -> Failures {
        std::mem::take(
            &mut *self
                .0
                .failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        match result {
            Ok(message) => {
                let mut acked = self
                    .0
                    .acked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let slot = acked
                    .entry((message.topic().to_string(), message.partition()))
                    .or_insert(-1);
                *slot = (*slot).max(message.offset());
            }
            Err((error, message)) => {
                tracing::warn!(topic = message.topic(), %error, "record not delivered");
                let mut failures = self
                    .0
                    .failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if is_refusal(error) && sent.origin.role != Role::Changelog {
                    let mut record = to_raw(message);
                    record.timestamp = sent.timestamp;
                    failures.refused.push(Refused {
                        error: error.clone(),
                        record,
                        origin: sent.origin,
                    });
                } else {
                    failures.other.get_or_insert_with(|| error.clone());
                }
            }
        }
    }
}
