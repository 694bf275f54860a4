//! Stream–table joins (inner, left): each stream record looks its key up in the table as it
//! is when the record is processed; table updates emit nothing.

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serde;

use super::graph::Data;
use super::joiner::Joiner;
use super::rows::Rows;
use super::{KStream, KTable};

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner join with a table: each record whose key has a row becomes
    /// `joiner(value, row)`, with the record's timestamp. A record with a null key or value
    /// (as `value_serde` tells) is dropped and counted. There is no time semantics: the row is
    /// the table's current one, whatever its timestamp.
    ///
    /// The stream is repartitioned first when its key was changed; the table must be
    /// co-partitioned with the stream's topic.
    ///
    /// ```
    /// use streamlib::prelude::*;
    ///
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table("coin-names", StringSerde, StringSerde, "coin-names");
    /// builder
    ///     .stream("prices", StringSerde, F64Serde)
    ///     .join_table(&names, F64Serde, |price, name| format!("{name}: {price}"))
    ///     .to("named-prices", StringSerde, StringSerde);
    /// ```
    pub fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        value_serde: impl Serde<V>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_rows(
            table,
            Arc::new(value_serde),
            Joiner::Inner(Arc::new(joiner)),
        )
    }

    /// Left join with a table: every record with a value becomes `joiner(value, row)`, the row
    /// `None` when the key has none (or the key is null).
    pub fn left_join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        value_serde: impl Serde<V>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_rows(table, Arc::new(value_serde), Joiner::Left(Arc::new(joiner)))
    }

    fn join_rows<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        values: Arc<dyn Serde<V>>,
        joiner: Joiner<V, VT, VR>,
    ) -> KStream<K, VR> {
        let (_, rows) = table.with_rows();
        let stream = if self.needs_repartition {
            self.repartition(rows.keys.clone(), values.clone())
        } else {
            KStream::new(self.state.clone(), self.node, false)
        };
        let store = rows.store.clone();
        stream.process(
            move || StreamTableJoin {
                rows: rows.clone(),
                values: values.clone(),
                joiner: joiner.clone(),
            },
            &[&store],
        )
    }
}

/// Looks each stream record's key up in the table's rows.
struct StreamTableJoin<K, V, VT, VR> {
    rows: Rows<K, VT>,
    values: Arc<dyn Serde<V>>,
    joiner: Joiner<V, VT, VR>,
}

impl<K: Data, V: Data, VT: Data, VR: Data> Processor<K, V, K, VR>
    for StreamTableJoin<K, V, VT, VR>
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<'_, K, VR>,
    ) -> Result<(), ProcessError> {
        let null_key = self.rows.keys.is_null(&record.key);
        let keeps_null_key = null_key && self.joiner.keeps(true);
        if self.values.is_null(&record.value) || (null_key && !keeps_null_key) {
            ctx.record_drop();
            return Ok(());
        }
        let row = match null_key {
            true => None,
            false => {
                let key = self.rows.key_bytes(&record.key)?;
                self.rows.get(ctx, &key)?.map(|row| row.value)
            }
        };
        match self.joiner.join(Some(&record.value), row.as_ref()) {
            Some(joined) => ctx.forward(record.with_value(joined)),
            None => Ok(()),
        }
    }
}
