//! The contract check of the records Silver reads besides price events — dead-letter envelopes
//! and alerts: the same steps and rule names as the price contract (`contract` crate) for the
//! bytes (tombstone, UTF-8, JSON syntax), then their JSON Schema in `contracts/`.

use std::sync::Arc;

use serde_json::Value;

use super::quarantine::Rejection;
use super::source::BronzeRow;
use crate::job::JobError;

/// A compiled schema of `contracts/`.
#[derive(Clone)]
pub struct SchemaCheck {
    validator: Arc<jsonschema::Validator>,
}

impl SchemaCheck {
    /// Compiles `schema` (the text of a `contracts/*.schema.json`, named `name` in errors), with
    /// formats asserted like the price contract.
    pub fn new(name: &'static str, schema: &str) -> Result<Self, JobError> {
        let schema: Value = serde_json::from_str(schema).map_err(|error| JobError::Schema {
            schema: name,
            message: error.to_string(),
        })?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|error| JobError::Schema {
                schema: name,
                message: error.to_string(),
            })?;
        Ok(Self {
            validator: Arc::new(validator),
        })
    }

    /// The record's value as checked JSON, or the first reason it is not valid. `coin_id` and
    /// `ts_event` of a rejection are left for the caller to recover.
    pub fn check(&self, record: &BronzeRow) -> Result<Value, Rejection> {
        let reject = |rule: &str, pointer: &str, message: String| Rejection {
            rule: rule.to_owned(),
            pointer: pointer.to_owned(),
            message,
            ts_event: record.readable_ts_event(),
            coin_id: record.readable_coin_id(),
        };
        let bytes = record
            .value
            .as_deref()
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| {
                reject(
                    contract::rule::TOMBSTONE,
                    "",
                    "the record has no value".to_owned(),
                )
            })?;
        let text = std::str::from_utf8(bytes).map_err(|error| {
            reject(
                contract::rule::UTF8,
                "",
                format!("the value is not UTF-8: {error}"),
            )
        })?;
        let value: Value = serde_json::from_str(text).map_err(|error| {
            reject(
                contract::rule::JSON_SYNTAX,
                "",
                format!("the value is not JSON: {error}"),
            )
        })?;
        if let Some(error) = self.validator.iter_errors(&value).next() {
            return Err(reject(
                error.kind().keyword(),
                error.instance_path().as_str(),
                error.to_string(),
            ));
        }
        Ok(value)
    }
}
