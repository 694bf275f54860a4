//! Silver: Bronze records typed, checked against the contracts, deduplicated — per data interval
//! `[start, end)` of event time, idempotent.
//!
//! One run reads the three Bronze tables (only the `ingest_date` partitions that can hold the
//! interval's records, [`source`]), refines each record ([`refine`]) and replaces exactly the
//! interval's rows of four tables, each in ONE Delta commit:
//!
//! | table | rows | key (first ingest wins) |
//! |---|---|---|
//! | [`prices`] `silver/prices` | valid price events of followed coins | `(coin_id, vs_currency, ts_event)` |
//! | [`dead_letters`] `silver/dead_letters` | dead-letter envelopes | original `(topic, partition, offset)` |
//! | [`alerts`] `silver/alerts` | alert events | `alert_id` |
//! | [`quarantine`] `silver/quarantine` | everything else, with the rule it broke | — |
//!
//! Delta has no multi-table transaction: the data tables are committed first, the quarantine
//! last. A run that stops in between leaves some tables at the previous run's state for the
//! interval; re-running it (every run is idempotent) makes them consistent again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::job::JobError> {
//! use lake::job::interval::Interval;
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let interval = Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")?;
//! let report = lake::silver::run(&lake, &interval, &lake::silver::SilverConfig::default()).await?;
//! println!("{} prices", report.prices.written);
//! # Ok(()) }
//! ```

pub mod alerts;
pub mod dead_letters;
mod envelope_check;
pub mod prices;
pub mod quarantine;
pub mod refine;
pub mod source;
mod timestamps;

use std::collections::BTreeSet;

use chrono::Duration;
use contract::{CheckConfig, PriceContract};
use serde::Serialize;

use crate::job::interval::Interval;
use crate::job::replace::{replace_rows, TableSpec};
use crate::job::JobError;
use crate::storage::Lake;
use refine::{Refinery, SourceReport};
use source::{read_bronze, IngestWindow};

/// The Bronze tables Silver reads.
pub const BRONZE_PRICES: &str = "bronze/prices_raw";
/// Bronze dead letters.
pub const BRONZE_DEAD_LETTERS: &str = "bronze/dead_letters";
/// Bronze alerts.
pub const BRONZE_ALERTS: &str = "bronze/alerts";

/// The name of this job in commit metadata.
const JOB: &str = "silver";

/// How Silver runs.
#[derive(Clone, Debug)]
pub struct SilverConfig {
    /// The coins followed; events of others are quarantined (`unknown_coin`). `None`: all.
    pub coins: Option<BTreeSet<String>>,
    /// The price contract's settings (the validator's).
    pub contract: CheckConfig,
    /// How far before the interval a record of it may have reached Kafka, and how far after its
    /// Kafka timestamp a `ts_event` is still believed; at least twice the contract's future
    /// tolerance. Default 1 hour.
    pub tolerance: Duration,
    /// Cap on how late (after the interval's end) a record is still read; `None` (default):
    /// any lateness, so a re-run always picks late data up.
    pub max_lateness: Option<Duration>,
}

impl Default for SilverConfig {
    fn default() -> Self {
        Self {
            coins: None,
            contract: CheckConfig::default(),
            tolerance: Duration::hours(1),
            max_lateness: None,
        }
    }
}

/// What one Silver run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SilverReport {
    /// The interval, RFC 3339.
    pub start: String,
    /// The interval's end, RFC 3339.
    pub end: String,
    /// `bronze/prices_raw` → `silver/prices`.
    pub prices: SourceReport,
    /// `bronze/dead_letters` → `silver/dead_letters`.
    pub dead_letters: SourceReport,
    /// `bronze/alerts` → `silver/alerts`.
    pub alerts: SourceReport,
    /// Rows written to `silver/quarantine` (all three sources).
    pub quarantined: u64,
}

/// Runs Silver for `interval`.
pub async fn run(
    lake: &Lake,
    interval: &Interval,
    config: &SilverConfig,
) -> Result<SilverReport, JobError> {
    let window = IngestWindow::for_interval(interval, config.tolerance, config.max_lateness);
    let contract = PriceContract::new(config.contract);
    let mut refined_prices = Refinery::new(BRONZE_PRICES, *interval, config.tolerance);
    read_bronze(lake, BRONZE_PRICES, window, |record| {
        let parsed = prices::parse(&contract, config.coins.as_ref(), &record);
        refined_prices.accept(&record, parsed);
    })
    .await?;
    let dead_letter_check = dead_letters::check()?;
    let mut refined_dead = Refinery::new(BRONZE_DEAD_LETTERS, *interval, config.tolerance);
    read_bronze(lake, BRONZE_DEAD_LETTERS, window, |record| {
        let parsed = dead_letters::parse(&dead_letter_check, config.tolerance, &record);
        refined_dead.accept(&record, parsed);
    })
    .await?;
    let alert_check = alerts::check()?;
    let mut refined_alerts = Refinery::new(BRONZE_ALERTS, *interval, config.tolerance);
    read_bronze(lake, BRONZE_ALERTS, window, |record| {
        let parsed = alerts::parse(&alert_check, &record);
        refined_alerts.accept(&record, parsed);
    })
    .await?;

    let (price_rows, mut quarantined, prices_report) = refined_prices.finish();
    write(lake, &prices::spec(), &price_rows, "ts_event", interval).await?;
    drop(price_rows);
    let (dead_rows, dead_quarantined, dead_report) = refined_dead.finish();
    write(
        lake,
        &dead_letters::spec(),
        &dead_rows,
        "event_time",
        interval,
    )
    .await?;
    let (alert_rows, alert_quarantined, alerts_report) = refined_alerts.finish();
    write(lake, &alerts::spec(), &alert_rows, "ts_event", interval).await?;
    quarantined.extend(dead_quarantined);
    quarantined.extend(alert_quarantined);
    quarantined.sort_by(|a, b| {
        (&a.source_table, &a.topic, a.partition, a.offset).cmp(&(
            &b.source_table,
            &b.topic,
            b.partition,
            b.offset,
        ))
    });
    write(
        lake,
        &quarantine::spec(),
        &quarantined,
        "event_time",
        interval,
    )
    .await?;
    let report = SilverReport {
        start: interval.start().to_rfc3339(),
        end: interval.end().to_rfc3339(),
        prices: prices_report,
        dead_letters: dead_report,
        alerts: alerts_report,
        quarantined: quarantined.len() as u64,
    };
    tracing::info!(
        start = %report.start,
        end = %report.end,
        prices = report.prices.written,
        dead_letters = report.dead_letters.written,
        alerts = report.alerts.written,
        quarantined = report.quarantined,
        "silver interval replaced"
    );
    Ok(report)
}

/// Replaces the interval's rows of `spec` (placed by `time_column`) with `rows`.
async fn write<S: Serialize>(
    lake: &Lake,
    spec: &TableSpec,
    rows: &[S],
    time_column: &str,
    interval: &Interval,
) -> Result<(), JobError> {
    let batches = spec.batches(rows)?;
    let predicate = interval
        .timestamp_predicate(time_column)
        .and(interval.date_predicate("event_date"));
    replace_rows(lake, spec, &batches, predicate, JOB, interval).await?;
    Ok(())
}
