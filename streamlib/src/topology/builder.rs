//! `StreamsBuilder`: the entry point of the DSL.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::processor::node::{TimestampExtractor, TypedSource};
use crate::serdes::{Nullable, Serde};
use crate::state::global::GlobalStoreSpec;

use super::graph::{Data, Factory, Graph, GraphNode, NodeKind, TopicName};
use super::ktable::table_of;
use super::{KStream, KTable, Materialized, StoreSpec, Topology};

/// Everything added so far; shared by the builder and the streams it handed out.
#[derive(Default)]
pub(crate) struct BuilderState {
    pub(crate) graph: Graph,
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) repartition_topics: Vec<String>,
    pub(crate) global_stores: Vec<GlobalStoreSpec>,
    wall_clock_lag: Option<i64>,
}

impl BuilderState {
    /// Kafka Streams style node names: `KSTREAM-FILTER-0000000003`, `KTABLE-FILTER-0000000004`.
    pub(crate) fn name(&self, kind: &str) -> String {
        let id = self.graph.next_id();
        if kind.starts_with("KTABLE-") {
            format!("{kind}-{id:010}")
        } else {
            format!("KSTREAM-{kind}-{id:010}")
        }
    }

    /// Registers a store unless one of that name exists.
    pub(crate) fn add_store(&mut self, spec: StoreSpec) {
        if !self.stores.iter().any(|s| s.name == spec.name) {
            self.stores.push(spec);
        }
    }

    /// Adds a source node reading `topic`.
    pub(crate) fn add_source<K: Data, V: Data>(
        &mut self,
        topic: TopicName,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
        timestamps: Option<TimestampExtractor<K, V>>,
    ) -> usize {
        let id = self.graph.next_id();
        let factory: super::graph::SourceFactory = Arc::new(move |graph, memo| {
            Box::new(TypedSource {
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
                timestamps: timestamps.clone(),
                children: graph.build_children::<K, V>(id, memo),
            })
        });
        let name = self.name("SOURCE");
        self.graph.push(GraphNode {
            name,
            kind: NodeKind::Source { topic },
            parents: Vec::new(),
            children: Vec::new(),
            stores: Vec::new(),
            factory: Factory::Source(factory),
        })
    }
}

/// Builds a [`Topology`] with the DSL.
///
/// ```
/// use streamlib::prelude::*;
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("clicks", StringSerde, StringSerde)
///     .group_by_key(StringSerde, StringSerde)
///     .count("clicks-per-user")
///     .to_stream()
///     .to("click-counts", StringSerde, Nullable(I64Serde));
/// let topology = builder.build();
/// assert_eq!(topology.stores()[0].name, "clicks-per-user");
/// ```
#[derive(Default)]
pub struct StreamsBuilder {
    pub(crate) state: Rc<RefCell<BuilderState>>,
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream of the records of `topic`, timestamped by their Kafka timestamp.
    pub fn stream<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KStream<K, V> {
        self.source(topic, Arc::new(key_serde), Arc::new(value_serde), None)
    }

    /// A stream of the records of `topic`, timestamped by `extractor(key, value, kafka_ts)`
    /// (e.g. an event-time field of the value).
    pub fn stream_with_timestamps<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        extractor: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let extractor: TimestampExtractor<K, V> = Arc::new(extractor);
        self.source(
            topic,
            Arc::new(key_serde),
            Arc::new(value_serde),
            Some(extractor),
        )
    }

    fn source<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
        timestamps: Option<TimestampExtractor<K, V>>,
    ) -> KStream<K, V> {
        let node = self.state.borrow_mut().add_source(
            TopicName::External(topic.to_string()),
            key_serde,
            value_serde,
            timestamps,
        );
        KStream::new(self.state.clone(), node, false)
    }

    /// The table of `topic`: each record updates its key's row, a null value (tombstone)
    /// deletes it, a null key is dropped and counted. The rows are kept in the store named by
    /// `store`, from which joins and interactive queries read them. The topic itself serves as
    /// the store's changelog: no changelog topic is written, and a task restores the store from
    /// its partition of `topic`, up to the offset the application committed.
    ///
    /// ```
    /// use streamlib::prelude::*;
    ///
    /// let builder = StreamsBuilder::new();
    /// let coins = builder.table("crypto.coins", StringSerde, StringSerde, "coins");
    /// assert_eq!(coins.store_name(), Some("coins"));
    /// ```
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        store: impl Into<Materialized>,
    ) -> KTable<K, V> {
        let key_serde: Arc<dyn Serde<K>> = Arc::new(key_serde);
        let value_serde = Arc::new(value_serde);
        let updates = self.source(
            topic,
            key_serde.clone(),
            Arc::new(Nullable(value_serde.clone())),
            None,
        );
        table_of(
            &updates,
            key_serde,
            value_serde,
            Some(store.into()),
            Some(topic),
        )
    }

    /// Opts in to closing windows on idle partitions: on every wall-clock tick the host gives
    /// a task, its stream time advances to `wall clock − lag` (if that is later). Choose `lag`
    /// no smaller than how late data normally arrives.
    pub fn advance_stream_time_with_wall_clock(&self, lag: Duration) -> &Self {
        self.state.borrow_mut().wall_clock_lag = Some(super::super::window::millis(lag));
        self
    }

    /// The finished topology.
    pub fn build(self) -> Topology {
        let state = std::mem::take(&mut *self.state.borrow_mut());
        Topology {
            graph: Arc::new(state.graph),
            stores: state.stores,
            repartition_topics: state.repartition_topics,
            global_stores: state.global_stores,
            wall_clock_lag: state.wall_clock_lag,
        }
    }
}
