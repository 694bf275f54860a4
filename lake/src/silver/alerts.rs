//! `silver/alerts`: the alert events of `bronze/alerts` (`contracts/alert_event.schema.json`),
//! typed, one row per `alert_id` (first ingest wins), placed by their `ts_event`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use super::envelope_check::SchemaCheck;
use super::prices::TYPING;
use super::quarantine::Rejection;
use super::refine::{Origin, Refined};
use super::source::BronzeRow;
use super::timestamps::{event_date, micros, micros_opt};
use crate::job::replace::{timestamp_type, TableSpec};
use crate::job::JobError;

/// The table's name under the lake root.
pub const TABLE: &str = "silver/alerts";

/// The alert contract, bundled.
const SCHEMA: &str = include_str!("../../../contracts/alert_event.schema.json");

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// Contract version.
    pub schema_version: String,
    /// Deterministic id (unique key).
    pub alert_id: String,
    /// `price_move`, `zscore`, `volume_spike` or `stale_feed`.
    pub rule: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Coin.
    pub coin_id: String,
    /// Quote currency.
    pub vs_currency: String,
    /// Horizon; null for `stale_feed`.
    pub window: Option<String>,
    /// Value that triggered the alert.
    pub observed: f64,
    /// Threshold, same unit.
    pub threshold: f64,
    /// Event time of the triggering record.
    #[serde(with = "micros")]
    pub ts_event: DateTime<Utc>,
    /// When the alert was raised.
    #[serde(with = "micros")]
    pub ts_alert: DateTime<Utc>,
    /// One line for humans.
    pub message: String,
    /// Kafka partition of the Bronze record.
    #[serde(skip_deserializing)]
    pub bronze_partition: i32,
    /// Kafka offset of the Bronze record.
    #[serde(skip_deserializing)]
    pub bronze_offset: i64,
    /// Kafka timestamp of the Bronze record.
    #[serde(skip_deserializing, with = "micros_opt")]
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// UTC date of `ts_event` (partition).
    #[serde(skip_deserializing)]
    pub event_date: i32,
    /// Where the row came from.
    #[serde(skip)]
    pub origin: Origin,
}

impl Refined for AlertRow {
    type Key = String;

    fn key(&self) -> String {
        self.alert_id.clone()
    }

    fn event_time(&self) -> DateTime<Utc> {
        self.ts_event
    }

    fn received(&self) -> DateTime<Utc> {
        self.ts_alert
    }

    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn coin_id(&self) -> Option<&str> {
        Some(&self.coin_id)
    }
}

/// The alert contract check.
pub fn check() -> Result<SchemaCheck, JobError> {
    SchemaCheck::new("alert_event", SCHEMA)
}

/// Parses one `bronze/alerts` record.
pub fn parse(check: &SchemaCheck, record: &BronzeRow) -> Result<AlertRow, Rejection> {
    let value = check.check(record)?;
    let mut row: AlertRow = serde_json::from_value(value).map_err(|error| Rejection {
        rule: TYPING.to_owned(),
        pointer: String::new(),
        message: format!("a contract-valid alert Silver cannot type: {error}"),
        ts_event: record.readable_ts_event(),
        coin_id: record.readable_coin_id(),
    })?;
    row.bronze_partition = record.partition;
    row.bronze_offset = record.offset;
    row.kafka_timestamp = record.kafka_timestamp;
    row.event_date = event_date(row.ts_event);
    row.origin = Origin::of(record);
    Ok(row)
}

/// The table: its columns and partitioning.
pub fn spec() -> TableSpec {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Schema::new(vec![
        text("alert_id"),
        text("schema_version"),
        text("rule"),
        text("severity"),
        text("coin_id"),
        text("vs_currency"),
        Field::new("window", DataType::Utf8, true),
        Field::new("observed", DataType::Float64, false),
        Field::new("threshold", DataType::Float64, false),
        Field::new("ts_event", timestamp_type(), false),
        Field::new("ts_alert", timestamp_type(), false),
        text("message"),
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
