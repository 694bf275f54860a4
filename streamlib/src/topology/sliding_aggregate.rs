//! Sliding window aggregation (KIP-450 semantics), over per-timestamp panes.
//!
//! The store keeps one aggregate per key and distinct record timestamp. The windows a record
//! touches are the left windows `[tᵢ − d, tᵢ]` of records at `tᵢ ∈ [t, t + d]`, the right
//! windows `[tᵢ + 1, tᵢ + 1 + d]` of records at `tᵢ ∈ [t − d − 1, t)`, and — when `t` is new —
//! its own right window if it holds records. Each window's value is the merge of its panes.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext, PunctuationType, PunctuatorId};
use crate::record::Record;
use crate::window::{EmitStrategy, SlidingWindows, Window, Windowed};

use super::graph::Data;
use super::windowed::AggregateParts;

/// Inside the store, the inclusive end up to which windows were closed.
const MARKER_KEY: &[u8] = b"";
const MARKER_TS: i64 = i64::MIN;

pub(crate) struct SlidingAggregate<K, V, A> {
    windows: SlidingWindows,
    parts: AggregateParts<K, V, A>,
    /// Windows with an inclusive end below this are closed (and emitted, for emit-final).
    closed_below: Option<i64>,
}

type Ctx<'a, K, A> = ProcessorContext<'a, Windowed<K>, A>;

/// The windows (inclusive bounds) that exist among the record times `times` (sorted) and
/// end in `[from_end, to_end)`.
fn windows_ending_in(times: &[i64], d: i64, from_end: i64, to_end: i64) -> BTreeSet<(i64, i64)> {
    let mut out = BTreeSet::new();
    for (i, &t) in times.iter().enumerate() {
        if (from_end..to_end).contains(&t) {
            out.insert((t - d, t));
        }
        let right_end = t + 1 + d;
        let next_holds_records = times.get(i + 1).is_some_and(|&n| n <= right_end);
        if next_holds_records && (from_end..to_end).contains(&right_end) {
            out.insert((t + 1, right_end));
        }
    }
    out
}

impl<K: Data, V: Data, A: Data> SlidingAggregate<K, V, A> {
    pub(crate) fn new(windows: SlidingWindows, parts: AggregateParts<K, V, A>) -> Self {
        Self {
            windows,
            parts,
            closed_below: None,
        }
    }

    fn close_bound(&self, now: i64) -> i64 {
        now.saturating_sub(self.windows.grace_ms())
    }

    fn panes(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<Vec<(i64, A)>, ProcessError> {
        ctx.window_store(&self.parts.store)?
            .fetch(key, from, to)?
            .into_iter()
            .map(|(ts, bytes)| Ok((ts, self.parts.decode(&bytes)?)))
            .collect()
    }

    fn value_of(&self, panes: &[(i64, A)], start: i64, end: i64) -> Option<A> {
        let inside = panes.iter().filter(|(ts, _)| (start..=end).contains(ts));
        self.parts.merge_all(inside.map(|(_, a)| a.clone()))
    }

    fn forward(
        &self,
        key: &K,
        (start, end): (i64, i64),
        value: A,
        timestamp: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let windowed = Windowed {
            key: key.clone(),
            window: Window::new(start, end + 1),
        };
        ctx.forward(Record::new(windowed, value, timestamp))
    }

    /// Emits (for emit-final) windows that closed and drops panes no open window needs.
    fn close_windows(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        if now == i64::MIN {
            return Ok(());
        }
        let bound = self.close_bound(now);
        if self.closed_below.is_some_and(|c| c >= bound) {
            return Ok(());
        }
        let d = self.windows.difference_ms();
        let store = ctx.window_store(&self.parts.store)?;
        let mut by_key: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
        for (ts, key) in store.windows_starting_before(bound)? {
            if ts != MARKER_TS {
                by_key.entry(key).or_default().push(ts);
            }
        }
        if self.parts.emit == EmitStrategy::OnWindowClose {
            let from = self.closed_below.unwrap_or(i64::MIN);
            for (key_bytes, times) in &by_key {
                let windows = windows_ending_in(times, d, from, bound);
                if windows.is_empty() {
                    continue;
                }
                let panes = self.panes(key_bytes, times[0], bound, ctx)?;
                let key = self.parts.key(key_bytes)?;
                for window in windows {
                    if let Some(value) = self.value_of(&panes, window.0, window.1) {
                        self.forward(&key, window, value, window.1, ctx)?;
                    }
                }
            }
        }
        // A pane at ts is in no window ending at or after ts + d + 1 … except as the record
        // whose right window ends there, so keep it until that right window has closed too.
        let store = ctx.window_store(&self.parts.store)?;
        for (key, times) in by_key {
            for ts in times.into_iter().filter(|ts| ts + d + 1 < bound) {
                store.remove(&key, ts)?;
            }
        }
        store.put(MARKER_KEY, MARKER_TS, &bound.to_be_bytes())?;
        self.closed_below = Some(bound);
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Processor<K, V, Windowed<K>, A> for SlidingAggregate<K, V, A> {
    fn init(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let marker = ctx
            .window_store(&self.parts.store)?
            .get(MARKER_KEY, MARKER_TS)?;
        self.closed_below = marker
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(i64::from_be_bytes);
        ctx.schedule(1, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let t = record.timestamp;
        let d = self.windows.difference_ms();
        let closed_below = self
            .close_bound(ctx.stream_time())
            .max(self.closed_below.unwrap_or(i64::MIN));
        // Every window containing t ends at or before t + d.
        if t.saturating_add(d) < closed_below {
            return self.parts.late.drop(record, ctx);
        }
        let key_bytes = self.parts.key_bytes(&record.key)?;
        let old = match ctx.window_store(&self.parts.store)?.get(&key_bytes, t)? {
            Some(bytes) => Some(self.parts.decode(&bytes)?),
            None => None,
        };
        let key = record.key.clone();
        let new = (self.parts.updater)(&record.key, record.value, old);
        let bytes = self.parts.encode(&new)?;
        ctx.window_store(&self.parts.store)?
            .put(&key_bytes, t, &bytes)?;
        if self.parts.emit == EmitStrategy::OnWindowClose {
            return Ok(());
        }
        let panes = self.panes(&key_bytes, t - 2 * d - 1, t + 2 * d + 1, ctx)?;
        let times: Vec<i64> = panes.iter().map(|(ts, _)| *ts).collect();
        // Windows containing t end in [t, t + d]; t's own right window ends at t + d + 1.
        let touched = windows_ending_in(&times, d, t, t + d + 2)
            .into_iter()
            .filter(|&(start, end)| (start <= t && t <= end) || start == t + 1)
            .filter(|&(_, end)| end >= closed_below);
        for window in touched {
            if let Some(value) = self.value_of(&panes, window.0, window.1) {
                self.forward(&key, window, value, t, ctx)?;
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::windows_ending_in;

    #[test]
    fn windows_of_two_records() {
        // Records at 0 and 5, d = 10: {0}, {0,5} and the right window of 0, {5}.
        let w: Vec<_> = windows_ending_in(&[0, 5], 10, i64::MIN, i64::MAX)
            .into_iter()
            .collect();
        assert_eq!(w, vec![(-10, 0), (-5, 5), (1, 11)]);
    }
}
