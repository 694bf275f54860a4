//! Sliding window aggregation (KIP-450), step for step as Kafka Streams'
//! `KStreamSlidingWindowAggregate`.
//!
//! With a time difference `d`, the store holds the windows that exist: the left window
//! `[t − d, t]` of each record and the right window `[t + 1, t + 1 + d]` of a record once a
//! later record falls in it, each with its aggregate and the largest timestamp of its records
//! (the [`timestamped`] layout, keyed by window start). A record is added to the windows that
//! contain it and creates the windows it opens, copying the aggregate of a neighbouring window
//! where Kafka Streams does. So the windows, their values, timestamps and the order of their
//! updates are Kafka Streams' own, including where its bookkeeping goes astray: a window not
//! created because it had already closed is missing later when a neighbour copies from it,
//! and a record exactly `d + 1` after the previous one emits its left window twice (once as
//! the previous record's right window). Records before `d` share the window `[0, d]` (no window
//! starts before 0); each window is reported as `[start, start + d + 1)`.

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext, PunctuationType, PunctuatorId};
use crate::record::Record;
use crate::state::encoding::{split_timestamped, timestamped};
use crate::window::{EmitStrategy, SlidingWindows, Window, Windowed};

use super::graph::Data;
use super::windowed::AggregateParts;

/// Inside the store (emit-final only), the window start below which every window has been
/// emitted, so the mark commits and restores with the windows.
const MARKER_KEY: &[u8] = b"";
const MARKER_START: i64 = i64::MIN;

/// A stored window: its start, the largest timestamp of its records, its aggregate.
#[derive(Clone)]
struct Stored<A> {
    start: i64,
    timestamp: i64,
    value: A,
}

pub(crate) struct SlidingAggregate<K, V, A> {
    windows: SlidingWindows,
    parts: AggregateParts<K, V, A>,
    /// The largest window start ever stored. Kafka Streams' window store no longer returns a
    /// window starting `2d + grace` (its retention) or more before it; neither does this one.
    latest_start: Option<i64>,
    /// Windows starting below this have been removed, out of that retention.
    removed_below: Option<i64>,
    /// Emit-final: windows starting below this have been emitted.
    emitted_below: Option<i64>,
}

type Ctx<'a, K, A> = ProcessorContext<'a, Windowed<K>, A>;

impl<K: Data, V: Data, A: Data> SlidingAggregate<K, V, A> {
    pub(crate) fn new(windows: SlidingWindows, parts: AggregateParts<K, V, A>) -> Self {
        Self {
            windows,
            parts,
            latest_start: None,
            removed_below: None,
            emitted_below: None,
        }
    }

    /// Windows ending before this are closed at stream time `now`. After a restart the mark of
    /// the windows already emitted keeps them closed until stream time catches up.
    fn close_time(&self, now: i64) -> i64 {
        let emitted = self
            .emitted_below
            .map_or(i64::MIN, |s| s.saturating_add(self.windows.difference_ms()));
        now.saturating_sub(self.windows.grace_ms()).max(emitted)
    }

    /// The earliest window start the store still returns.
    fn retained_from(&self) -> i64 {
        let retention = 2 * self.windows.difference_ms() + self.windows.grace_ms();
        self.latest_start
            .map_or(i64::MIN, |s| s.saturating_sub(retention).saturating_add(1))
    }

    fn decode(&self, start: i64, bytes: &[u8]) -> Result<Stored<A>, ProcessError> {
        let (timestamp, value) = split_timestamped(&self.parts.store, bytes)?;
        Ok(Stored {
            start,
            timestamp,
            value: self.parts.decode(value)?,
        })
    }

    /// `key`'s windows starting in `[from, to]` that the store still returns, ascending.
    fn fetch(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<Vec<Stored<A>>, ProcessError> {
        ctx.window_store(&self.parts.store)?
            .fetch(key, from.max(self.retained_from()), to)?
            .into_iter()
            .map(|(start, bytes)| self.decode(start, &bytes))
            .collect()
    }

    /// Stores `window` and forwards it (emit-on-update).
    fn put(
        &mut self,
        key: &K,
        key_bytes: &[u8],
        window: Stored<A>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let bytes = timestamped(window.timestamp, &self.parts.encode(&window.value)?);
        ctx.window_store(&self.parts.store)?
            .put(key_bytes, window.start, &bytes)?;
        self.latest_start = Some(
            self.latest_start
                .map_or(window.start, |s| s.max(window.start)),
        );
        if self.parts.emit == EmitStrategy::OnUpdate {
            self.forward(key.clone(), window, ctx)?;
        }
        Ok(())
    }

    fn forward(
        &self,
        key: K,
        window: Stored<A>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let d = self.windows.difference_ms();
        let windowed = Windowed {
            key,
            window: Window::new(window.start, window.start + d + 1),
        };
        ctx.forward(Record::new(windowed, window.value, window.timestamp))
    }

    /// Adds `record` to the window starting at `start`, whose aggregate so far is `current`
    /// (`None`: a new, empty window), unless that window has closed: then Kafka Streams skips
    /// it, and it is neither created nor updated.
    fn add(
        &mut self,
        record: &Record<K, V>,
        key_bytes: &[u8],
        start: i64,
        current: Option<Stored<A>>,
        close: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        if start + self.windows.difference_ms() < close {
            return Ok(());
        }
        let t = record.timestamp;
        let (timestamp, old) = match current {
            Some(w) => (w.timestamp.max(t), Some(w.value)),
            None => (t, None),
        };
        let value = (self.parts.updater)(&record.key, record.value.clone(), old);
        let window = Stored {
            start,
            timestamp,
            value,
        };
        self.put(&record.key, key_bytes, window, ctx)
    }

    /// A record at `t >= d` (Kafka Streams' `processReverse` and `createWindows`).
    fn process_record(
        &mut self,
        record: &Record<K, V>,
        key_bytes: &[u8],
        close: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let (t, d) = (record.timestamp, self.windows.difference_ms());
        let existing = self.fetch(key_bytes, t.saturating_sub(2 * d).max(0), t + 1, ctx)?;
        let mut seen = Vec::with_capacity(existing.len());
        // The aggregate to copy into t's left window (the latest window ending before t) and
        // into its right window (the latest window containing t, before t is added).
        let (mut left_source, mut right_source) = (None, None);
        let (mut left_exists, mut right_exists) = (false, false);
        // The latest record before t, when its right window may be missing.
        let mut previous = None;
        for window in existing.into_iter().rev() {
            seen.push(window.start);
            let end = window.start + d;
            if window.start == t + 1 {
                right_exists = true;
            } else if end > t {
                if right_source.is_none() {
                    right_source = Some(window.clone());
                }
                self.add(record, key_bytes, window.start, Some(window), close, ctx)?;
            } else if end == t {
                left_exists = true;
                let latest = window.timestamp;
                self.add(record, key_bytes, window.start, Some(window), close, ctx)?;
                if latest >= t {
                    // A record at t was here before: every window t opens exists.
                    return Ok(());
                }
                previous = Some(latest);
            } else {
                previous = Some(window.timestamp);
                left_source = Some(window);
                break;
            }
        }
        if let Some(p) = previous {
            let start = p + 1;
            if !seen.contains(&start) && start + d >= t {
                self.add(record, key_bytes, start, None, close, ctx)?;
            }
        }
        if !left_exists {
            // The previous record's window holds t's left window's other records when the
            // previous record is within d of t.
            let copy = left_source
                .filter(|_| previous.is_some_and(|p| t - d <= p))
                .map(|w| Stored { timestamp: t, ..w });
            self.add(record, key_bytes, t - d, copy, close, ctx)?;
        }
        if !right_exists {
            self.create_right_window(&record.key, key_bytes, t, right_source, ctx)?;
        }
        Ok(())
    }

    /// A record at `0 <= t < d`: its left window would start before 0, so it goes into the
    /// window `[0, d]` instead (Kafka Streams' `processEarly`).
    fn process_early(
        &mut self,
        record: &Record<K, V>,
        key_bytes: &[u8],
        close: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let t = record.timestamp;
        let existing = self.fetch(key_bytes, 0, t + 1, ctx)?;
        let mut seen = Vec::with_capacity(existing.len());
        let mut combined = None;
        let mut right_source = None;
        let mut right_exists = false;
        let mut previous = None;
        for window in existing {
            seen.push(window.start);
            if window.start == 0 {
                if window.timestamp < t {
                    previous = Some(window.timestamp);
                }
                combined = Some(window);
            } else if window.start <= t {
                right_source = Some(window.clone());
                self.add(record, key_bytes, window.start, Some(window), close, ctx)?;
            } else {
                right_exists = true;
            }
        }
        // Without a right window containing t, the records of [0, d] after t (if any) are
        // exactly those of t's right window.
        if right_source.is_none() {
            right_source = combined.clone().filter(|w| w.timestamp > t);
        }
        if !right_exists {
            self.create_right_window(&record.key, key_bytes, t, right_source, ctx)?;
        }
        if let Some(p) = previous {
            if !seen.contains(&(p + 1)) {
                self.add(record, key_bytes, p + 1, None, close, ctx)?;
            }
        }
        self.add(record, key_bytes, 0, combined, close, ctx)
    }

    /// Creates t's right window as a copy of `source` when it holds records after t.
    fn create_right_window(
        &mut self,
        key: &K,
        key_bytes: &[u8],
        t: i64,
        source: Option<Stored<A>>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        match source {
            Some(w) if w.timestamp > t => {
                self.put(key, key_bytes, Stored { start: t + 1, ..w }, ctx)
            }
            _ => Ok(()),
        }
    }

    /// Emits (for emit-final) the windows closed at the current stream time, in order of
    /// start then key, and removes those out of the store's retention.
    fn close_windows(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        if now == i64::MIN {
            return Ok(());
        }
        if self.parts.emit == EmitStrategy::OnWindowClose {
            let below = self.close_time(now) - self.windows.difference_ms();
            let from = self.emitted_below.unwrap_or(MARKER_START + 1);
            if below > from {
                let store = ctx.window_store(&self.parts.store)?;
                let mut finals = Vec::new();
                for (start, key) in store.windows_starting_between(from, below)? {
                    if let Some(bytes) = store.get(&key, start)? {
                        finals.push((key, bytes, start));
                    }
                }
                store.put(MARKER_KEY, MARKER_START, &below.to_be_bytes())?;
                self.emitted_below = Some(below);
                for (key, bytes, start) in finals {
                    let window = self.decode(start, &bytes)?;
                    self.forward(self.parts.key(&key)?, window, ctx)?;
                }
            }
        }
        // Closed windows out of the retention: nothing returns them any more.
        let below = self.retained_from();
        let from = self.removed_below.unwrap_or(MARKER_START + 1);
        if below > from {
            let store = ctx.window_store(&self.parts.store)?;
            for (start, key) in store.windows_starting_between(from, below)? {
                store.remove(&key, start)?;
            }
            self.removed_below = Some(below);
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Processor<K, V, Windowed<K>, A> for SlidingAggregate<K, V, A> {
    fn init(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let store = ctx.window_store(&self.parts.store)?;
        self.emitted_below = store
            .get(MARKER_KEY, MARKER_START)?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(i64::from_be_bytes);
        self.latest_start = store
            .windows_starting_between(MARKER_START + 1, i64::MAX)?
            .last()
            .map(|(start, _)| *start);
        ctx.schedule(1, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let t = record.timestamp;
        // Kafka Streams skips null values here, and never sees a negative timestamp.
        if t < 0 || self.parts.late.value_serde.is_null(&record.value) {
            ctx.record_drop();
            return Ok(());
        }
        let d = self.windows.difference_ms();
        let close = self.close_time(ctx.stream_time());
        // Every window containing t ends at or before t + d.
        if t.saturating_add(d) < close {
            return self.parts.late.drop(record, ctx);
        }
        let key_bytes = self.parts.key_bytes(&record.key)?;
        if t < d {
            self.process_early(&record, &key_bytes, close, ctx)
        } else {
            self.process_record(&record, &key_bytes, close, ctx)
        }
    }

    fn punctuate(
        &mut self,
        _: PunctuatorId,
        _: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        self.close_windows(ctx)
    }
}
