//! Session window aggregation: a record within the inactivity gap of existing sessions of its
//! key merges them into one.

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext, PunctuationType, PunctuatorId};
use crate::record::Record;
use crate::window::{EmitStrategy, SessionWindows, Window, Windowed};

use super::graph::Data;
use super::windowed::AggregateParts;

pub(crate) struct SessionAggregate<K, V, A> {
    windows: SessionWindows,
    parts: AggregateParts<K, V, A>,
}

type Ctx<'a, K, A> = ProcessorContext<'a, Windowed<K>, A>;

impl<K: Data, V: Data, A: Data> SessionAggregate<K, V, A> {
    pub(crate) fn new(windows: SessionWindows, parts: AggregateParts<K, V, A>) -> Self {
        Self { windows, parts }
    }

    /// Sessions ending before this are closed at stream time `now`.
    fn closed_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.windows.gap_ms() + self.windows.grace_ms())
    }

    /// Emits (for emit-final) and removes every session closed by the current stream time;
    /// a session is removed right after its final emission, so each is emitted once.
    fn close_sessions(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        if now == i64::MIN {
            return Ok(());
        }
        let before = self.closed_before(now);
        let store = ctx.session_store(&self.parts.store)?;
        let closed = store.sessions_ending_before(before)?;
        let mut finals = Vec::new();
        for (key, start, end) in closed {
            if self.parts.emit == EmitStrategy::OnWindowClose {
                if let Some(bytes) = store.get(&key, start, end)? {
                    finals.push((key.clone(), start, end, self.parts.decode(&bytes)?));
                }
            }
            store.remove(&key, start, end)?;
        }
        for (key, start, end, value) in finals {
            let windowed = Windowed {
                key: self.parts.key(&key)?,
                window: Window::new(start, end),
            };
            ctx.forward(Record::new(windowed, value, end))?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Processor<K, V, Windowed<K>, A> for SessionAggregate<K, V, A> {
    fn init(&mut self, ctx: &mut Ctx<'_, K, A>) -> Result<(), ProcessError> {
        ctx.schedule(1, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let t = record.timestamp;
        if t < self.closed_before(ctx.stream_time()) {
            return self.parts.late.drop(record, ctx);
        }
        let gap = self.windows.gap_ms();
        let key_bytes = self.parts.key_bytes(&record.key)?;
        let store = ctx.session_store(&self.parts.store)?;
        let overlapping =
            store.find_sessions(&key_bytes, t.saturating_sub(gap), t.saturating_add(gap))?;
        let (mut start, mut end) = (t, t);
        let mut merged = Vec::with_capacity(overlapping.len());
        for (s, e, bytes) in overlapping {
            start = start.min(s);
            end = end.max(e);
            merged.push(self.parts.decode(&bytes)?);
            store.remove(&key_bytes, s, e)?;
        }
        let previous = self.parts.merge_all(merged);
        let key = record.key.clone();
        let value = (self.parts.updater)(&record.key, record.value, previous);
        let bytes = self.parts.encode(&value)?;
        ctx.session_store(&self.parts.store)?
            .put(&key_bytes, start, end, &bytes)?;
        if self.parts.emit == EmitStrategy::OnUpdate {
            let windowed = Windowed {
                key,
                window: Window::new(start, end),
            };
            ctx.forward(Record::new(windowed, value, t))?;
        }
        Ok(())
    }

    fn punctuate(
        &mut self,
        _: PunctuatorId,
        _: i64,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        self.close_sessions(ctx)
    }
}
