//! Staging: a temporary table per fact (dropped at commit) filled by binary `COPY` from the Arrow
//! batches of its source. Each Arrow column is first cast to its [`Kind`]'s Arrow type, so
//! Utf8View, dictionary or narrower integer columns load as well.

use std::pin::pin;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use deltalake::arrow::error::ArrowError;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use crate::facts::{Fact, Kind};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// A statement or the COPY failed.
    #[error("staging {table}: {context}")]
    Postgres {
        /// The fact.
        table: &'static str,
        /// What was being done.
        context: &'static str,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading the next batch from the source failed.
    #[error("staging {table}: reading the source")]
    Read {
        /// The fact.
        table: &'static str,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// A source column cannot be cast to the staging type.
    #[error("staging {table}: column {column} cannot be read as {kind}")]
    Cast {
        /// The fact.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The staging type.
        kind: &'static str,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// A timestamp or date outside PostgreSQL's and chrono's common range.
    #[error("staging {table}: column {column} holds a value out of range in row {row} of a batch")]
    OutOfRange {
        /// The fact.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The row within its batch.
        row: usize,
    },
}

/// The temporary table that stages `fact`.
pub fn staging_table(fact: &Fact) -> String {
    format!("stage_{}", fact.table)
}

impl Kind {
    fn arrow(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float8 => DataType::Float64,
            Kind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            Kind::Date => DataType::Date32,
        }
    }

    fn pg(self) -> Type {
        match self {
            Kind::Text => Type::TEXT,
            Kind::Int4 => Type::INT4,
            Kind::Int8 => Type::INT8,
            Kind::Float8 => Type::FLOAT8,
            Kind::Timestamptz => Type::TIMESTAMPTZ,
            Kind::Date => Type::DATE,
        }
    }
}

/// Creates `fact`'s staging table in `tx`; it is dropped when the transaction ends.
pub async fn create(tx: &Transaction<'_>, fact: &Fact) -> Result<(), StagingError> {
    let columns: Vec<String> = fact
        .columns
        .iter()
        .map(|c| format!("\"{}\" {}", c.name, c.kind.sql()))
        .collect();
    let ddl = format!(
        "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP",
        staging_table(fact),
        columns.join(", ")
    );
    tx.batch_execute(&ddl)
        .await
        .map_err(|source| StagingError::Postgres {
            table: fact.table,
            context: "creating the staging table",
            source,
        })
}

/// One batch's column as Rust values PostgreSQL's binary format takes.
enum Values<'a> {
    Text(Vec<Option<&'a str>>),
    Int4(Vec<Option<i32>>),
    Int8(Vec<Option<i64>>),
    Float8(Vec<Option<f64>>),
    Timestamptz(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
}

impl Values<'_> {
    fn get(&self, row: usize) -> &(dyn ToSql + Sync) {
        match self {
            Values::Text(v) => &v[row],
            Values::Int4(v) => &v[row],
            Values::Int8(v) => &v[row],
            Values::Float8(v) => &v[row],
            Values::Timestamptz(v) => &v[row],
            Values::Date(v) => &v[row],
        }
    }
}

/// Converts `array` (already cast to `kind`'s Arrow type); `Err(row)` names a value out of range.
fn values(array: &ArrayRef, kind: Kind) -> Result<Values<'_>, usize> {
    fn present<U>(
        array: &dyn Array,
        value: impl Fn(usize) -> Option<U>,
    ) -> Result<Vec<Option<U>>, usize> {
        (0..array.len())
            .map(|i| {
                if array.is_null(i) {
                    Ok(None)
                } else {
                    value(i).map(Some).ok_or(i)
                }
            })
            .collect()
    }
    Ok(match kind {
        Kind::Text => Values::Text(array.as_string::<i32>().iter().collect()),
        Kind::Int4 => Values::Int4(array.as_primitive::<Int32Type>().iter().collect()),
        Kind::Int8 => Values::Int8(array.as_primitive::<Int64Type>().iter().collect()),
        Kind::Float8 => Values::Float8(array.as_primitive::<Float64Type>().iter().collect()),
        Kind::Timestamptz => {
            let typed = array.as_primitive::<TimestampMicrosecondType>();
            Values::Timestamptz(present(array, |i| {
                DateTime::<Utc>::from_timestamp_micros(typed.value(i))
            })?)
        }
        Kind::Date => {
            let typed = array.as_primitive::<Date32Type>();
            Values::Date(present(array, |i| typed.value_as_date(i))?)
        }
    })
}

/// Copies every batch of `stream` into `fact`'s staging table; returns the rows staged.
pub async fn copy(
    tx: &Transaction<'_>,
    fact: &Fact,
    mut stream: SendableRecordBatchStream,
) -> Result<u64, StagingError> {
    let table = fact.table;
    let pg_error = |context: &'static str| {
        move |source: tokio_postgres::Error| StagingError::Postgres {
            table,
            context,
            source,
        }
    };
    let names: Vec<String> = fact
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        staging_table(fact),
        names.join(", ")
    );
    let sink = tx
        .copy_in(&statement)
        .await
        .map_err(pg_error("starting COPY"))?;
    let types: Vec<Type> = fact.columns.iter().map(|c| c.kind.pg()).collect();
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|source| StagingError::Read { table, source })?;
        let columns = cast_columns(fact, &batch)?;
        let converted: Vec<Values<'_>> = columns
            .iter()
            .zip(fact.columns)
            .map(|(array, column)| {
                values(array, column.kind).map_err(|row| StagingError::OutOfRange {
                    table,
                    column: column.name,
                    row,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(converted.len());
        for i in 0..batch.num_rows() {
            row.clear();
            row.extend(converted.iter().map(|v| v.get(i)));
            writer
                .as_mut()
                .write(&row)
                .await
                .map_err(pg_error("writing COPY rows"))?;
        }
    }
    writer.finish().await.map_err(pg_error("finishing COPY"))
}

/// The batch's columns, in the fact's order, cast to their kinds' Arrow types.
fn cast_columns(fact: &Fact, batch: &RecordBatch) -> Result<Vec<ArrayRef>, StagingError> {
    fact.columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let failed = |source| StagingError::Cast {
                table: fact.table,
                column: column.name,
                kind: column.kind.sql(),
                source,
            };
            let array = batch.columns().get(i).ok_or_else(|| {
                failed(ArrowError::SchemaError(format!(
                    "the query returned {} columns",
                    batch.num_columns()
                )))
            })?;
            cast(array, &column.kind.arrow()).map_err(failed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{StringViewArray, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn views_and_nanoseconds_convert_to_their_kinds() -> Result<(), ArrowError> {
        let text: ArrayRef = Arc::new(StringViewArray::from(vec![Some("bitcoin"), None]));
        let text = cast(&text, &Kind::Text.arrow())?;
        let Ok(Values::Text(texts)) = values(&text, Kind::Text) else {
            panic!("not text");
        };
        assert_eq!(texts, vec![Some("bitcoin"), None]);
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            Some(1_767_225_600_000_000_000),
            None,
        ]));
        let micros = cast(&nanos, &Kind::Timestamptz.arrow())?;
        let Ok(Values::Timestamptz(times)) = values(&micros, Kind::Timestamptz) else {
            panic!("not timestamps");
        };
        assert_eq!(
            times,
            vec![DateTime::<Utc>::from_timestamp(1_767_225_600, 0), None]
        );
        Ok(())
    }
}
