//! Standby replicas: warm copies, kept from the changelogs, of the persistent stores of every
//! task this instance does not run (Kafka Streams' `StandbyTask`, placed "on every other
//! instance", ADR-043).
//!
//! A standby store lives where the active task's store would (`<state>/<app>/<task>/<store>`),
//! and every batch of changelog records it applies is written to RocksDB atomically with its
//! offset as the store's checkpoint. When the group moves a task here, the stream thread that
//! gets it first [`Standbys::release`]s the standby (its stores close) and opens the stores
//! itself: restore then starts after the standby's checkpoint and replays only the records the
//! standby had not applied yet. When a task leaves this instance, [`Standbys::adopt`] makes it
//! a standby again, from the checkpoint its last commit wrote.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;
use crate::state::RestoreRecord;
use crate::task::{StoreLocation, TaskStores};
use crate::topology::{changelog_topic, StoreBackend, StoreSpec, Topology};

use super::restore::restore_record;
use super::{RuntimeMetrics, StreamsConfig};

/// How long one poll for changelog records waits.
const POLL: Duration = Duration::from_millis(50);
/// Most changelog records applied in one RocksDB write batch per store.
const BATCH: usize = 1_000;

/// The standby tasks of one instance, shared by its stream threads (which release and adopt
/// tasks) and its standby thread (which applies changelog records to them).
pub(crate) struct Standbys {
    state: Mutex<StandbyState>,
    /// The logged persistent stores: the ones a standby keeps.
    specs: Vec<StoreSpec>,
    /// Their changelog topics, to the store names.
    changelogs: BTreeMap<String, String>,
    location: StoreLocation,
    /// Task count (the partition count of the inputs).
    tasks: i32,
    metrics: Arc<RuntimeMetrics>,
}

#[derive(Default)]
struct StandbyState {
    /// Tasks some stream thread of this instance runs (or is opening).
    active: BTreeSet<i32>,
    /// Open standby tasks.
    standbys: BTreeMap<i32, TaskStores>,
    /// `active` changed since the standby consumer was last assigned.
    changed: bool,
}

impl Standbys {
    /// The standbys of an instance running `topology` with `tasks` tasks, or `None` when it
    /// keeps none: no standby replicas configured, no state directory, or no logged
    /// persistent store.
    pub(crate) fn new(
        topology: &Topology,
        config: &StreamsConfig,
        location: &StoreLocation,
        tasks: i32,
        metrics: Arc<RuntimeMetrics>,
    ) -> Option<Self> {
        let specs: Vec<StoreSpec> = topology
            .stores()
            .iter()
            .filter(|s| s.logged && s.backend == StoreBackend::RocksDb)
            .cloned()
            .collect();
        if config.num_standby_replicas == 0 || specs.is_empty() || location.app_state_dir.is_none()
        {
            return None;
        }
        let changelogs = specs
            .iter()
            .map(|s| {
                (
                    changelog_topic(&config.application_id, &s.name),
                    s.name.clone(),
                )
            })
            .collect();
        Some(Self {
            state: Mutex::new(StandbyState {
                changed: true,
                ..StandbyState::default()
            }),
            specs,
            changelogs,
            location: location.clone(),
            tasks,
            metrics,
        })
    }

    fn state(&self) -> MutexGuard<'_, StandbyState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Task `partition` becomes active here: its standby (if open) closes, so that the stream
    /// thread can open its stores and restore from the standby's checkpoint on.
    pub(crate) fn release(&self, partition: i32) {
        let mut state = self.state();
        state.active.insert(partition);
        if state.standbys.remove(&partition).is_some() {
            tracing::info!(partition, "standby handed over to the active task");
        }
        state.changed = true;
    }

    /// Whether a standby of task `partition` is open here.
    pub(crate) fn holds(&self, partition: i32) -> bool {
        self.state().standbys.contains_key(&partition)
    }

    /// Task `partition` is no longer active here (its stores are closed): it becomes a standby.
    pub(crate) fn adopt(&self, partition: i32) {
        let mut state = self.state();
        state.active.remove(&partition);
        state.changed = true;
    }

    /// Applies changelog records to the standby tasks until `running` is cleared. A store
    /// failure stops it (and, through `running`, the instance) with the error.
    pub(crate) fn run(
        &self,
        config: &StreamsConfig,
        running: &AtomicBool,
    ) -> Result<(), StreamsError> {
        let consumer: BaseConsumer = config
            .client(&[
                ("group.id", &format!("{}-standby", config.application_id)),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
            ])
            .create()
            .map_err(StreamsError::kafka("creating the standby consumer"))?;
        let result = (|| {
            while running.load(Ordering::Relaxed) {
                {
                    let mut state = self.state();
                    if state.changed {
                        self.reassign(&mut state, &consumer)?;
                    }
                }
                let batch = poll_batch(&consumer);
                self.apply(batch)?;
            }
            Ok(())
        })();
        if result.is_err() {
            running.store(false, Ordering::SeqCst);
        }
        self.state().standbys.clear();
        result
    }

    /// Opens a standby for every task not active here, closes the ones that became active,
    /// and points the consumer at each standby store's changelog partition, after its
    /// checkpoint.
    fn reassign(
        &self,
        state: &mut StandbyState,
        consumer: &BaseConsumer,
    ) -> Result<(), StreamsError> {
        state.changed = false;
        let active = state.active.clone();
        state.standbys.retain(|p, _| !active.contains(p));
        for partition in (0..self.tasks).filter(|p| !active.contains(p)) {
            if let Entry::Vacant(slot) = state.standbys.entry(partition) {
                slot.insert(TaskStores::open(&self.specs, partition, &self.location)?);
            }
        }
        let mut assignment = TopicPartitionList::new();
        for (partition, stores) in &mut state.standbys {
            for (topic, name) in &self.changelogs {
                let Some(store) = stores.get_mut(name) else {
                    continue;
                };
                let from = store
                    .as_state_store()
                    .checkpoint()
                    .map_or(Offset::Beginning, |c| Offset::Offset(c + 1));
                assignment
                    .add_partition_offset(topic, *partition, from)
                    .map_err(StreamsError::kafka("assigning a standby changelog"))?;
            }
        }
        consumer
            .assign(&assignment)
            .map_err(StreamsError::kafka("assigning the standby changelogs"))?;
        tracing::info!(standbys = ?state.standbys.keys().collect::<Vec<_>>(), "standby tasks");
        Ok(())
    }

    /// Applies `batch` to the standbys still open; records of a task released meanwhile are
    /// dropped (the active task restores them from the changelog).
    fn apply(
        &self,
        batch: BTreeMap<(String, i32), Vec<RestoreRecord>>,
    ) -> Result<(), StreamsError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        for ((topic, partition), records) in batch {
            let (Some(stores), Some(name)) = (
                state.standbys.get_mut(&partition),
                self.changelogs.get(&topic),
            ) else {
                continue;
            };
            if let Some(store) = stores.get_mut(name) {
                store.as_state_store().restore(&records)?;
                self.metrics
                    .standby_records
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Changelog records polled within [`POLL`] (at most [`BATCH`]), by topic and partition.
fn poll_batch(consumer: &BaseConsumer) -> BTreeMap<(String, i32), Vec<RestoreRecord>> {
    let mut batch: BTreeMap<(String, i32), Vec<RestoreRecord>> = BTreeMap::new();
    let deadline = Instant::now() + POLL;
    let mut count = 0;
    while count < BATCH {
        let wait = deadline.saturating_duration_since(Instant::now());
        match consumer.poll(wait) {
            Some(Ok(message)) => {
                batch
                    .entry((message.topic().to_string(), message.partition()))
                    .or_default()
                    .push(restore_record(&message));
                count += 1;
            }
            Some(Err(error)) => tracing::warn!(%error, "standby consumer"),
            None => break,
        }
        if wait.is_zero() {
            break;
        }
    }
    batch
}
