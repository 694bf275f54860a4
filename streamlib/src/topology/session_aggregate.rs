//! Session window aggregation, as Kafka Streams' `KStreamSessionWindowAggregate`: a record
//! within the inactivity gap of existing sessions of its key merges them into one.
//!
//! Each update carries its session's end as timestamp. A merge first deletes every session it
//! absorbs (a `None` update at that session's end), so that a table of the updates holds
//! exactly the live sessions.

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext, PunctuationType, PunctuatorId};
use crate::record::Record;
use crate::window::{EmitStrategy, SessionWindows, Window, Windowed};

use super::change::Change;
use super::graph::Data;
use super::windowed::AggregateParts;

pub(crate) struct SessionAggregate<K, V, A> {
    windows: SessionWindows,
    parts: AggregateParts<K, V, A>,
}

type Ctx<'a, K, A> = ProcessorContext<'a, Windowed<K>, Change<A>>;

impl<K: Data, V: Data, A: Data> SessionAggregate<K, V, A> {
    pub(crate) fn new(windows: SessionWindows, parts: AggregateParts<K, V, A>) -> Self {
        Self { windows, parts }
    }

    /// Sessions ending before this are closed at stream time `now`.
    fn closed_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.windows.gap_ms() + self.windows.grace_ms())
    }

    /// Forwards `value` (`None`: a delete) as the update of `key`'s session `[start, end]`.
    fn forward(
        key: K,
        (start, end): (i64, i64),
        value: Option<A>,
        ctx: &mut Ctx<'_, K, A>,
    ) -> Result<(), ProcessError> {
        let windowed = Windowed {
            key,
            window: Window::new(start, end),
        };
        let change = Change {
            new: value,
            old: None,
        };
        ctx.forward(Record::new(windowed, change, end))
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
            Self::forward(self.parts.key(&key)?, (start, end), Some(value), ctx)?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data, A: Data> Processor<K, V, Windowed<K>, Change<A>>
    for SessionAggregate<K, V, A>
{
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
        let gap = self.windows.gap_ms();
        let closed_before = self.closed_before(ctx.stream_time());
        let key_bytes = self.parts.key_bytes(&record.key)?;
        // A session ending at `closed_before` itself is kept until it is closed (and emitted,
        // for emit-final), but, as in Kafka Streams, whose store has no longer returned it
        // since stream time reached that point, nothing merges into it any more.
        let earliest_end = t.saturating_sub(gap).max(closed_before.saturating_add(1));
        let found = ctx.session_store(&self.parts.store)?.find_sessions(
            &key_bytes,
            earliest_end,
            t.saturating_add(gap),
        )?;
        let (start, end) = found
            .iter()
            .fold((t, t), |(s, e), (fs, fe, _)| (s.min(*fs), e.max(*fe)));
        // Late only when the merged session has closed: a record older than the close time
        // still counts when it joins a session that has not.
        if end < closed_before {
            return self.parts.late.drop(record, ctx);
        }
        // A record repeating a single-instant session replaces it in place; any other merge
        // deletes each session it absorbs.
        let merges = (start, end) != (t, t);
        let mut merged = Vec::with_capacity(found.len());
        for (s, e, bytes) in found {
            merged.push(self.parts.decode(&bytes)?);
            if merges {
                ctx.session_store(&self.parts.store)?
                    .remove(&key_bytes, s, e)?;
                if self.parts.emit == EmitStrategy::OnUpdate {
                    Self::forward(record.key.clone(), (s, e), None, ctx)?;
                }
            }
        }
        let previous = self.parts.merge_all(merged);
        let key = record.key.clone();
        let value = (self.parts.updater)(&record.key, record.value, previous);
        let bytes = self.parts.encode(&value)?;
        ctx.session_store(&self.parts.store)?
            .put(&key_bytes, start, end, &bytes)?;
        if self.parts.emit == EmitStrategy::OnUpdate {
            Self::forward(key, (start, end), Some(value), ctx)?;
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
