//! Gold: the SQL models of `lake/models/gold/` ([`model`]), run in process by DataFusion over the
//! Silver Delta tables, each replacing exactly the span it rebuilds in ONE Delta commit: the whole
//! hours (hour grain) or days (day grain) the interval touches, recomputed from Silver with the
//! look-back its windows need. Parameters are typed values bound to the models' `$name`
//! placeholders, never text pasted into SQL.
//!
//! | placeholder | type | value |
//! |---|---|---|
//! | `$start`, `$end` | timestamp | the span rebuilt |
//! | `$start_date`, `$end_date` | date | its first date, the date after its last |
//! | `$read_start`, `$read_start_date` | timestamp, date | `$start` minus the model's look-back |
//!
//! `data_quality` also reads `interval_hours(hour_start, polls_expected)`, a table the job
//! registers from its arguments.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::job::JobError> {
//! use lake::job::interval::Interval;
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let interval = Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")?;
//! let report = lake::gold::run(&lake, &interval, &lake::gold::GoldConfig::default()).await?;
//! assert_eq!(report.models.len(), 5);
//! # Ok(()) }
//! ```

pub mod model;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use deltalake::arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::scalar::ScalarValue;
use serde::Serialize;

use crate::job::interval::{date_value, timestamp_value, Interval};
use crate::job::query::LakeSession;
use crate::job::replace::{replace_rows, timestamp_type};
use crate::job::JobError;
use crate::silver;
use crate::storage::Lake;
use model::{Model, MODELS};

/// The name of this job in commit metadata.
const JOB: &str = "gold";

/// What Silver must have done before Gold can run.
const RUN_SILVER: &str = "run `lakehouse silver` for the interval first";

/// How Gold runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoldConfig {
    /// The producer's poll interval: `polls_expected` = 3600 s / it (whole polls). 1 s to 1 h.
    pub poll_interval: Duration,
}

impl Default for GoldConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(300),
        }
    }
}

impl GoldConfig {
    /// Polls expected per coin and hour.
    pub fn polls_expected(&self) -> Result<i64, JobError> {
        let seconds = self.poll_interval.as_secs();
        if (1..=3600).contains(&seconds) {
            Ok((3600 / seconds) as i64)
        } else {
            Err(JobError::Config(format!(
                "the poll interval must be 1 s to 1 h, not {seconds} s"
            )))
        }
    }
}

/// What one model run wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelReport {
    /// The table.
    pub table: &'static str,
    /// Start of the span rebuilt, RFC 3339.
    pub start: String,
    /// End of the span rebuilt, RFC 3339.
    pub end: String,
    /// Rows written for it.
    pub rows: usize,
}

/// What one Gold run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GoldReport {
    /// One entry per model, in run order.
    pub models: Vec<ModelReport>,
}

/// Runs every Gold model for `interval`.
pub async fn run(
    lake: &Lake,
    interval: &Interval,
    config: &GoldConfig,
) -> Result<GoldReport, JobError> {
    let polls_expected = config.polls_expected()?;
    let session = LakeSession::new();
    for (table, name) in [
        (silver::prices::TABLE, "silver_prices"),
        (silver::quarantine::TABLE, "silver_quarantine"),
        (silver::dead_letters::TABLE, "silver_dead_letters"),
    ] {
        session
            .register_existing(lake, table, name, RUN_SILVER)
            .await?;
    }
    session.register_batch("interval_hours", interval_hours(interval, polls_expected)?)?;
    let mut models = Vec::with_capacity(MODELS.len());
    for model in &MODELS {
        models.push(run_model(lake, &session, model, interval).await?);
    }
    Ok(GoldReport { models })
}

async fn run_model(
    lake: &Lake,
    session: &LakeSession,
    model: &Model,
    interval: &Interval,
) -> Result<ModelReport, JobError> {
    let rebuilt = model.rebuilt(interval);
    let read = model.read(&rebuilt);
    let frame = session
        .plan(model.name(), model.sql, parameters(&rebuilt, &read))
        .await?;
    let spec = model.spec(frame.schema().as_arrow());
    let batches = frame
        .collect()
        .await
        .map_err(JobError::query(model.name()))?;
    let replaced = replace_rows(
        lake,
        &spec,
        &batches,
        model.predicate(&rebuilt),
        JOB,
        interval,
    )
    .await?;
    tracing::info!(
        table = model.table,
        start = %rebuilt.start(),
        end = %rebuilt.end(),
        rows = replaced.rows,
        "gold model replaced its span"
    );
    Ok(ModelReport {
        table: model.table,
        start: rebuilt.start().to_rfc3339(),
        end: rebuilt.end().to_rfc3339(),
        rows: replaced.rows,
    })
}

/// The models' named parameters for the span `rebuilt`, read from `read.start()`.
fn parameters(rebuilt: &Interval, read: &Interval) -> Vec<(&'static str, ScalarValue)> {
    let day_after = |interval: &Interval| interval.last_date() + TimeDelta::days(1);
    vec![
        ("start", timestamp_value(rebuilt.start())),
        ("end", timestamp_value(rebuilt.end())),
        ("start_date", date_value(rebuilt.first_date())),
        ("end_date", date_value(day_after(rebuilt))),
        ("read_start", timestamp_value(read.start())),
        ("read_start_date", date_value(read.first_date())),
    ]
}

/// `interval_hours(hour_start, polls_expected)`: the hours `interval` touches.
fn interval_hours(interval: &Interval, polls_expected: i64) -> Result<RecordBatch, JobError> {
    let hours: Vec<i64> = interval
        .hour_starts()
        .map(|hour| hour.timestamp_micros())
        .collect();
    let expected = Int64Array::from(vec![polls_expected; hours.len()]);
    let hours = TimestampMicrosecondArray::from(hours).with_timezone("UTC");
    let schema = Schema::new(vec![
        Field::new("hour_start", timestamp_type(), false),
        Field::new("polls_expected", DataType::Int64, false),
    ]);
    let columns: Vec<ArrayRef> = vec![Arc::new(hours), Arc::new(expected)];
    RecordBatch::try_new(Arc::new(schema), columns).map_err(JobError::arrow("interval_hours"))
}
