//! Names of the rules beyond JSON Schema, as they appear in [`crate::Violation::rule`], in
//! dead-letter envelopes (`reason.keyword`) and in the lake's quarantine (`rule`).

/// The record has no value (a tombstone, or zero bytes).
pub const TOMBSTONE: &str = "tombstone";
/// The value is not UTF-8.
pub const UTF8: &str = "utf8";
/// The value is not JSON.
pub const JSON_SYNTAX: &str = "json_syntax";
/// `event_id` is not the SHA-256 of `coin_id|vs_currency|ts_event`.
pub const EVENT_ID_MISMATCH: &str = "event_id_mismatch";
/// `ts_event` is before 2009-01-03 or before the coin existed ([`crate::listing`]).
pub const TS_EVENT_TOO_OLD: &str = "ts_event_too_old";
/// `ts_event` is later than `ts_ingest` by more than the tolerance.
pub const TS_EVENT_AFTER_TS_INGEST: &str = "ts_event_after_ts_ingest";
/// `ts_ingest` is later than the record's Kafka timestamp by more than the tolerance.
pub const TS_INGEST_AFTER_RECORD_TIMESTAMP: &str = "ts_ingest_after_record_timestamp";

/// Every rule above, for documentation and tests.
pub const ALL: [&str; 7] = [
    TOMBSTONE,
    UTF8,
    JSON_SYNTAX,
    EVENT_ID_MISMATCH,
    TS_EVENT_TOO_OLD,
    TS_EVENT_AFTER_TS_INGEST,
    TS_INGEST_AFTER_RECORD_TIMESTAMP,
];
