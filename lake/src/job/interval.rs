//! The data interval `[start, end)` (UTC, event time) a job run covers, and the typed values
//! (timestamps, dates) that go into predicates and SQL parameters — never text pasted into SQL.
//!
//! ```
//! use lake::job::interval::Interval;
//!
//! let interval = Interval::parse("2026-01-01T10:30:00Z", "2026-01-01T12:00:00Z").unwrap();
//! let hours = interval.whole_hours();
//! assert_eq!(hours.start().to_rfc3339(), "2026-01-01T10:00:00+00:00");
//! let days = interval.whole_days();
//! assert_eq!(days.end().to_rfc3339(), "2026-01-02T00:00:00+00:00");
//! assert_eq!(days.dates().count(), 1);
//! ```

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeDelta, Utc};
use deltalake::datafusion::prelude::{col, lit, Expr};
use deltalake::datafusion::scalar::ScalarValue;

use super::JobError;

/// A non-empty half-open interval of UTC instants.
///
/// Invariant: `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Interval {
    /// `[start, end)`; an error unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, JobError> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(JobError::EmptyInterval {
                start: start.to_rfc3339(),
                end: end.to_rfc3339(),
            })
        }
    }

    /// `[start, end)` from RFC 3339 text (any offset; converted to UTC).
    pub fn parse(start: &str, end: &str) -> Result<Self, JobError> {
        let parse = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|source| JobError::InvalidTimestamp {
                    text: text.to_owned(),
                    source,
                })
        };
        Self::new(parse(start)?, parse(end)?)
    }

    /// The first instant in the interval.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The first instant after the interval.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The smallest interval of whole UTC hours that covers this one.
    pub fn whole_hours(&self) -> Self {
        self.cover(TimeDelta::hours(1))
    }

    /// The smallest interval of whole UTC days that covers this one.
    pub fn whole_days(&self) -> Self {
        self.cover(TimeDelta::days(1))
    }

    /// The interval that starts `by` earlier (for look-back windows).
    pub fn extended_back(&self, by: Duration) -> Self {
        Self {
            start: self.start - by,
            end: self.end,
        }
    }

    /// The UTC dates the interval touches, in order.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        let last = self.last_date();
        self.start
            .date_naive()
            .iter_days()
            .take_while(move |day| *day <= last)
    }

    /// The UTC date of the interval's first instant.
    pub fn first_date(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The UTC date of the interval's last instant (the one just before `end`).
    pub fn last_date(&self) -> NaiveDate {
        (self.end - TimeDelta::microseconds(1)).date_naive()
    }

    /// The hours the interval touches, by their start, in order.
    pub fn hour_starts(&self) -> impl Iterator<Item = DateTime<Utc>> {
        let covered = self.whole_hours();
        std::iter::successors(Some(covered.start), |hour| {
            Some(*hour + TimeDelta::hours(1))
        })
        .take_while(move |hour| *hour < covered.end)
    }

    /// `column >= start AND column < end` on a timestamp column, with typed literals.
    pub fn timestamp_predicate(&self, column: &str) -> Expr {
        col(column)
            .gt_eq(lit(timestamp_value(self.start)))
            .and(col(column).lt(lit(timestamp_value(self.end))))
    }

    /// `column >= first date AND column <= last date` on a date column (partition pruning).
    pub fn date_predicate(&self, column: &str) -> Expr {
        col(column)
            .gt_eq(lit(date_value(self.first_date())))
            .and(col(column).lt_eq(lit(date_value(self.last_date()))))
    }

    fn cover(&self, unit: TimeDelta) -> Self {
        // Truncation of an in-range UTC instant to hours or days cannot fail; keep the instant
        // itself if it ever did, which still covers it.
        let start = self.start.duration_trunc(unit).unwrap_or(self.start);
        let floor_end = self.end.duration_trunc(unit).unwrap_or(self.end);
        let end = if floor_end == self.end {
            self.end
        } else {
            floor_end + unit
        };
        Self { start, end }
    }
}

/// `t` as a Delta `timestamp` value (microseconds, UTC).
pub fn timestamp_value(t: DateTime<Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
}

/// `date` as a Delta `date` value (days since 1970-01-01).
pub fn date_value(date: NaiveDate) -> ScalarValue {
    ScalarValue::Date32(Some(days_since_epoch(date)))
}

/// Days from 1970-01-01 to `date`.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    // Every chrono date is within ±262,143 years: the day count fits in i32.
    i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn an_empty_or_reversed_interval_is_refused() {
        let t = at("2026-01-01T00:00:00Z");
        assert!(Interval::new(t, t).is_err());
        assert!(Interval::parse("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z").is_err());
        assert!(Interval::parse("yesterday", "2026-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn covers_round_outwards_and_keep_aligned_bounds() -> Result<(), JobError> {
        let aligned = Interval::parse("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")?;
        assert_eq!(aligned.whole_days(), aligned);
        assert_eq!(aligned.dates().count(), 2);
        assert_eq!(aligned.last_date().to_string(), "2026-01-02");
        let ragged = Interval::parse("2026-01-01T23:59:00Z", "2026-01-02T00:00:01Z")?;
        assert_eq!(ragged.whole_hours().start(), at("2026-01-01T23:00:00Z"));
        assert_eq!(ragged.whole_hours().end(), at("2026-01-02T01:00:00Z"));
        assert_eq!(ragged.hour_starts().count(), 2);
        assert_eq!(ragged.whole_days().dates().count(), 2);
        Ok(())
    }

    #[test]
    fn epoch_days_are_counted_from_1970() {
        assert_eq!(days_since_epoch(NaiveDate::default()), 0);
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        assert_eq!(days_since_epoch(day), 20_454);
    }
}
