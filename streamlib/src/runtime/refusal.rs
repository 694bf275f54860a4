//! Records the broker refuses for a reason of their own: which errors say so, how a refused
//! record is recognised when an aborted transaction is redone, and when its dead letter is
//! stamped.
//!
//! A record whose timestamp lies outside the broker's bounds, that is too large or that the
//! broker finds invalid fails however often it is sent: it is the record's fault, not the
//! cluster's, so it goes to the production handler under both guarantees. Every other
//! delivery failure (timeouts, a lost coordinator, fencing) keeps the abort-and-retry or stop
//! behaviour of the commit step ([`super::commit`]).
//!
//! The broker judges a batch, not a record: a batch too large fails as a whole, and an
//! `INVALID_TIMESTAMP` is reported for every record of the batch that holds one bad
//! timestamp. So a refusal in a batch only makes its records suspects; the record collector
//! sends them again one record per request ("isolation"), and only a record refused alone is
//! the culprit.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::record::RawRecord;
use crate::task::SourceCoordinates;

/// Whether `error` (from a delivery report or `send`) is a refusal of the record, or of a
/// record of its batch, for what it holds: sent alone, a refused record is refused again,
/// while its innocent batch mates go through. Every other error is the cluster's or the
/// client's: retry (exactly-once) or stop.
pub(crate) fn is_refusal(error: &KafkaError) -> bool {
    let KafkaError::MessageProduction(code) = error else {
        return false;
    };
    matches!(
        code,
        // MESSAGE_TOO_LARGE is also librdkafka's local MSG_SIZE_TOO_LARGE (same code).
        RDKafkaErrorCode::InvalidTimestamp
            | RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidDifferentRecord
    )
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
    fn only_errors_about_what_a_record_holds_are_refusals() {
        let production = KafkaError::MessageProduction;
        assert!(is_refusal(&production(RDKafkaErrorCode::InvalidTimestamp)));
        assert!(is_refusal(&production(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert!(is_refusal(&production(
            RDKafkaErrorCode::InvalidDifferentRecord
        )));
        assert!(!is_refusal(&production(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!is_refusal(&production(RDKafkaErrorCode::ProducerFenced)));
        assert!(!is_refusal(&KafkaError::Flush(
            RDKafkaErrorCode::InvalidTimestamp
        )));
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
