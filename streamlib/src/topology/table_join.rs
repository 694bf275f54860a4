//! Table–table joins (inner, left, outer): the result has a row while the join kind keeps the
//! rows of its key, and changes with each update of either side.

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;

use super::change::Change;
use super::graph::Data;
use super::joiner::{Joiner, Side};
use super::rows::Rows;
use super::stateless::stateless;
use super::{KStream, KTable};

impl<K: Data, V: Data> KTable<K, V> {
    /// Inner join: a row for each key present in both tables, `joiner(left, right)`, with the
    /// later of the two rows' timestamps. An update of one side emits only while the other
    /// side has the key (a delete becomes a delete of the result).
    ///
    /// Both tables must be co-partitioned (same key, same partitions); rows are read from the
    /// tables' stores, which are added for tables that have none.
    ///
    /// ```
    /// use streamlib::prelude::*;
    /// use streamlib::serdes::Nullable;
    ///
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table("names", StringSerde, StringSerde, "names");
    /// let ranks = builder.table("ranks", StringSerde, I64Serde, "ranks");
    /// names
    ///     .join(&ranks, |name, rank| format!("{name} #{rank}"))
    ///     .to_stream()
    ///     .to("ranked", StringSerde, Nullable(StringSerde));
    /// ```
    pub fn join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, Joiner::Inner(Arc::new(joiner)))
    }

    /// Left join: a row for each key of this table, `joiner(left, Some(right))` or
    /// `joiner(left, None)`.
    pub fn left_join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, Joiner::Left(Arc::new(joiner)))
    }

    /// Outer join: a row for each key of either table.
    pub fn outer_join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, Joiner::Outer(Arc::new(joiner)))
    }

    fn join_tables<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: Joiner<V, V2, VR>,
    ) -> KTable<K, VR> {
        let (left, left_rows) = self.with_rows();
        let (right, right_rows) = other.with_rows();
        let state = left.changes.state.clone();
        let wrap_left = left.changes.then("KTABLE-JOINTHIS", false, || {
            stateless(|r: Record<K, Change<V>>, ctx| {
                ctx.forward(r.map_value(Side::<Change<V>, Change<V2>>::Left))
            })
        });
        let wrap_right = right.changes.then("KTABLE-JOINOTHER", false, || {
            stateless(|r: Record<K, Change<V2>>, ctx| {
                ctx.forward(r.map_value(Side::<Change<V>, Change<V2>>::Right))
            })
        });
        let node = {
            let mut state = state.borrow_mut();
            let name = state.name("KTABLE-JOIN");
            let stores = vec![left_rows.store.clone(), right_rows.store.clone()];
            state
                .graph
                .add_processor::<K, Side<Change<V>, Change<V2>>, K, Change<VR>, _>(
                    name,
                    &[wrap_left.node, wrap_right.node],
                    stores,
                    move || TableJoin {
                        left: left_rows.clone(),
                        right: right_rows.clone(),
                        joiner: joiner.clone(),
                    },
                )
        };
        KTable {
            changes: KStream::new(state, node, false),
            rows: None,
            key_serde: left.key_serde.clone(),
            value_serde: None,
            old_values: false,
            store_name: None,
        }
    }
}

/// Joins an update of one table with the other table's row of the same key.
struct TableJoin<K, V1, V2, VR> {
    left: Rows<K, V1>,
    right: Rows<K, V2>,
    joiner: Joiner<V1, V2, VR>,
}

impl<K: Data, V1: Data, V2: Data, VR: Data>
    Processor<K, Side<Change<V1>, Change<V2>>, K, Change<VR>> for TableJoin<K, V1, V2, VR>
{
    fn process(
        &mut self,
        record: Record<K, Side<Change<V1>, Change<V2>>>,
        ctx: &mut ProcessorContext<'_, K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        if self.left.keys.is_null(&record.key) {
            ctx.record_drop();
            return Ok(());
        }
        let key = self.left.key_bytes(&record.key)?;
        let (new, other_timestamp) = match &record.value {
            Side::Left(change) => {
                let other = self.right.get(ctx, &key)?;
                if other.is_none()
                    && !self.emits_alone(true, change.new.is_some(), change.old.is_some())
                {
                    return Ok(());
                }
                let new = self
                    .joiner
                    .join(change.new.as_ref(), other.as_ref().map(|r| &r.value));
                (new, other.map(|r| r.timestamp))
            }
            Side::Right(change) => {
                let other = self.left.get(ctx, &key)?;
                if other.is_none()
                    && !self.emits_alone(false, change.new.is_some(), change.old.is_some())
                {
                    return Ok(());
                }
                let new = self
                    .joiner
                    .join(other.as_ref().map(|r| &r.value), change.new.as_ref());
                (new, other.map(|r| r.timestamp))
            }
        };
        let timestamp = other_timestamp.map_or(record.timestamp, |t| t.max(record.timestamp));
        ctx.forward(Record {
            key: record.key,
            value: Change { new, old: None },
            timestamp,
            headers: record.headers,
        })
    }
}

impl<K, V1, V2, VR> TableJoin<K, V1, V2, VR> {
    /// Whether an update of the `left` (or right) side whose key the other side lacks has a
    /// result to forward: only when the join keeps that side's rows alone, and the update
    /// is about a row (a delete of an absent row has none).
    fn emits_alone(&self, left: bool, has_new: bool, has_old: bool) -> bool {
        self.joiner.keeps(left) && (has_new || has_old)
    }
}
