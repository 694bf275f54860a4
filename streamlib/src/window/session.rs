//! Session windows: per-key activity periods separated by an inactivity gap.

use std::time::Duration;

use super::millis;

/// Sessions of a key: records closer than `gap` to each other belong to one session; a record
/// that bridges two sessions merges them.
///
/// A session is reported as `Window { start: first record time, end: last record time }` —
/// both inclusive, as in Kafka Streams' `SessionWindow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionWindows {
    gap: i64,
    grace: i64,
}

impl SessionWindows {
    /// Sessions separated by at least `gap` of inactivity, with no grace period.
    ///
    /// # Panics
    /// Panics when `gap` is shorter than one millisecond.
    pub fn with_inactivity_gap(gap: Duration) -> Self {
        let gap = millis(gap);
        assert!(gap > 0, "inactivity gap must be at least 1 ms");
        Self { gap, grace: 0 }
    }

    /// Accepts records up to `grace` late.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = millis(grace);
        self
    }

    /// The inactivity gap in ms.
    pub fn gap_ms(&self) -> i64 {
        self.gap
    }

    /// The grace period in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// Stream time from which a session ending at `end` can no longer grow: any record that
    /// could still extend it would be late.
    pub fn close_time(&self, end: i64) -> i64 {
        end.saturating_add(self.gap)
            .saturating_add(self.grace)
            .saturating_add(1)
    }
}
