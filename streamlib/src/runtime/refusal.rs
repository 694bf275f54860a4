//! Records the broker refuses for a reason of their own: which errors say so, how a refused
//! record is recognised when an aborted transaction is redone, and when its dead letter is
//! stamped.
//!
//! A record whose timestamp lies outside the broker's bounds, that is too large or that the
//! broker finds invalid fails however often it is sent: it is the record's fault, not the
//! cluster's, so it goes to the production handler under both guarantees. Every other
//! delivery failure (timeouts, a lost coordinator, fencing) keeps the abort-and-retry or stop
//! behaviour of the task manager.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::record::RawRecord;
use crate::task::SourceCoordinates;

use super::topics::TopicLimits;

/// Whose fault a failed delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The record's own: it would be refused again (for the culprit, see [`is_culprit`]).
    Record,
    /// Another record of the same batch was refused; this one would be accepted if sent again.
    BatchMate,
    /// The cluster's or the client's: retry (exactly-once) or stop.
    Cluster,
}

/// Classifies a delivery (or send) error.
pub(crate) fn fault(error: &KafkaError) -> Fault {
    let KafkaError::MessageProduction(code) = error else {
        return Fault::Cluster;
    };
    match code {
        // MESSAGE_TOO_LARGE is also librdkafka's local MSG_SIZE_TOO_LARGE (same code).
        RDKafkaErrorCode::InvalidTimestamp
        | RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::MessageBatchTooLarge
        | RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::InvalidMessage
        | RDKafkaErrorCode::InvalidMessageSize => Fault::Record,
        RDKafkaErrorCode::InvalidDifferentRecord => Fault::BatchMate,
        _ => Fault::Cluster,
    }
}

/// Whether `record`, reported refused with `error` (a [`Fault::Record`] error), is the culprit
/// and not a batch mate. The broker does not always name the culprit: a batch too large fails
/// as a whole, and an `INVALID_TIMESTAMP` may be reported for every record of the batch. So
/// the size and timestamp errors are checked against the topic's limits (the wall clock `now`
/// standing in for the broker's); the others are taken as reported. A compressing producer
/// makes the size check an overestimate, so a record just under the limit may be judged too
/// large.
pub(crate) fn is_culprit(
    error: &KafkaError,
    record: &RawRecord,
    limits: &TopicLimits,
    now: i64,
) -> bool {
    match error {
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge,
        ) => size_alone(record) > limits.max_message_bytes,
        KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp) => {
            let earliest = now.saturating_sub(limits.timestamp_before_max_ms);
            let latest = now.saturating_add(limits.timestamp_after_max_ms);
            !(earliest..=latest).contains(&record.timestamp)
        }
        _ => true,
    }
}

/// Whether judging `error` needs the topic's limits ([`is_culprit`]).
pub(crate) fn needs_limits(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidTimestamp
        )
    )
}

/// Bytes a batch of `record` alone takes on the wire, uncompressed, at most: the v2 batch
/// header (61 bytes), the record's varint fields at their widest, and its key, value and
/// headers.
fn size_alone(record: &RawRecord) -> usize {
    const BATCH_HEADER: usize = 61;
    const RECORD_FIELDS: usize = 1 + 10 + 5 + 5 + 5 + 5 + 5;
    const HEADER_FIELDS: usize = 10;
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| HEADER_FIELDS + k.len() + v.len())
        .sum();
    BATCH_HEADER
        + RECORD_FIELDS
        + record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + headers
}

/// Identifies an output record by its topic, key, value and timestamp: what the redo of an
/// aborted transaction compares its outputs with. Computed only while refusals are pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    pub(crate) fn of(record: &RawRecord) -> Self {
        // SipHash with fixed keys: the fingerprint only lives in this process's memory.
        let mut hasher = DefaultHasher::new();
        record.topic.hash(&mut hasher);
        record.key.hash(&mut hasher);
        record.value.hash(&mut hasher);
        record.timestamp.hash(&mut hasher);
        Self(hasher.finish())
    }
}

/// How far ahead of the wall clock an input's timestamp may lie for its dead letter to carry
/// it: well inside the broker's default `message.timestamp.after.max.ms` (1 h).
const DEAD_LETTER_MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The timestamp of a production dead letter: the input record's when it is known and in the
/// broker's bounds (not negative, at most 10 minutes ahead of `now`), else the wall clock
/// `now`. Never the refused record's own timestamp, which may be what the broker refused.
pub(crate) fn dead_letter_timestamp(source: Option<&SourceCoordinates>, now: i64) -> i64 {
    match source {
        Some(s) if (0..=now.saturating_add(DEAD_LETTER_MAX_AHEAD_MS)).contains(&s.timestamp) => {
            s.timestamp
        }
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(value: &str, timestamp: i64) -> RawRecord {
        RawRecord {
            topic: Arc::from("out"),
            partition: None,
            offset: -1,
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }

    fn source(timestamp: i64) -> SourceCoordinates {
        SourceCoordinates {
            topic: Arc::from("in"),
            partition: 0,
            offset: 7,
            timestamp,
        }
    }

    #[test]
    fn the_record_is_at_fault_only_for_errors_about_itself() {
        let production = KafkaError::MessageProduction;
        assert_eq!(
            fault(&production(RDKafkaErrorCode::InvalidTimestamp)),
            Fault::Record
        );
        assert_eq!(
            fault(&production(RDKafkaErrorCode::MessageSizeTooLarge)),
            Fault::Record
        );
        assert_eq!(
            fault(&production(RDKafkaErrorCode::InvalidDifferentRecord)),
            Fault::BatchMate
        );
        assert_eq!(
            fault(&production(RDKafkaErrorCode::MessageTimedOut)),
            Fault::Cluster
        );
        assert_eq!(
            fault(&production(RDKafkaErrorCode::ProducerFenced)),
            Fault::Cluster
        );
        assert_eq!(
            fault(&KafkaError::Flush(RDKafkaErrorCode::InvalidTimestamp)),
            Fault::Cluster
        );
    }

    #[test]
    fn only_a_record_beyond_the_topics_limits_is_the_culprit() {
        let limits = TopicLimits {
            max_message_bytes: 1024,
            timestamp_after_max_ms: 3_600_000,
            timestamp_before_max_ms: i64::MAX,
        };
        let now = 1_000_000_000;
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let big = record(&"x".repeat(10_000), now);
        assert!(is_culprit(&too_large, &big, &limits, now));
        assert!(!is_culprit(&too_large, &record("small", now), &limits, now));
        let timestamp = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp);
        let ahead = record("v", now + 3 * 3_600_000);
        assert!(is_culprit(&timestamp, &ahead, &limits, now));
        assert!(!is_culprit(&timestamp, &record("v", now), &limits, now));
        let invalid = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord);
        assert!(is_culprit(&invalid, &record("v", now), &limits, now));
    }

    #[test]
    fn fingerprints_tell_records_apart_by_topic_key_value_and_timestamp() {
        let a = record("v", 1);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&a.clone()));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&record("w", 1)));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&record("v", 2)));
        let mut elsewhere = a.clone();
        elsewhere.topic = Arc::from("other");
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&elsewhere));
    }

    #[test]
    fn a_dead_letter_carries_the_input_timestamp_only_when_the_broker_accepts_it() {
        let now = 1_000_000_000;
        assert_eq!(dead_letter_timestamp(Some(&source(now - 5)), now), now - 5);
        let three_hours = 3 * 3600 * 1000;
        assert_eq!(
            dead_letter_timestamp(Some(&source(now + three_hours)), now),
            now
        );
        assert_eq!(dead_letter_timestamp(Some(&source(-1)), now), now);
        assert_eq!(dead_letter_timestamp(None, now), now);
    }
}
