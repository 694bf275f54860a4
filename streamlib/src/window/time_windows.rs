//! Tumbling and hopping windows, and the panes that make hopping windows cheap.

use std::time::Duration;

use super::{floor_to, millis, Window};

/// Fixed-size windows aligned to the epoch: tumbling when `advance == size`, hopping otherwise.
///
/// Hopping aggregations keep one aggregate per *pane* (`gcd(size, advance)` long) and combine
/// the panes of a window when they emit, so a record costs one store write however many windows
/// contain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    size: i64,
    advance: i64,
    grace: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`, with no grace period.
    ///
    /// # Panics
    /// Panics when `size` is shorter than one millisecond.
    pub fn of(size: Duration) -> Self {
        let size = millis(size);
        assert!(size > 0, "window size must be at least 1 ms");
        Self {
            size,
            advance: size,
            grace: 0,
        }
    }

    /// Makes the windows hop: a new window starts every `advance`.
    ///
    /// # Panics
    /// Panics unless `0 < advance ≤ size`.
    pub fn advance_by(mut self, advance: Duration) -> Self {
        let advance = millis(advance);
        assert!(
            advance > 0 && advance <= self.size,
            "advance must be in (0, size]"
        );
        self.advance = advance;
        self
    }

    /// Accepts records up to `grace` after a window's end before the window closes.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = millis(grace);
        self
    }

    /// Window size in ms.
    pub fn size_ms(&self) -> i64 {
        self.size
    }

    /// Advance in ms.
    pub fn advance_ms(&self) -> i64 {
        self.advance
    }

    /// Grace period in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// Pane length: the greatest common divisor of size and advance.
    pub fn pane_ms(&self) -> i64 {
        gcd(self.size, self.advance)
    }

    /// Starts of the windows containing `t`, ascending.
    pub fn window_starts_for(&self, t: i64) -> impl Iterator<Item = i64> {
        let last = floor_to(t, self.advance);
        let first = last - (self.size - 1) / self.advance * self.advance;
        let (size, advance) = (self.size, self.advance);
        (0..)
            .map(move |i| first + i * advance)
            .take_while(move |s| *s <= last)
            .filter(move |s| t < s + size)
    }

    /// The window starting at `start`.
    pub fn window_at(&self, start: i64) -> Window {
        Window::new(start, start + self.size)
    }

    /// Stream time at which the window starting at `start` closes.
    pub fn close_time(&self, start: i64) -> i64 {
        start + self.size + self.grace
    }

    /// Start of the pane containing `t`.
    pub fn pane_start(&self, t: i64) -> i64 {
        floor_to(t, self.pane_ms())
    }

    /// Stream time after which the pane starting at `pane_start` belongs to no open window.
    pub fn pane_expiry(&self, pane_start: i64) -> i64 {
        self.close_time(floor_to(pane_start, self.advance))
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(size: u64, advance: u64) -> TimeWindows {
        TimeWindows::of(Duration::from_millis(size)).advance_by(Duration::from_millis(advance))
    }

    #[test]
    fn tumbling_assigns_one_window() {
        let w = TimeWindows::of(Duration::from_millis(10));
        assert_eq!(w.window_starts_for(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(w.window_starts_for(9).collect::<Vec<_>>(), vec![0]);
        assert_eq!(w.window_starts_for(10).collect::<Vec<_>>(), vec![10]);
        assert_eq!(w.window_starts_for(-1).collect::<Vec<_>>(), vec![-10]);
    }

    #[test]
    fn hopping_assigns_size_over_advance_windows() {
        let w = hop(10, 5);
        assert_eq!(w.window_starts_for(12).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(w.window_starts_for(5).collect::<Vec<_>>(), vec![0, 5]);
        let w = hop(10, 4);
        assert_eq!(w.window_starts_for(9).collect::<Vec<_>>(), vec![0, 4, 8]);
        assert_eq!(w.window_starts_for(10).collect::<Vec<_>>(), vec![4, 8]);
        assert_eq!(w.pane_ms(), 2);
    }

    #[test]
    fn close_and_pane_expiry() {
        let w = hop(10, 5).grace(Duration::from_millis(3));
        assert_eq!(w.close_time(5), 18);
        // Pane [7, 12) (pane = 5 → pane 5) last belongs to window [5, 15).
        assert_eq!(w.pane_expiry(w.pane_start(7)), 18);
    }
}
