//! The data interval `[start, end)` of a load (UTC), and its widening to a fact's grain: a fact of
//! hours (days) is replaced for every hour (day) the interval touches, as the Gold jobs recompute
//! every bucket the interval touches.
//!
//! ```
//! use warehouse::interval::{Grain, Interval};
//! let interval = Interval::parse("2026-03-01T10:30:00Z", "2026-03-01T12:00:00Z")?;
//! let days = interval.widened(Grain::Day);
//! assert_eq!(days.start().to_rfc3339(), "2026-03-01T00:00:00+00:00");
//! assert_eq!(days.end().to_rfc3339(), "2026-03-02T00:00:00+00:00");
//! # Ok::<(), warehouse::interval::IntervalError>(())
//! ```

use std::fmt;

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};

/// Why an interval is not usable.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    /// A bound is not an RFC 3339 timestamp.
    #[error("{bound} {value:?} is not an RFC 3339 timestamp")]
    Unparsable {
        /// `start` or `end`.
        bound: &'static str,
        /// The text given.
        value: String,
        /// The parser's complaint.
        #[source]
        source: chrono::ParseError,
    },
    /// `start` is not before `end`.
    #[error("empty interval: start {start} is not before end {end}")]
    Empty {
        /// The start given.
        start: DateTime<Utc>,
        /// The end given.
        end: DateTime<Utc>,
    },
    /// A bound cannot be rounded to the grain (out of chrono's range).
    #[error("interval bound {0} cannot be rounded to whole hours or days")]
    OutOfRange(DateTime<Utc>),
}

/// The time resolution of a fact's rows, which decides how far a load's interval widens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    /// One row per event: the interval as given.
    Event,
    /// One row per UTC hour: every hour the interval touches.
    Hour,
    /// One row per UTC day: every day the interval touches.
    Day,
}

impl Grain {
    fn step(self) -> Option<TimeDelta> {
        match self {
            Grain::Event => None,
            Grain::Hour => Some(TimeDelta::hours(1)),
            Grain::Day => Some(TimeDelta::days(1)),
        }
    }
}

/// A non-empty half-open UTC interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Interval {
    /// `[start, end)`; an error when `start >= end` or a bound is too close to chrono's limits to
    /// round to whole days.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Interval, IntervalError> {
        if start < end {
            // Rounding must work for every grain, so a widened interval always exists.
            for bound in [start, end] {
                bound
                    .duration_trunc(TimeDelta::days(1))
                    .ok()
                    .and_then(|t| t.checked_add_signed(TimeDelta::days(1)))
                    .ok_or(IntervalError::OutOfRange(bound))?;
            }
            Ok(Interval { start, end })
        } else {
            Err(IntervalError::Empty { start, end })
        }
    }

    /// `[start, end)` from RFC 3339 texts (any offset; kept as UTC).
    pub fn parse(start: &str, end: &str) -> Result<Interval, IntervalError> {
        let parse = |bound, value: &str| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|source| IntervalError::Unparsable {
                    bound,
                    value: value.to_owned(),
                    source,
                })
        };
        Interval::new(parse("start", start)?, parse("end", end)?)
    }

    /// The first instant in the interval.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The first instant after the interval.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The smallest interval of whole `grain` buckets that contains this one.
    pub fn widened(&self, grain: Grain) -> Interval {
        let Some(step) = grain.step() else {
            return *self;
        };
        // `new` checked that both bounds round to whole days, hence to whole hours.
        let floor = |t: DateTime<Utc>| t.duration_trunc(step).unwrap_or(t);
        let start = floor(self.start);
        let end_floor = floor(self.end);
        let end = if end_floor == self.end {
            self.end
        } else {
            end_floor.checked_add_signed(step).unwrap_or(self.end)
        };
        Interval { start, end }
    }

    /// The UTC days the interval touches: `[first, last_exclusive)`.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        let days = self.widened(Grain::Day);
        (days.start.date_naive(), days.end.date_naive())
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            self.start
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            self.end
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_keeps_aligned_bounds_and_rounds_the_others_outward() -> Result<(), IntervalError> {
        let aligned = Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")?;
        assert_eq!(aligned.widened(Grain::Day), aligned);
        assert_eq!(aligned.widened(Grain::Hour), aligned);
        let odd = Interval::parse("2026-01-01T10:15:00Z", "2026-01-01T12:45:00+01:00")?;
        assert_eq!(odd.widened(Grain::Event), odd);
        assert_eq!(
            odd.widened(Grain::Hour).to_string(),
            "[2026-01-01T10:00:00Z, 2026-01-01T12:00:00Z)"
        );
        assert_eq!(
            odd.widened(Grain::Day).to_string(),
            "[2026-01-01T00:00:00Z, 2026-01-02T00:00:00Z)"
        );
        let (first, last) = odd.days();
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2026-01-01".to_owned(), "2026-01-02".to_owned())
        );
        Ok(())
    }

    #[test]
    fn empty_and_unparsable_intervals_are_errors() {
        assert!(matches!(
            Interval::parse("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
            Err(IntervalError::Empty { .. })
        ));
        assert!(matches!(
            Interval::parse("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            Err(IntervalError::Empty { .. })
        ));
        assert!(matches!(
            Interval::parse("yesterday", "2026-01-01T00:00:00Z"),
            Err(IntervalError::Unparsable { bound: "start", .. })
        ));
    }
}
