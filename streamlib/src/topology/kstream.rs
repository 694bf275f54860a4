//! `KStream`: an unbounded stream of keyed records.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::processor::node::{NodeId, SinkNode};
use crate::processor::Processor;
use crate::serdes::Serde;

use super::builder::BuilderState;
use super::graph::{Data, NodeKind, TopicName};
use super::stateless::stateless;
use super::KGroupedStream;

/// A boxed record predicate, for [`KStream::split`].
pub type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream of `(K, V)` records; every operation adds a node and returns the stream after it.
pub struct KStream<K, V> {
    pub(crate) state: Rc<RefCell<BuilderState>>,
    pub(crate) node: NodeId,
    /// The key changed since the source: grouping must repartition through Kafka first.
    pub(crate) needs_repartition: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(
        state: Rc<RefCell<BuilderState>>,
        node: NodeId,
        needs_repartition: bool,
    ) -> Self {
        Self {
            state,
            node,
            needs_repartition,
            _types: PhantomData,
        }
    }

    pub(crate) fn then<K2: Data, V2: Data, P>(
        &self,
        kind: &str,
        rekeys: bool,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        P: Processor<K, V, K2, V2> + 'static,
    {
        let node = {
            let mut state = self.state.borrow_mut();
            let name = state.name(kind);
            state
                .graph
                .add_processor::<K, V, K2, V2, P>(name, &[self.node], Vec::new(), supplier)
        };
        KStream::new(self.state.clone(), node, self.needs_repartition || rekeys)
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let predicate = Arc::new(predicate);
        self.then("FILTER", false, move || {
            let predicate = predicate.clone();
            stateless(move |r, ctx| {
                if predicate(&r.key, &r.value) {
                    ctx.forward(r)?;
                }
                Ok(())
            })
        })
    }

    /// Drops (and counts) the records whose key `keys` calls null, as Kafka Streams' stateful
    /// operations do.
    pub(crate) fn without_null_keys(&self, keys: Arc<dyn Serde<K>>) -> Self {
        self.then("FILTER-NULL-KEYS", false, move || {
            let keys = keys.clone();
            stateless(move |r: crate::record::Record<K, V>, ctx| {
                if keys.is_null(&r.key) {
                    ctx.record_drop();
                    return Ok(());
                }
                ctx.forward(r)
            })
        })
    }

    /// Keeps the records for which `predicate` does not hold.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Replaces key and value; marks the stream for repartitioning.
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let f = Arc::new(f);
        self.then("MAP", true, move || {
            let f = f.clone();
            stateless(move |r: crate::record::Record<K, V>, ctx| {
                let (key, value) = f(r.key, r.value);
                ctx.forward(crate::record::Record {
                    key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            })
        })
    }

    /// Replaces the value, keeping the key (no repartitioning).
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let f = Arc::new(f);
        self.then("MAPVALUES", false, move || {
            let f = f.clone();
            stateless(move |r: crate::record::Record<K, V>, ctx| {
                let crate::record::Record {
                    key,
                    value,
                    timestamp,
                    headers,
                } = r;
                ctx.forward(crate::record::Record {
                    key,
                    value: f(value),
                    timestamp,
                    headers,
                })
            })
        })
    }

    /// Replaces each record by zero or more records; marks the stream for repartitioning.
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let f = Arc::new(f);
        self.then("FLATMAP", true, move || {
            let f = f.clone();
            stateless(move |r: crate::record::Record<K, V>, ctx| {
                for (key, value) in f(r.key, r.value) {
                    ctx.forward(crate::record::Record {
                        key,
                        value,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })?;
                }
                Ok(())
            })
        })
    }

    /// Calls `f` on every record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Self {
        let f = Arc::new(f);
        self.then("PEEK", false, move || {
            let f = f.clone();
            stateless(move |r, ctx| {
                f(&r.key, &r.value);
                ctx.forward(r)
            })
        })
    }

    /// Replaces the key by `f(key, value)`; marks the stream for repartitioning.
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let f = Arc::new(f);
        self.then("KEY-SELECT", true, move || {
            let f = f.clone();
            stateless(move |r: crate::record::Record<K, V>, ctx| {
                let key = f(&r.key, &r.value);
                ctx.forward(r.with_key(key))
            })
        })
    }

    /// One stream with the records of both.
    pub fn merge(&self, other: &KStream<K, V>) -> Self {
        let node = {
            let mut state = self.state.borrow_mut();
            let name = state.name("MERGE");
            state.graph.add_processor::<K, V, K, V, _>(
                name,
                &[self.node, other.node],
                Vec::new(),
                || stateless(|r, ctx| ctx.forward(r)),
            )
        };
        KStream::new(
            self.state.clone(),
            node,
            self.needs_repartition || other.needs_repartition,
        )
    }

    /// Splits the stream: each record goes to the first branch whose predicate holds, or to
    /// none. Returns one stream per predicate, in order.
    pub fn split(&self, predicates: Vec<Predicate<K, V>>) -> Vec<Self> {
        let predicates: Arc<Vec<_>> = Arc::new(predicates);
        (0..predicates.len())
            .map(|branch| {
                let predicates = predicates.clone();
                self.filter(move |k, v| predicates.iter().position(|p| p(k, v)) == Some(branch))
            })
            .collect()
    }

    /// Writes the stream to `topic`.
    pub fn to(&self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        self.to_topic(
            TopicName::External(topic.to_string()),
            Arc::new(key_serde),
            Arc::new(value_serde),
        );
    }

    pub(crate) fn to_topic(
        &self,
        topic: TopicName,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) {
        let mut state = self.state.borrow_mut();
        let name = state.name("SINK");
        let sink_topic = topic.clone();
        state
            .graph
            .add_leaf::<K, V>(name, NodeKind::Sink { topic }, self.node, move |memo| {
                Box::new(SinkNode {
                    topic: memo.topic_name(&sink_topic),
                    key_serde: key_serde.clone(),
                    value_serde: value_serde.clone(),
                })
            });
    }

    /// Runs a custom processor connected to the named stores (which must be added with
    /// [`KStream::with_store`] or by a DSL operation).
    pub fn process<K2: Data, V2: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K2, V2>
    where
        P: Processor<K, V, K2, V2> + 'static,
    {
        let node = {
            let mut state = self.state.borrow_mut();
            let name = state.name("PROCESSOR");
            let stores = stores.iter().map(|s| s.to_string()).collect();
            state
                .graph
                .add_processor::<K, V, K2, V2, P>(name, &[self.node], stores, supplier)
        };
        KStream::new(self.state.clone(), node, self.needs_repartition)
    }

    /// Adds a state store to the topology, for processors given to [`KStream::process`].
    pub fn with_store(&self, spec: super::StoreSpec) -> &Self {
        self.state.borrow_mut().add_store(spec);
        self
    }

    /// Groups by the current key; repartitions through Kafka first when the key was changed.
    pub fn group_by_key(
        &self,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KGroupedStream<K, V> {
        let key_serde: Arc<dyn Serde<K>> = Arc::new(key_serde);
        let value_serde: Arc<dyn Serde<V>> = Arc::new(value_serde);
        let stream = if self.needs_repartition {
            self.repartition(key_serde.clone(), value_serde.clone())
        } else {
            KStream::new(self.state.clone(), self.node, false)
        };
        KGroupedStream::new(stream, key_serde, value_serde)
    }

    /// Groups by `f(key, value)` (a `select_key` followed by `group_by_key`).
    pub fn group_by<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        key_serde: impl Serde<K2>,
        value_serde: impl Serde<V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(f).group_by_key(key_serde, value_serde)
    }

    /// Writes the stream to an internal `<application.id>-<name>-repartition` topic and reads
    /// it back, so records of one key meet in one task.
    pub(crate) fn repartition(
        &self,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        let topic = {
            let mut state = self.state.borrow_mut();
            let topic = format!("{}-repartition", state.name("REPARTITION"));
            state.repartition_topics.push(topic.clone());
            topic
        };
        self.to_topic(
            TopicName::Internal(topic.clone()),
            key_serde.clone(),
            value_serde.clone(),
        );
        let node = self.state.borrow_mut().add_source(
            TopicName::Internal(topic),
            key_serde,
            value_serde,
            None,
        );
        KStream::new(self.state.clone(), node, false)
    }
}
