//! Interactive queries: reads of a running instance's stores, partition by partition, in the
//! shape of Kafka Streams' IQv2 (KIP-796).
//!
//! [`crate::runtime::KafkaStreams::query`] sends a [`StateQueryRequest`] — a store, a typed
//! [`Query`] ([`KeyQuery`], [`RangeQuery`], [`WindowKeyQuery`], [`WindowRangeQuery`],
//! [`SessionQuery`]), the partitions to ask and a [`PositionBound`] — to the tasks of the
//! instance, and returns one result per partition: the answer with the [`Position`] of the
//! store it came from, or a typed [`QueryFailure`] saying why this instance cannot answer for
//! that partition (not here, only a standby here, restoring, behind the bound). A partition
//! never answers with data it does not have: an empty answer is a true "no such key".
//!
//! Under exactly-once a query reads the store's *committed* state, with the position of the
//! last commit, so it never shows a write whose transaction may still abort; under
//! at-least-once it reads everything the task has processed (ADR-046).
//!
//! [`crate::runtime::KafkaStreams::query_metadata_for_key`] names the instance
//! (`application_server`) that owns a key, from the group's assignment.
//!
//! ```no_run
//! use streamlib::query::{KeyQuery, StateQueryRequest};
//! use streamlib::serdes::{I64Serde, StringSerde};
//! # fn run(app: &streamlib::runtime::KafkaStreams) -> Result<(), streamlib::query::QueryError> {
//! let query = KeyQuery::with_key("bitcoin".to_string(), StringSerde, I64Serde);
//! let result = app.query(&StateQueryRequest::in_store("counts").with_query(query))?;
//! match result.only_partition_result() {
//!     Some(Ok(answer)) => println!("{:?} as of {:?}", answer.value, answer.position),
//!     Some(Err(failure)) => println!("ask again later: {failure}"),
//!     None => println!("no partition asked"),
//! }
//! # Ok(())
//! # }
//! ```

pub(crate) mod execute;
#[cfg(feature = "http")]
pub mod http;
mod kinds;
mod metadata;
mod position;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::partition::partition_for_key;

pub use kinds::{
    KeyQuery, Query, RangeQuery, RawQuery, SessionQuery, WindowKeyQuery, WindowRangeQuery,
};
pub(crate) use metadata::{client_id as metadata_client_id, locate, GroupMembers};
pub use metadata::{KeyQueryMetadata, StreamsMetadata};
pub use position::{Position, PositionBound};

/// A query in the store's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreQuery {
    /// One key of a key-value or TTL store.
    Key(Vec<u8>),
    /// Keys `from..=to` of a key-value store (open where `None`), in byte order.
    Range {
        /// Lowest key, inclusive.
        from: Option<Vec<u8>>,
        /// Highest key, inclusive.
        to: Option<Vec<u8>>,
    },
    /// One key's windows starting in `from_start..=to_start`.
    WindowKey {
        /// The key.
        key: Vec<u8>,
        /// Earliest window start (ms).
        from_start: i64,
        /// Latest window start (ms).
        to_start: i64,
    },
    /// Every key's windows starting in `from_start..=to_start`.
    WindowRange {
        /// Earliest window start (ms).
        from_start: i64,
        /// Latest window start (ms).
        to_start: i64,
    },
    /// One key's sessions.
    Session {
        /// The key.
        key: Vec<u8>,
    },
}

impl StoreQuery {
    /// The key the query is about, when it is about one key: its partition is the only one
    /// that can answer.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Self::Key(key) | Self::WindowKey { key, .. } | Self::Session { key } => Some(key),
            Self::Range { .. } | Self::WindowRange { .. } => None,
        }
    }
}

/// A store's answer in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawAnswer {
    /// A key's value, or `None` when the key is not in the store.
    Value(Option<Vec<u8>>),
    /// Key-value entries in key order.
    Entries(Vec<(Vec<u8>, Vec<u8>)>),
    /// Windows as `(key, start, value)`.
    Windows(Vec<(Vec<u8>, i64, Vec<u8>)>),
    /// Sessions as `(key, start, end, value)`.
    Sessions(Vec<(Vec<u8>, i64, i64, Vec<u8>)>),
}

/// Why one partition did not answer (Kafka Streams' `FailureReason`, plus `Restoring`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum QueryFailure {
    /// No task of this instance holds the partition (another instance does, or nobody does
    /// during a rebalance).
    #[error("the partition is not present on this instance")]
    NotPresent,
    /// This instance keeps only a standby replica of the partition, which queries do not read.
    #[error("the partition is only a standby on this instance")]
    NotActive,
    /// The partition's task is restoring its stores from their changelogs.
    #[error("the partition is restoring its stores")]
    Restoring,
    /// The store has not read as far as the request's bound.
    #[error("the store is at {position:?}, behind the bound {bound:?}")]
    NotUpToBound {
        /// Where the store is.
        position: Position,
        /// What the request asked for.
        bound: Position,
    },
    /// The topology has no store of that name.
    #[error("no store named `{0}`")]
    UnknownStore(String),
    /// The store is of a kind that does not answer this query.
    #[error("a {kind} store does not answer this query")]
    UnknownQueryType {
        /// The store's kind.
        kind: String,
    },
    /// The store failed while reading.
    #[error("the store failed: {0}")]
    StoreException(String),
    /// The stored bytes do not deserialize with the query's serdes.
    #[error("the stored bytes do not deserialize: {0}")]
    Deserialization(String),
}

/// One partition's answer and the position of the store that gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionAnswer<T> {
    /// The answer.
    pub value: T,
    /// The offsets of the inputs the store had read when it answered.
    pub position: Position,
}

/// One partition's outcome.
pub type PartitionResult<T> = Result<PartitionAnswer<T>, QueryFailure>;

/// What a query got from every partition it asked.
#[derive(Clone, Debug, PartialEq)]
pub struct StateQueryResult<T> {
    /// The outcome per partition asked.
    pub partitions: BTreeMap<i32, PartitionResult<T>>,
}

impl<T> StateQueryResult<T> {
    /// The outcome of the only partition asked (a key query asks the key's partition), or
    /// `None` when the query asked none or several.
    pub fn only_partition_result(self) -> Option<PartitionResult<T>> {
        if self.partitions.len() != 1 {
            return None;
        }
        self.partitions.into_values().next()
    }

    /// The answers of every partition in partition order, or the first failure with its
    /// partition: what a range over the whole store needs, since a missing partition would
    /// make it wrong rather than short.
    pub fn all_answers(self) -> Result<Vec<PartitionAnswer<T>>, (i32, QueryFailure)> {
        self.partitions
            .into_iter()
            .map(|(p, result)| result.map_err(|f| (p, f)))
            .collect()
    }

    /// The merged position of every partition that answered.
    pub fn position(&self) -> Position {
        let mut position = Position::default();
        for answer in self.partitions.values().flatten() {
            position.merge(&answer.position);
        }
        position
    }
}

/// A query of one store: which partitions to ask and how fresh the answers must be.
pub struct StateQueryRequest<Q> {
    store: String,
    query: Q,
    partitions: Option<BTreeSet<i32>>,
    bound: PositionBound,
}

/// The first step of a [`StateQueryRequest`]: the store.
pub struct InStore(String);

impl InStore {
    /// The request asking `query`.
    pub fn with_query<Q: Query>(self, query: Q) -> StateQueryRequest<Q> {
        StateQueryRequest {
            store: self.0,
            query,
            partitions: None,
            bound: PositionBound::Unbounded,
        }
    }
}

impl StateQueryRequest<()> {
    /// A request to the store `name`.
    pub fn in_store(name: &str) -> InStore {
        InStore(name.to_owned())
    }
}

impl<Q: Query> StateQueryRequest<Q> {
    /// Asks only these partitions. Without it a query about one key asks that key's
    /// partition (by the default partitioner, as the input topics are partitioned), and any
    /// other query asks every partition.
    pub fn with_partitions(mut self, partitions: impl IntoIterator<Item = i32>) -> Self {
        self.partitions = Some(partitions.into_iter().collect());
        self
    }

    /// Answers must come from a store at least at `bound`.
    pub fn with_position_bound(mut self, bound: PositionBound) -> Self {
        self.bound = bound;
        self
    }

    /// The store asked.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The query in the store's bytes.
    pub(crate) fn store_query(&self) -> Result<StoreQuery, QueryError> {
        self.query
            .to_store_query(&self.store)
            .map_err(|source| QueryError::Serialization {
                store: self.store.clone(),
                source,
            })
    }

    /// The partitions to ask of `count`: the ones given, else a key's own, else all.
    pub(crate) fn partitions_to_ask(&self, query: &StoreQuery, count: i32) -> BTreeSet<i32> {
        match (&self.partitions, query.key()) {
            (Some(partitions), _) => partitions.clone(),
            (None, Some(key)) => BTreeSet::from([partition_for_key(key, count)]),
            (None, None) => (0..count).collect(),
        }
    }

    /// One partition's outcome from what its task read: refused when behind the bound,
    /// else decoded.
    pub(crate) fn complete(
        &self,
        read: Result<(RawAnswer, Position), QueryFailure>,
    ) -> PartitionResult<Q::Output> {
        let (answer, position) = read?;
        if let PositionBound::AtLeast(bound) = &self.bound {
            if !position.dominates(bound) {
                return Err(QueryFailure::NotUpToBound {
                    position,
                    bound: bound.clone(),
                });
            }
        }
        Ok(PartitionAnswer {
            value: self.query.decode(&self.store, answer)?,
            position,
        })
    }
}

/// Why a request could not be asked at all (each partition's own failures are in the result).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The instance is not running (not started, stopped, or closed).
    #[error("the instance is not running")]
    NotRunning,
    /// The query's key could not be serialized.
    #[error("serializing the query for store `{store}`: {source}")]
    Serialization {
        /// The store.
        store: String,
        /// The serde's error.
        #[source]
        source: crate::serdes::SerdeError,
    },
    /// The group's assignment could not be read from the cluster.
    #[error("reading the group's assignment: {0}")]
    Metadata(String),
}
