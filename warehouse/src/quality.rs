//! Data-quality checks of one data interval `[start, end)`, callable without Airflow
//! (`warehouse check`): completeness and freshness per coin and hour against the KPIs of
//! docs/KPI_SLO_SLA.md, uniqueness of `(coin_id, vs_currency, ts_event)` in Silver and the
//! warehouse, prices > 0, candle bounds, and the reconciliation of counts Bronze → Silver →
//! warehouse. Every result is written to the warehouse's `dq_check_result`; a breach of a `fail`
//! rule makes [`Report::failures`] non-empty.
//!
//! ```no_run
//! # async fn demo(lake: lake::storage::Lake, mut client: tokio_postgres::Client) -> Result<(), warehouse::quality::QualityError> {
//! use lake::job::interval::Interval;
//! use warehouse::quality::{self, rules::Rules};
//! let interval = Interval::parse("2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z")?;
//! let report = quality::run(&lake, &mut client, &interval, &Rules::default()).await?;
//! for failure in report.failures() {
//!     eprintln!("{}", failure.message); // completeness: bitcoin 2026-01-01T04:00Z received 7 of 12 polls (KPI ≥ 11)
//! }
//! # Ok(()) }
//! ```

mod checks;
pub mod facts;
mod lake_facts;
pub mod rules;
mod store;
mod warehouse_facts;

use std::path::PathBuf;

use lake::job::interval::Interval;
use tokio_postgres::Client;

use crate::connection::{ConnectionError, WarehouseTarget};

use facts::{Facts, Subject};
use rules::{CheckName, Rules};

/// Everything that can stop a check run (a breach is not an error: it is a [`Status::Fail`]).
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// The interval is not made of whole UTC hours.
    #[error("invalid check interval: {0}")]
    Interval(String),
    /// The rules file cannot be read or is not valid rules JSON.
    #[error("invalid data-quality rules{}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Rules {
        /// The file, when the rules came from one.
        path: Option<PathBuf>,
        /// The I/O or JSON error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Opening or querying a lake table failed.
    #[error(transparent)]
    Lake(#[from] lake::job::JobError),
    /// A lake query's result had a column of an unexpected type.
    #[error("lake query result: {what}")]
    Arrow {
        /// Which conversion.
        what: String,
        /// The Arrow error.
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    /// A lake query's result was not shaped as expected.
    #[error("lake query result: {0}")]
    Unexpected(String),
    /// The warehouse could not be reached.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A warehouse query failed.
    #[error("warehouse: {what}")]
    Warehouse {
        /// What was being done.
        what: &'static str,
        /// The PostgreSQL error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The outcome of one check for one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Within the threshold.
    Pass,
    /// Breached a `warn` rule.
    Warn,
    /// Breached a `fail` rule: a critical breach.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result for one coin and hour.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// Which check.
    pub check: CheckName,
    /// The coin, quote currency and hour it is about.
    pub subject: Subject,
    /// Pass, warn or fail.
    pub status: Status,
    /// What was measured (polls, seconds, or rows breaking the rule).
    pub observed: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// A sentence naming the check, coin, hour, observation and KPI, e.g.
    /// `completeness: bitcoin 2026-01-01T04:00Z received 7 of 12 polls (KPI ≥ 11)`.
    pub message: String,
}

/// Every result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// One per check and subject, checks in [`CheckName::ALL`] order, subjects in order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// The critical breaches.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.status == Status::Fail)
    }

    /// The breaches of `warn` rules.
    pub fn warnings(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.status == Status::Warn)
    }
}

/// The hours of `interval`, as hours since the epoch; an error unless it is whole UTC hours.
fn hours(interval: &Interval) -> Result<std::ops::Range<i64>, QualityError> {
    if interval.whole_hours() != *interval {
        return Err(QualityError::Interval(format!(
            "[{}, {}) must start and end on whole UTC hours",
            interval.start(),
            interval.end()
        )));
    }
    Ok(interval.start().timestamp().div_euclid(3600)..interval.end().timestamp().div_euclid(3600))
}

/// Connects to the warehouse `target` and checks `interval` like [`run`].
pub async fn check(
    lake: &lake::storage::Lake,
    target: &WarehouseTarget,
    interval: &Interval,
    rules: &Rules,
) -> Result<Report, QualityError> {
    let mut client = target.connect().await?;
    run(lake, &mut client, interval, rules).await
}

/// Checks `interval` (whole UTC hours) with `rules`, records every result in `dq_check_result`
/// (replacing the interval's earlier results) and returns them.
pub async fn run(
    lake: &lake::storage::Lake,
    client: &mut Client,
    interval: &Interval,
    rules: &Rules,
) -> Result<Report, QualityError> {
    let hours = hours(interval)?;
    let mut facts = Facts::new();
    lake_facts::read(lake, interval, &mut facts).await?;
    warehouse_facts::read(client, interval, &mut facts).await?;
    let expected: Vec<(String, String)> = rules
        .coins
        .iter()
        .map(|coin| (coin.clone(), rules.vs_currency().to_owned()))
        .collect();
    facts::complete_grid(&mut facts, &expected, hours);
    let results = checks::evaluate(&facts, rules);
    store::record(client, interval, &results).await?;
    Ok(Report { results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_whole_hours() -> Result<(), QualityError> {
        let two = Interval::parse("2026-01-01T04:00:00Z", "2026-01-01T06:00:00Z")?;
        assert_eq!(hours(&two)?.count(), 2);
        let ragged = Interval::parse("2026-01-01T04:30:00Z", "2026-01-01T06:00:00Z")?;
        assert!(matches!(hours(&ragged), Err(QualityError::Interval(_))));
        Ok(())
    }
}
