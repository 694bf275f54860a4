//! The lake's error type: one enum for the crate, every variant keeps its cause.

use deltalake::arrow::error::ArrowError;
use deltalake::DeltaTableError;
use rdkafka::error::KafkaError;

/// Everything that can fail in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake root or a table name does not make a valid URL.
    #[error("invalid lake location {location:?}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why the URL did not parse.
        #[source]
        source: url::ParseError,
    },
    /// A lake root with a scheme the lake does not store to.
    #[error("unsupported lake location {0:?}: use a folder, file:///path or s3://bucket/prefix")]
    UnsupportedScheme(String),
    /// A local folder of the lake could not be created.
    #[error("cannot create the lake folder {path}")]
    CreateFolder {
        /// The folder.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A Delta operation (read, write, commit, optimize, vacuum) failed.
    #[error("delta table {table}: {operation} failed")]
    Delta {
        /// The table's name under the lake root.
        table: String,
        /// What was being done.
        operation: &'static str,
        /// The Delta error (boxed: it is large, and errors travel on every `Result`).
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Building an Arrow batch failed.
    #[error("building an arrow batch for {table}")]
    Arrow {
        /// The table the batch was for.
        table: String,
        /// The Arrow error.
        #[source]
        source: ArrowError,
    },
    /// Another writer committed progress for the same partitions first; re-read the log and retry.
    #[error("delta table {table}: a concurrent commit moved the same partitions")]
    CommitConflict {
        /// The table's name under the lake root.
        table: String,
        /// The Delta error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// A query on a table failed.
    #[error("querying {table}")]
    Query {
        /// The table's name under the lake root.
        table: String,
        /// The DataFusion error.
        #[source]
        source: Box<deltalake::datafusion::error::DataFusionError>,
    },
    /// A table exists but is not what the lake expects (for example a missing column).
    #[error("delta table {table}: {message}")]
    UnexpectedTable {
        /// The table's name under the lake root.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// A Kafka client operation failed.
    #[error("kafka: {operation} failed")]
    Kafka {
        /// What was being done.
        operation: &'static str,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// The sink's configuration is not usable.
    #[error("invalid sink configuration: {0}")]
    Config(String),
}

impl LakeError {
    /// A Delta failure of `operation` on `table`.
    pub(crate) fn delta<'a>(
        table: &'a str,
        operation: &'static str,
    ) -> impl FnOnce(DeltaTableError) -> LakeError + 'a {
        move |source| LakeError::Delta {
            table: table.to_owned(),
            operation,
            source: Box::new(source),
        }
    }

    /// A Kafka failure of `operation`.
    pub(crate) fn kafka(operation: &'static str) -> impl FnOnce(KafkaError) -> LakeError {
        move |source| LakeError::Kafka { operation, source }
    }
}
