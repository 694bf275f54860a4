//! The path every Bronze record takes in a Silver run, whatever its table: parsed into a typed
//! row or rejected with a reason; kept when its event time is in the interval; deduplicated on
//! the table's key, first ingest winning; the rejected and the duplicates quarantined.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::quarantine::{placement, QuarantineRow, Rejection, DUPLICATE};
use super::source::BronzeRow;
use crate::job::interval::Interval;

/// Where a refined row came from in Bronze.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Bronze table.
    pub table: &'static str,
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp.
    pub kafka_timestamp: Option<DateTime<Utc>>,
}

impl Origin {
    /// The origin of `record`.
    pub fn of(record: &BronzeRow) -> Self {
        Self {
            table: record.table,
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            kafka_timestamp: record.kafka_timestamp,
        }
    }
}

/// A typed Silver row.
pub trait Refined {
    /// The unique key of the table.
    type Key: Ord;

    /// This row's key.
    fn key(&self) -> Self::Key;

    /// The instant that places the row in an interval.
    fn event_time(&self) -> DateTime<Utc>;

    /// When the row's source received it (`ts_ingest` of a poll, `ts_alert`, `ts_dead_letter`).
    fn received(&self) -> DateTime<Utc>;

    /// Orders copies of one key: the smallest is the first ingest and wins — received first,
    /// then Kafka timestamp (none last), partition, offset — so the winner is deterministic.
    fn ingest_rank(&self) -> (i64, i64, i32, i64) {
        let origin = self.origin();
        (
            self.received().timestamp_micros(),
            origin
                .kafka_timestamp
                .map_or(i64::MAX, |t| t.timestamp_micros()),
            origin.partition,
            origin.offset,
        )
    }

    /// Where it came from.
    fn origin(&self) -> &Origin;

    /// The coin it is about, if any.
    fn coin_id(&self) -> Option<&str>;
}

/// Counts of one Silver run over one Bronze table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// Bronze table read.
    pub table: &'static str,
    /// Records read from the scanned `ingest_date` partitions.
    pub read: u64,
    /// Of those, records placed in the interval (the others belong to other intervals).
    pub in_interval: u64,
    /// Rows written to the Silver table.
    pub written: u64,
    /// Quarantined records by rule ([`DUPLICATE`] included).
    pub quarantined: BTreeMap<String, u64>,
}

/// Collects the records of one Bronze table for one interval.
pub struct Refinery<R> {
    interval: Interval,
    tolerance: Duration,
    rows: Vec<R>,
    quarantine: Vec<QuarantineRow>,
    report: SourceReport,
}

impl<R: Refined> Refinery<R> {
    /// An empty refinery for `table` and `interval`; `tolerance` as in [`placement`].
    pub fn new(table: &'static str, interval: Interval, tolerance: Duration) -> Self {
        Self {
            interval,
            tolerance,
            rows: Vec::new(),
            quarantine: Vec::new(),
            report: SourceReport {
                table,
                ..SourceReport::default()
            },
        }
    }

    /// Takes `record`, parsed into `parsed`.
    pub fn accept(&mut self, record: &BronzeRow, parsed: Result<R, Rejection>) {
        self.report.read += 1;
        match parsed {
            Ok(row) => {
                if self.interval.contains(row.event_time()) {
                    self.report.in_interval += 1;
                    self.rows.push(row);
                }
            }
            Err(rejection) => {
                let at = placement(rejection.ts_event, record.kafka_timestamp, self.tolerance);
                if self.interval.contains(at) {
                    self.report.in_interval += 1;
                    self.count(&rejection.rule);
                    self.quarantine
                        .push(QuarantineRow::rejected(record, rejection, at));
                }
            }
        }
    }

    /// The deduplicated rows (sorted by key), the quarantine rows, and the counts.
    pub fn finish(mut self) -> (Vec<R>, Vec<QuarantineRow>, SourceReport) {
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by_cached_key(|row| (row.key(), row.ingest_rank()));
        let mut kept: Vec<R> = Vec::with_capacity(rows.len());
        for row in rows {
            match kept.last() {
                Some(first) if first.key() == row.key() => {
                    let duplicate = self.duplicate(first.origin(), &row);
                    self.count(DUPLICATE);
                    self.quarantine.push(duplicate);
                }
                _ => kept.push(row),
            }
        }
        self.report.written = kept.len() as u64;
        (kept, self.quarantine, self.report)
    }

    fn duplicate(&self, first: &Origin, row: &R) -> QuarantineRow {
        let origin = row.origin();
        let at = row.event_time();
        QuarantineRow {
            source_table: origin.table.to_owned(),
            topic: origin.topic.clone(),
            partition: origin.partition,
            offset: origin.offset,
            kafka_timestamp: origin.kafka_timestamp,
            coin_id: row.coin_id().map(str::to_owned),
            value_text: None,
            value_encoding: None,
            rule: DUPLICATE.to_owned(),
            pointer: String::new(),
            message: format!(
                "duplicate key; the first ingest is kept: {} partition {} offset {}",
                first.topic, first.partition, first.offset
            ),
            event_time: at,
            event_date: super::timestamps::event_date(at),
        }
    }

    fn count(&mut self, rule: &str) {
        *self.report.quarantined.entry(rule.to_owned()).or_default() += 1;
    }
}
