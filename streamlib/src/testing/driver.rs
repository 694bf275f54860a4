//! `TopologyTestDriver`: runs a topology with no broker, deterministically.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ProcessError, TopologyError};
use crate::partition::partition_for_key;
use crate::query::{Query, QueryError, QueryFailure, StateQueryRequest, StateQueryResult};
use crate::record::{RawRecord, Record};
use crate::serdes::Serde;
use crate::state::encoding::split_timestamped;
use crate::state::global::{Applied, GlobalStores};
use crate::state::{ChangelogEntry, RocksDbShared};
use crate::task::{ErrorHandlers, StoreLocation, Task, TaskMetrics, TaskStore};
use crate::topology::{InternalTopicKind, Topology};
use crate::window::millis;

/// How the driver hosts a topology.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Prefix of internal topics and changelogs.
    pub application_id: String,
    /// Partitions of every input (and internal) topic: one task per partition.
    pub partitions: i32,
    /// Where RocksDB stores live; `None` keeps every store in memory.
    pub state_dir: Option<PathBuf>,
    /// Bytes of block cache and write buffers shared by the RocksDB stores.
    pub store_memory_bytes: usize,
    /// Initial wall-clock time in ms.
    pub wall_clock_start: i64,
    /// Error handling.
    pub handlers: ErrorHandlers,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            application_id: "test-app".to_string(),
            partitions: 1,
            state_dir: None,
            store_memory_bytes: 64 << 20,
            wall_clock_start: 0,
            handlers: ErrorHandlers::default(),
        }
    }
}

/// Runs a [`Topology`] on in-process tasks, one per partition, with records routed by
/// Kafka's default partitioner. The tasks are the ones the Kafka runtime hosts.
///
/// Repartition topics are honoured (records re-enter through the partition of their new key),
/// stores are committed after every input record, and each store write is also recorded as a
/// changelog record, readable as the topic [`changelog_topic`](crate::topology::changelog_topic)
/// (`<application.id>-<store>-changelog`).
///
/// ```
/// use streamlib::prelude::*;
/// use streamlib::testing::{DriverConfig, TopologyTestDriver};
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", StringSerde, StringSerde)
///     .map_values(|v| v.len() as i64)
///     .to("out", StringSerde, I64Serde);
/// let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
/// driver.pipe("in", &StringSerde, &StringSerde, "k".into(), "hello".into(), 1_000).unwrap();
/// let out = driver.read_output("out", &StringSerde, &I64Serde).unwrap();
/// assert_eq!(out[0].value, 5);
/// ```
pub struct TopologyTestDriver {
    config: DriverConfig,
    tasks: Vec<Task>,
    globals: GlobalStores,
    repartition_topics: Vec<Arc<str>>,
    outputs: HashMap<Arc<str>, VecDeque<RawRecord>>,
    offsets: HashMap<(Arc<str>, i32), i64>,
    wall_clock: i64,
}

impl TopologyTestDriver {
    /// Opens the stores of every task and initializes its processors.
    pub fn new(topology: Topology, config: DriverConfig) -> Result<Self, TopologyError> {
        let app_state_dir = config
            .state_dir
            .as_ref()
            .map(|d| d.join(&config.application_id));
        let shared = RocksDbShared::new(config.store_memory_bytes);
        let globals = GlobalStores::open(
            topology.global_stores(),
            app_state_dir.as_ref().map(|d| d.join("global")).as_deref(),
            &shared,
        )
        .map_err(|e| TopologyError::Init(e.to_string()))?;
        let location = StoreLocation {
            app_state_dir,
            shared,
            globals: globals.clone(),
        };
        let tasks = (0..config.partitions.max(1))
            .map(|p| {
                Task::new(
                    &topology,
                    &config.application_id,
                    p,
                    &location,
                    config.handlers.clone(),
                    config.wall_clock_start,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let repartition_topics = topology
            .internal_topics()
            .into_iter()
            .filter(|t| t.kind == InternalTopicKind::Repartition)
            .map(|t| Arc::from(t.topic(&config.application_id)))
            .collect();
        let mut driver = Self {
            globals,
            wall_clock: config.wall_clock_start,
            config,
            tasks,
            repartition_topics,
            outputs: HashMap::new(),
            offsets: HashMap::new(),
        };
        for p in 0..driver.tasks.len() {
            driver.tasks[p]
                .init()
                .map_err(|e| TopologyError::Init(e.to_string()))?;
            driver
                .drain(p)
                .map_err(|e| TopologyError::Init(e.to_string()))?;
        }
        Ok(driver)
    }

    /// Serializes and processes one record, and everything it causes downstream.
    pub fn pipe<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key_serde: &dyn Serde<K>,
        value_serde: &dyn Serde<V>,
        key: K,
        value: V,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let serialization = ProcessError::serialization(topic);
        let key = key_serde
            .serialize_nullable(topic, &key)
            .map_err(&serialization)?;
        let value = value_serde
            .serialize_nullable(topic, &value)
            .map_err(&serialization)?;
        self.pipe_raw(topic, key, value, timestamp)
    }

    /// Processes one already serialized record (e.g. malformed bytes).
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        if self.globals.reads(topic) {
            return self.update_global(topic, key, value, timestamp);
        }
        let mut queue = VecDeque::from([RawRecord {
            topic: Arc::from(topic),
            partition: None,
            offset: -1,
            key,
            value,
            timestamp,
            headers: Vec::new(),
        }]);
        while let Some(mut record) = queue.pop_front() {
            let partition = self.partition_of(&record);
            record.partition = Some(partition);
            record.offset = self.next_offset(&record.topic, partition);
            self.tasks[partition as usize].process(&record)?;
            queue.extend(self.drain(partition as usize)?);
        }
        Ok(())
    }

    /// Applies a record of a global table's topic at once, as the global thread would.
    fn update_global(
        &mut self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let topic = Arc::from(topic);
        let offset = self.next_offset(&topic, 0);
        let record = (key.as_deref(), value.as_deref(), timestamp);
        if let Applied::Skipped(reason) = self.globals.apply(&topic, 0, offset, record)? {
            tracing::warn!(%topic, offset, %reason, "skipping a record of a global table");
        }
        self.globals.commit()?;
        Ok(())
    }

    /// Advances the wall clock: fires wall-clock punctuators of every task and, when the
    /// topology opted in, advances their stream time.
    pub fn advance_wall_clock(&mut self, by: Duration) -> Result<(), ProcessError> {
        self.wall_clock = self.wall_clock.saturating_add(millis(by));
        for p in 0..self.tasks.len() {
            self.tasks[p].advance_wall_clock(self.wall_clock)?;
            let repartitioned = self.drain(p)?;
            for record in repartitioned {
                self.pipe_raw(&record.topic, record.key, record.value, record.timestamp)?;
            }
        }
        Ok(())
    }

    /// Takes the records written to `topic` so far, deserialized, in production order.
    pub fn read_output<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key_serde: &dyn Serde<K>,
        value_serde: &dyn Serde<V>,
    ) -> Result<Vec<Record<K, V>>, crate::serdes::SerdeError> {
        self.read_raw(topic)
            .into_iter()
            .map(|r| {
                Ok(Record {
                    key: key_serde.deserialize_nullable(topic, r.key.as_deref())?,
                    value: value_serde.deserialize_nullable(topic, r.value.as_deref())?,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            })
            .collect()
    }

    /// Takes the raw records written to `topic` so far.
    pub fn read_raw(&mut self, topic: &str) -> Vec<RawRecord> {
        self.outputs
            .get_mut(topic)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Committed contents of a key-value, window, session or TTL store across all tasks, as
    /// raw `(key, value)` pairs of its byte layout, ordered by key.
    pub fn store_entries(
        &mut self,
        store: &str,
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, ProcessError> {
        let mut all = BTreeMap::new();
        for task in &mut self.tasks {
            if let Some(TaskStore::KeyValue(kv) | TaskStore::Timestamped(kv)) =
                task.stores().get_mut(store)
            {
                all.extend(kv.prefix_scan(&[])?);
            }
        }
        Ok(all)
    }

    /// The value of `key` in key-value store `store` (without its timestamp, for a table's or
    /// an aggregation's), looked up in the task owning the key.
    pub fn store_get<K: 'static, V: 'static>(
        &mut self,
        store: &str,
        key_serde: &dyn Serde<K>,
        value_serde: &dyn Serde<V>,
        key: &K,
    ) -> Result<Option<V>, ProcessError> {
        let serde_error = ProcessError::serialization(store);
        let bytes = key_serde.serialize(store, key).map_err(&serde_error)?;
        let partition = partition_for_key(&bytes, self.config.partitions.max(1)) as usize;
        let stores = self.tasks[partition].stores();
        let timestamped = matches!(stores.get(store), Some(TaskStore::Timestamped(_)));
        let Some(found) = stores.key_value(store)?.get(&bytes)? else {
            return Ok(None);
        };
        let value = match timestamped {
            true => split_timestamped(store, &found)?.1,
            false => &found,
        };
        value_serde
            .deserialize(store, value)
            .map(Some)
            .map_err(serde_error)
    }

    /// Asks `request` of the tasks, as [`crate::runtime::KafkaStreams::query`] asks a running
    /// instance's: one result per partition asked, each with its store's position.
    ///
    /// # Errors
    /// [`QueryError::Serialization`] when the query's key does not serialize.
    pub fn query<Q: Query>(
        &self,
        request: &StateQueryRequest<Q>,
    ) -> Result<StateQueryResult<Q::Output>, QueryError> {
        let raw = request.store_query()?;
        let partitions = request
            .partitions_to_ask(&raw, self.tasks.len() as i32)
            .into_iter()
            .map(|partition| {
                let task = usize::try_from(partition)
                    .ok()
                    .and_then(|p| self.tasks.get(p));
                let read = match task {
                    Some(task) => task.query(request.store(), &raw, false),
                    None => Err(QueryFailure::NotPresent),
                };
                (partition, request.complete(read))
            })
            .collect();
        Ok(StateQueryResult { partitions })
    }

    /// Counters summed over all tasks.
    pub fn metrics(&self) -> TaskMetrics {
        let mut sum = TaskMetrics::default();
        for task in &self.tasks {
            sum.add(task.metrics());
        }
        sum
    }

    /// Stream time of the task of `partition`.
    pub fn stream_time(&self, partition: i32) -> i64 {
        self.tasks[partition as usize].stream_time()
    }

    /// Closes every task's processors.
    pub fn close(mut self) -> Result<(), ProcessError> {
        for task in &mut self.tasks {
            task.close()?;
        }
        Ok(())
    }

    fn partition_of(&self, record: &RawRecord) -> i32 {
        match &record.key {
            Some(key) => partition_for_key(key, self.config.partitions.max(1)),
            None => 0,
        }
    }

    fn next_offset(&mut self, topic: &Arc<str>, partition: i32) -> i64 {
        let next = self.offsets.entry((topic.clone(), partition)).or_insert(0);
        *next += 1;
        *next - 1
    }

    /// Drains the task, commits its stores at the offsets their changelog records get here,
    /// files its outputs and changelog records, and returns the records it wrote to
    /// repartition topics (to be processed next).
    fn drain(&mut self, p: usize) -> Result<Vec<RawRecord>, ProcessError> {
        let partition = p as i32;
        let drained = self.tasks[p].drain();
        let changelogs: Vec<(Arc<str>, i64, Vec<ChangelogEntry>)> = drained
            .changelog
            .into_iter()
            .map(|(topic, entries)| {
                let topic: Arc<str> = Arc::from(topic);
                let first = self
                    .offsets
                    .get(&(topic.clone(), partition))
                    .copied()
                    .unwrap_or(0);
                (topic, first, entries)
            })
            .collect();
        let written: HashMap<&str, i64> = changelogs
            .iter()
            .map(|(topic, first, entries)| (&**topic, first + entries.len() as i64 - 1))
            .collect();
        self.tasks[p].commit(|topic| written.get(topic).copied())?;
        for (topic, first, entries) in changelogs {
            self.offsets
                .insert((topic.clone(), partition), first + entries.len() as i64);
            let queue = self.outputs.entry(topic.clone()).or_default();
            for (offset, entry) in (first..).zip(entries) {
                queue.push_back(RawRecord {
                    topic: topic.clone(),
                    partition: Some(partition),
                    offset,
                    key: Some(entry.key),
                    value: entry.value,
                    timestamp: self.wall_clock,
                    headers: Vec::new(),
                });
            }
        }
        let mut repartitioned = Vec::new();
        for record in drained.outputs {
            if self.repartition_topics.contains(&record.topic) {
                repartitioned.push(record);
            } else {
                self.outputs
                    .entry(record.topic.clone())
                    .or_default()
                    .push_back(record);
            }
        }
        Ok(repartitioned)
    }
}
