//! `GlobalKTable`: a topic held in full by every instance, kept current by a thread of its own,
//! and joined from streams by a key computed from each record (no co-partitioning needed).
//!
//! ```
//! use streamlib::prelude::*;
//! use streamlib::testing::{DriverConfig, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! let coins = builder.global_table("coins", StringSerde, StringSerde, "coins");
//! builder
//!     .stream("trades", StringSerde, StringSerde) // key: trade id, value: "coin:amount"
//!     .left_join_global(
//!         &coins,
//!         |_, trade: &String| trade.split(':').next().unwrap_or_default().to_string(),
//!         StringSerde,
//!         |trade, name| format!("{trade} ({})", name.map_or("unknown", String::as_str)),
//!     )
//!     .to("named-trades", StringSerde, StringSerde);
//! let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
//! driver.pipe("coins", &StringSerde, &StringSerde, "btc".into(), "Bitcoin".into(), 1).unwrap();
//! driver.pipe("trades", &StringSerde, &StringSerde, "t1".into(), "btc:2".into(), 2).unwrap();
//! driver.pipe("trades", &StringSerde, &StringSerde, "t2".into(), "xyz:1".into(), 3).unwrap();
//! let out: Vec<String> = driver
//!     .read_output("named-trades", &StringSerde, &StringSerde)
//!     .unwrap()
//!     .into_iter()
//!     .map(|r| r.value)
//!     .collect();
//! assert_eq!(out, ["btc:2 (Bitcoin)", "xyz:1 (unknown)"]);
//! ```

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serde;
use crate::state::encoding::split_timestamped;
use crate::state::global::{GlobalStoreSpec, Validator};

use super::graph::Data;
use super::joiner::Joiner;
use super::{KStream, Materialized, StoreBackend, StreamsBuilder};

/// A table of every partition of a topic, in every instance.
pub struct GlobalKTable<K, V> {
    store: String,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of the store holding it.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// The global table of `topic`: each instance reads every partition of it into the store
    /// named by `store` before its stream threads start, and keeps it current on a thread of
    /// its own. The topic is the store's changelog (nothing else is written); a record whose
    /// key or value the serdes do not read, or with a null key, is skipped and counted.
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        store: impl Into<Materialized>,
    ) -> GlobalKTable<K, V> {
        let store: Materialized = store.into();
        let keys: Arc<dyn Serde<K>> = Arc::new(key_serde);
        let values: Arc<dyn Serde<V>> = Arc::new(value_serde);
        let validate = validator(keys.clone(), values.clone());
        self.state.borrow_mut().global_stores.push(GlobalStoreSpec {
            store: store.name.clone(),
            topic: topic.to_string(),
            in_memory: store.backend == StoreBackend::InMemory,
            validate,
        });
        GlobalKTable {
            store: store.name,
            keys,
            values,
        }
    }
}

/// The check of a record read straight into a store (a global table's, or a table's restored
/// from its source topic): its key and value must deserialize.
pub(crate) fn validator<K: Data, V: Data>(
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
) -> Validator {
    Arc::new(move |topic, key, value| {
        if let Some(key) = key {
            keys.deserialize(topic, key)?;
        }
        if let Some(value) = value {
            values.deserialize(topic, value)?;
        }
        Ok(())
    })
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner join with a global table: each record whose `key_selector(key, value)` has a row
    /// becomes `joiner(value, row)`, with the record's timestamp. Records with a null value
    /// (as `value_serde` tells) or a null selected key are dropped and counted.
    pub fn join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        value_serde: impl Serde<V>,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_global_table(
            table,
            Arc::new(key_selector),
            Arc::new(value_serde),
            Joiner::Inner(Arc::new(joiner)),
        )
    }

    /// Left join with a global table: every record with a value becomes
    /// `joiner(value, row)`, the row `None` when the selected key has none.
    pub fn left_join_global<GK: Data, GV: Data, VR: Data>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        value_serde: impl Serde<V>,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_global_table(
            table,
            Arc::new(key_selector),
            Arc::new(value_serde),
            Joiner::Left(Arc::new(joiner)),
        )
    }

    fn join_global_table<GK: Data, GV: Data, VR: Data>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_selector: KeySelector<K, V, GK>,
        values: Arc<dyn Serde<V>>,
        joiner: Joiner<V, GV, VR>,
    ) -> KStream<K, VR> {
        let (store, keys, rows) = (
            table.store.clone(),
            table.keys.clone(),
            table.values.clone(),
        );
        self.then("JOIN-GLOBAL", false, move || GlobalJoin {
            store: store.clone(),
            key_selector: key_selector.clone(),
            keys: keys.clone(),
            rows: rows.clone(),
            values: values.clone(),
            joiner: joiner.clone(),
        })
    }
}

type KeySelector<K, V, GK> = Arc<dyn Fn(&K, &V) -> GK + Send + Sync>;

/// Looks each record's selected key up in the global store.
struct GlobalJoin<K, V, GK, GV, VR> {
    store: String,
    key_selector: KeySelector<K, V, GK>,
    keys: Arc<dyn Serde<GK>>,
    rows: Arc<dyn Serde<GV>>,
    values: Arc<dyn Serde<V>>,
    joiner: Joiner<V, GV, VR>,
}

impl<K: Data, V: Data, GK: Data, GV: Data, VR: Data> Processor<K, V, K, VR>
    for GlobalJoin<K, V, GK, GV, VR>
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<'_, K, VR>,
    ) -> Result<(), ProcessError> {
        if self.values.is_null(&record.value) {
            ctx.record_drop();
            return Ok(());
        }
        let key = (self.key_selector)(&record.key, &record.value);
        if self.keys.is_null(&key) {
            if !self.joiner.keeps(true) {
                ctx.record_drop();
                return Ok(());
            }
            return match self.joiner.join(Some(&record.value), None) {
                Some(joined) => ctx.forward(record.with_value(joined)),
                None => Ok(()),
            };
        }
        let key = self
            .keys
            .serialize(&self.store, &key)
            .map_err(ProcessError::serialization(&self.store))?;
        let row = match ctx.global_row(&self.store, &key)? {
            Some(bytes) => {
                let (_, value) = split_timestamped(&self.store, &bytes)?;
                Some(
                    self.rows
                        .deserialize(&self.store, value)
                        .map_err(ProcessError::deserialization(&self.store))?,
                )
            }
            None => None,
        };
        match self.joiner.join(Some(&record.value), row.as_ref()) {
            Some(joined) => ctx.forward(record.with_value(joined)),
            None => Ok(()),
        }
    }
}
