//! The producer context: remembers the offset of every acknowledged record per partition (the
//! changelog checkpoints) and the first delivery error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

/// Delivery reports of one producer; clones share them.
#[derive(Clone, Default)]
pub(crate) struct DeliveryTracker(Arc<Reports>);

#[derive(Default)]
struct Reports {
    acked: Mutex<HashMap<(String, i32), i64>>,
    error: Mutex<Option<KafkaError>>,
    failed: std::sync::atomic::AtomicU64,
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

    /// The first delivery error since the last call, and how many records failed since then.
    pub(crate) fn take_error(&self) -> Option<(KafkaError, u64)> {
        let failed = self.0.failed.swap(0, std::sync::atomic::Ordering::Relaxed);
        self.take_first().map(|e| (e, failed))
    }

    fn take_first(&self) -> Option<KafkaError> {
        self.0
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
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
                tracing::error!(topic = message.topic(), %error, "record not delivered");
                let mut first = self
                    .0
                    .error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert_with(|| error.clone());
                self.0
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
