//! The one write a Silver or Gold job makes to a table: replace exactly the rows of its interval,
//! in ONE Delta commit (`Overwrite` + `replaceWhere`). A reader sees the old rows or the new
//! ones, never a mix; running the job twice leaves the same data.
//!
//! Delta refuses a replacement whose new rows do not all match the predicate, so a job cannot
//! write outside its interval by mistake.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use deltalake::arrow::json::ReaderBuilder;
use deltalake::datafusion::prelude::Expr;
use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::StructField;
use deltalake::protocol::SaveMode;

use super::interval::Interval;
use super::JobError;
use crate::storage::Lake;

/// A table a job writes: its name under the lake root, its Arrow schema (the Delta columns are
/// derived from it) and its partition columns.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// Name under the lake root, like `silver/prices`.
    pub name: &'static str,
    /// Columns, in order, with their nullability.
    pub schema: SchemaRef,
    /// Partition columns (a subset of the schema's).
    pub partition_columns: &'static [&'static str],
}

impl TableSpec {
    /// The Delta columns of the table.
    pub fn columns(&self) -> Result<Vec<StructField>, JobError> {
        self.schema
            .fields()
            .iter()
            .map(|field| StructField::try_from_arrow(field.as_ref()))
            .collect::<Result<_, _>>()
            .map_err(JobError::arrow(self.name))
    }

    /// `rows` (serde structs named like the columns; timestamps as microseconds, dates as days
    /// since 1970-01-01) as batches of this table, in chunks of [`BATCH_ROWS`].
    pub fn batches<S: serde::Serialize>(&self, rows: &[S]) -> Result<Vec<RecordBatch>, JobError> {
        let mut batches = Vec::with_capacity(rows.len().div_ceil(BATCH_ROWS));
        for chunk in rows.chunks(BATCH_ROWS) {
            let mut decoder = ReaderBuilder::new(Arc::clone(&self.schema))
                .with_batch_size(BATCH_ROWS)
                .with_strict_mode(true)
                .build_decoder()
                .map_err(JobError::arrow(self.name))?;
            decoder
                .serialize(chunk)
                .map_err(JobError::arrow(self.name))?;
            if let Some(batch) = decoder.flush().map_err(JobError::arrow(self.name))? {
                batches.push(batch);
            }
        }
        Ok(batches)
    }

    /// `batch` with exactly this table's columns, in order, cast to its types (engines return
    /// string views and the like); an error when a column is missing or a required one is null.
    pub fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch, JobError> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| {
                let column = batch.column_by_name(field.name()).ok_or_else(|| {
                    JobError::arrow(self.name)(deltalake::arrow::error::ArrowError::SchemaError(
                        format!("column {} missing", field.name()),
                    ))
                })?;
                cast(column, field.data_type()).map_err(JobError::arrow(self.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(JobError::arrow(self.name))
    }
}

/// Rows per Arrow batch a job writes.
pub const BATCH_ROWS: usize = 65_536;

/// The Arrow type of a Delta `timestamp` column: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// What a replacement committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// Rows written for the interval.
    pub rows: usize,
    /// The table version of the commit.
    pub version: u64,
}

/// Replaces the rows of `spec` that `predicate` selects (the interval's) with `batches`, in one
/// commit tagged with `job` and `interval`; creates the table on first use.
pub async fn replace_rows(
    lake: &Lake,
    spec: &TableSpec,
    batches: &[RecordBatch],
    predicate: Expr,
    job: &str,
    interval: &Interval,
) -> Result<Replaced, JobError> {
    let table = lake
        .open_or_create(spec.name, spec.columns()?, spec.partition_columns)
        .await?;
    let mut conformed = batches
        .iter()
        .filter(|batch| batch.num_rows() > 0)
        .map(|batch| spec.conform(batch))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = conformed.iter().map(RecordBatch::num_rows).sum();
    if conformed.is_empty() {
        // Delta needs a batch to take the schema from; an empty one deletes the interval's rows.
        conformed.push(RecordBatch::new_empty(Arc::clone(&spec.schema)));
    }
    let commit = CommitProperties::default().with_metadata([
        ("job".to_owned(), serde_json::Value::from(job)),
        (
            "interval_start".to_owned(),
            serde_json::Value::from(interval.start().to_rfc3339()),
        ),
        (
            "interval_end".to_owned(),
            serde_json::Value::from(interval.end().to_rfc3339()),
        ),
    ]);
    let table = table
        .write(conformed)
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        .with_commit_properties(commit)
        .await
        .map_err(JobError::delta(spec.name, "replace the interval"))?;
    Ok(Replaced {
        rows,
        version: table.version().unwrap_or_default(),
    })
}
