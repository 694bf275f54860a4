//! Sliding windows (Kafka Streams KIP-450): one window per distinct set of records that lie
//! within `time_difference` of each other.

use std::time::Duration;

use super::millis;

/// Sliding windows of length `time_difference` (both ends inclusive).
///
/// For every record at `t` there is a *left* window `[t − d, t]` (records before `d` share
/// `[0, d]`, as in Kafka Streams), and, when some record lies in `(t, t + d + 1]`, a *right*
/// window `[t + 1, t + d + 1]` (the moment `t` leaves). A window exists only when it holds
/// records. Reported as the half-open
/// `Window { start, end: inclusive_end + 1 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindows {
    difference: i64,
    grace: i64,
}

impl SlidingWindows {
    /// Sliding windows of `time_difference` with a grace period.
    ///
    /// # Panics
    /// Panics when `time_difference` is shorter than one millisecond.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        let difference = millis(time_difference);
        assert!(difference > 0, "time difference must be at least 1 ms");
        Self {
            difference,
            grace: millis(grace),
        }
    }

    /// The time difference in ms.
    pub fn difference_ms(&self) -> i64 {
        self.difference
    }

    /// The grace period in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// A window with inclusive end `end` is closed once stream time exceeds `end + grace`.
    pub fn is_closed(&self, inclusive_end: i64, stream_time: i64) -> bool {
        inclusive_end.saturating_add(self.grace) < stream_time
    }
}
