//! Interactive queries of a running instance ([`crate::query`]): which task answers for which
//! partition, and where the other partitions live.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::partition::partition_for_key;
use crate::query::{
    locate, GroupMembers, KeyQueryMetadata, PartitionResult, Query, QueryError, QueryFailure,
    StateQueryRequest, StateQueryResult, StreamsMetadata,
};
use crate::serdes::Serde;

use super::standby::Standbys;
use super::thread::Shared;

/// What a query may see of one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// Its stores are being restored from their changelogs.
    Restoring,
    /// It processes, and answers queries.
    Active,
}

/// The states of one stream thread's tasks, kept apart from the task manager so that a query
/// learns that a task restores without waiting for the restore (which holds the manager).
#[derive(Default)]
pub(crate) struct TaskStates(Mutex<BTreeMap<i32, TaskState>>);

impl TaskStates {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, TaskState>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn restoring(&self, partition: i32) {
        self.lock().insert(partition, TaskState::Restoring);
    }

    pub(crate) fn active(&self, partition: i32) {
        self.lock().insert(partition, TaskState::Active);
    }

    pub(crate) fn remove(&self, partition: i32) {
        self.lock().remove(&partition);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn get(&self, partition: i32) -> Option<TaskState> {
        self.lock().get(&partition).copied()
    }
}

/// A handle for interactive queries of a started [`super::KafkaStreams`]: cheap to clone and to
/// move to other threads (an HTTP server's, say); it answers until the instance closes.
#[derive(Clone)]
pub struct Queryable {
    inner: Arc<Inner>,
}

/// What a [`Queryable`] reads: the instance's stores, threads and standbys, and the group.
pub(crate) struct Inner {
    pub(crate) stores: BTreeSet<String>,
    /// The task count (partitions of the inputs).
    pub(crate) partitions: i32,
    pub(crate) threads: Vec<Arc<Shared>>,
    pub(crate) standbys: Option<Arc<Standbys>>,
    /// Present when the instance has an `application_server`.
    pub(crate) members: Option<GroupMembers>,
    /// Standby replicas are configured (on every other instance).
    pub(crate) standbys_on: bool,
    pub(crate) server: Option<String>,
    pub(crate) running: Arc<AtomicBool>,
}

impl Queryable {
    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The task count: partitions `0..n` exist.
    pub fn partition_count(&self) -> i32 {
        self.inner.partitions
    }

    /// This instance's `application_server`, if it has one.
    pub fn application_server(&self) -> Option<&str> {
        self.inner.server.as_deref()
    }

    /// Asks `request` of the tasks of this instance: one result per partition asked.
    ///
    /// # Errors
    /// [`QueryError::NotRunning`] once the instance stopped, or
    /// [`QueryError::Serialization`] when the query's key does not serialize.
    pub fn query<Q: Query>(
        &self,
        request: &StateQueryRequest<Q>,
    ) -> Result<StateQueryResult<Q::Output>, QueryError> {
        let inner = &self.inner;
        if !inner.running.load(Ordering::SeqCst) {
            return Err(QueryError::NotRunning);
        }
        let store = request.store();
        let raw = request.store_query()?;
        let mut results: BTreeMap<i32, PartitionResult<Q::Output>> = BTreeMap::new();
        let mut by_thread: Vec<Vec<i32>> = vec![Vec::new(); inner.threads.len()];
        for partition in request.partitions_to_ask(&raw, inner.partitions) {
            if !inner.stores.contains(store) {
                results.insert(partition, Err(QueryFailure::UnknownStore(store.to_owned())));
                continue;
            }
            let hosted = inner
                .threads
                .iter()
                .enumerate()
                .find_map(|(t, shared)| shared.states.get(partition).map(|s| (t, s)));
            match hosted {
                Some((thread, TaskState::Active)) => by_thread[thread].push(partition),
                Some((_, TaskState::Restoring)) => {
                    results.insert(partition, Err(QueryFailure::Restoring));
                }
                None => {
                    let standby = inner.standbys.as_ref().is_some_and(|s| s.holds(partition));
                    let failure = if standby {
                        QueryFailure::NotActive
                    } else {
                        QueryFailure::NotPresent
                    };
                    results.insert(partition, Err(failure));
                }
            }
        }
        for (thread, partitions) in by_thread.iter().enumerate() {
            if partitions.is_empty() {
                continue;
            }
            let tasks = inner.threads[thread].tasks();
            for &partition in partitions {
                let result = request.complete(tasks.query(partition, store, &raw));
                results.insert(partition, result);
            }
        }
        Ok(StateQueryResult {
            partitions: results,
        })
    }

    /// Every instance of the application that has an `application_server`, with the
    /// partitions it holds now, from the group's assignment.
    ///
    /// # Errors
    /// [`QueryError::Metadata`] when this instance has no `application_server` (it does not
    /// read the group) or the cluster does not answer.
    pub fn all_metadata(&self) -> Result<Vec<StreamsMetadata>, QueryError> {
        let members = self.inner.members.as_ref().ok_or_else(|| {
            QueryError::Metadata("this instance has no application_server".into())
        })?;
        members.instances()
    }

    /// Where `key` of `store` lives: its partition, the instance whose task holds it, and the
    /// instances with a standby of it. `key` is serialized with `serde` and partitioned with
    /// the default partitioner, as the inputs are.
    ///
    /// # Errors
    /// As [`Self::all_metadata`], and [`QueryError::Serialization`] when the key does not
    /// serialize.
    pub fn query_metadata_for_key<K>(
        &self,
        store: &str,
        key: &K,
        serde: &impl Serde<K>,
    ) -> Result<KeyQueryMetadata, QueryError> {
        let bytes = serde
            .serialize(store, key)
            .map_err(|source| QueryError::Serialization {
                store: store.to_owned(),
                source,
            })?;
        let partition = partition_for_key(&bytes, self.inner.partitions);
        Ok(locate(
            &self.all_metadata()?,
            partition,
            self.inner.standbys_on,
        ))
    }
}
