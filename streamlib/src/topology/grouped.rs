//! `KGroupedStream`: records grouped by key, ready to aggregate into a table.

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde};

use super::change::Change;
use super::graph::Data;
use super::rows::Rows;
use super::windowed::{WindowDefinition, WindowedKStream};
use super::{KStream, KTable, StoreBackend, StoreKind, StoreSpec};

/// Name and options of the store behind an aggregation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Materialized {
    pub(crate) name: String,
    pub(crate) backend: StoreBackend,
    pub(crate) logged: bool,
}

impl Materialized {
    /// A logged RocksDB store called `name`.
    pub fn as_store(name: &str) -> Self {
        Self {
            name: name.to_string(),
            backend: StoreBackend::RocksDb,
            logged: true,
        }
    }

    /// Keep the store in memory.
    pub fn in_memory(mut self) -> Self {
        self.backend = StoreBackend::InMemory;
        self
    }

    /// Do not write a changelog.
    pub fn without_logging(mut self) -> Self {
        self.logged = false;
        self
    }

    pub(crate) fn spec(&self, kind: StoreKind) -> StoreSpec {
        StoreSpec {
            name: self.name.clone(),
            kind,
            backend: self.backend,
            logged: self.logged,
            source: None,
        }
    }
}

impl From<&str> for Materialized {
    fn from(name: &str) -> Self {
        Self::as_store(name)
    }
}

/// Folds a value into the previous aggregate of its key (`None` for the first value).
pub(crate) type Updater<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

/// Records grouped by key.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(
        stream: KStream<K, V>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            stream,
            key_serde,
            value_serde,
        }
    }

    /// Number of records per key.
    pub fn count(&self, store: impl Into<Materialized>) -> KTable<K, i64> {
        self.aggregate(|| 0, |_, _, count| count + 1, I64Serde, store)
    }

    /// Combines the values of each key with `reducer(aggregate, value)`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        store: impl Into<Materialized>,
    ) -> KTable<K, V> {
        let updater: Updater<K, V, V> = Arc::new(move |_, value, old| match old {
            Some(old) => reducer(old, value),
            None => value,
        });
        self.update_table(updater, self.value_serde.clone(), store.into())
    }

    /// Folds the values of each key into an aggregate that starts at `init()`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<A>,
        store: impl Into<Materialized>,
    ) -> KTable<K, A> {
        let updater: Updater<K, V, A> =
            Arc::new(move |key, value, old| aggregator(key, &value, old.unwrap_or_else(&init)));
        self.update_table(updater, Arc::new(aggregate_serde), store.into())
    }

    fn update_table<A: Data>(
        &self,
        updater: Updater<K, V, A>,
        aggregate_serde: Arc<dyn Serde<A>>,
        store: Materialized,
    ) -> KTable<K, A> {
        self.stream
            .state
            .borrow_mut()
            .add_store(store.spec(StoreKind::TimestampedKeyValue));
        let rows = Rows {
            store: store.name.clone(),
            keys: self.key_serde.clone(),
            values: aggregate_serde.clone(),
        };
        let values = self.value_serde.clone();
        let changes = self.stream.process(
            move || KeyValueAggregate {
                rows: rows.clone(),
                values: values.clone(),
                updater: updater.clone(),
            },
            &[&store.name],
        );
        KTable::aggregated(changes, store.name, self.key_serde.clone(), aggregate_serde)
    }

    /// Aggregates per window: [`crate::window::TimeWindows`] (tumbling, hopping),
    /// [`crate::window::SessionWindows`] or [`crate::window::SlidingWindows`].
    pub fn windowed_by<W: WindowDefinition>(&self, windows: W) -> WindowedKStream<K, V, W> {
        WindowedKStream::new(self, windows)
    }
}

/// Keeps one aggregate per key and forwards every new value with the one it replaces, with the
/// largest timestamp of the records folded into it (as Kafka Streams does); records with a null
/// key or value are dropped and counted.
struct KeyValueAggregate<K, V, A> {
    rows: Rows<K, A>,
    values: Arc<dyn Serde<V>>,
    updater: Updater<K, V, A>,
}

impl<K: Data, V: Data, A: Data> Processor<K, V, K, Change<A>> for KeyValueAggregate<K, V, A> {
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<'_, K, Change<A>>,
    ) -> Result<(), ProcessError> {
        if self.rows.keys.is_null(&record.key) || self.values.is_null(&record.value) {
            ctx.record_drop();
            return Ok(());
        }
        let key = self.rows.key_bytes(&record.key)?;
        let (old, old_timestamp) = match self.rows.get(ctx, &key)? {
            Some(row) => (Some(row.value), row.timestamp),
            None => (None, i64::MIN),
        };
        let Record {
            key: typed_key,
            value,
            timestamp,
            headers,
        } = record;
        let new = (self.updater)(&typed_key, value, old.clone());
        let timestamp = timestamp.max(old_timestamp);
        self.rows.put(ctx, &key, Some(&new), timestamp)?;
        ctx.forward(Record {
            key: typed_key,
            value: Change {
                new: Some(new),
                old,
            },
            timestamp,
            headers,
        })
    }
}
