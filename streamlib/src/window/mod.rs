//! Windows: assignment of timestamps to windows and the close/retention arithmetic.
//!
//! ```
//! use std::time::Duration;
//! use streamlib::window::TimeWindows;
//!
//! // One hour windows that start every five minutes, accepting records up to a minute late.
//! let windows = TimeWindows::of(Duration::from_secs(3600))
//!     .advance_by(Duration::from_secs(300))
//!     .grace(Duration::from_secs(60));
//! let starts: Vec<i64> = windows.window_starts_for(7_200_000).collect();
//! assert_eq!(starts.len(), 12);
//! assert_eq!(windows.close_time(0), 3_660_000);
//! ```

mod session;
mod sliding;
mod time_windows;

pub use session::SessionWindows;
pub use sliding::SlidingWindows;
pub use time_windows::TimeWindows;

/// A half-open time interval `[start, end)` in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }
}

/// A key together with the window its aggregate belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    /// The grouping key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// When a windowed aggregation forwards its results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Forward the new aggregate of every window a record changes (Kafka Streams' default).
    #[default]
    OnUpdate,
    /// Forward each window once, when it closes (stream time ≥ end + grace).
    OnWindowClose,
}

pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Largest multiple of `step` that is ≤ `t` (also for negative `t`).
pub(crate) fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// Serializes `Windowed<K>` as the key's bytes followed by the window's start and end, each 8
/// bytes big-endian.
pub struct WindowedSerde<K> {
    inner: std::sync::Arc<dyn crate::serdes::Serde<K>>,
}

impl<K> WindowedSerde<K> {
    /// Wraps the key's serde.
    pub fn new(key_serde: impl crate::serdes::Serde<K>) -> Self {
        Self {
            inner: std::sync::Arc::new(key_serde),
        }
    }
}

impl<K: 'static> crate::serdes::Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(
        &self,
        topic: &str,
        value: &Windowed<K>,
    ) -> Result<Vec<u8>, crate::serdes::SerdeError> {
        let mut bytes = self.inner.serialize(topic, &value.key)?;
        bytes.extend_from_slice(&value.window.start.to_be_bytes());
        bytes.extend_from_slice(&value.window.end.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: &[u8],
    ) -> Result<Windowed<K>, crate::serdes::SerdeError> {
        let Some(split) = bytes.len().checked_sub(16) else {
            return Err(crate::serdes::SerdeError::Length {
                expected: 16,
                actual: bytes.len(),
            });
        };
        let (key, times) = bytes.split_at(split);
        let (start, end) = times.split_at(8);
        let at = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(Windowed {
            key: self.inner.deserialize(topic, key)?,
            window: Window::new(at(start), at(end)),
        })
    }
}
