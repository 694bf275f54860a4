//! What a processor sees of its task: forwarding, record metadata, time, stores, punctuators.

use crate::error::ProcessError;
use crate::record::{Record, RecordMetadata};
use crate::state::{KeyValueStore, SessionStore, TtlKeyValueStore, WindowStore};
use crate::task::TaskContext;

use super::node::{Node, NodeId};

/// Which clock drives a punctuator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PunctuationType {
    /// Fires when the task's stream time (max event time seen) passes the next due time.
    StreamTime,
    /// Fires when the host's wall clock passes the next due time.
    WallClockTime,
}

/// Identifies a punctuator scheduled by a processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PunctuatorId(pub(crate) usize);

/// A processor's handle on its task, valid for one call.
pub struct ProcessorContext<'a, K, V> {
    pub(crate) node: NodeId,
    pub(crate) task: &'a mut TaskContext,
    pub(crate) children: &'a mut [Box<dyn Node<K, V>>],
}

impl<K: Clone, V: Clone> ProcessorContext<'_, K, V> {
    /// Sends a record to every downstream node, in the order they were attached.
    pub fn forward(&mut self, record: Record<K, V>) -> Result<(), ProcessError> {
        forward_to_all(self.children, record, self.task)
    }
}

pub(crate) fn forward_to_all<K: Clone, V: Clone>(
    children: &mut [Box<dyn Node<K, V>>],
    record: Record<K, V>,
    task: &mut TaskContext,
) -> Result<(), ProcessError> {
    if let Some((last, rest)) = children.split_last_mut() {
        for child in rest {
            child.process(record.clone(), task)?;
        }
        last.process(record, task)?;
    }
    Ok(())
}

impl<K, V> ProcessorContext<'_, K, V> {
    /// Source topic, partition, offset and timestamp of the record being processed; `None`
    /// inside a punctuation.
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.task.metadata.as_ref()
    }

    /// The task's partition.
    pub fn partition(&self) -> i32 {
        self.task.partition
    }

    /// Stream time: the largest event time the task has seen (`i64::MIN` before any record).
    pub fn stream_time(&self) -> i64 {
        self.task.stream_time
    }

    /// The host's wall clock in ms since the epoch (the test driver's is set by the test).
    pub fn wall_clock_time(&self) -> i64 {
        self.task.wall_clock
    }

    /// Schedules `punctuate` to be called every `interval_ms` of the given clock.
    pub fn schedule(&mut self, interval_ms: i64, kind: PunctuationType) -> PunctuatorId {
        self.task.schedule(self.node, interval_ms.max(1), kind)
    }

    /// Counts a record dropped because its window had closed.
    pub fn record_late_drop(&mut self) {
        self.task.metrics.late_dropped += 1;
    }

    /// Counts a record dropped for another reason (null key, filtered by a handler, …).
    pub fn record_drop(&mut self) {
        self.task.metrics.dropped += 1;
    }

    /// Emits an already serialized record to a topic (used to route late records, dead
    /// letters and other side outputs).
    pub fn send_raw(&mut self, record: crate::record::RawRecord) {
        self.task.outputs.push(record);
    }

    /// The key-value store named `name`.
    pub fn key_value_store(&mut self, name: &str) -> Result<&mut dyn KeyValueStore, ProcessError> {
        self.task.stores.key_value(name)
    }

    /// The window store named `name`.
    pub fn window_store(&mut self, name: &str) -> Result<&mut WindowStore, ProcessError> {
        self.task.stores.window(name)
    }

    /// The session store named `name`.
    pub fn session_store(&mut self, name: &str) -> Result<&mut SessionStore, ProcessError> {
        self.task.stores.session(name)
    }

    /// The stored row (`[timestamp][value]`) of `key` in the global store named `name`.
    pub(crate) fn global_row(
        &self,
        name: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, ProcessError> {
        match self.task.globals.get(name, key) {
            Some(row) => Ok(row?),
            None => Err(ProcessError::UnknownStore {
                name: name.to_string(),
                kind: "global",
            }),
        }
    }

    /// The TTL key-value store named `name`.
    pub fn ttl_store(&mut self, name: &str) -> Result<&mut TtlKeyValueStore, ProcessError> {
        self.task.stores.ttl(name)
    }
}
