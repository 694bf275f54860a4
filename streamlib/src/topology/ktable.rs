//! `KTable`: the latest value per key, as a stream of updates backed by a store.

use std::sync::Arc;

use super::graph::Data;
use super::KStream;

/// A changelog view: each update of a key replaces its previous value.
pub struct KTable<K, V> {
    updates: KStream<K, V>,
    store: String,
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(updates: KStream<K, V>, store: String) -> Self {
        Self { updates, store }
    }

    /// The name of the store holding the table.
    pub fn store_name(&self) -> &str {
        &self.store
    }

    /// The stream of updates.
    pub fn to_stream(&self) -> KStream<K, V> {
        KStream::new(self.updates.state.clone(), self.updates.node, false)
    }

    /// A table of the updates for which `predicate` holds (the store keeps every key).
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        Self::new(self.updates.filter(predicate), self.store.clone())
    }

    /// A table whose values are `f(value)`.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = Arc::new(f);
        KTable::new(self.updates.map_values(move |v| f(v)), self.store.clone())
    }
}
