//! `KTable`: the latest value per key, as a stream of changes, with the store that holds it.
//!
//! ```
//! use streamlib::prelude::*;
//! use streamlib::serdes::Nullable;
//! use streamlib::testing::{DriverConfig, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .table("coins", StringSerde, StringSerde, "coins")
//!     .filter(|_, name| !name.is_empty())
//!     .map_values(|name| name.to_uppercase())
//!     .to_stream()
//!     .to("coin-names", StringSerde, Nullable(StringSerde));
//! let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
//! let coins = Nullable(StringSerde);
//! driver.pipe("coins", &StringSerde, &coins, "btc".into(), Some("bitcoin".into()), 1).unwrap();
//! driver.pipe("coins", &StringSerde, &coins, "btc".into(), None, 2).unwrap(); // delete
//! let out = driver.read_output("coin-names", &StringSerde, &coins).unwrap();
//! assert_eq!(out[0].value, Some("BITCOIN".to_string()));
//! assert_eq!(out[1].value, None); // the delete, forwarded as a tombstone
//! ```

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serde;

use super::change::Change;
use super::global_table::validator;
use super::graph::Data;
use super::rows::Rows;
use super::stateless::stateless;
use super::{KStream, Materialized, SourceChangelog, StoreKind};

/// A changelog view of a topic or an aggregation: each update of a key replaces its previous
/// value, a `None` update deletes it.
///
/// Semantics follow Kafka Streams (see `streamlib/crosscheck`): updates are forwarded as they
/// come (not only changes: the same value again is forwarded again), with the timestamp of the
/// record that made them; a null key is dropped and counted.
pub struct KTable<K, V> {
    pub(crate) changes: KStream<K, Change<V>>,
    /// A store holding exactly this table's rows, in the [`Rows`] layout.
    pub(crate) rows: Option<Rows<K, V>>,
    pub(crate) key_serde: Option<Arc<dyn Serde<K>>>,
    pub(crate) value_serde: Option<Arc<dyn Serde<V>>>,
    /// Whether [`Change::old`] carries the previous value (the table's source is materialized).
    pub(crate) old_values: bool,
    /// The store of an aggregation, for interactive queries.
    pub(crate) store_name: Option<String>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The table of an aggregation: `changes` carry old values read from `store`, which holds
    /// its rows.
    pub(crate) fn aggregated(
        changes: KStream<K, Change<V>>,
        store: String,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            changes,
            rows: Some(Rows {
                store: store.clone(),
                keys: key_serde.clone(),
                values: value_serde.clone(),
            }),
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            old_values: true,
            store_name: Some(store),
        }
    }

    /// The table whose updates are the records of `updates` (a windowed aggregation's): no
    /// deletes, no old values.
    pub(crate) fn of_updates(updates: KStream<K, V>, store: String) -> Self {
        let changes = updates.then("KTABLE-UPDATES", false, || {
            stateless(|r: Record<K, V>, ctx| {
                ctx.forward(r.map_value(|v| Change {
                    new: Some(v),
                    old: None,
                }))
            })
        });
        Self::of_changes(changes, store)
    }

    /// The table whose changes are `changes`, without old values, its rows in `store` (not
    /// readable as a key-value store: a windowed aggregation's).
    pub(crate) fn of_changes(changes: KStream<K, Change<V>>, store: String) -> Self {
        Self {
            changes,
            rows: None,
            key_serde: None,
            value_serde: None,
            old_values: false,
            store_name: Some(store),
        }
    }

    /// A table derived from this one by a node forwarding `changes`, keeping its serdes.
    fn derived<V2: Data>(
        &self,
        changes: KStream<K, Change<V2>>,
        value_serde: Option<Arc<dyn Serde<V2>>>,
    ) -> KTable<K, V2> {
        KTable {
            changes,
            rows: None,
            key_serde: self.key_serde.clone(),
            value_serde,
            old_values: self.old_values,
            store_name: None,
        }
    }

    /// The name of the store holding the table (an aggregation's, or the one given to
    /// [`StreamsBuilder::table`](super::StreamsBuilder::table)), if it has one.
    pub fn store_name(&self) -> Option<&str> {
        self.store_name.as_deref()
    }

    /// The stream of updates: `Some(value)` for an update, `None` for a delete (write it with
    /// [`Nullable`](crate::serdes::Nullable) to produce tombstones).
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        self.changes.then("KTABLE-TOSTREAM", false, || {
            stateless(|r: Record<K, Change<V>>, ctx| ctx.forward(r.map_value(|c| c.new)))
        })
    }

    /// A table of the rows for which `predicate` holds. A row that stops passing is deleted
    /// from the result. When this table's source is materialized, a delete is forwarded only
    /// if the row had passed; otherwise every update that fails becomes a delete (as in Kafka
    /// Streams, which knows previous values only from a store).
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let predicate = Arc::new(predicate);
        let old_values = self.old_values;
        let changes = self.changes.then("KTABLE-FILTER", false, move || {
            let predicate = predicate.clone();
            stateless(move |r: Record<K, Change<V>>, ctx| {
                let Record {
                    key,
                    value: change,
                    timestamp,
                    headers,
                } = r;
                let change = Change {
                    new: change.new.filter(|v| predicate(&key, v)),
                    old: change.old.filter(|v| predicate(&key, v)),
                };
                if old_values && change.new.is_none() && change.old.is_none() {
                    return Ok(());
                }
                ctx.forward(Record {
                    key,
                    value: change,
                    timestamp,
                    headers,
                })
            })
        });
        self.derived(changes, self.value_serde.clone())
    }

    /// A table of the rows for which `predicate` does not hold.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// A table whose values are `f(value)`; `f` is not called for deletes. Its rows are not
    /// stored: joining it materializes it, which needs [`KTable::map_values_as`].
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = Arc::new(f);
        let changes = self.changes.then("KTABLE-MAPVALUES", false, move || {
            let f = f.clone();
            stateless(move |r: Record<K, Change<V>>, ctx| {
                ctx.forward(r.map_value(|c| c.map(|v| f(v))))
            })
        });
        self.derived(changes, None)
    }

    /// [`KTable::map_values`] with the serde of the new values, so that the result can be
    /// joined or materialized.
    pub fn map_values_as<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
        value_serde: impl Serde<V2>,
    ) -> KTable<K, V2> {
        let mut table = self.map_values(f);
        table.value_serde = Some(Arc::new(value_serde));
        table
    }

    /// This table with its rows in a store named by `store`, readable by joins and
    /// interactive queries. A table that already has one is returned as is.
    ///
    /// # Panics
    /// When the table's key or value serde is unknown (after [`KTable::map_values`]; use
    /// [`KTable::map_values_as`]).
    pub fn materialize(&self, store: impl Into<Materialized>) -> Self {
        if self.rows.is_some() {
            return self.clone_handle();
        }
        let (Some(keys), Some(values)) = (self.key_serde.clone(), self.value_serde.clone()) else {
            panic!(
                "a table without key and value serdes cannot be materialized: \
                 derive it with map_values_as instead of map_values"
            );
        };
        let store: Materialized = store.into();
        let updates = self.changes.then("KTABLE-MATERIALIZE", false, || {
            stateless(|r: Record<K, Change<V>>, ctx| ctx.forward(r.map_value(|c| c.new)))
        });
        table_of(&updates, keys, values, Some(store), None)
    }

    /// This table with its rows in a store: its own, or a new one named after the node.
    pub(crate) fn materialized(&self) -> Self {
        if self.rows.is_some() {
            return self.clone_handle();
        }
        let name = format!("{}-store", self.changes.state.borrow().name("KTABLE-STORE"));
        self.materialize(Materialized::as_store(&name))
    }

    /// This table with its rows in a store, and those rows.
    pub(crate) fn with_rows(&self) -> (Self, Rows<K, V>) {
        let table = self.materialized();
        let Some(rows) = table.rows.clone() else {
            unreachable!("a materialized table has rows");
        };
        (table, rows)
    }

    /// Another handle on this table (the same node and store).
    pub(crate) fn clone_handle(&self) -> Self {
        Self {
            changes: KStream::new(self.changes.state.clone(), self.changes.node, false),
            rows: self.rows.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            old_values: self.old_values,
            store_name: self.store_name.clone(),
        }
    }
}

impl<K: Data, V: Data> KStream<K, Option<V>> {
    /// The table of this stream's records: each record updates its key's row, a `None` value
    /// deletes it, a null key is dropped (and counted). The rows are not stored (see
    /// [`KStream::to_table_as`]), so old values are unknown.
    pub fn to_table(&self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> KTable<K, V> {
        table_of(self, Arc::new(key_serde), Arc::new(value_serde), None, None)
    }

    /// [`KStream::to_table`] with the rows kept in a store.
    pub fn to_table_as(
        &self,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        store: impl Into<Materialized>,
    ) -> KTable<K, V> {
        table_of(
            self,
            Arc::new(key_serde),
            Arc::new(value_serde),
            Some(store.into()),
            None,
        )
    }
}

/// The table of `updates`, its rows in `store` if given; `source` names the topic `updates`
/// come from when it is to serve as the store's changelog.
pub(crate) fn table_of<K: Data, V: Data>(
    updates: &KStream<K, Option<V>>,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
    store: Option<Materialized>,
    source: Option<&str>,
) -> KTable<K, V> {
    let rows = store.as_ref().map(|store| Rows {
        store: store.name.clone(),
        keys: keys.clone(),
        values: values.clone(),
    });
    let changes = match &store {
        Some(store) => {
            let mut spec = store.spec(StoreKind::TimestampedKeyValue);
            if let Some(topic) = source {
                spec.logged = false;
                spec.source = Some(SourceChangelog {
                    topic: topic.to_string(),
                    validate: validator(keys.clone(), values.clone()),
                });
            }
            updates.state.borrow_mut().add_store(spec);
            let rows = rows.clone();
            let keys = keys.clone();
            updates.process(
                move || TableSource {
                    keys: keys.clone(),
                    rows: rows.clone(),
                },
                &[&store.name],
            )
        }
        None => {
            let keys = keys.clone();
            updates.then("KTABLE-SOURCE", false, move || TableSource {
                keys: keys.clone(),
                rows: None,
            })
        }
    };
    KTable {
        changes,
        rows,
        key_serde: Some(keys),
        value_serde: Some(values),
        old_values: store.is_some(),
        store_name: store.map(|s| s.name),
    }
}

/// Turns updates into changes: drops null keys, and with a store writes each row and reads
/// the value it replaces.
struct TableSource<K, V> {
    keys: Arc<dyn Serde<K>>,
    rows: Option<Rows<K, V>>,
}

impl<K: Data, V: Data> Processor<K, Option<V>, K, Change<V>> for TableSource<K, V> {
    fn process(
        &mut self,
        record: Record<K, Option<V>>,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
    ) -> Result<(), ProcessError> {
        if self.keys.is_null(&record.key) {
            ctx.record_drop();
            return Ok(());
        }
        let old = match &self.rows {
            Some(rows) => {
                let key = rows.key_bytes(&record.key)?;
                let old = rows.get(ctx, &key)?.map(|row| row.value);
                rows.put(ctx, &key, record.value.as_ref(), record.timestamp)?;
                old
            }
            None => None,
        };
        ctx.forward(record.map_value(|new| Change { new, old }))
    }
}
