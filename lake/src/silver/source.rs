//! Reading a Bronze table for one Silver run: only the `ingest_date` partitions that can hold
//! records of the interval, streamed batch by batch.
//!
//! Which partitions: a record of the interval `[start, end)` cannot have reached Kafka more than
//! the tolerance before `start` (the contract bounds `ts_event − Kafka timestamp`), so the lower
//! bound is `date(start − tolerance)`. There is no upper bound by default: a record ingested late
//! — a replay, a repaired dead letter, a slow partition — is picked up by re-running its interval,
//! however late it came. [`IngestWindow::max_lateness`] caps the scan for backfills of old
//! intervals. The partition of records without a Kafka timestamp (1970-01-01) is always read.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{
    DataType, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use deltalake::datafusion::prelude::{col, lit};
use futures::StreamExt;
use serde_json::Value;

use super::timestamps::from_micros;
use crate::bronze::PARTITION_COLUMN;
use crate::job::interval::{date_value, Interval};
use crate::job::query::LakeSession;
use crate::job::JobError;
use crate::storage::Lake;
use crate::LakeError;

/// One Bronze record as Silver reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BronzeRow {
    /// The Bronze table it is in, like `bronze/prices_raw`.
    pub table: &'static str,
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp, when the record had one.
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl BronzeRow {
    /// The key as UTF-8 text, when it is non-empty UTF-8.
    pub fn key_text(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
            .filter(|key| !key.is_empty())
    }

    /// The value as JSON, when it is.
    pub fn value_json(&self) -> Option<Value> {
        self.value
            .as_deref()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
    }

    /// The value's `ts_event`, when the value is JSON with a readable RFC 3339 `ts_event`.
    pub fn readable_ts_event(&self) -> Option<DateTime<Utc>> {
        let value = self.value_json()?;
        let text = value.get("ts_event")?.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The coin the record is about: the value's `coin_id` when readable, else the key.
    pub fn readable_coin_id(&self) -> Option<String> {
        self.value_json()
            .and_then(|value| value.get("coin_id")?.as_str().map(str::to_owned))
            .or_else(|| self.key_text().map(str::to_owned))
    }
}

/// The `ingest_date` partitions a Silver run reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestWindow {
    /// First partition read.
    pub from: NaiveDate,
    /// Last partition read; `None` = every later one.
    pub to: Option<NaiveDate>,
}

impl IngestWindow {
    /// The partitions that can hold records of `interval`: from `date(start − tolerance)`, up to
    /// `date(end + max_lateness)` when a lateness cap is given, else without an upper bound.
    pub fn for_interval(
        interval: &Interval,
        tolerance: Duration,
        max_lateness: Option<Duration>,
    ) -> Self {
        Self {
            from: (interval.start() - tolerance).date_naive(),
            to: max_lateness.map(|late| (interval.end() + late).date_naive()),
        }
    }
}

/// Streams every record of the Bronze `table` in `window` to `each`; a table not created yet has
/// no records. Returns how many were read.
pub async fn read_bronze(
    lake: &Lake,
    table: &'static str,
    window: IngestWindow,
    mut each: impl FnMut(BronzeRow),
) -> Result<u64, JobError> {
    let session = LakeSession::new();
    if !session.register(lake, table, "bronze").await? {
        return Ok(0);
    }
    let mut partitions = col(PARTITION_COLUMN).gt_eq(lit(date_value(window.from)));
    if let Some(to) = window.to {
        partitions = partitions.and(col(PARTITION_COLUMN).lt_eq(lit(date_value(to))));
    }
    let undated = col(PARTITION_COLUMN).eq(lit(date_value(NaiveDate::default())));
    let mut stream = session
        .context()
        .table("bronze")
        .await
        .and_then(|frame| frame.filter(partitions.or(undated)))
        .map_err(JobError::query(table))?
        .execute_stream()
        .await
        .map_err(JobError::query(table))?;
    let mut read = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(JobError::query(table))?;
        read += rows(table, &batch, &mut each)?;
    }
    Ok(read)
}

/// Hands each row of a Bronze `batch` to `each`.
fn rows(
    table: &'static str,
    batch: &RecordBatch,
    each: &mut impl FnMut(BronzeRow),
) -> Result<u64, JobError> {
    let column = |name: &str, to: DataType| {
        let found = batch.column_by_name(name).ok_or_else(|| {
            JobError::from(LakeError::UnexpectedTable {
                table: table.to_owned(),
                message: format!("no column {name} (not a Bronze table, LAKE-CONTRACT.md)"),
            })
        })?;
        cast(found, &to).map_err(JobError::arrow(table))
    };
    let topic = column("topic", DataType::Utf8)?;
    let partition = column("partition", DataType::Int32)?;
    let offset = column("offset", DataType::Int64)?;
    let timestamp = column(
        "kafka_timestamp",
        DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
    )?;
    let key = column("key", DataType::Binary)?;
    let value = column("value", DataType::Binary)?;
    let (topic, key, value) = (
        topic.as_string::<i32>(),
        key.as_binary::<i32>(),
        value.as_binary::<i32>(),
    );
    let partition = partition.as_primitive::<Int32Type>();
    let offset = offset.as_primitive::<Int64Type>();
    let timestamp = timestamp.as_primitive::<TimestampMicrosecondType>();
    for i in 0..batch.num_rows() {
        let bytes = |array: &deltalake::arrow::array::BinaryArray| {
            array.is_valid(i).then(|| array.value(i).to_vec())
        };
        each(BronzeRow {
            table,
            topic: topic.value(i).to_owned(),
            partition: partition.value(i),
            offset: offset.value(i),
            kafka_timestamp: timestamp
                .is_valid(i)
                .then(|| from_micros(timestamp.value(i)))
                .flatten(),
            key: bytes(key),
            value: bytes(value),
        });
    }
    Ok(batch.num_rows() as u64)
}
