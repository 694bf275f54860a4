//! Helpers for integration tests: the real S3 server started by `scripts/s3`, and reading a
//! Bronze table back.

use std::collections::HashMap;
use std::path::PathBuf;

use deltalake::arrow::array::{
    Array, BinaryArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use deltalake::datafusion::prelude::SessionContext;

use crate::storage::{Lake, S3_ENV_KEYS};
use crate::LakeError;

/// Where `scripts/s3 start` writes its env file unless `S3_RUN_DIR` says otherwise.
pub const DEFAULT_S3_RUN_DIR: &str = "/tmp/streamlib-s3";

/// A lake under a fresh prefix of the test S3 server's bucket: from the `AWS_*` environment
/// plus `LAKE_S3_URL` when `AWS_ENDPOINT_URL` is set, else from `$S3_RUN_DIR/env`.
///
/// # Panics
///
/// Panics with instructions when neither is there: a test that needs S3 must fail loudly,
/// never pass without having talked to a server.
pub fn s3_lake(prefix: &str) -> Lake {
    let options = s3_settings();
    let bucket = options
        .get("LAKE_S3_URL")
        .cloned()
        .unwrap_or_else(|| "s3://lake".to_owned());
    let root = format!(
        "{}/{}",
        bucket.trim_end_matches('/'),
        streamlib::testing::unique_topic(prefix)
    );
    let options = options
        .into_iter()
        .filter(|(k, _)| S3_ENV_KEYS.contains(&k.as_str()))
        .collect();
    match Lake::parse_with_options(&root, options) {
        Ok(lake) => lake,
        Err(error) => panic!("the test S3 lake {root} is not usable: {error}"),
    }
}

fn s3_settings() -> HashMap<String, String> {
    if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()) {
        return S3_ENV_KEYS
            .iter()
            .chain(&["LAKE_S3_URL"])
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
    }
    let dir = std::env::var_os("S3_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_S3_RUN_DIR));
    let file = dir.join("env");
    match std::fs::read_to_string(&file) {
        Ok(text) => text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        Err(error) => panic!(
            "no S3 server for this test: AWS_ENDPOINT_URL is not set and {} cannot be read \
             ({error}). Start one with `scripts/s3 fetch && scripts/s3 start` (it writes that \
             file), or run the suite with `scripts/test`.",
            file.display()
        ),
    }
}

/// One Bronze row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BronzeRow {
    /// `topic`.
    pub topic: String,
    /// `partition`.
    pub partition: i32,
    /// `offset`.
    pub offset: i64,
    /// `kafka_timestamp` in microseconds.
    pub kafka_timestamp_us: Option<i64>,
    /// `key`.
    pub key: Option<Vec<u8>>,
    /// `value`.
    pub value: Option<Vec<u8>>,
    /// `headers` (JSON text).
    pub headers: Option<String>,
    /// `ingest_date` in days since the epoch.
    pub ingest_date: i32,
}

/// Every row of the Bronze `table`, sorted by topic, partition, offset; empty when the table
/// does not exist.
pub async fn read_bronze(lake: &Lake, table: &str) -> Result<Vec<BronzeRow>, LakeError> {
    let Some(delta) = lake.open(table).await? else {
        return Ok(Vec::new());
    };
    let query = |source| LakeError::Query {
        table: table.to_owned(),
        source: Box::new(source),
    };
    let ctx = SessionContext::new();
    delta
        .update_datafusion_session(&ctx.state())
        .map_err(LakeError::delta(table, "prepare a query"))?;
    let provider = delta.table_provider().await.map_err(query)?;
    let batches = ctx
        .read_table(provider)
        .map_err(query)?
        .collect()
        .await
        .map_err(query)?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(rows_of(table, batch)?);
    }
    rows.sort();
    Ok(rows)
}

/// Column `name` of `batch` as `T` (engines may hand strings and bytes back as view types or
/// partition values dictionary-encoded: cast to the type Bronze writes).
fn column<T: Clone + 'static>(
    table: &str,
    batch: &RecordBatch,
    name: &str,
    to: &ArrowType,
) -> Result<T, LakeError> {
    let unexpected = |message: String| LakeError::UnexpectedTable {
        table: table.to_owned(),
        message,
    };
    let found = batch
        .column_by_name(name)
        .ok_or_else(|| unexpected(format!("column {name} is missing")))?;
    let cast = cast(found, to).map_err(|source| LakeError::Arrow {
        table: table.to_owned(),
        source,
    })?;
    cast.as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| unexpected(format!("column {name} is not {to}")))
}

fn rows_of(table: &str, batch: &RecordBatch) -> Result<Vec<BronzeRow>, LakeError> {
    let micros = ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let topic: StringArray = column(table, batch, "topic", &ArrowType::Utf8)?;
    let partition: Int32Array = column(table, batch, "partition", &ArrowType::Int32)?;
    let offset: Int64Array = column(table, batch, "offset", &ArrowType::Int64)?;
    let timestamp: TimestampMicrosecondArray = column(table, batch, "kafka_timestamp", &micros)?;
    let key: BinaryArray = column(table, batch, "key", &ArrowType::Binary)?;
    let value: BinaryArray = column(table, batch, "value", &ArrowType::Binary)?;
    let headers: StringArray = column(table, batch, "headers", &ArrowType::Utf8)?;
    let date: Date32Array = column(table, batch, "ingest_date", &ArrowType::Date32)?;
    let bytes = |a: &BinaryArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_vec());
    Ok((0..batch.num_rows())
        .map(|i| BronzeRow {
            topic: topic.value(i).to_owned(),
            partition: partition.value(i),
            offset: offset.value(i),
            kafka_timestamp_us: (!timestamp.is_null(i)).then(|| timestamp.value(i)),
            key: bytes(&key, i),
            value: bytes(&value, i),
            headers: (!headers.is_null(i)).then(|| headers.value(i).to_owned()),
            ingest_date: date.value(i),
        })
        .collect())
}
