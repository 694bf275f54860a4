//! Tumbling and hopping window aggregation, per pane.
//!
//! Aggregates are kept per *pane* (`gcd(size, advance)`), so a record costs one store write
//! however many windows contain it; a window's value is the merge of its panes, computed when
//! it is emitted, and its timestamp the largest of its panes' (each pane keeps the largest
//! timestamp of its records next to its aggregate). Panes are removed once the last window containing them has closed.

use std::collections::BTreeMap;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext, PunctuationType, PunctuatorId};
use crate::record::Record;
use crate::state::encoding::{split_timestamped, timestamped};
use crate::window::{floor_to, EmitStrategy, TimeWindows, Windowed};

use super::graph::Data;
use super::windowed::AggregateParts;

/// Where the processor remembers, inside its own store, up to which window start it closed,
/// so the mark commits and restores with the panes.
const MARKER_KEY: &[u8] = b"";
const MARKER_START: i64 = i64::MIN;

pub(crate) struct TimeWindowAggregate<K, V, A> {
    windows: TimeWindows,
    parts: AggregateParts<K, V, A>,
    /// Start of the latest window already closed.
    closed_until: Option<i64>,
}

type Ctx<'a, K, A> = ProcessorContext<'a, Windowed<K>, A>;

impl<K: Data, V: Data, A: Data> TimeWindowAggregate<K, V, A> {
    pub(crate) fn new(windows: TimeWindows, parts: AggregateParts<K, V, A>) -> Self {
        Self {
            windows,
            parts,
            closed_until: None,
        }
    }

    /// A pane's largest record timestamp and aggregate (panes are stored
    /// `[timestamp][aggregate]`).
    fn decode_pane(&self, bytes: &[u8]) -> Result<(i64, A), ProcessError> {
        let (latest, value) = split_timestamped(&self.parts.store, bytes)?;
        Ok((latest, self.parts.decode(value)?))
    }

    /// Latest window start that is closed at stream time `now`.
    fn closable_until(&self, now: i64) -> i64 {
        let w = &self.windows;
        floor_to(
            now.saturating_sub(w.size_ms() + w.grace_ms()),
            w.advance_ms(),
        )
    }

    fn emit_updates(
        &self,
        key: &K,
        key_bytes: &[u8],
        starts: &[i64],
        timestamp: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            return Ok(());
        };
        let size = self.windows.size_ms();
        let panes =
            ctx.window_store(&self.parts.store)?
                .fetch(key_bytes, first, last + size - 1)?;
        let panes: Vec<(i64, i64, A)> = panes
            .into_iter()
            .map(|(start, bytes)| {
                let (latest, value) = self.decode_pane(&bytes)?;
                Ok((start, latest, value))
            })
            .collect::<Result<_, ProcessError>>()?;
        for &start in starts {
            let in_window: Vec<&(i64, i64, A)> = panes
                .iter()
                .filter(|(p, _, _)| *p >= start && *p < start + size)
                .collect();
            // A window's update carries the largest timestamp of its records (Kafka Streams').
            let latest = in_window
                .iter()
                .map(|(_, t, _)| *t)
                .max()
                .unwrap_or(timestamp);
            if let Some(value) = self
                .parts
                .merge_all(in_window.into_iter().map(|(_, _, a)| a.clone()))
            {
                let windowed = Windowed {
                    key: key.clone(),
                    window: self.windows.window_at(start),
                };
                ctx.forward(Record::new(windowed, value, latest))?;
            }
        }
        Ok(())
    }

    /// Emits (for emit-final) and expires every window closed by the current stream time.
    fn close_windows(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        if now == i64::MIN {
            return Ok(());
        }
        let until = self.closable_until(now);
        if self.closed_until.is_some_and(|c| c >= until) {
            return Ok(());
        }
        if self.parts.emit == EmitStrategy::OnWindowClose {
            self.emit_final(until, ctx)?;
        }
        let store = ctx.window_store(&self.parts.store)?;
        for (pane, key) in store.windows_starting_before(until + self.windows.advance_ms())? {
            if pane != MARKER_START {
                store.remove(&key, pane)?;
            }
        }
        store.put(MARKER_KEY, MARKER_START, &until.to_be_bytes())?;
        self.closed_until = Some(until);
        Ok(())
    }

    /// Forwards the final value of every window with a start in `(closed_until, until]`.
    fn emit_final(&self, until: i64, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let store = ctx.window_store(&self.parts.store)?;
        let panes = store.windows_starting_before(until + self.windows.size_ms())?;
        let mut finals: BTreeMap<(i64, Vec<u8>), Vec<A>> = BTreeMap::new();
        for (pane, key) in panes.into_iter().filter(|(p, _)| *p != MARKER_START) {
            let Some(bytes) = store.get(&key, pane)? else {
                continue;
            };
            let (_, value) = self.decode_pane(&bytes)?;
            let closing = self
                .windows
                .window_starts_for(pane)
                .filter(|s| *s <= until && self.closed_until.is_none_or(|c| *s > c));
            for start in closing {
                finals
                    .entry((start, key.clone()))
                    .or_default()
                    .push(value.clone());
            }
        }
        for ((start, key_bytes), panes) in finals {
            let Some(value) = self.parts.merge_all(panes) else {
                continue;
            };
            let window = self.windows.window_at(start);
            let key = self.parts.key(&key_bytes)?;
            ctx.forward(Record::new(Windowed { key, window }, value, window.end - 1))?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Processor<K, V, Windowed<K>, A> for TimeWindowAggregate<K, V, A> {
    fn init(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let marker = ctx
            .window_store(&self.parts.store)?
            .get(MARKER_KEY, MARKER_START)?;
        self.closed_until = marker
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
        let closed = self
            .closable_until(ctx.stream_time())
            .max(self.closed_until.unwrap_or(i64::MIN));
        let open: Vec<i64> = self
            .windows
            .window_starts_for(t)
            .filter(|s| *s > closed)
            .collect();
        if open.is_empty() {
            return self.parts.late.drop(record, ctx);
        }
        let key_bytes = self.parts.key_bytes(&record.key)?;
        let pane = self.windows.pane_start(t);
        let (latest, old) = match ctx.window_store(&self.parts.store)?.get(&key_bytes, pane)? {
            Some(bytes) => {
                let (latest, old) = self.decode_pane(&bytes)?;
                (latest.max(t), Some(old))
            }
            None => (t, None),
        };
        let key = record.key.clone();
        let new = (self.parts.updater)(&record.key, record.value, old);
        let bytes = timestamped(latest, &self.parts.encode(&new)?);
        ctx.window_store(&self.parts.store)?
            .put(&key_bytes, pane, &bytes)?;
        if self.parts.emit == EmitStrategy::OnUpdate {
            self.emit_updates(&key, &key_bytes, &open, t, ctx)?;
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
