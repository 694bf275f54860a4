//! [`PriceContract`]: the whole check of one record.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::violation::{truncate, Violation, ViolationKind};
use crate::{event_id, listing, rule, ACCEPTED_VERSIONS, PRICE_SCHEMA, SCHEMA_VERSION};

/// Settings of the rules beyond the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// How far `ts_event` may be after `ts_ingest`, and `ts_ingest` after the record's Kafka
    /// timestamp (clock skew between CoinGecko, the producer and the broker).
    pub future_tolerance: Duration,
}

impl CheckConfig {
    /// The default [`CheckConfig::future_tolerance`]: 5 minutes.
    pub const DEFAULT_FUTURE_TOLERANCE: Duration = Duration::from_secs(300);
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            future_tolerance: Self::DEFAULT_FUTURE_TOLERANCE,
        }
    }
}

/// Why a valid record's Kafka key is replaced by its `coin_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rekey {
    /// The record had no key (or an empty one).
    MissingKey,
    /// The key was not the event's `coin_id`.
    KeyNotCoinId,
}

impl Rekey {
    /// `missing_key` or `key_not_coin_id` (a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::KeyNotCoinId => "key_not_coin_id",
        }
    }
}

/// A valid price event.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The event as parsed.
    pub event: Value,
    /// The key it belongs under: its `coin_id`.
    pub key: String,
    /// `Some` when the record's own key was not [`Checked::key`].
    pub rekey: Option<Rekey>,
}

impl Checked {
    /// Whether the record must be re-keyed by `coin_id`.
    pub fn rekeyed(&self) -> bool {
        self.rekey.is_some()
    }
}

/// The price event contract, compiled once; cheap to clone.
#[derive(Clone)]
pub struct PriceContract {
    schema: Arc<jsonschema::Validator>,
    config: CheckConfig,
}

impl std::fmt::Debug for PriceContract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceContract")
            .field("version", &SCHEMA_VERSION)
            .field("config", &self.config)
            .finish()
    }
}

impl PriceContract {
    /// The contract of [`SCHEMA_VERSION`] with `config`.
    ///
    /// # Panics
    /// Never for the bundled schema (a unit test compiles it); the schema is part of the binary.
    pub fn new(config: CheckConfig) -> Self {
        let schema: Value =
            serde_json::from_str(PRICE_SCHEMA).expect("the bundled price schema is JSON");
        let schema = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the bundled price schema compiles");
        Self {
            schema: Arc::new(schema),
            config,
        }
    }

    /// Its settings.
    pub fn config(&self) -> CheckConfig {
        self.config
    }

    /// Checks one record: its Kafka `key` and `value` (`None` = null) and its Kafka timestamp in
    /// milliseconds since the Unix epoch (`None`, zero or negative = the record had none).
    pub fn check(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        record_timestamp_ms: Option<i64>,
    ) -> Result<Checked, Violation> {
        let deserialization = |rule: &str, message: String| {
            Violation::new(ViolationKind::Deserialization, rule, "", message)
        };
        let bytes = value.filter(|bytes| !bytes.is_empty()).ok_or_else(|| {
            deserialization(rule::TOMBSTONE, "the record has no value".to_string())
        })?;
        let text = std::str::from_utf8(bytes).map_err(|error| {
            deserialization(rule::UTF8, format!("the value is not UTF-8: {error}"))
        })?;
        let event: Value = serde_json::from_str(text).map_err(|error| {
            deserialization(rule::JSON_SYNTAX, format!("the value is not JSON: {error}"))
        })?;
        self.check_schema(&event)?;
        self.check_rules(&event, record_timestamp_ms.filter(|ts| *ts > 0))?;
        let coin_id = text_field(&event, "coin_id").to_string();
        let rekey = match key.filter(|key| !key.is_empty()) {
            None => Some(Rekey::MissingKey),
            Some(key) if key != coin_id.as_bytes() => Some(Rekey::KeyNotCoinId),
            Some(_) => None,
        };
        Ok(Checked {
            event,
            key: coin_id,
            rekey,
        })
    }

    /// The JSON Schema; a record of an older accepted version is checked as if it declared the
    /// newest.
    fn check_schema(&self, event: &Value) -> Result<(), Violation> {
        let declared = event.get("schema_version").and_then(Value::as_str);
        let older = declared.is_some_and(|v| v != SCHEMA_VERSION && ACCEPTED_VERSIONS.contains(&v));
        let upgraded;
        let instance = if older {
            let mut copy = event.clone();
            copy["schema_version"] = Value::from(SCHEMA_VERSION);
            upgraded = copy;
            &upgraded
        } else {
            event
        };
        let mut errors = self.schema.iter_errors(instance);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        Err(Violation {
            kind: ViolationKind::SchemaViolation,
            rule: first.kind().keyword().to_string(),
            pointer: first.instance_path().as_str().to_string(),
            schema_path: Some(first.schema_path().as_str().to_string()),
            message: truncate(first.to_string()),
            errors_total: 1 + errors.count(),
        })
    }

    /// The rules beyond the schema, on a schema-valid event.
    fn check_rules(
        &self,
        event: &Value,
        record_timestamp_ms: Option<i64>,
    ) -> Result<(), Violation> {
        let field = |name| text_field(event, name);
        let tolerance = chrono::Duration::from_std(self.config.future_tolerance)
            .unwrap_or(chrono::Duration::MAX);
        let ts_event = timestamp(field("ts_event"));
        let ts_ingest = timestamp(field("ts_ingest"));
        let record_ts = record_timestamp_ms.and_then(DateTime::from_timestamp_millis);
        let mut broken: Vec<(&str, &str, String)> = Vec::new();

        let expected = event_id(field("coin_id"), field("vs_currency"), field("ts_event"));
        if field("event_id") != expected {
            broken.push((
                rule::EVENT_ID_MISMATCH,
                "/event_id",
                format!(
                    "event_id {} is not sha256(\"{}\") = {expected}",
                    field("event_id"),
                    crate::unique_key(field("coin_id"), field("vs_currency"), field("ts_event"))
                ),
            ));
        }
        let first_day = listing::first_day(field("coin_id"));
        if let Some(ts_event) = ts_event.filter(|ts| *ts < first_day) {
            broken.push((
                rule::TS_EVENT_TOO_OLD,
                "/ts_event",
                format!(
                    "ts_event {} is before {}, the first day of {}",
                    format_ts(ts_event),
                    format_ts(first_day),
                    field("coin_id")
                ),
            ));
        }
        if let (Some(event_ts), Some(ingest_ts)) = (ts_event, ts_ingest) {
            if event_ts - ingest_ts > tolerance {
                broken.push((
                    rule::TS_EVENT_AFTER_TS_INGEST,
                    "/ts_event",
                    format!(
                        "ts_event {} is {} s after ts_ingest {} (tolerance {} s)",
                        format_ts(event_ts),
                        (event_ts - ingest_ts).num_seconds(),
                        format_ts(ingest_ts),
                        tolerance.num_seconds()
                    ),
                ));
            }
        }
        if let (Some(ingest_ts), Some(record_ts)) = (ts_ingest, record_ts) {
            if ingest_ts - record_ts > tolerance {
                broken.push((
                    rule::TS_INGEST_AFTER_RECORD_TIMESTAMP,
                    "/ts_ingest",
                    format!(
                        "ts_ingest {} is {} s after the record's Kafka timestamp {} (tolerance {} s)",
                        format_ts(ingest_ts),
                        (ingest_ts - record_ts).num_seconds(),
                        format_ts(record_ts),
                        tolerance.num_seconds()
                    ),
                ));
            }
        }
        let total = broken.len();
        match broken.into_iter().next() {
            None => Ok(()),
            Some((rule, pointer, message)) => {
                let mut violation =
                    Violation::new(ViolationKind::SchemaViolation, rule, pointer, message);
                violation.errors_total = total;
                Err(violation)
            }
        }
    }
}

/// A string field of a schema-valid event ("" if absent, which the schema rules out).
fn text_field<'a>(event: &'a Value, name: &str) -> &'a str {
    event.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// An RFC 3339 timestamp (`None` if unparseable, which the schema rules out).
fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|ts| ts.with_timezone(&Utc))
}

fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTC: &str = include_str!("../../contracts/EXAMPLES/example_btc.json");
    /// 8 ms after the example's `ts_ingest`, like a producer's CreateTime.
    const RECORD_TS: i64 = 1_712_508_600_420;

    fn btc() -> Value {
        serde_json::from_str(BTC).unwrap()
    }

    /// `btc` with `ts_event` set and `event_id` recomputed.
    fn with_ts_event(ts_event: &str) -> Value {
        let mut event = btc();
        event["ts_event"] = ts_event.into();
        event["event_id"] = event_id("bitcoin", "usd", ts_event).into();
        event
    }

    fn check(event: &Value) -> Result<Checked, Violation> {
        let bytes = serde_json::to_vec(event).unwrap();
        PriceContract::new(CheckConfig::default()).check(
            Some(b"bitcoin".as_slice()),
            Some(&bytes),
            Some(RECORD_TS),
        )
    }

    fn rule_of(event: &Value) -> (String, String) {
        let violation = check(event).unwrap_err();
        (violation.rule, violation.pointer)
    }

    #[test]
    fn the_example_is_valid_under_its_own_key() {
        let checked = check(&btc()).unwrap();
        assert_eq!((checked.key.as_str(), checked.rekey), ("bitcoin", None));
        assert_eq!(checked.event, btc());
    }

    #[test]
    fn a_missing_or_foreign_key_asks_for_a_rekey() {
        let contract = PriceContract::new(CheckConfig::default());
        let value = Some(BTC.as_bytes());
        let rekey = |key| contract.check(key, value, None).unwrap().rekey;
        assert_eq!(rekey(None), Some(Rekey::MissingKey));
        assert_eq!(rekey(Some(b"".as_slice())), Some(Rekey::MissingKey));
        assert_eq!(rekey(Some(b"solana".as_slice())), Some(Rekey::KeyNotCoinId));
        assert_eq!(rekey(Some(b"bitcoin".as_slice())), None);
    }

    #[test]
    fn no_value_is_a_tombstone_and_bad_bytes_are_deserialization_errors() {
        let contract = PriceContract::new(CheckConfig::default());
        for (value, want) in [
            (None, rule::TOMBSTONE),
            (Some(&b""[..]), rule::TOMBSTONE),
            (Some(&[0xff, 0xfe][..]), rule::UTF8),
            (Some(&b"{\"price\":"[..]), rule::JSON_SYNTAX),
        ] {
            let violation = contract
                .check(Some(b"bitcoin".as_slice()), value, None)
                .unwrap_err();
            assert_eq!(
                (
                    violation.kind,
                    violation.rule.as_str(),
                    violation.pointer.as_str()
                ),
                (ViolationKind::Deserialization, want, ""),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_wrong_event_id_is_a_mismatch() {
        let mut event = btc();
        event["event_id"] = event_id("bitcoin", "eur", "2024-04-07T16:49:31.736Z").into();
        assert_eq!(
            rule_of(&event),
            (rule::EVENT_ID_MISMATCH.into(), "/event_id".into())
        );
    }

    #[test]
    fn control_characters_in_symbol_break_the_pattern() {
        for symbol in ["bt\u{0}c", "btc\u{7}", "b\u{7f}", "\u{85}x"] {
            let mut event = btc();
            event["symbol"] = symbol.into();
            assert_eq!(
                rule_of(&event),
                ("pattern".into(), "/symbol".into()),
                "{symbol:?}"
            );
        }
        let mut event = btc();
        event["symbol"] = "₿tc".into();
        assert!(check(&event).is_ok(), "non-control Unicode stays allowed");
    }

    #[test]
    fn future_events_beyond_the_tolerance_are_refused() {
        // ts_ingest is 16:50:00.412: 5 minutes later is still accepted, a millisecond more not.
        assert!(check(&with_ts_event("2024-04-07T16:55:00.412Z")).is_ok());
        assert_eq!(
            rule_of(&with_ts_event("2024-04-07T16:55:00.413Z")),
            (rule::TS_EVENT_AFTER_TS_INGEST.into(), "/ts_event".into())
        );
        let three_hours = with_ts_event("2024-04-07T19:50:00.412Z");
        let violation = check(&three_hours).unwrap_err();
        assert!(
            violation.message.contains("10800 s after ts_ingest"),
            "{violation}"
        );
        let lenient = PriceContract::new(CheckConfig {
            future_tolerance: Duration::from_secs(4 * 3600),
        });
        let bytes = serde_json::to_vec(&three_hours).unwrap();
        assert!(lenient.check(None, Some(&bytes), None).is_ok());
    }

    #[test]
    fn events_before_genesis_or_the_coins_first_day_are_too_old() {
        assert_eq!(
            rule_of(&with_ts_event("2009-01-02T23:59:59.999Z")),
            (rule::TS_EVENT_TOO_OLD.into(), "/ts_event".into())
        );
        assert!(check(&with_ts_event("2009-01-03T00:00:00.000Z")).is_ok());
        let mut sui = btc();
        sui["coin_id"] = "sui".into();
        sui["ts_event"] = "2020-01-01T00:00:00.000Z".into();
        sui["event_id"] = event_id("sui", "usd", "2020-01-01T00:00:00.000Z").into();
        let violation = check(&sui).unwrap_err();
        assert_eq!(violation.rule, rule::TS_EVENT_TOO_OLD);
        assert!(
            violation.message.contains("2023-05-01T00:00:00.000Z"),
            "{violation}"
        );
    }

    #[test]
    fn ts_ingest_may_not_run_ahead_of_its_record() {
        let mut event = btc();
        event["ts_ingest"] = "2024-04-07T17:50:00.412Z".into();
        assert_eq!(
            rule_of(&event),
            (
                rule::TS_INGEST_AFTER_RECORD_TIMESTAMP.into(),
                "/ts_ingest".into()
            )
        );
        // Without a record timestamp the rule has nothing to compare with.
        let bytes = serde_json::to_vec(&event).unwrap();
        let contract = PriceContract::new(CheckConfig::default());
        assert!(contract.check(None, Some(&bytes), None).is_ok());
        assert!(contract.check(None, Some(&bytes), Some(-1)).is_ok());
        assert!(contract.check(None, Some(&bytes), Some(0)).is_ok());
    }

    #[test]
    fn several_broken_rules_report_the_first_and_count_all() {
        let mut event = with_ts_event("2030-01-01T00:00:00.000Z");
        event["event_id"] = "0".repeat(64).into();
        let violation = check(&event).unwrap_err();
        assert_eq!(
            (violation.rule.as_str(), violation.errors_total),
            (rule::EVENT_ID_MISMATCH, 2)
        );
    }

    #[test]
    fn version_1_1_is_accepted_with_the_1_2_rules_and_others_are_not() {
        let mut event = btc();
        event["schema_version"] = "1.1".into();
        assert!(check(&event).is_ok());
        event["symbol"] = "bt\u{0}c".into();
        assert_eq!(rule_of(&event), ("pattern".into(), "/symbol".into()));
        let mut event = btc();
        event["schema_version"] = "1.0".into();
        assert_eq!(rule_of(&event), ("const".into(), "/schema_version".into()));
    }

    #[test]
    fn long_messages_are_cut() {
        let mut event = btc();
        event["schema_version"] = "x".repeat(1000).into();
        let violation = check(&event).unwrap_err();
        assert!(violation.message.chars().count() <= Violation::MAX_MESSAGE_CHARS + 1);
    }
}
