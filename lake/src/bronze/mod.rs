//! Bronze: every Kafka record as received, in Delta tables whose log also holds the sink's progress.
//!
//! A Bronze commit carries, besides the data files, one `txn` action per Kafka partition in it:
//! `appId = "<sink_id>-<topic>-<partition>"`, `version = next offset` (the offset after the last
//! record committed). The data and the progress land in one atomic log entry, so the table's log is
//! the only store of offsets: [`committed_offsets`] reads them back, and a sink resumes from there.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::LakeError> {
//! use lake::bronze::{self, BronzeRecord};
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let table = lake.open_or_create("bronze/prices_raw", bronze::columns(), &[bronze::PARTITION_COLUMN]).await?;
//! let record = BronzeRecord {
//!     topic: "crypto.prices.raw".into(), partition: 0, offset: 41, timestamp_ms: Some(1_764_547_200_000),
//!     key: Some(b"bitcoin".to_vec()), value: Some(b"{}".to_vec()), headers: vec![],
//! };
//! let table = bronze::append(table, "bronze/prices_raw", "lake-sink", &[record]).await?;
//! let offsets = bronze::committed_offsets(&table, "bronze/prices_raw", "lake-sink", "crypto.prices.raw", [0]).await?;
//! assert_eq!(offsets.get(&0), Some(&42));
//! # Ok(()) }
//! ```

pub mod commit;
pub mod metrics;
pub mod progress;
pub mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use deltalake::arrow::array::{
    ArrayRef, BinaryArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit};
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{DataType, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, OutputMode, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};

use crate::LakeError;

/// The partition column of every Bronze table: the UTC date of `kafka_timestamp`.
pub const PARTITION_COLUMN: &str = "ingest_date";

/// The date Bronze files a record without a Kafka timestamp under (1970-01-01).
const NO_TIMESTAMP_DATE: i32 = 0;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// One Kafka record exactly as the broker delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BronzeRecord {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The Kafka timestamp (create or log-append time), milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// The key bytes; `None` for a record without a key.
    pub key: Option<Vec<u8>>,
    /// The value bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The headers in the order received; a header may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The Delta columns of a Bronze table (LAKE-CONTRACT.md), partition column last.
pub fn columns() -> Vec<StructField> {
    vec![
        StructField::not_null("topic", DataType::STRING),
        StructField::not_null("partition", DataType::INTEGER),
        StructField::not_null("offset", DataType::LONG),
        StructField::nullable("kafka_timestamp", DataType::TIMESTAMP),
        StructField::nullable("key", DataType::BINARY),
        StructField::nullable("value", DataType::BINARY),
        StructField::nullable("headers", DataType::STRING),
        StructField::not_null(PARTITION_COLUMN, DataType::DATE),
    ]
}

/// The `txn` application id under which `sink_id` records its progress on `topic`'s `partition`.
pub fn app_id(sink_id: &str, topic: &str, partition: i32) -> String {
    format!("{sink_id}-{topic}-{partition}")
}

/// The next offset (the `txn` version) committed by `sink_id` for each of `partitions` of `topic`
/// in `table` (named `name` in errors); partitions the sink never committed are absent.
pub async fn committed_offsets(
    table: &DeltaTable,
    name: &str,
    sink_id: &str,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> Result<BTreeMap<i32, i64>, LakeError> {
    let snapshot = table
        .snapshot()
        .map_err(LakeError::delta(name, "read the log"))?;
    let log_store = table.log_store();
    let mut offsets = BTreeMap::new();
    for partition in partitions {
        let version = snapshot
            .transaction_version(log_store.as_ref(), app_id(sink_id, topic, partition))
            .await
            .map_err(LakeError::delta(name, "read txn versions"))?;
        if let Some(version) = version {
            offsets.insert(partition, version);
        }
    }
    Ok(offsets)
}

/// Consumer positions: per `(topic, partition)`, an offset the partition's `txn` version must
/// reach even without records up to it (offsets taken by transaction markers or aborted records).
pub type Positions = BTreeMap<(String, i32), i64>;

/// Appends `records` to the Bronze `table` (named `name`) in ONE Delta commit that also records,
/// for every `(topic, partition)` among them, `version = max offset + 1` under `sink_id`.
///
/// The caller guarantees the records continue each partition from its committed offset. A
/// concurrent commit that moved one of these partitions fails this one with
/// [`LakeError::CommitConflict`] (Delta's conflict check on `txn` app ids), never doubling data.
/// No records: no commit, the table is returned as it is.
pub async fn append(
    table: DeltaTable,
    name: &str,
    sink_id: &str,
    records: &[BronzeRecord],
) -> Result<DeltaTable, LakeError> {
    append_with_positions(table, name, sink_id, records, &Positions::new()).await
}

/// [`append`], with each partition's `version` raised to its consumer position in `positions`
/// (partitions there without records get a `txn` action too).
///
/// The caller guarantees the records continue each partition from its committed offset and that
/// no record of a partition lies between its last record and its position. A concurrent commit
/// that moved one of these partitions fails this one with [`LakeError::CommitConflict`] (Delta's
/// conflict check on `txn` app ids), never doubling data. With records, this is a Delta write;
/// with positions only, a commit of `txn` actions alone; with neither, no commit.
pub async fn append_with_positions(
    table: DeltaTable,
    name: &str,
    sink_id: &str,
    records: &[BronzeRecord],
    positions: &Positions,
) -> Result<DeltaTable, LakeError> {
    let mut next_offsets: BTreeMap<(&str, i32), i64> = positions
        .iter()
        .map(|((topic, partition), position)| ((topic.as_str(), *partition), *position))
        .collect();
    for record in records {
        let next = next_offsets
            .entry((record.topic.as_str(), record.partition))
            .or_insert(record.offset + 1);
        *next = (*next).max(record.offset + 1);
    }
    if next_offsets.is_empty() {
        return Ok(table);
    }
    let txns: Vec<Transaction> = next_offsets
        .into_iter()
        .map(|((topic, partition), version)| {
            Transaction::new(app_id(sink_id, topic, partition), version)
        })
        .collect();
    let properties = CommitProperties::default().with_application_transactions(txns);
    if records.is_empty() {
        return commit_progress_only(table, name, sink_id, properties).await;
    }
    let batch = to_batch(name, records)?;
    table
        .write(vec![batch])
        .with_save_mode(SaveMode::Append)
        .with_commit_properties(properties)
        .await
        .map_err(|source| classify_commit_error(name, source))
}

/// A commit of `txn` actions alone (a streaming update with no files), as kafka-delta-ingest does.
async fn commit_progress_only(
    mut table: DeltaTable,
    name: &str,
    sink_id: &str,
    properties: CommitProperties,
) -> Result<DeltaTable, LakeError> {
    let operation = DeltaOperation::StreamingUpdate {
        output_mode: OutputMode::Append,
        query_id: sink_id.to_owned(),
        epoch_id: table
            .version()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or_default(),
    };
    let snapshot = table
        .snapshot()
        .map_err(LakeError::delta(name, "read the log"))?;
    CommitBuilder::from(properties)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(|source| classify_commit_error(name, source))?;
    table
        .update_state()
        .await
        .map_err(LakeError::delta(name, "refresh"))?;
    Ok(table)
}

/// A commit lost to a writer that moved the same partitions is a conflict the sink resolves by
/// re-reading the log; anything else is a store failure.
fn classify_commit_error(name: &str, source: DeltaTableError) -> LakeError {
    let conflict = matches!(
        &source,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction)
                | TransactionError::MaxCommitAttempts(_)
        } | DeltaTableError::VersionAlreadyExists(_)
    );
    if conflict {
        LakeError::CommitConflict {
            table: name.to_owned(),
            source: Box::new(source),
        }
    } else {
        LakeError::delta(name, "append")(source)
    }
}

/// The Arrow schema matching [`columns`].
fn arrow_schema() -> Schema {
    Schema::new(vec![
        Field::new("topic", ArrowType::Utf8, false),
        Field::new("partition", ArrowType::Int32, false),
        Field::new("offset", ArrowType::Int64, false),
        Field::new(
            "kafka_timestamp",
            ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("key", ArrowType::Binary, true),
        Field::new("value", ArrowType::Binary, true),
        Field::new("headers", ArrowType::Utf8, true),
        Field::new(PARTITION_COLUMN, ArrowType::Date32, false),
    ])
}

fn to_batch(name: &str, records: &[BronzeRecord]) -> Result<RecordBatch, LakeError> {
    let topic: StringArray = records.iter().map(|r| Some(r.topic.as_str())).collect();
    let partition: Int32Array = records.iter().map(|r| Some(r.partition)).collect();
    let offset: Int64Array = records.iter().map(|r| Some(r.offset)).collect();
    let timestamp = TimestampMicrosecondArray::from(
        records
            .iter()
            .map(|r| r.timestamp_ms.map(|ms| ms.saturating_mul(1000)))
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let key: BinaryArray = records.iter().map(|r| r.key.as_deref()).collect();
    let value: BinaryArray = records.iter().map(|r| r.value.as_deref()).collect();
    let headers: StringArray = records.iter().map(|r| headers_json(&r.headers)).collect();
    let date: Date32Array = records
        .iter()
        .map(|r| Some(ingest_date(r.timestamp_ms)))
        .collect();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(topic),
        Arc::new(partition),
        Arc::new(offset),
        Arc::new(timestamp),
        Arc::new(key),
        Arc::new(value),
        Arc::new(headers),
        Arc::new(date),
    ];
    RecordBatch::try_new(Arc::new(arrow_schema()), arrays).map_err(|source| LakeError::Arrow {
        table: name.to_owned(),
        source,
    })
}

/// Days since the epoch of the UTC date of `timestamp_ms` (1970-01-01 when absent).
fn ingest_date(timestamp_ms: Option<i64>) -> i32 {
    timestamp_ms.map_or(NO_TIMESTAMP_DATE, |ms| {
        i32::try_from(ms.div_euclid(MILLIS_PER_DAY)).unwrap_or(NO_TIMESTAMP_DATE)
    })
}

/// Headers as a JSON object: name → UTF-8 string, `{"base64": …}` for other bytes, `null` for no
/// value; a name that repeats maps to an array of its values in order. No headers: `None`.
pub fn headers_json(headers: &[(String, Option<Vec<u8>>)]) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let mut object = serde_json::Map::new();
    for (name, value) in headers {
        let value = match value {
            None => serde_json::Value::Null,
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::Value::String(text.to_owned()),
                Err(_) => serde_json::json!({
                    "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
                }),
            },
        };
        match object.get_mut(name) {
            None => {
                object.insert(name.clone(), value);
            }
            Some(serde_json::Value::Array(values)) => values.push(value),
            Some(first) => {
                let first = first.take();
                object.insert(name.clone(), serde_json::Value::Array(vec![first, value]));
            }
        }
    }
    Some(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_date_is_the_utc_day_or_the_epoch() {
        assert_eq!(ingest_date(None), 0);
        assert_eq!(ingest_date(Some(MILLIS_PER_DAY - 1)), 0);
        assert_eq!(ingest_date(Some(-1)), -1);
        // 2026-12-01T00:00:00Z
        assert_eq!(ingest_date(Some(1_796_083_200_000)), 20_788);
    }

    #[test]
    fn headers_keep_text_bytes_nulls_and_repeats() {
        assert_eq!(headers_json(&[]), None);
        let json = headers_json(&[
            ("a".into(), Some(b"x".to_vec())),
            ("b".into(), Some(vec![0xff, 0x00])),
            ("c".into(), None),
            ("a".into(), Some(b"y".to_vec())),
        ]);
        assert_eq!(
            json.as_deref(),
            Some(r#"{"a":["x","y"],"b":{"base64":"/wA="},"c":null}"#)
        );
    }
}
