//! **validator**: `crypto.prices.raw` → `crypto.prices.valid` (the original bytes, unchanged,
//! keyed by `coin_id`) or `crypto.prices.dlq` (the dead-letter envelope of
//! `contracts/dead_letter.schema.json`: original bytes, source coordinates, and the first
//! reason — rule and JSON pointer). The check itself is [`contract::PriceContract`], the same
//! one the lake's Silver job applies.

use base64::Engine as _;
use contract::{CheckConfig, PriceContract, Violation};
use serde_json::{json, Value};
use streamlib::error::ProcessError;
use streamlib::prelude::*;
use streamlib::serdes::BytesSerde;

use crate::counters::Counters;
use crate::event::{format_millis, format_ts};
use crate::topics::Topics;

/// Name of this app in dead-letter envelopes and application ids.
pub const APP: &str = "validator";

/// Where a record came from, for the envelope.
pub struct Origin<'a> {
    /// Topic read.
    pub topic: &'a str,
    /// Partition read.
    pub partition: i32,
    /// Offset read.
    pub offset: i64,
    /// Original key bytes; `None` for a record without a key.
    pub key: Option<&'a [u8]>,
    /// Kafka timestamp of the original, if it had one.
    pub timestamp: Option<i64>,
}

/// The dead-letter envelope (contract `dead_letter` 1.0) for `original` (`None`: a tombstone,
/// written as empty text), dead-lettered at `now`.
pub fn envelope(
    violation: &Violation,
    origin: &Origin<'_>,
    original: Option<&[u8]>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let original = original.unwrap_or_default();
    let (encoding, data) = match std::str::from_utf8(original) {
        Ok(text) => ("utf8", text.to_string()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(original),
        ),
    };
    let key = origin
        .key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .map(|k| k.chars().take(1024).collect::<String>());
    let mut message: String = violation.message.chars().take(2000).collect();
    if message.is_empty() {
        message = violation.rule.clone();
    }
    json!({
        "schema_version": "1.0",
        "error_kind": violation.kind.as_str(),
        "reason": {
            "keyword": violation.rule,
            "instance_path": violation.pointer,
            "schema_path": violation.schema_path,
            "message": message,
        },
        "errors_total": violation.errors_total,
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
    contract: PriceContract,
    counters: Counters,
}

impl Validate {
    /// `(key, routed)` of one record whose Kafka key and value are `key` and `value` (the
    /// runtime hands over a null key or value as empty bytes).
    fn route(
        &self,
        key: &[u8],
        value: &[u8],
        ctx: &ProcessorContext<'_, Vec<u8>, Routed>,
    ) -> Result<(Vec<u8>, Routed), ProcessError> {
        let meta = ctx.record_metadata();
        // The runtime reads a missing Kafka timestamp as 0, the contract too.
        let timestamp = meta.map(|m| m.timestamp).filter(|t| *t > 0);
        let key = Some(key).filter(|k| !k.is_empty());
        let value = Some(value).filter(|v| !v.is_empty());
        match self.contract.check(key, value, timestamp) {
            Ok(checked) => {
                self.counters.inc("validator_valid_total", &[]);
                if let Some(rekey) = checked.rekey {
                    self.counters
                        .inc("validator_rekeyed_total", &[("reason", rekey.as_str())]);
                }
                Ok((
                    checked.key.into_bytes(),
                    Routed::Valid(value.unwrap_or_default().to_vec()),
                ))
            }
            Err(violation) => {
                self.counters.inc(
                    "validator_dead_lettered_total",
                    &[("keyword", violation.rule.as_str())],
                );
                let origin = Origin {
                    topic: meta.map(|m| &*m.topic).unwrap_or_default(),
                    partition: meta.map(|m| m.partition).unwrap_or_default(),
                    offset: meta.map(|m| m.offset).unwrap_or_default(),
                    key,
                    timestamp,
                };
                tracing::warn!(
                    rule = %violation.rule,
                    pointer = %violation.pointer,
                    offset = origin.offset,
                    "dead-lettering an invalid record"
                );
                let envelope = envelope(&violation, &origin, value, chrono::Utc::now());
                let bytes = serde_json::to_vec(&envelope)
                    .map_err(|e| ProcessError::serialization("dead-letter envelope")(e.into()))?;
                Ok((key.unwrap_or_default().to_vec(), Routed::Dead(bytes)))
            }
        }
    }
}

impl Processor<Vec<u8>, Vec<u8>, Vec<u8>, Routed> for Validate {
    fn process(
        &mut self,
        record: Record<Vec<u8>, Vec<u8>>,
        ctx: &mut ProcessorContext<'_, Vec<u8>, Routed>,
    ) -> Result<(), ProcessError> {
        let (key, routed) = self.route(&record.key, &record.value, ctx)?;
        ctx.forward(record.with_key(key).with_value(routed))
    }
}

/// The validator topology with the contract's `check` settings, counting into `counters`.
pub fn topology(topics: &Topics, check: CheckConfig, counters: &Counters) -> Topology {
    let builder = StreamsBuilder::new();
    let contract = PriceContract::new(check);
    counters.describe("validator_valid_total", "Events that passed the contract");
    counters.add("validator_valid_total", &[], 0);
    counters.describe(
        "validator_rekeyed_total",
        "Valid events whose Kafka key was replaced by their coin id, by reason",
    );
    counters.describe(
        "validator_dead_lettered_total",
        "Records sent to the dead-letter topic, by the contract keyword they failed",
    );
    let counters = counters.clone();
    let routed = builder.stream(&topics.raw, BytesSerde, BytesSerde).process(
        move || Validate {
            contract: contract.clone(),
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
