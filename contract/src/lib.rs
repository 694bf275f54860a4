//! The price event contract (`contracts/event_crypto_price.schema.json`, `contracts/README.md`)
//! as one pure check, shared by the `validator` stream app and the lake's Silver job, so that a
//! record is valid in the stream exactly when it is valid in the lake.
//!
//! No Kafka, no clock: everything the check needs comes in as arguments (the record's key, value
//! and Kafka timestamp), so the same record gives the same answer today, in a replay and in a
//! batch job years later.
//!
//! # API
//!
//! - [`PriceContract::new`]`(`[`CheckConfig`]`)` compiles the bundled schema once;
//! - [`PriceContract::check`]`(key, value, record_timestamp_ms)` →
//!   `Ok(`[`Checked`]` { event, key, rekey })` or `Err(`[`Violation`]` { kind, rule, pointer,
//!   schema_path, message, errors_total })`;
//! - [`rule`] names every rule beyond JSON Schema; a schema violation's `rule` is the JSON Schema
//!   keyword that failed (`required`, `type`, `pattern`, `const`, …).
//!
//! The checks, in order (the first failing one is reported):
//!
//! 1. a value (`None` or zero bytes: a tombstone, [`rule::TOMBSTONE`]);
//! 2. UTF-8 ([`rule::UTF8`]), JSON ([`rule::JSON_SYNTAX`]);
//! 3. the JSON Schema of contract [`SCHEMA_VERSION`], formats asserted; a record declaring an
//!    older version this crate still accepts ([`ACCEPTED_VERSIONS`]) is checked by the same
//!    schema (contracts/README.md, "Versioning policy");
//! 4. the rules JSON Schema cannot express: `event_id` is the SHA-256 of the unique key
//!    ([`rule::EVENT_ID_MISMATCH`]); `ts_event` not before the coin existed
//!    ([`rule::TS_EVENT_TOO_OLD`], [`listing`]); `ts_event` at most
//!    [`CheckConfig::future_tolerance`] after `ts_ingest` ([`rule::TS_EVENT_AFTER_TS_INGEST`]);
//!    `ts_ingest` at most that tolerance after the record's Kafka timestamp
//!    ([`rule::TS_INGEST_AFTER_RECORD_TIMESTAMP`], skipped when the record has none).
//!
//! A valid record's key is its `coin_id`: [`Checked::rekey`] says when the Kafka key was missing
//! or different, so the caller re-keys (and counts) it.
//!
//! ```
//! use contract::{rule, CheckConfig, PriceContract};
//!
//! let contract = PriceContract::new(CheckConfig::default());
//! let value: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/EXAMPLES/example_btc.json"));
//! let checked = contract.check(None, Some(value), None).unwrap();
//! assert_eq!(checked.key, "bitcoin");
//! assert!(checked.rekeyed()); // no Kafka key: re-keyed by coin_id
//!
//! let tombstone = contract.check(Some(b"bitcoin".as_slice()), None, None).unwrap_err();
//! assert_eq!((tombstone.rule.as_str(), tombstone.pointer.as_str()), (rule::TOMBSTONE, ""));
//! ```

mod check;
mod ids;
pub mod listing;
pub mod rule;
mod violation;

pub use check::{CheckConfig, Checked, PriceContract, Rekey};
pub use ids::{event_id, sha256_hex, unique_key};
pub use violation::{Violation, ViolationKind};

/// The price event schema, newest version (`contracts/event_crypto_price.schema.json`).
pub const PRICE_SCHEMA: &str = include_str!("../../contracts/event_crypto_price.schema.json");

/// Contract version producers write.
pub const SCHEMA_VERSION: &str = "1.2";

/// Versions [`PriceContract::check`] accepts, newest first; each is checked by the newest
/// schema (1.2 only enforces what 1.1's text already required).
pub const ACCEPTED_VERSIONS: [&str; 2] = [SCHEMA_VERSION, "1.1"];
