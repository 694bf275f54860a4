//! Records flowing through a topology and the metadata of the Kafka record they came from.

use std::sync::Arc;

/// Kafka record headers: ordered `(name, value)` pairs; names may repeat.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A keyed, timestamped record as processors see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<K, V> {
    /// The record key (co-partitioning and state are by key).
    pub key: K,
    /// The record value.
    pub value: V,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers carried along to sinks.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record without headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with another key.
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with its value replaced by `f(value)`.
    pub fn map_value<V2>(self, f: impl FnOnce(V) -> V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value: f(self.value),
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value.
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }
}

/// Where the record being processed came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Offset in the source partition.
    pub offset: i64,
    /// The Kafka record timestamp (not necessarily the event time).
    pub timestamp: i64,
}

/// A serialized record as it arrives from (or leaves for) Kafka.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    /// Topic it was read from or is written to.
    pub topic: Arc<str>,
    /// Partition; for outputs, `None` lets the host pick by key hash.
    pub partition: Option<i32>,
    /// Offset in the source partition (`-1` for outputs).
    pub offset: i64,
    /// Serialized key; `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Serialized value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}
