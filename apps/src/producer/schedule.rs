//! When things happen: poll ticks on wall-clock boundaries, and the pacing of replayed or
//! synthetic data at a speed-up.
//!
//! Ticks are multiples of the interval since the Unix epoch, so a 5-minute interval ticks at
//! `hh:00:00`, `hh:05:00`, … UTC, and two instances, a restart or a replay agree on which tick
//! a snapshot belongs to (docs/DATA_SCOPE.md "Schedule"). The poll loop is one task that polls,
//! then asks for the next boundary *after now*: two polls never overlap, and boundaries that
//! passed during a slow poll are skipped and counted, never queued.
//!
//! ```
//! use std::time::Duration;
//! use apps::producer::schedule::Schedule;
//!
//! let schedule = Schedule::new(Duration::from_secs(300)).unwrap();
//! let now = "2025-07-25T14:52:17.5Z".parse().unwrap();
//! assert_eq!(schedule.next_after(now).to_rfc3339(), "2025-07-25T14:55:00+00:00");
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// An interval that is not a whole, positive number of milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the tick interval must be at least 1 ms, got {0:?}")]
pub struct BadInterval(pub Duration);

/// Wall-clock aligned ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval_ms: i64,
}

impl Schedule {
    /// Ticks every `interval` (whole milliseconds; the fraction is dropped).
    pub fn new(interval: Duration) -> Result<Self, BadInterval> {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if interval_ms < 1 {
            return Err(BadInterval(interval));
        }
        Ok(Self { interval_ms })
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.unsigned_abs())
    }

    /// The latest boundary at or before `now`.
    pub fn at_or_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let millis = now.timestamp_millis();
        let aligned = millis - millis.rem_euclid(self.interval_ms);
        DateTime::from_timestamp_millis(aligned).unwrap_or(now)
    }

    /// The first boundary strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.at_or_before(now) + TimeDelta::milliseconds(self.interval_ms)
    }

    /// Boundaries strictly between `previous` and `next`: ticks a poll overran.
    pub fn skipped_between(&self, previous: DateTime<Utc>, next: DateTime<Utc>) -> u64 {
        let gap = (next - previous).num_milliseconds();
        u64::try_from(gap / self.interval_ms - 1).unwrap_or(0)
    }
}

/// Maps data time to the wall-clock time at which it is released: data that is `d` after the
/// first record is released `d / speedup` after the start. Speed-up 0 releases everything
/// at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacer {
    speedup: f64,
    wall_start: DateTime<Utc>,
    data_start: DateTime<Utc>,
    never_ahead_of_data: bool,
}

impl Pacer {
    /// Paces data starting at `data_start` from `wall_start` on, `speedup` times faster than
    /// real time (0 = no waiting).
    pub fn new(speedup: f64, wall_start: DateTime<Utc>, data_start: DateTime<Utc>) -> Self {
        Self {
            speedup: if speedup.is_finite() {
                speedup.max(0.0)
            } else {
                0.0
            },
            wall_start,
            data_start,
            never_ahead_of_data: false,
        }
    }

    /// Never releases data before its own time: history is caught up at the speed-up, then
    /// data flows in real time (synthetic mode never emits events from the future).
    pub fn never_ahead_of_data(mut self) -> Self {
        self.never_ahead_of_data = true;
        self
    }

    /// When to release data of time `data_time`.
    pub fn release_at(&self, data_time: DateTime<Utc>) -> DateTime<Utc> {
        let paced = if self.speedup == 0.0 {
            self.wall_start
        } else {
            let offset = (data_time - self.data_start).num_milliseconds().max(0) as f64;
            self.wall_start + TimeDelta::milliseconds((offset / self.speedup) as i64)
        };
        if self.never_ahead_of_data {
            paced.max(data_time)
        } else {
            paced
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn ticks_fall_on_wall_clock_boundaries() {
        let five = Schedule::new(Duration::from_secs(300)).unwrap();
        assert_eq!(
            five.next_after(ts("2025-07-25T14:52:17Z")),
            ts("2025-07-25T14:55:00Z")
        );
        // On a boundary, the next one is a full interval away: a tick is never polled twice.
        assert_eq!(
            five.next_after(ts("2025-07-25T14:55:00Z")),
            ts("2025-07-25T15:00:00Z")
        );
        assert_eq!(
            five.at_or_before(ts("2025-07-25T14:59:59.999Z")),
            ts("2025-07-25T14:55:00Z")
        );
        let hour = Schedule::new(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            hour.next_after(ts("2025-07-25T23:10:00Z")),
            ts("2025-07-26T00:00:00Z")
        );
    }

    #[test]
    fn overrun_boundaries_are_counted_as_skipped() {
        let five = Schedule::new(Duration::from_secs(300)).unwrap();
        let t0 = ts("2025-07-25T14:55:00Z");
        assert_eq!(five.skipped_between(t0, ts("2025-07-25T15:00:00Z")), 0);
        assert_eq!(five.skipped_between(t0, ts("2025-07-25T15:10:00Z")), 2);
    }

    #[test]
    fn a_zero_interval_is_refused() {
        assert!(Schedule::new(Duration::ZERO).is_err());
        assert!(Schedule::new(Duration::from_micros(999)).is_err());
    }

    #[test]
    fn data_is_released_at_the_speed_up() {
        let wall = ts("2025-07-25T12:00:00Z");
        let data = ts("2024-01-01T00:00:00Z");
        let pacer = Pacer::new(60.0, wall, data);
        assert_eq!(pacer.release_at(data), wall);
        assert_eq!(
            pacer.release_at(ts("2024-01-01T01:00:00Z")),
            ts("2025-07-25T12:01:00Z")
        );
        // Data going backwards is released at once, not before the start.
        assert_eq!(pacer.release_at(ts("2023-12-31T00:00:00Z")), wall);
        let instant = Pacer::new(0.0, wall, data);
        assert_eq!(instant.release_at(ts("2024-06-01T00:00:00Z")), wall);
    }

    #[test]
    fn history_catches_up_then_follows_real_time() {
        let wall = ts("2025-07-25T12:00:00Z");
        let pacer = Pacer::new(100.0, wall, ts("2025-07-25T11:00:00Z")).never_ahead_of_data();
        // One hour of history takes 36 s…
        assert_eq!(
            pacer.release_at(ts("2025-07-25T12:00:00Z")),
            ts("2025-07-25T12:00:36Z")
        );
        // …then data is released at its own time.
        assert_eq!(
            pacer.release_at(ts("2025-07-25T12:05:00Z")),
            ts("2025-07-25T12:05:00Z")
        );
    }
}
