//! `silver/quarantine`: every Bronze record Silver did not turn into a row, with the reason —
//! contract violations, tombstones, unknown coins, malformed envelopes and alerts, and the
//! duplicates deduplication removed. Nothing read from Bronze vanishes: for every interval,
//! Bronze records placed in it = Silver rows + quarantine rows.
//!
//! Each row is placed in an interval by `event_time`: the record's `ts_event` when it could be
//! read (and is not implausibly far after its Kafka timestamp, see [`placement`]), else its
//! Kafka timestamp, else 1970-01-01. `event_date` is the UTC date of `event_time`.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;

use super::source::BronzeRow;
use super::timestamps::{event_date, micros, micros_opt};
use crate::job::replace::{timestamp_type, TableSpec};

/// The table's name under the lake root.
pub const TABLE: &str = "silver/quarantine";

/// The rule of a row removed as a duplicate of an earlier-ingested one.
pub const DUPLICATE: &str = "duplicate";

/// Why a record was not refined into a Silver row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The rule broken: a JSON Schema keyword (`type`, `required`, …) or a named rule
    /// (`json_syntax`, `tombstone`, `unknown_coin`, …).
    pub rule: String,
    /// JSON pointer into the record (`""` = the whole record).
    pub pointer: String,
    /// Human-readable detail.
    pub message: String,
    /// The record's `ts_event`, when it could be read.
    pub ts_event: Option<DateTime<Utc>>,
    /// The coin the record is about, when it could be read (from the value or the key).
    pub coin_id: Option<String>,
}

/// One quarantined record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuarantineRow {
    /// The Bronze table it came from.
    pub source_table: String,
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp.
    #[serde(with = "micros_opt")]
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// The coin, when recoverable.
    pub coin_id: Option<String>,
    /// The value: UTF-8 text, or base64 of other bytes; null for a tombstone and for a duplicate
    /// (Bronze keeps its bytes at `topic`/`partition`/`offset`).
    pub value_text: Option<String>,
    /// `utf8` or `base64`: how `value_text` encodes the value.
    pub value_encoding: Option<&'static str>,
    /// The rule broken ([`Rejection::rule`], or [`DUPLICATE`]).
    pub rule: String,
    /// JSON pointer into the record.
    pub pointer: String,
    /// Detail.
    pub message: String,
    /// The instant that places the row in an interval (module docs).
    #[serde(with = "micros")]
    pub event_time: DateTime<Utc>,
    /// UTC date of `event_time` (partition).
    pub event_date: i32,
}

impl QuarantineRow {
    /// The row for `record`, rejected for `rejection`, placed at `event_time`.
    pub fn rejected(record: &BronzeRow, rejection: Rejection, event_time: DateTime<Utc>) -> Self {
        let (value_text, value_encoding) = match record.value.as_deref() {
            None => (None, None),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (Some(text.to_owned()), Some("utf8")),
                Err(_) => (
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    Some("base64"),
                ),
            },
        };
        Self {
            source_table: record.table.to_owned(),
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            kafka_timestamp: record.kafka_timestamp,
            coin_id: rejection.coin_id,
            value_text,
            value_encoding,
            rule: rejection.rule,
            pointer: rejection.pointer,
            message: rejection.message,
            event_time,
            event_date: event_date(event_time),
        }
    }
}

/// The instant that places a rejected record: its `ts_event` unless that is more than
/// `tolerance` after its Kafka timestamp (such a record would fall outside the Bronze partitions
/// its interval's run reads), else the Kafka timestamp, else the epoch.
pub fn placement(
    ts_event: Option<DateTime<Utc>>,
    kafka_timestamp: Option<DateTime<Utc>>,
    tolerance: Duration,
) -> DateTime<Utc> {
    match (ts_event, kafka_timestamp) {
        (Some(event), Some(kafka)) if event <= kafka + tolerance => event,
        (Some(event), None) => event,
        (_, Some(kafka)) => kafka,
        (None, None) => DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// The table: its columns and partitioning.
pub fn spec() -> TableSpec {
    let schema = Schema::new(vec![
        Field::new("source_table", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("kafka_timestamp", timestamp_type(), true),
        Field::new("coin_id", DataType::Utf8, true),
        Field::new("value_text", DataType::Utf8, true),
        Field::new("value_encoding", DataType::Utf8, true),
        Field::new("rule", DataType::Utf8, false),
        Field::new("pointer", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("event_date", DataType::Date32, false),
    ]);
    TableSpec {
        name: TABLE,
        schema: Arc::new(schema),
        partition_columns: &["event_date"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ts_event_far_after_its_kafka_timestamp_is_placed_by_kafka_time() {
        let kafka = DateTime::from_timestamp(1_000_000, 0);
        let near = DateTime::from_timestamp(1_000_600, 0);
        let far = DateTime::from_timestamp(1_900_000, 0);
        let hour = Duration::hours(1);
        assert_eq!(placement(near, kafka, hour), near.unwrap_or_default());
        assert_eq!(placement(far, kafka, hour), kafka.unwrap_or_default());
        assert_eq!(placement(far, None, hour), far.unwrap_or_default());
        assert_eq!(placement(None, None, hour), DateTime::<Utc>::UNIX_EPOCH);
    }
}
