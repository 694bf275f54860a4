//! A task: the node tree and stores of one partition. The `TopologyTestDriver` and the Kafka
//! runtime both host tasks, so a topology behaves the same under test and in production.
//!
//! A host moves a task through one cycle per input (or punctuation): it hands the task a
//! record, [`Task::drain`]s what the task produced (outputs and changelog records), makes those
//! durable its own way (the driver files them in memory, the runtime produces them to Kafka),
//! and at its commit calls [`Task::commit`] with the offset of each store's last durable
//! changelog record. Both hosts commit through that one method, so a store's checkpoint means
//! the same under test and in production.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{ErrorAction, ProcessError, TopologyError};
use crate::processor::node::{NodeId, SourceNode};
use crate::processor::{PunctuationType, PunctuatorId};
use crate::query::{execute, Position, QueryFailure, RawAnswer, StoreQuery};
use crate::record::{RawRecord, RecordMetadata};
use crate::state::global::GlobalStores;
use crate::state::{
    memory_store, rocksdb_store, ChangelogEntry, KeyValueStore, RocksDbShared, SessionStore,
    StateError, StateStore, TtlKeyValueStore, WindowStore,
};
use crate::topology::{
    changelog_topic, StoreBackend, StoreKind, StoreSpec, Topology, WindowLayout,
};

/// Counters of one task, read by the driver and exported by the runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Records handed to the task.
    pub consumed: u64,
    /// Records processed without error.
    pub processed: u64,
    /// Records dropped because their window had closed.
    pub late_dropped: u64,
    /// Records dropped for any other reason (errors handled by log-and-continue included).
    pub dropped: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
}

impl TaskMetrics {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &TaskMetrics) {
        self.consumed += other.consumed;
        self.processed += other.processed;
        self.late_dropped += other.late_dropped;
        self.dropped += other.dropped;
        self.dead_lettered += other.dead_lettered;
    }
}

/// How a task treats records that fail.
#[derive(Clone, Debug, Default)]
pub struct ErrorHandlers {
    /// Records whose key or value cannot be deserialized.
    pub deserialization: ErrorAction,
    /// Records a processor or sink fails on.
    pub processing: ErrorAction,
    /// Output records the broker refuses for a reason of their own (timestamp out of its
    /// bounds, too large, invalid), under both guarantees: `DeadLetter` sends the refused
    /// record to the dead-letter topic, `LogAndContinue` drops and counts it, `Fail` stops the
    /// instance. Under exactly-once the transaction holding it is aborted and redone with the
    /// record handed to this handler instead of the producer. Failures of the cluster
    /// (timeouts, lost coordinator, fencing) never reach this handler.
    pub production: ErrorAction,
    /// Topic for [`ErrorAction::DeadLetter`].
    pub dead_letter_topic: Option<String>,
}

/// Where stores of tasks are opened.
#[derive(Clone)]
pub struct StoreLocation {
    /// `<state.dir>/<application.id>`; persistent stores live in `<this>/<task>/<store>`.
    pub app_state_dir: Option<PathBuf>,
    /// Block cache and write buffers shared by every RocksDB store of the process.
    pub shared: RocksDbShared,
    /// The instance's global stores, which every task reads.
    pub(crate) globals: GlobalStores,
}

pub(crate) enum TaskStore {
    KeyValue(Box<dyn KeyValueStore>),
    /// A key-value store of [`StoreKind::TimestampedKeyValue`] values.
    Timestamped(Box<dyn KeyValueStore>),
    Window(WindowStore, WindowLayout),
    Session(SessionStore),
    Ttl(TtlKeyValueStore),
}

impl TaskStore {
    pub(crate) fn as_state_store(&mut self) -> &mut dyn StateStore {
        match self {
            TaskStore::KeyValue(s) | TaskStore::Timestamped(s) => s.as_mut(),
            TaskStore::Window(s, _) => s,
            TaskStore::Session(s) => s,
            TaskStore::Ttl(s) => s,
        }
    }
}

/// The stores of one task, by name.
#[derive(Default)]
pub(crate) struct TaskStores {
    by_name: HashMap<String, TaskStore>,
}

fn unknown(name: &str, kind: &'static str) -> ProcessError {
    ProcessError::UnknownStore {
        name: name.to_string(),
        kind,
    }
}

impl TaskStores {
    pub(crate) fn open(
        specs: &[StoreSpec],
        partition: i32,
        location: &StoreLocation,
    ) -> Result<Self, TopologyError> {
        let mut by_name = HashMap::new();
        for spec in specs {
            let open_error = |source| TopologyError::OpenStore {
                store: spec.name.clone(),
                task: partition,
                source,
            };
            let kv = match (&spec.backend, &location.app_state_dir) {
                (StoreBackend::RocksDb, Some(dir)) => {
                    let path = dir.join(partition.to_string()).join(&spec.name);
                    rocksdb_store(&spec.name, &path, &location.shared, spec.logged)
                        .map_err(open_error)?
                }
                _ => memory_store(&spec.name, spec.logged),
            };
            let store = match spec.kind {
                StoreKind::KeyValue => TaskStore::KeyValue(kv),
                StoreKind::TimestampedKeyValue => TaskStore::Timestamped(kv),
                StoreKind::Window { layout, .. } => TaskStore::Window(WindowStore::new(kv), layout),
                StoreKind::Session { .. } => TaskStore::Session(SessionStore::new(kv)),
                StoreKind::Ttl { ttl } => TaskStore::Ttl(TtlKeyValueStore::new(kv, ttl)),
            };
            by_name.insert(spec.name.clone(), store);
        }
        Ok(Self { by_name })
    }

    pub(crate) fn key_value(&mut self, name: &str) -> Result<&mut dyn KeyValueStore, ProcessError> {
        match self.by_name.get_mut(name) {
            Some(TaskStore::KeyValue(s) | TaskStore::Timestamped(s)) => Ok(s.as_mut()),
            _ => Err(unknown(name, "key-value")),
        }
    }

    pub(crate) fn window(&mut self, name: &str) -> Result<&mut WindowStore, ProcessError> {
        match self.by_name.get_mut(name) {
            Some(TaskStore::Window(s, _)) => Ok(s),
            _ => Err(unknown(name, "window")),
        }
    }

    pub(crate) fn session(&mut self, name: &str) -> Result<&mut SessionStore, ProcessError> {
        match self.by_name.get_mut(name) {
            Some(TaskStore::Session(s)) => Ok(s),
            _ => Err(unknown(name, "session")),
        }
    }

    pub(crate) fn ttl(&mut self, name: &str) -> Result<&mut TtlKeyValueStore, ProcessError> {
        match self.by_name.get_mut(name) {
            Some(TaskStore::Ttl(s)) => Ok(s),
            _ => Err(unknown(name, "ttl")),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TaskStore> {
        self.by_name.get(name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut TaskStore> {
        self.by_name.get_mut(name)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut TaskStore)> {
        self.by_name.iter_mut()
    }
}

struct Scheduled {
    node: NodeId,
    id: PunctuatorId,
    interval: i64,
    kind: PunctuationType,
    next: Option<i64>,
}

/// The part of a task every node of it may touch while a record is processed.
pub(crate) struct TaskContext {
    pub(crate) partition: i32,
    pub(crate) stream_time: i64,
    pub(crate) wall_clock: i64,
    pub(crate) metadata: Option<RecordMetadata>,
    pub(crate) stores: TaskStores,
    pub(crate) globals: GlobalStores,
    pub(crate) outputs: Vec<RawRecord>,
    pub(crate) metrics: TaskMetrics,
    punctuators: Vec<Scheduled>,
}

impl TaskContext {
    pub(crate) fn schedule(
        &mut self,
        node: NodeId,
        interval: i64,
        kind: PunctuationType,
    ) -> PunctuatorId {
        let id = PunctuatorId(self.punctuators.len());
        let now = match kind {
            PunctuationType::StreamTime => {
                (self.stream_time != i64::MIN).then_some(self.stream_time)
            }
            PunctuationType::WallClockTime => Some(self.wall_clock),
        };
        self.punctuators.push(Scheduled {
            node,
            id,
            interval,
            kind,
            next: now.map(|t| t.saturating_add(interval)),
        });
        id
    }

    /// Advances stream time to `t` if `t` is later.
    pub(crate) fn observe_time(&mut self, t: i64) {
        if t > self.stream_time {
            self.stream_time = t;
        }
    }

    /// Punctuators of `kind` due at `now`; their next due time moves past `now`.
    fn due(&mut self, kind: PunctuationType, now: i64) -> Vec<(NodeId, PunctuatorId)> {
        let mut due = Vec::new();
        for p in self.punctuators.iter_mut().filter(|p| p.kind == kind) {
            match p.next {
                None => p.next = Some(now.saturating_add(p.interval)),
                Some(next) if now >= next => {
                    due.push((p.node, p.id));
                    let skipped = (now - next) / p.interval + 1;
                    p.next = Some(next.saturating_add(skipped.saturating_mul(p.interval)));
                }
                Some(_) => {}
            }
        }
        due
    }
}

/// What a task produced since its last [`Task::drain`].
pub(crate) struct Drained {
    /// Output, repartition and dead-letter records, in production order.
    pub(crate) outputs: Vec<RawRecord>,
    /// The changelog records of each store that was written, by changelog topic, in write order.
    pub(crate) changelog: Vec<(String, Vec<ChangelogEntry>)>,
}

/// The node tree and stores of one partition.
pub(crate) struct Task {
    application_id: String,
    /// Stores whose changelog is a source topic (tables), with that topic.
    source_changelogs: HashMap<String, String>,
    sources: HashMap<Arc<str>, Box<dyn SourceNode>>,
    ctx: TaskContext,
    handlers: ErrorHandlers,
    wall_clock_lag: Option<i64>,
    /// The last input offset processed, per topic and partition: what the stores reflect.
    position: Position,
    /// `position` at the last commit: what the committed state of the stores reflects.
    committed_position: Position,
}

impl Task {
    /// Builds the task for `partition`, opens its stores and initializes its processors.
    pub(crate) fn new(
        topology: &Topology,
        application_id: &str,
        partition: i32,
        location: &StoreLocation,
        handlers: ErrorHandlers,
        wall_clock: i64,
    ) -> Result<Self, TopologyError> {
        let stores = TaskStores::open(topology.stores(), partition, location)?;
        let ctx = TaskContext {
            partition,
            stream_time: i64::MIN,
            wall_clock,
            metadata: None,
            stores,
            globals: location.globals.clone(),
            outputs: Vec::new(),
            metrics: TaskMetrics::default(),
            punctuators: Vec::new(),
        };
        let source_changelogs = topology
            .stores()
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.source.as_ref()?.topic.clone())))
            .collect();
        Ok(Self {
            application_id: application_id.to_string(),
            sources: topology.instantiate(application_id),
            source_changelogs,
            ctx,
            handlers,
            wall_clock_lag: topology.wall_clock_lag(),
            position: Position::default(),
            committed_position: Position::default(),
        })
    }

    /// Sets where the task starts from: its stores (committed and restored) reflect every
    /// input record up to `position`.
    pub(crate) fn start_at(&mut self, position: Position) {
        self.committed_position = position.clone();
        self.position = position;
    }

    /// The offset after the last record of `topic` this task processed (or started after).
    pub(crate) fn next_offset(&self, topic: &str) -> Option<i64> {
        self.position
            .offset(topic, self.ctx.partition)
            .map(|offset| offset + 1)
    }

    /// Answers `query` on store `name` — from committed state alone when `committed` — with
    /// the position of what it read.
    pub(crate) fn query(
        &self,
        name: &str,
        query: &StoreQuery,
        committed: bool,
    ) -> Result<(RawAnswer, Position), QueryFailure> {
        let store = self
            .ctx
            .stores
            .get(name)
            .ok_or_else(|| QueryFailure::UnknownStore(name.to_owned()))?;
        let answer = execute::run(store, query, committed, self.ctx.stream_time)?;
        let position = if committed {
            &self.committed_position
        } else {
            &self.position
        };
        Ok((answer, position.clone()))
    }

    /// Runs every processor's `init`.
    pub(crate) fn init(&mut self) -> Result<(), ProcessError> {
        for source in self.sources.values_mut() {
            source.init(&mut self.ctx)?;
        }
        Ok(())
    }

    /// Processes one record, applying the error handlers; `Err` only when a handler says fail.
    pub(crate) fn process(&mut self, raw: &RawRecord) -> Result<(), ProcessError> {
        self.ctx.metrics.consumed += 1;
        let Some(source) = self.sources.get_mut(&raw.topic) else {
            self.ctx.metrics.dropped += 1;
            return Err(ProcessError::User(format!(
                "no source for topic {}",
                raw.topic
            )));
        };
        let before = self.ctx.stream_time;
        match source.process_raw(raw, &mut self.ctx) {
            Ok(()) => self.ctx.metrics.processed += 1,
            Err(error) => self.handle(raw, error)?,
        }
        if self.ctx.stream_time > before {
            self.fire(PunctuationType::StreamTime, self.ctx.stream_time)?;
        }
        if let Some(partition) = raw.partition {
            self.position.advance(&raw.topic, partition, raw.offset);
        }
        Ok(())
    }

    /// Applies the handler of `error`'s kind to `raw`. A failing store (or a processor asking
    /// for a store it does not have) is not the record's fault: it stops the task whatever
    /// the handlers say, so a disk failure never dead-letters valid records.
    fn handle(&mut self, raw: &RawRecord, error: ProcessError) -> Result<(), ProcessError> {
        let (action, kind) = match error {
            ProcessError::State(_) | ProcessError::UnknownStore { .. } => return Err(error),
            ProcessError::Deserialization { .. } => {
                (self.handlers.deserialization, "deserialization")
            }
            _ => (self.handlers.processing, "processing"),
        };
        match (action, &self.handlers.dead_letter_topic) {
            (ErrorAction::Fail, _) => Err(error),
            (ErrorAction::DeadLetter, Some(dlq)) => {
                tracing::warn!(topic = %raw.topic, offset = raw.offset, %error, "record sent to dead-letter topic");
                let source = SourceCoordinates::of(raw);
                let dead = dead_letter(
                    raw,
                    dlq,
                    kind,
                    &error.to_string(),
                    Some(&source),
                    raw.timestamp,
                );
                self.ctx.outputs.push(dead);
                self.ctx.metrics.dead_lettered += 1;
                Ok(())
            }
            _ => {
                tracing::warn!(topic = %raw.topic, offset = raw.offset, %error, "record dropped");
                self.ctx.metrics.dropped += 1;
                Ok(())
            }
        }
    }

    /// Moves the wall clock to `now`: fires wall-clock punctuators and, when the topology opted
    /// in, advances stream time to `now - lag` so idle partitions still close their windows.
    pub(crate) fn advance_wall_clock(&mut self, now: i64) -> Result<(), ProcessError> {
        self.ctx.wall_clock = now;
        self.fire(PunctuationType::WallClockTime, now)?;
        if let Some(lag) = self.wall_clock_lag {
            let before = self.ctx.stream_time;
            self.ctx.observe_time(now.saturating_sub(lag));
            if self.ctx.stream_time > before {
                self.fire(PunctuationType::StreamTime, self.ctx.stream_time)?;
            }
        }
        Ok(())
    }

    fn fire(&mut self, kind: PunctuationType, now: i64) -> Result<(), ProcessError> {
        for (node, id) in self.ctx.due(kind, now) {
            for source in self.sources.values_mut() {
                if source.punctuate(node, id, now, &mut self.ctx)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Takes the outputs and changelog records produced since the last call. The stores'
    /// writes stay uncommitted until [`Task::commit`].
    pub(crate) fn drain(&mut self) -> Drained {
        let outputs = std::mem::take(&mut self.ctx.outputs);
        let mut changelog = Vec::new();
        for (name, store) in self.ctx.stores.iter_mut() {
            let entries = store.as_state_store().take_changelog();
            if !entries.is_empty() {
                changelog.push((changelog_topic(&self.application_id, name), entries));
            }
        }
        Drained { outputs, changelog }
    }

    /// Commits every store: its writes since the last commit become its state, checkpointed
    /// at the offset `checkpoints` gives for its changelog topic (of this task's partition),
    /// the offset of the last changelog record the host has made durable — or, for a table
    /// whose source topic is its changelog, the last offset of that topic processed. A store
    /// for which there is none keeps its checkpoint, and a checkpoint never moves back (the
    /// store holds every change up to it).
    pub(crate) fn commit(
        &mut self,
        checkpoints: impl Fn(&str) -> Option<i64>,
    ) -> Result<(), StateError> {
        for (name, store) in self.ctx.stores.iter_mut() {
            let store = store.as_state_store();
            let durable = match self.source_changelogs.get(name) {
                Some(topic) => self.position.offset(topic, self.ctx.partition),
                None => checkpoints(&changelog_topic(&self.application_id, name)),
            };
            let checkpoint = match (durable, store.checkpoint()) {
                (Some(d), Some(c)) => Some(d.max(c)),
                (d, c) => d.or(c),
            };
            store.commit(checkpoint)?;
        }
        self.committed_position.merge(&self.position);
        Ok(())
    }

    pub(crate) fn metrics(&self) -> &TaskMetrics {
        &self.ctx.metrics
    }

    pub(crate) fn stream_time(&self) -> i64 {
        self.ctx.stream_time
    }

    pub(crate) fn stores(&mut self) -> &mut TaskStores {
        &mut self.ctx.stores
    }

    /// Closes every processor.
    pub(crate) fn close(&mut self) -> Result<(), ProcessError> {
        for source in self.sources.values_mut() {
            source.close(&mut self.ctx)?;
        }
        Ok(())
    }
}

/// Header names on dead-letter records.
pub mod dead_letter_headers {
    /// `deserialization`, `processing` or `production`.
    pub const ERROR_KIND: &str = "streamlib.error.kind";
    /// The error message (for `production`: the broker's reason).
    pub const ERROR_MESSAGE: &str = "streamlib.error.message";
    /// For `production`: the topic the refused record was meant for.
    pub const OUTPUT_TOPIC: &str = "streamlib.output.topic";
    /// Topic the record was read from.
    pub const SOURCE_TOPIC: &str = "streamlib.source.topic";
    /// Partition it was read from.
    pub const SOURCE_PARTITION: &str = "streamlib.source.partition";
    /// Offset it was read at.
    pub const SOURCE_OFFSET: &str = "streamlib.source.offset";
    /// Its Kafka timestamp.
    pub const SOURCE_TIMESTAMP: &str = "streamlib.source.timestamp";
}

/// Where an input record was read: what a dead letter it causes names in its
/// `streamlib.source.*` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SourceCoordinates {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
}

impl SourceCoordinates {
    pub(crate) fn of(raw: &RawRecord) -> Self {
        Self {
            topic: raw.topic.clone(),
            partition: raw.partition.unwrap_or(-1),
            offset: raw.offset,
            timestamp: raw.timestamp,
        }
    }
}

/// A record for dead-letter `topic` with `record`'s key, value and headers, stamped
/// `timestamp`, plus headers naming the error and, when known, the input it came from.
pub(crate) fn dead_letter(
    record: &RawRecord,
    topic: &str,
    kind: &str,
    message: &str,
    source: Option<&SourceCoordinates>,
    timestamp: i64,
) -> RawRecord {
    use dead_letter_headers as h;
    let mut headers = record.headers.clone();
    headers.extend([
        (h::ERROR_KIND.to_string(), kind.as_bytes().to_vec()),
        (h::ERROR_MESSAGE.to_string(), message.as_bytes().to_vec()),
    ]);
    if let Some(source) = source {
        headers.extend([
            (
                h::SOURCE_TOPIC.to_string(),
                source.topic.as_bytes().to_vec(),
            ),
            (
                h::SOURCE_PARTITION.to_string(),
                source.partition.to_string().into_bytes(),
            ),
            (
                h::SOURCE_OFFSET.to_string(),
                source.offset.to_string().into_bytes(),
            ),
            (
                h::SOURCE_TIMESTAMP.to_string(),
                source.timestamp.to_string().into_bytes(),
            ),
        ]);
    }
    RawRecord {
        topic: Arc::from(topic),
        partition: None,
        offset: -1,
        key: record.key.clone(),
        value: record.value.clone(),
        timestamp,
        headers,
    }
}
