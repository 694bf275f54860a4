//! `silver/dead_letters`: the dead-letter envelopes of `bronze/dead_letters`
//! (`contracts/dead_letter.schema.json`), typed and flattened, one row per original record
//! (`source` topic, partition, offset; first ingest wins).
//!
//! A dead letter is placed in an interval by the time of the record it rejected: the original's
//! `ts_event` when its data is a JSON object with a readable one, else the original's Kafka
//! timestamp, else `ts_dead_letter` — the first of these that is not more than the tolerance
//! after the dead letter's own Kafka timestamp (so its interval's run reads it), else that
//! Kafka timestamp. Gold's `data_quality` counts them per coin and hour by this time.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope_check::SchemaCheck;
use super::prices::TYPING;
use super::quarantine::Rejection;
use super::refine::{Origin, Refined};
use super::source::BronzeRow;
use super::timestamps::{event_date, micros, micros_opt};
use crate::job::replace::{timestamp_type, TableSpec};
use crate::job::JobError;

/// The table's name under the lake root.
pub const TABLE: &str = "silver/dead_letters";

/// The dead-letter contract, bundled.
const SCHEMA: &str = include_str!("../../../contracts/dead_letter.schema.json");

/// The envelope as the contract nests it.
#[derive(Deserialize)]
struct Envelope {
    schema_version: String,
    error_kind: String,
    reason: Reason,
    errors_total: i64,
    source: Source,
    original: Original,
    app: String,
    #[serde(with = "micros")]
    ts_dead_letter: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Reason {
    keyword: String,
    instance_path: String,
    schema_path: Option<String>,
    message: String,
}

#[derive(Deserialize)]
struct Source {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    #[serde(with = "micros_opt")]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Original {
    encoding: String,
    data: String,
    size_bytes: i64,
}

/// One dead letter, flattened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetterRow {
    /// Envelope version.
    pub schema_version: String,
    /// `deserialization`, `schema_violation`, `processing` or `production`.
    pub error_kind: String,
    /// The rule broken (`reason.keyword`).
    pub rule: String,
    /// JSON pointer into the original (`reason.instance_path`).
    pub pointer: String,
    /// JSON pointer into the schema, for schema violations.
    pub schema_path: Option<String>,
    /// The reason's message.
    pub message: String,
    /// Errors the validator found.
    pub errors_total: i64,
    /// Topic of the original record.
    pub source_topic: String,
    /// Partition of the original record.
    pub source_partition: i32,
    /// Offset of the original record.
    pub source_offset: i64,
    /// Key of the original record, as text.
    pub source_key: Option<String>,
    /// Kafka timestamp of the original record.
    #[serde(with = "micros_opt")]
    pub source_timestamp: Option<DateTime<Utc>>,
    /// `utf8` or `base64`.
    pub original_encoding: String,
    /// The original value, encoded.
    pub original_data: String,
    /// Size of the original value in bytes.
    pub original_size_bytes: i64,
    /// The app that dead-lettered it.
    pub app: String,
    /// When it was dead-lettered.
    #[serde(with = "micros")]
    pub ts_dead_letter: DateTime<Utc>,
    /// The coin, when recoverable (the original key, else the original's `coin_id`).
    pub coin_id: Option<String>,
    /// The original's `ts_event`, when readable.
    #[serde(with = "micros_opt")]
    pub ts_event: Option<DateTime<Utc>>,
    /// The instant that places the row in an interval (module docs).
    #[serde(with = "micros")]
    pub event_time: DateTime<Utc>,
    /// Kafka partition of the Bronze record.
    pub bronze_partition: i32,
    /// Kafka offset of the Bronze record.
    pub bronze_offset: i64,
    /// Kafka timestamp of the Bronze record.
    #[serde(with = "micros_opt")]
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// UTC date of `event_time` (partition).
    pub event_date: i32,
    /// Where the row came from.
    #[serde(skip)]
    pub origin: Origin,
}

impl Refined for DeadLetterRow {
    type Key = (String, i32, i64);

    fn key(&self) -> Self::Key {
        (
            self.source_topic.clone(),
            self.source_partition,
            self.source_offset,
        )
    }

    fn event_time(&self) -> DateTime<Utc> {
        self.event_time
    }

    fn received(&self) -> DateTime<Utc> {
        self.ts_dead_letter
    }

    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn coin_id(&self) -> Option<&str> {
        self.coin_id.as_deref()
    }
}

/// The dead-letter contract check.
pub fn check() -> Result<SchemaCheck, JobError> {
    SchemaCheck::new("dead_letter", SCHEMA)
}

/// Parses one `bronze/dead_letters` record; `tolerance` as in the module docs.
pub fn parse(
    check: &SchemaCheck,
    tolerance: Duration,
    record: &BronzeRow,
) -> Result<DeadLetterRow, Rejection> {
    let value = check.check(record)?;
    let envelope: Envelope = serde_json::from_value(value).map_err(|error| Rejection {
        rule: TYPING.to_owned(),
        pointer: String::new(),
        message: format!("a contract-valid dead letter Silver cannot type: {error}"),
        ts_event: None,
        coin_id: record.readable_coin_id(),
    })?;
    let original: Option<Value> = (envelope.original.encoding == "utf8")
        .then(|| serde_json::from_str(&envelope.original.data).ok())
        .flatten();
    let original_field = |name: &str| {
        original
            .as_ref()
            .and_then(|value| value.get(name)?.as_str().map(str::to_owned))
    };
    let ts_event = original_field("ts_event").and_then(|text| {
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    });
    let coin_id = envelope
        .source
        .key
        .clone()
        .filter(|key| !key.is_empty())
        .or_else(|| original_field("coin_id"));
    let readable_by_run = |t: &DateTime<Utc>| {
        record
            .kafka_timestamp
            .is_none_or(|kafka| *t <= kafka + tolerance)
    };
    let event_time = [
        ts_event,
        envelope.source.timestamp,
        Some(envelope.ts_dead_letter),
    ]
    .into_iter()
    .flatten()
    .find(readable_by_run)
    .or(record.kafka_timestamp)
    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    Ok(DeadLetterRow {
        schema_version: envelope.schema_version,
        error_kind: envelope.error_kind,
        rule: envelope.reason.keyword,
        pointer: envelope.reason.instance_path,
        schema_path: envelope.reason.schema_path,
        message: envelope.reason.message,
        errors_total: envelope.errors_total,
        source_topic: envelope.source.topic,
        source_partition: envelope.source.partition,
        source_offset: envelope.source.offset,
        source_key: envelope.source.key,
        source_timestamp: envelope.source.timestamp,
        original_encoding: envelope.original.encoding,
        original_data: envelope.original.data,
        original_size_bytes: envelope.original.size_bytes,
        app: envelope.app,
        ts_dead_letter: envelope.ts_dead_letter,
        coin_id,
        ts_event,
        event_time,
        bronze_partition: record.partition,
        bronze_offset: record.offset,
        kafka_timestamp: record.kafka_timestamp,
        event_date: event_date(event_time),
        origin: Origin::of(record),
    })
}

/// The table: its columns and partitioning.
pub fn spec() -> TableSpec {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Schema::new(vec![
        text("schema_version"),
        text("error_kind"),
        text("rule"),
        text("pointer"),
        Field::new("schema_path", DataType::Utf8, true),
        text("message"),
        Field::new("errors_total", DataType::Int64, false),
        text("source_topic"),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("source_key", DataType::Utf8, true),
        Field::new("source_timestamp", timestamp_type(), true),
        text("original_encoding"),
        text("original_data"),
        Field::new("original_size_bytes", DataType::Int64, false),
        text("app"),
        Field::new("ts_dead_letter", timestamp_type(), false),
        Field::new("coin_id", DataType::Utf8, true),
        Field::new("ts_event", timestamp_type(), true),
        Field::new("event_time", timestamp_type(), false),
        Field::new("bronze_partition", DataType::Int32, false),
        Field::new("bronze_offset", DataType::Int64, false),
        Field::new("kafka_timestamp", timestamp_type(), true),
        Field::new("event_date", DataType::Date32, false),
    ]);
    TableSpec {
        name: TABLE,
        schema: Arc::new(schema),
        partition_columns: &["event_date"],
    }
}
