//! The DSL: build a [`Topology`] from streams and tables.
//!
//! ```
//! use streamlib::prelude::*;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("words", StringSerde, StringSerde)
//!     .filter(|_, word| !word.is_empty())
//!     .map_values(|word| word.to_uppercase())
//!     .to("shouted", StringSerde, StringSerde);
//! let topology = builder.build();
//! assert!(topology.describe().contains("Source: KSTREAM-SOURCE-0000000000 (topics: [words])"));
//! ```

mod builder;
mod change;
mod describe;
mod foreign_key_join;
mod global_table;
pub(crate) mod graph;
mod grouped;
mod grouped_table;
mod joiner;
mod kstream;
mod ktable;
mod late;
mod rows;
mod session_aggregate;
mod sliding_aggregate;
mod stateless;
mod stream_join;
mod stream_table_join;
mod table_join;
mod time_window_aggregate;
pub mod windowed;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use builder::StreamsBuilder;
pub use global_table::GlobalKTable;
pub use graph::Data;
pub use grouped::{KGroupedStream, Materialized};
pub use grouped_table::KGroupedTable;
pub use kstream::{KStream, Predicate};
pub use ktable::KTable;
pub use stream_join::{JoinWindows, StreamJoined};
pub use windowed::{
    SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream, WindowDefinition,
    WindowedKStream,
};

use crate::processor::node::SourceNode;
use crate::state::global::{GlobalStoreSpec, Validator};
use graph::{Graph, NodeKind, TopicName};

/// The kind of a state store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Plain key-value store.
    KeyValue,
    /// Key-value store whose values carry the timestamp of the update that wrote them
    /// (`[timestamp: 8 bytes, big-endian i64][value]`): the rows of tables and aggregations.
    /// Interactive queries answer with the values alone.
    TimestampedKeyValue,
    /// Window store (key, window start) → value.
    Window {
        /// How long a window's entries matter after the window starts: window size plus grace
        /// (for sliding windows twice the time difference plus grace, as in Kafka Streams).
        retention: Duration,
        /// Whether an entry is a whole window or a pane of several.
        layout: WindowLayout,
    },
    /// Session store (key, start, end) → value.
    Session {
        /// How long a session's entries matter after its end: the inactivity gap plus grace.
        retention: Duration,
    },
    /// Key-value store whose entries expire `ttl` after they were written (stream time).
    Ttl {
        /// Time to live.
        ttl: Duration,
    },
}

/// What the entries of a window store are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WindowLayout {
    /// Each entry is one window's value (a tumbling aggregate's, or a store of one's own):
    /// window queries read it.
    #[default]
    Windows,
    /// Each entry is one window's value with the largest timestamp of its records,
    /// `[timestamp: 8 bytes, big-endian i64][value]` (a tumbling or sliding aggregate's):
    /// window queries read the value alone.
    TimestampedWindows,
    /// Each entry is a pane that several windows share (hopping aggregates keep panes and
    /// merge them when a window is emitted): window queries are refused, as a pane is not any
    /// window's value.
    Panes,
}

/// Where a store keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StoreBackend {
    /// RocksDB under the state directory (in memory when the host has no state directory).
    #[default]
    RocksDb,
    /// In memory; restored from the changelog when a task opens.
    InMemory,
}

/// A named state store of a topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// Unique name; the changelog topic is [`changelog_topic`].
    pub name: String,
    /// Kind of store.
    pub kind: StoreKind,
    /// Backend.
    pub backend: StoreBackend,
    /// Whether writes are logged to a changelog topic.
    pub logged: bool,
    /// For a table's store: the table's source topic, which serves as its changelog (the store
    /// writes none, and restores from the source topic up to the task's committed offset).
    pub(crate) source: Option<SourceChangelog>,
}

/// A source topic serving as a store's changelog, with the check its records must pass to be
/// restored (the ones the serdes cannot read never reached the store while processing).
#[derive(Clone)]
pub(crate) struct SourceChangelog {
    pub(crate) topic: String,
    pub(crate) validate: Validator,
}

impl std::fmt::Debug for SourceChangelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceChangelog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SourceChangelog {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
    }
}

impl Eq for SourceChangelog {}

impl StoreSpec {
    /// A logged RocksDB store.
    pub fn new(name: impl Into<String>, kind: StoreKind) -> Self {
        Self {
            name: name.into(),
            kind,
            backend: StoreBackend::RocksDb,
            logged: true,
            source: None,
        }
    }

    /// The topic whose partition `p` is this store's changelog in task `p`: its source topic,
    /// or its own changelog topic in application `application_id`.
    pub(crate) fn changelog_of(&self, application_id: &str) -> String {
        match &self.source {
            Some(source) => source.topic.clone(),
            None => changelog_topic(application_id, &self.name),
        }
    }

    /// The same store kept in memory.
    pub fn in_memory(mut self) -> Self {
        self.backend = StoreBackend::InMemory;
        self
    }

    /// The same store without a changelog.
    pub fn without_logging(mut self) -> Self {
        self.logged = false;
        self
    }
}

/// The changelog topic of store `store` of application `application_id`,
/// `<application.id>-<store>-changelog`: the one place that names it, for the hosts that write
/// and restore it and for the tests that read it.
///
/// ```
/// assert_eq!(streamlib::topology::changelog_topic("app", "counts"), "app-counts-changelog");
/// ```
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    prefixed(application_id, &changelog_name(store))
}

/// `<application.id>-<name>`: how every internal topic is named.
fn prefixed(application_id: &str, name: &str) -> String {
    format!("{application_id}-{name}")
}

/// A store's changelog topic without the `<application.id>-` prefix, as
/// [`InternalTopic::name`] holds it.
fn changelog_name(store: &str) -> String {
    format!("{store}-changelog")
}

/// An internal topic the hosts create: repartition topics and changelogs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalTopic {
    /// Name without the `<application.id>-` prefix.
    pub name: String,
    /// Whether it is a changelog (compacted) or a repartition topic.
    pub kind: InternalTopicKind,
}

impl InternalTopic {
    /// Its full name in application `application_id`: `<application.id>-<name>`.
    ///
    /// ```
    /// use streamlib::topology::{InternalTopic, InternalTopicKind};
    /// let topic = InternalTopic { name: "x-repartition".into(), kind: InternalTopicKind::Repartition };
    /// assert_eq!(topic.topic("app"), "app-x-repartition");
    /// ```
    pub fn topic(&self, application_id: &str) -> String {
        prefixed(application_id, &self.name)
    }
}

/// Kinds of internal topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalTopicKind {
    /// Re-keyed records on their way to an aggregation.
    Repartition,
    /// Changelog of a key-value store (`cleanup.policy=compact`).
    Changelog,
    /// Changelog of a window or session store (`compact,delete`, kept as long as its store
    /// keeps windows; the host adds a margin).
    WindowedChangelog {
        /// The store's retention.
        retention: Duration,
    },
}

/// A built, immutable processing graph; hosts run one task of it per input partition.
pub struct Topology {
    graph: Arc<Graph>,
    stores: Vec<StoreSpec>,
    repartition_topics: Vec<String>,
    global_stores: Vec<GlobalStoreSpec>,
    wall_clock_lag: Option<i64>,
}

impl Topology {
    /// The stores every task opens.
    pub fn stores(&self) -> &[StoreSpec] {
        &self.stores
    }

    /// The global tables' stores, with the topics that feed them.
    pub(crate) fn global_stores(&self) -> &[GlobalStoreSpec] {
        &self.global_stores
    }

    /// Topics read into global tables (by every instance, in full).
    pub fn global_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.global_stores.iter().map(|g| g.topic.clone()).collect();
        topics.sort();
        topics
    }

    /// User topics read by the topology's tasks (global tables' topics are not among them).
    pub fn source_topics(&self) -> Vec<String> {
        self.topics(|kind| match kind {
            NodeKind::Source {
                topic: TopicName::External(t),
            } => Some(t.clone()),
            _ => None,
        })
    }

    /// User topics written by the topology.
    pub fn sink_topics(&self) -> Vec<String> {
        self.topics(|kind| match kind {
            NodeKind::Sink {
                topic: TopicName::External(t),
            } => Some(t.clone()),
            _ => None,
        })
    }

    /// The input topics of each sub-topology, full names (internal ones prefixed with
    /// `application_id`): Kafka Streams cuts a topology into the parts that share no
    /// processor and no store, and a task keeps one timestamp order per part
    /// (`runtime::partition_group`). Two sources belong together when a path of parent–child
    /// edges, a shared store or a shared topic joins them; a repartition topic starts a new
    /// part.
    pub(crate) fn source_groups(&self, application_id: &str) -> Vec<Vec<String>> {
        let nodes = &self.graph.nodes;
        let mut root: Vec<usize> = (0..nodes.len()).collect();
        fn find(root: &mut [usize], mut node: usize) -> usize {
            while root[node] != node {
                root[node] = root[root[node]];
                node = root[node];
            }
            node
        }
        // A store, or a topic read by several sources (one record feeds them all), ties its
        // nodes together as an edge does.
        let mut owner: HashMap<String, usize> = HashMap::new();
        for (id, node) in nodes.iter().enumerate() {
            let mut joined: Vec<usize> = node.parents.clone();
            let mut shared: Vec<String> =
                node.stores.iter().map(|s| format!("store {s}")).collect();
            if let NodeKind::Source { topic } = &node.kind {
                shared.push(format!("topic {topic:?}"));
            }
            for name in shared {
                joined.push(*owner.entry(name).or_insert(id));
            }
            for other in joined {
                let (a, b) = (find(&mut root, id), find(&mut root, other));
                root[a] = b;
            }
        }
        let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (id, node) in nodes.iter().enumerate() {
            if let NodeKind::Source { topic } = &node.kind {
                let name = match topic {
                    TopicName::External(name) => name.clone(),
                    TopicName::Internal(name) => prefixed(application_id, name),
                };
                groups.entry(find(&mut root, id)).or_default().push(name);
            }
        }
        groups
            .into_values()
            .map(|mut topics| {
                topics.sort();
                topics.dedup();
                topics
            })
            .collect()
    }

    fn topics(&self, pick: impl Fn(&NodeKind) -> Option<String>) -> Vec<String> {
        let mut topics: Vec<String> = self
            .graph
            .nodes
            .iter()
            .filter_map(|n| pick(&n.kind))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Internal topics (without the application-id prefix) the hosts must create.
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        let repartition = self.repartition_topics.iter().map(|name| InternalTopic {
            name: name.clone(),
            kind: InternalTopicKind::Repartition,
        });
        let changelogs = self
            .stores
            .iter()
            .filter(|s| s.logged)
            .map(|s| InternalTopic {
                name: changelog_name(&s.name),
                kind: match s.kind {
                    StoreKind::Window { retention, .. } | StoreKind::Session { retention } => {
                        InternalTopicKind::WindowedChangelog { retention }
                    }
                    StoreKind::KeyValue
                    | StoreKind::TimestampedKeyValue
                    | StoreKind::Ttl { .. } => InternalTopicKind::Changelog,
                },
            });
        repartition.chain(changelogs).collect()
    }

    /// How far behind the wall clock stream time is advanced on wall-clock ticks, when the
    /// topology opted in ([`StreamsBuilder::advance_stream_time_with_wall_clock`]).
    pub fn wall_clock_lag(&self) -> Option<i64> {
        self.wall_clock_lag
    }

    /// A human-readable listing of sources, processors, stores, sinks and internal topics.
    pub fn describe(&self) -> String {
        describe::describe(&self.graph, &self.stores, &self.internal_topics())
    }

    pub(crate) fn instantiate(
        &self,
        application_id: &str,
    ) -> HashMap<Arc<str>, Box<dyn SourceNode>> {
        self.graph.instantiate(application_id)
    }
}

#[cfg(test)]
mod tests {
    use crate::serdes::StringSerde;
    use crate::topology::StreamsBuilder;

    #[test]
    fn sub_topologies_are_cut_at_repartition_topics_and_joined_by_stores_and_topics() {
        let b = StreamsBuilder::new();
        let s = StringSerde;
        // A stream joined with a table: one part, as the join node has both as parents.
        let table = b.table("rows", s, s, "rows");
        let left = b.stream("left", s, s);
        left.join_table(&table, s, |l, r| format!("{l}{r}"))
            .to("joined", s, s);
        // Re-keyed and counted: the count reads its own repartition topic, a part of its own.
        left.group_by(|_, v| v.clone(), s, s).count("counts");
        // A topic read by a second source belongs with its first one.
        b.stream("rows", s, s).to("copy", s, s);
        // An unrelated stream is a part of its own.
        b.stream("other", s, s).to("out", s, s);
        let groups = b.build().source_groups("app");
        let mut groups: Vec<Vec<String>> = groups;
        groups.sort();
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups[0].len(), 1);
        assert!(groups[0][0].starts_with("app-") && groups[0][0].ends_with("-repartition"));
        assert_eq!(groups[1], ["left", "rows"]);
        assert_eq!(groups[2], ["other"]);
    }
}
