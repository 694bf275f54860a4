//! What every Silver and Gold job shares: the data interval it works on ([`interval`]), a
//! DataFusion session over the lake's tables ([`query`]), the one-commit replacement of an
//! interval's rows ([`replace`]), and the error they all report ([`JobError`]).

pub mod interval;
pub mod query;
pub mod replace;

use deltalake::arrow::error::ArrowError;
use deltalake::datafusion::error::DataFusionError;
use deltalake::DeltaTableError;

use crate::LakeError;

/// Why a Silver or Gold job failed. Bad input records never fail a job (they are quarantined):
/// these are failures of the arguments, the store or the engine.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The interval is empty or reversed.
    #[error("invalid interval [{start}, {end}): the start must be before the end")]
    EmptyInterval {
        /// The start as given.
        start: String,
        /// The end as given.
        end: String,
    },
    /// A bound of the interval is not an RFC 3339 timestamp.
    #[error("invalid timestamp {text:?}: expected RFC 3339, like 2026-01-01T00:00:00Z")]
    InvalidTimestamp {
        /// The text as given.
        text: String,
        /// Why it did not parse.
        #[source]
        source: chrono::ParseError,
    },
    /// A job setting is out of range.
    #[error("invalid job configuration: {0}")]
    Config(String),
    /// Opening or creating a table failed.
    #[error(transparent)]
    Lake(Box<LakeError>),
    /// A Delta read or commit failed.
    #[error("delta table {table}: {operation} failed")]
    Delta {
        /// The table's name under the lake root.
        table: String,
        /// What was being done.
        operation: &'static str,
        /// The Delta error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// DataFusion could not plan or run a query.
    #[error("query {query} failed")]
    Query {
        /// The query's name (a model or a table read).
        query: String,
        /// The engine's error.
        #[source]
        source: Box<DataFusionError>,
    },
    /// Building or converting an Arrow batch failed.
    #[error("arrow batch for {table}")]
    Arrow {
        /// The table the batch was for.
        table: String,
        /// The Arrow error.
        #[source]
        source: ArrowError,
    },
    /// Rows of a table could not be turned into JSON objects.
    #[error("rows of {table} as JSON")]
    Rows {
        /// The table read.
        table: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A bundled contract schema does not compile.
    #[error("contract schema {schema} does not compile: {message}")]
    Schema {
        /// The schema's name.
        schema: &'static str,
        /// The compiler's message.
        message: String,
    },
    /// A table a job reads has not been created yet.
    #[error("table {table} does not exist yet: {hint}")]
    MissingTable {
        /// The table's name under the lake root.
        table: String,
        /// What creates it.
        hint: &'static str,
    },
}

impl From<LakeError> for JobError {
    fn from(error: LakeError) -> Self {
        JobError::Lake(Box::new(error))
    }
}

impl JobError {
    /// A Delta failure of `operation` on `table`.
    pub(crate) fn delta<'a>(
        table: &'a str,
        operation: &'static str,
    ) -> impl FnOnce(DeltaTableError) -> JobError + 'a {
        move |source| JobError::Delta {
            table: table.to_owned(),
            operation,
            source: Box::new(source),
        }
    }

    /// A DataFusion failure of the query named `query`.
    pub(crate) fn query(query: &str) -> impl FnOnce(DataFusionError) -> JobError + '_ {
        move |source| JobError::Query {
            query: query.to_owned(),
            source: Box::new(source),
        }
    }

    /// An Arrow failure building a batch for `table`.
    pub(crate) fn arrow(table: &str) -> impl FnOnce(ArrowError) -> JobError + '_ {
        move |source| JobError::Arrow {
            table: table.to_owned(),
            source,
        }
    }
}
