//! [`SerdeError`]: why bytes could not become a value, or a value bytes.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Why a [`Serde`](super::Serde) could not convert a value to bytes or bytes to a value.
///
/// The `Display` text is meant for logs and dead-letter headers: it names what failed and where
/// (for a JSON Schema violation: the keyword and the JSON pointer into the data).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SerdeError {
    /// The bytes are not valid UTF-8 (string serde).
    #[error("bytes are not valid UTF-8: {source}")]
    Utf8 {
        /// What the UTF-8 decoder reported (valid prefix length, bad byte).
        #[source]
        source: std::str::Utf8Error,
    },

    /// A null (`None` of a [`Nullable`](super::Nullable) serde) was to be encoded as bytes,
    /// e.g. into a state store, which keeps no nulls: a null key or a tombstone has no bytes.
    #[error("a null key or value has no bytes")]
    Null,

    /// A fixed-width value (e.g. an 8-byte big-endian `i64`) got the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    Length {
        /// Bytes the format needs.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },

    /// The bytes are not JSON, or the JSON does not have the shape of the Rust type.
    #[error("invalid JSON: {source}")]
    Json {
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// A JSON value violates the JSON Schema: the first violation (failed keyword, JSON pointer
    /// into the data and into the schema) and how many more the value has. Boxed to keep
    /// `Result<T, SerdeError>` small on the per-record path.
    #[error("JSON Schema violation: {0}")]
    Schema(Box<SchemaViolation>),

    /// A JSON Schema file could not be read.
    #[error("reading JSON Schema file {}: {source}", path.display())]
    SchemaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON Schema (or Avro schema) is itself invalid and cannot be used.
    #[error("invalid schema: {message}")]
    InvalidSchema {
        /// What is wrong with it.
        message: String,
    },

    /// Avro encoding or decoding failed: the value does not fit the schema, or the bytes do not
    /// decode with the writer's schema.
    #[error("Avro: {context}: {source}")]
    Avro {
        /// What was being done.
        context: &'static str,
        /// apache-avro's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// The schema registry could not register, find or return a schema.
    #[error("schema registry: {message}")]
    Registry {
        /// What the registry client reported (HTTP status, registry error code and message).
        message: String,
        /// Whether the same call may succeed later (network error, timeout, HTTP 5xx).
        retriable: bool,
    },

    /// The bytes are not in the expected wire format (e.g. Confluent's magic byte 0 followed by a
    /// 4-byte schema id).
    #[error("wire format: {message}")]
    WireFormat {
        /// What is wrong with the framing.
        message: String,
    },
}

impl SerdeError {
    /// Whether retrying the same call may succeed: only a registry that was unreachable, timed
    /// out or answered 5xx. Every other error comes from the bytes or the value themselves and will
    /// fail the same way again, so it belongs in a dead-letter topic, not in a retry loop.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            SerdeError::Registry {
                retriable: true,
                ..
            }
        )
    }
}

impl From<serde_json::Error> for SerdeError {
    fn from(source: serde_json::Error) -> Self {
        SerdeError::Json { source }
    }
}

impl From<std::str::Utf8Error> for SerdeError {
    fn from(source: std::str::Utf8Error) -> Self {
        SerdeError::Utf8 { source }
    }
}

/// The first way a JSON value breaks a JSON Schema (see [`SerdeError::Schema`]).
///
/// Displays as ``rule `exclusiveMinimum` failed at `/price` (schema
/// `/properties/price/exclusiveMinimum`): -1 is less than or equal to the minimum of 0``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// The failed JSON Schema keyword, e.g. `exclusiveMinimum`, `required`, `pattern`.
    pub rule: String,
    /// JSON pointer to the offending part of the data, e.g. `/price`; empty for the root.
    pub instance_pointer: String,
    /// JSON pointer to the failed keyword in the schema, e.g. `/properties/price/exclusiveMinimum`.
    pub schema_pointer: String,
    /// The validator's description of the violation (cut after 300 characters).
    pub message: String,
    /// How many further violations the same value has.
    pub additional: usize,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.instance_pointer.is_empty() {
            "(root)"
        } else {
            &self.instance_pointer
        };
        write!(
            f,
            "rule `{}` failed at `{pointer}` (schema `{}`): {}",
            self.rule, self.schema_pointer, self.message
        )?;
        match self.additional {
            0 => Ok(()),
            1 => f.write_str(" (and 1 more violation)"),
            n => write!(f, " (and {n} more violations)"),
        }
    }
}
