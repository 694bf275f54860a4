//! **validator**: `crypto.prices.raw` → `crypto.prices.valid` (the original bytes, unchanged)
//! or `crypto.prices.dlq` (the dead-letter envelope of `contracts/dead_letter.schema.json`:
//! original bytes, source coordinates, and the first reason — rule and JSON pointer).

use base64::Engine as _;
use serde_json::{json, Value};
use streamlib::error::ProcessError;
use streamlib::prelude::*;
use streamlib::serdes::{BytesSerde, JsonSchemaSerde, SerdeError};

use crate::counters::Counters;
use crate::event::{format_millis, format_ts};
use crate::topics::Topics;

/// The price event contract, compiled into the binary.
pub const PRICE_SCHEMA: &str = include_str!("../../contracts/event_crypto_price.schema.json");

/// Name of this app in dead-letter envelopes and application ids.
pub const APP: &str = "validator";

/// Why a record is not a valid price event.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// `deserialization` or `schema_violation`.
    pub error_kind: &'static str,
    /// JSON Schema keyword, or `utf8` / `json_syntax`.
    pub keyword: String,
    /// JSON pointer into the record ("" = the whole document).
    pub instance_path: String,
    /// JSON pointer into the schema; `None` for non-schema checks.
    pub schema_path: Option<String>,
    /// Human-readable message.
    pub message: String,
    /// Errors found in total (the first is described above).
    pub errors_total: usize,
}

/// Checks bytes against the contract.
#[derive(Clone)]
pub struct Validator {
    schema: JsonSchemaSerde<Value>,
}

impl Validator {
    /// The validator of contract v1.1.
    pub fn new() -> Self {
        let schema: Value = serde_json::from_str(PRICE_SCHEMA).expect("the bundled schema is JSON");
        Self {
            schema: JsonSchemaSerde::new(&schema).expect("the bundled schema compiles"),
        }
    }

    /// `Ok` for a valid event, else the first reason it is not one.
    pub fn check(&self, bytes: &[u8]) -> Result<(), Rejection> {
        let text = std::str::from_utf8(bytes).map_err(|error| Rejection {
            error_kind: "deserialization",
            keyword: "utf8".into(),
            instance_path: String::new(),
            schema_path: None,
            message: format!("the value is not UTF-8: {error}"),
            errors_total: 1,
        })?;
        let value: Value = serde_json::from_str(text).map_err(|error| Rejection {
            error_kind: "deserialization",
            keyword: "json_syntax".into(),
            instance_path: String::new(),
            schema_path: None,
            message: format!("the value is not JSON: {error}"),
            errors_total: 1,
        })?;
        match self.schema.validate(&value) {
            Ok(()) => Ok(()),
            Err(SerdeError::Schema(violation)) => Err(Rejection {
                error_kind: "schema_violation",
                keyword: violation.rule.clone(),
                instance_path: violation.instance_pointer.clone(),
                schema_path: Some(violation.schema_pointer.clone()),
                message: violation.message.clone(),
                errors_total: violation.additional + 1,
            }),
            Err(other) => Err(Rejection {
                error_kind: "schema_violation",
                keyword: "schema".into(),
                instance_path: String::new(),
                schema_path: None,
                message: other.to_string(),
                errors_total: 1,
            }),
        }
    }
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a record came from, for the envelope.
pub struct Origin<'a> {
    /// Topic read.
    pub topic: &'a str,
    /// Partition read.
    pub partition: i32,
    /// Offset read.
    pub offset: i64,
    /// Original key bytes.
    pub key: &'a [u8],
    /// Kafka timestamp of the original, if it had one.
    pub timestamp: Option<i64>,
}

/// The dead-letter envelope (contract `dead_letter` 1.0) for `original`, dead-lettered at `now`.
pub fn envelope(
    rejection: &Rejection,
    origin: &Origin<'_>,
    original: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let (encoding, data) = match std::str::from_utf8(original) {
        Ok(text) => ("utf8", text.to_string()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(original),
        ),
    };
    let key = std::str::from_utf8(origin.key)
        .ok()
        .filter(|k| !k.is_empty())
        .map(|k| k.chars().take(1024).collect::<String>());
    let mut message: String = rejection.message.chars().take(2000).collect();
    if message.is_empty() {
        message = rejection.keyword.clone();
    }
    json!({
        "schema_version": "1.0",
        "error_kind": rejection.error_kind,
        "reason": {
            "keyword": rejection.keyword,
            "instance_path": rejection.instance_path,
            "schema_path": rejection.schema_path,
            "message": message,
        },
        "errors_total": rejection.errors_total,
        "source": {
            "topic": origin.topic,
            "partition": origin.partition,
            "offset": origin.offset.max(0),
            "key": key,
            "timestamp": origin.timestamp.filter(|t| *t >= 0).map(format_millis),
        },
        "original": { "encoding": encoding, "data": data, "size_bytes": original.len() },
        "app": APP,
        "ts_dead_letter": format_ts(now),
    })
}

/// A validated record: the original bytes for `valid`, or an envelope for the DLQ.
#[derive(Clone, Debug)]
enum Routed {
    Valid(Vec<u8>),
    Dead(Vec<u8>),
}

struct Validate {
    validator: Validator,
    counters: Counters,
}

impl Processor<Vec<u8>, Vec<u8>, Vec<u8>, Routed> for Validate {
    fn process(
        &mut self,
        record: Record<Vec<u8>, Vec<u8>>,
        ctx: &mut ProcessorContext<'_, Vec<u8>, Routed>,
    ) -> Result<(), ProcessError> {
        let routed =
            match self.validator.check(&record.value) {
                Ok(()) => {
                    self.counters.inc("validator_valid_total", &[]);
                    Routed::Valid(record.value.clone())
                }
                Err(rejection) => {
                    self.counters.inc(
                        "validator_dead_lettered_total",
                        &[("keyword", rejection.keyword.as_str())],
                    );
                    let meta = ctx.record_metadata();
                    let origin = Origin {
                        topic: meta.map(|m| &*m.topic).unwrap_or_default(),
                        partition: meta.map(|m| m.partition).unwrap_or_default(),
                        offset: meta.map(|m| m.offset).unwrap_or_default(),
                        key: &record.key,
                        timestamp: meta.map(|m| m.timestamp),
                    };
                    tracing::warn!(
                        keyword = %rejection.keyword,
                        pointer = %rejection.instance_path,
                        offset = origin.offset,
                        "dead-lettering an invalid record"
                    );
                    let envelope = envelope(&rejection, &origin, &record.value, chrono::Utc::now());
                    Routed::Dead(serde_json::to_vec(&envelope).map_err(|e| {
                        ProcessError::serialization("dead-letter envelope")(e.into())
                    })?)
                }
            };
        let key = record.key.clone();
        ctx.forward(record.with_key(key).with_value(routed))
    }
}

/// The validator topology, counting into `counters`.
pub fn topology(topics: &Topics, counters: &Counters) -> Topology {
    let builder = StreamsBuilder::new();
    let validator = Validator::new();
    let counters = counters.clone();
    let routed = builder.stream(&topics.raw, BytesSerde, BytesSerde).process(
        move || Validate {
            validator: validator.clone(),
            counters: counters.clone(),
        },
        &[],
    );
    let branches = routed.split(vec![
        Box::new(|_, routed: &Routed| matches!(routed, Routed::Valid(_))),
        Box::new(|_, routed: &Routed| matches!(routed, Routed::Dead(_))),
    ]);
    for (branch, topic) in branches.iter().zip([&topics.valid, &topics.dlq]) {
        branch
            .map_values(|routed| match routed {
                Routed::Valid(bytes) | Routed::Dead(bytes) => bytes,
            })
            .to(topic, BytesSerde, BytesSerde);
    }
    builder.build()
}
