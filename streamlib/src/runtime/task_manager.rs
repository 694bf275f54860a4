//! The tasks of one instance, their production and their commits.
//!
//! Commit protocol (see docs/DECISIONS.md, ADR-017):
//! - at-least-once: flush the producer (outputs and changelog acknowledged) → commit every store
//!   with its changelog checkpoint → commit input offsets;
//! - exactly-once v2: `send_offsets_to_transaction` → `commit_transaction` → commit every store
//!   with its checkpoint → begin the next transaction. Stores keep uncommitted writes in memory,
//!   so a crash leaves local state at the last commit, and restore replays only the changelog
//!   records after the checkpoint.
//!
//! Under exactly-once, a Kafka error while producing or committing (a timed-out commit, a lost
//! group generation) does not stop the instance: the transaction is aborted, every task is
//! rebuilt from its stores' last commit and its changelog, and the consumer rewinds to the
//! committed offsets, so the aborted work is redone exactly once (ADR-023). Only a fatal error
//! (e.g. this producer was fenced by a newer instance) or the same failure
//! [`MAX_CONSECUTIVE_ABORTS`] times in a row stops the thread.
//!
//! An output record the broker refuses for a reason of its own ([`super::refusal`]) goes to the
//! production handler under both guarantees. The broker refuses batches, and reports the
//! refusal for every record of the batch, so a refused record is only a suspect until it is
//! refused alone: sent in its own request, awaited before the next record is sent
//! ("isolation").
//! - At-least-once: at the commit, after the flush, each suspect is sent again alone; one
//!   refused alone goes to the handler, the others are delivered, and then the offsets commit.
//! - Exactly-once: the transaction is aborted as above, and the redo sends every output alone
//!   until it has passed the inputs whose outputs were suspects. The culprit, refused alone,
//!   aborts that transaction too; its fingerprint is kept, and when the next redo produces the
//!   record again it goes to the handler instead of the producer (a dead letter inside the same
//!   transaction), so the redo commits. One bad record thus costs two aborts. Such aborts count
//!   apart from the repeating failures, up to [`MAX_CONSECUTIVE_REFUSAL_ABORTS`].
//!
//! A record the client itself refuses at `send` (too large for `message.max.bytes`) never
//! enters the transaction and is handled at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{ErrorAction, StreamsError};
use crate::record::RawRecord;
use crate::state::ChangelogEntry;
use crate::task::{
    dead_letter, dead_letter_headers, SourceCoordinates, StoreLocation, Task, TaskMetrics,
};
use crate::topology::Topology;

use super::producer::{DeliveryTracker, Origin, Refused, Role, Sent};
use super::refusal::{self, Fingerprint};
use super::restore::restore_task;
use super::{ProcessingGuarantee, StreamsConfig};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Aborts in a row, without a successful commit in between, after which the error stops the
/// thread: a failure that repeats on every retry (a record the broker always refuses) must not
/// loop forever.
pub(crate) const MAX_CONSECUTIVE_ABORTS: u32 = 3;
/// Aborts in a row, without a successful commit in between, caused by records the broker
/// refused for a reason of their own. Each such abort either starts isolation or learns one
/// culprit, so the redo gets further; only a topology that produces different refused records
/// on every redo (its outputs depend on more than its inputs and state), or more bad records
/// than this between two commits, reaches this bound.
pub(crate) const MAX_CONSECUTIVE_REFUSAL_ABORTS: u32 = 10;

/// Counters of one instance, readable while it runs.
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    /// Records consumed from input and repartition topics.
    pub consumed: AtomicU64,
    /// Records produced (outputs, repartition records, changelog records, dead letters).
    pub produced: AtomicU64,
    /// Changelog records applied while restoring.
    pub restored: AtomicU64,
    /// Commits completed.
    pub commits: AtomicU64,
    /// Sum of commit durations in microseconds.
    pub commit_micros: AtomicU64,
    /// Tasks currently assigned.
    pub tasks: AtomicU64,
    /// Records the broker refused and the production handler dropped.
    pub production_dropped: AtomicU64,
    /// Records the broker refused that the production handler sent to the dead-letter topic.
    pub production_dead_lettered: AtomicU64,
    /// Transactions aborted and recovered from in process (exactly-once only).
    pub aborted_transactions: AtomicU64,
}

pub(crate) struct TaskManager {
    topology: Arc<Topology>,
    config: StreamsConfig,
    location: StoreLocation,
    producer: ThreadedProducer<DeliveryTracker>,
    tracker: DeliveryTracker,
    /// `<application.id>-<instance>` under exactly-once.
    transactional_id: Option<String>,
    tasks: BTreeMap<i32, Task>,
    /// Counters of tasks already closed, so totals survive rebalances.
    closed_totals: TaskMetrics,
    /// Next offset to commit per input partition, since the last commit.
    pending: HashMap<(String, i32), i64>,
    /// Something was produced or written since the last commit.
    dirty: bool,
    last_commit: Instant,
    /// Aborts since the last successful commit, refusal aborts apart.
    consecutive_aborts: u32,
    /// Aborts caused by refused records since the last successful commit.
    consecutive_refusal_aborts: u32,
    /// Culprits (outputs refused alone) of aborted transactions, with the broker's reason:
    /// produced again by the redo, they go to the production handler instead (exactly-once).
    refusals: HashMap<Fingerprint, KafkaError>,
    /// Culprits handed to the production handler in the open transaction: an identical record
    /// produced again in it goes there too, and an abort makes them culprits to await again.
    handled: HashMap<Fingerprint, KafkaError>,
    /// An output was refused alone in the open transaction, which must abort.
    culprit_found: bool,
    /// Per input partition, the offset of the last input whose outputs were suspects of a
    /// refusal: outputs are sent alone until every such input has been processed again.
    isolate_until: HashMap<(String, i32), i64>,
    /// A suspect was produced outside of processing a record (a punctuation): outputs are
    /// sent alone until a punctuation pass has run again.
    isolate_unsourced: bool,
    /// Origin of changelog records.
    changelog: Arc<Origin>,
    /// Origin of outputs produced outside of processing a record (initialization,
    /// punctuation).
    unsourced: Arc<Origin>,
    metrics: Arc<RuntimeMetrics>,
}

/// The record of a consumed (or undelivered) Kafka message.
pub(crate) fn to_raw<M: Message>(message: &M) -> RawRecord {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|Header { key, value }| (key.to_string(), value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        topic: Arc::from(message.topic()),
        partition: Some(message.partition()),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        timestamp: message.timestamp().to_millis().unwrap_or_default(),
        headers,
    }
}

impl TaskManager {
    pub(crate) fn new(
        topology: Arc<Topology>,
        config: StreamsConfig,
        location: StoreLocation,
        metrics: Arc<RuntimeMetrics>,
    ) -> Result<Self, StreamsError> {
        let transactional_id = (config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2)
            .then(|| {
                let instance = config.instance_id.clone().unwrap_or_else(fresh_instance_id);
                format!("{}-{instance}", config.application_id)
            });
        let (producer, tracker) = create_producer(&config, transactional_id.as_deref())?;
        Ok(Self {
            topology,
            config,
            location,
            producer,
            tracker,
            transactional_id,
            tasks: BTreeMap::new(),
            closed_totals: TaskMetrics::default(),
            pending: HashMap::new(),
            dirty: false,
            last_commit: Instant::now(),
            consecutive_aborts: 0,
            consecutive_refusal_aborts: 0,
            refusals: HashMap::new(),
            handled: HashMap::new(),
            culprit_found: false,
            isolate_until: HashMap::new(),
            isolate_unsourced: false,
            changelog: Arc::new(Origin {
                role: Role::Changelog,
                source: None,
            }),
            unsourced: Arc::new(Origin {
                role: Role::Output,
                source: None,
            }),
            metrics,
        })
    }

    /// Counters of every task this instance ran, closed ones included.
    pub(crate) fn task_totals(&self) -> TaskMetrics {
        let mut totals = self.closed_totals.clone();
        for task in self.tasks.values() {
            totals.add(task.metrics());
        }
        totals
    }

    pub(crate) fn partitions(&self) -> Vec<i32> {
        self.tasks.keys().copied().collect()
    }

    /// Creates, restores and initializes the task of each newly assigned partition.
    pub(crate) fn assign(
        &mut self,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Result<(), StreamsError> {
        for partition in partitions {
            if self.tasks.contains_key(&partition) {
                continue;
            }
            let mut task = Task::new(
                &self.topology,
                &self.config.application_id,
                partition,
                &self.location,
                self.config.handlers.clone(),
                wall_clock_ms(),
            )?;
            let restored =
                restore_task(&mut task, partition, self.topology.stores(), &self.config)?;
            self.metrics.restored.fetch_add(restored, Ordering::Relaxed);
            tracing::info!(partition, restored, "task ready");
            task.init()?;
            self.tasks.insert(partition, task);
            self.ship(partition, &self.unsourced.clone())?;
        }
        self.metrics
            .tasks
            .store(self.tasks.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Commits, then closes the tasks of revoked partitions.
    pub(crate) fn revoke<C: ConsumerContext>(
        &mut self,
        partitions: impl IntoIterator<Item = i32>,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let partitions: Vec<i32> = partitions.into_iter().collect();
        let committed = self.commit(consumer);
        if let Err(error) = committed {
            let kept = self
                .partitions()
                .into_iter()
                .filter(|p| !partitions.contains(p));
            let kept: Vec<i32> = kept.collect();
            self.recover_or_fail(Err(error), consumer, &kept)?;
        }
        self.isolate_until
            .retain(|(_, partition), _| !partitions.contains(partition));
        for partition in partitions {
            if let Some(mut task) = self.tasks.remove(&partition) {
                task.close()?;
                self.closed_totals.add(task.metrics());
                tracing::info!(partition, "task closed");
            }
        }
        self.metrics
            .tasks
            .store(self.tasks.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Processes one consumed record and sends what it produced.
    pub(crate) fn process(&mut self, message: &BorrowedMessage<'_>) -> Result<(), StreamsError> {
        let partition = message.partition();
        let Some(task) = self.tasks.get_mut(&partition) else {
            tracing::warn!(
                partition,
                "record for a partition without a task; it will be read again"
            );
            return Ok(());
        };
        self.metrics.consumed.fetch_add(1, Ordering::Relaxed);
        let raw = to_raw(message);
        task.process(&raw)?;
        let position = (message.topic().to_string(), partition);
        if self
            .isolate_until
            .get(&position)
            .is_some_and(|last| message.offset() > *last)
        {
            self.isolate_until.remove(&position);
        }
        self.pending.insert(position, message.offset() + 1);
        let origin = Arc::new(Origin {
            role: Role::Output,
            source: Some(SourceCoordinates::of(&raw)),
        });
        self.ship(partition, &origin)
    }

    /// Moves every task's wall clock to now (wall-clock punctuators, idle-window closing).
    pub(crate) fn punctuate(&mut self) -> Result<(), StreamsError> {
        let now = wall_clock_ms();
        let partitions: Vec<i32> = self.tasks.keys().copied().collect();
        for partition in partitions {
            if let Some(task) = self.tasks.get_mut(&partition) {
                task.advance_wall_clock(now)?;
            }
            self.ship(partition, &self.unsourced.clone())?;
        }
        self.isolate_unsourced = false;
        Ok(())
    }

    /// Sends a task's outputs (produced while `origin` was processed) and its stores'
    /// changelog records.
    fn ship(&mut self, partition: i32, origin: &Arc<Origin>) -> Result<(), StreamsError> {
        let Some(task) = self.tasks.get_mut(&partition) else {
            return Ok(());
        };
        let outputs = task.take_outputs();
        let mut changelog: Vec<(String, Vec<ChangelogEntry>)> = Vec::new();
        for (name, store) in task.stores().iter_mut() {
            let entries = store.as_state_store().take_changelog();
            if !entries.is_empty() {
                changelog.push((
                    format!("{}-{name}-changelog", self.config.application_id),
                    entries,
                ));
            }
        }
        for record in outputs {
            let dlq = self.config.handlers.dead_letter_topic.as_deref();
            let origin = if dlq == Some(&*record.topic) {
                Arc::new(Origin {
                    role: Role::DeadLetter,
                    source: origin.source.clone(),
                })
            } else {
                origin.clone()
            };
            if origin.role == Role::Output {
                if let Some(error) = self.take_refusal(&record) {
                    self.refuse(&record, origin.source.as_ref(), error)?;
                    continue;
                }
            }
            if !self.isolating() {
                self.send_record(&record, origin)?;
            } else if let Some(error) = self.send_alone(&record, origin)? {
                // The culprit: the transaction cannot commit, and its redo hands the record to
                // the production handler.
                self.refusals
                    .insert(Fingerprint::of(&record), error.clone());
                self.culprit_found = true;
                return Err(StreamsError::kafka("delivering a record sent alone")(error));
            }
        }
        for (topic, entries) in &changelog {
            for entry in entries {
                let mut base: BaseRecord<'_, [u8], [u8], Box<Sent>> = BaseRecord::with_opaque_to(
                    topic,
                    Box::new(Sent {
                        origin: self.changelog.clone(),
                        timestamp: 0,
                    }),
                )
                .partition(partition)
                .key(&entry.key);
                if let Some(value) = &entry.value {
                    base = base.payload(value);
                }
                self.send(base).map_err(|(error, _)| {
                    StreamsError::kafka("producing a changelog record")(error)
                })?;
            }
        }
        Ok(())
    }

    /// The broker's reason if `record` is a culprit of an aborted transaction (or one already
    /// handled in the open one).
    fn take_refusal(&mut self, record: &RawRecord) -> Option<KafkaError> {
        if self.refusals.is_empty() && self.handled.is_empty() {
            return None;
        }
        let fingerprint = Fingerprint::of(record);
        if let Some(error) = self.refusals.remove(&fingerprint) {
            self.handled.insert(fingerprint, error.clone());
            return Some(error);
        }
        self.handled.get(&fingerprint).cloned()
    }

    /// Whether outputs are sent alone (exactly-once, after a refusal; see the module doc).
    fn isolating(&self) -> bool {
        self.isolate_unsourced || !self.isolate_until.is_empty()
    }

    /// Sends `record` and waits for its delivery report, and for every other record in
    /// flight: the broker judges it alone. Returns the broker's refusal of it; a refused dead
    /// letter (alone, so the culprit) and every other failure are errors.
    fn send_alone(
        &mut self,
        record: &RawRecord,
        origin: Arc<Origin>,
    ) -> Result<Option<KafkaError>, StreamsError> {
        self.send_record(record, origin)?;
        self.await_acks()?;
        let failures = self.tracker.take_failures();
        if let Some(error) = failures.other {
            return Err(StreamsError::kafka("delivering records")(error));
        }
        let mut refusal = None;
        for refused in failures.refused {
            fail_on_dead_letter(&refused)?;
            refusal = Some(refused.error);
        }
        Ok(refusal)
    }

    /// Sends one output record or dead letter; one the client refuses for a reason of its own
    /// goes to the production handler at once.
    fn send_record(&mut self, record: &RawRecord, origin: Arc<Origin>) -> Result<(), StreamsError> {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], Box<Sent>> = BaseRecord::with_opaque_to(
            &record.topic,
            Box::new(Sent {
                origin,
                timestamp: record.timestamp,
            }),
        )
        .timestamp(record.timestamp)
        .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        if let Some(value) = &record.value {
            base = base.payload(value);
        }
        if let Some(p) = record.partition {
            base = base.partition(p);
        }
        match self.send(base) {
            Ok(()) => Ok(()),
            Err((error, _)) if !refusal::is_refusal(&error) => {
                Err(StreamsError::kafka("producing")(error))
            }
            Err((error, origin)) if origin.role == Role::DeadLetter => {
                Err(StreamsError::DeadLetterRefused {
                    topic: record.topic.to_string(),
                    source: error,
                })
            }
            Err((error, origin)) => self.refuse(record, origin.source.as_ref(), error),
        }
    }

    /// Applies the production handler to `record`, refused for a reason of its own.
    fn refuse(
        &mut self,
        record: &RawRecord,
        source: Option<&SourceCoordinates>,
        error: KafkaError,
    ) -> Result<(), StreamsError> {
        let handlers = &self.config.handlers;
        match (handlers.production, &handlers.dead_letter_topic) {
            (ErrorAction::Fail, _) => Err(StreamsError::Refused {
                topic: record.topic.to_string(),
                source: error,
            }),
            (ErrorAction::DeadLetter, Some(dlq)) => {
                tracing::warn!(topic = %record.topic, %error, "refused record sent to the dead-letter topic");
                let timestamp = refusal::dead_letter_timestamp(source, wall_clock_ms());
                let reason = error.to_string();
                let mut dead = dead_letter(record, dlq, "production", &reason, source, timestamp);
                dead.headers.push((
                    dead_letter_headers::OUTPUT_TOPIC.to_string(),
                    record.topic.as_bytes().to_vec(),
                ));
                self.metrics
                    .production_dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                let origin = Arc::new(Origin {
                    role: Role::DeadLetter,
                    source: source.cloned(),
                });
                self.send_record(&dead, origin)
            }
            _ => {
                tracing::warn!(topic = %record.topic, %error, "refused record dropped");
                self.metrics
                    .production_dropped
                    .fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Hands `record` to the producer, waiting while its queue is full; on failure returns the
    /// error with the record's origin.
    fn send(
        &mut self,
        mut record: BaseRecord<'_, [u8], [u8], Box<Sent>>,
    ) -> Result<(), (KafkaError, Arc<Origin>)> {
        self.dirty = true;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.metrics.produced.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The queue drains as the broker acknowledges; wait for some of it.
                    let _ = self.producer.flush(Duration::from_millis(100));
                }
                Err((error, back)) => return Err((error, back.delivery_opaque.origin)),
            }
        }
    }

    /// Commits when the commit interval has passed and there is something to commit.
    pub(crate) fn maybe_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let work = self.dirty || !self.pending.is_empty();
        if work && self.last_commit.elapsed() >= self.config.effective_commit_interval() {
            self.commit(consumer)?;
        }
        Ok(())
    }

    /// Makes everything processed so far durable, in the order of the module doc.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let started = Instant::now();
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in &self.pending {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(StreamsError::kafka("building the offsets to commit"))?;
        }
        self.await_acks()?;
        match self.config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => {
                self.producer
                    .flush(TIMEOUT)
                    .map_err(StreamsError::kafka("flushing the producer"))?;
                self.settle_deliveries()?;
                self.commit_stores()?;
                if offsets.count() > 0 {
                    consumer
                        .commit(&offsets, CommitMode::Sync)
                        .map_err(StreamsError::kafka("committing offsets"))?;
                }
            }
            ProcessingGuarantee::ExactlyOnceV2 => {
                if offsets.count() > 0 {
                    let group = consumer.group_metadata().ok_or_else(|| {
                        StreamsError::Config("consumer has no group metadata".into())
                    })?;
                    self.producer
                        .send_offsets_to_transaction(&offsets, &group, TIMEOUT)
                        .map_err(StreamsError::kafka("adding offsets to the transaction"))?;
                }
                self.producer
                    .commit_transaction(TIMEOUT)
                    .map_err(StreamsError::kafka("committing the transaction"))?;
                self.check_deliveries()?;
                self.commit_stores()?;
                self.producer
                    .begin_transaction()
                    .map_err(StreamsError::kafka("beginning a transaction"))?;
            }
        }
        self.pending.clear();
        self.handled.clear();
        self.dirty = false;
        self.last_commit = Instant::now();
        self.consecutive_aborts = 0;
        self.consecutive_refusal_aborts = 0;
        self.metrics.commits.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .commit_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until every record sent so far is acknowledged. librdkafka's `flush` (also inside
    /// `commit_transaction`) serves its queue in 100 ms slices, so calling it with records in
    /// flight stalls each commit by up to 100 ms; waiting on the in-flight count first makes
    /// the flush that follows return at once.
    fn await_acks(&self) -> Result<(), StreamsError> {
        let deadline = Instant::now() + TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(StreamsError::kafka("waiting for acknowledgements")(
                    KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Fails on any delivery failure since the last check (exactly-once: the transaction
    /// that follows a failure must not commit).
    fn check_deliveries(&self) -> Result<(), StreamsError> {
        let failures = self.tracker.take_failures();
        if let Some(refused) = failures.refused.into_iter().next() {
            fail_on_dead_letter(&refused)?;
            return Err(StreamsError::kafka("delivering records")(refused.error));
        }
        failures.other.map_or(Ok(()), |e| {
            Err(StreamsError::kafka("delivering records")(e))
        })
    }

    /// At-least-once, after a flush: sends every record refused in a batch again alone, so
    /// the broker judges it by itself; one refused alone goes to the production handler (a
    /// dead letter refused alone stops the instance). Any other failure stops the instance
    /// before the offsets commit, so the records are produced again after the restart. A
    /// suspect delivered this way lands after the records its partition received since.
    fn settle_deliveries(&mut self) -> Result<(), StreamsError> {
        let failures = self.tracker.take_failures();
        if let Some(error) = failures.other {
            return Err(StreamsError::kafka("delivering records")(error));
        }
        for refused in failures.refused {
            let source = refused.origin.source.clone();
            if let Some(error) = self.send_alone(&refused.record, refused.origin)? {
                self.refuse(&refused.record, source.as_ref(), error)?;
            }
        }
        self.await_acks()?;
        self.check_deliveries()
    }

    /// Commits every store with the offset of its last acknowledged changelog record.
    fn commit_stores(&mut self) -> Result<(), StreamsError> {
        let app = &self.config.application_id;
        for (partition, task) in &mut self.tasks {
            for (name, store) in task.stores().iter_mut() {
                let store = store.as_state_store();
                let acked = self
                    .tracker
                    .acked_offset(&format!("{app}-{name}-changelog"), *partition);
                let checkpoint = match (acked, store.checkpoint()) {
                    (Some(a), Some(c)) => Some(a.max(c)),
                    (a, c) => a.or(c),
                };
                store.commit(checkpoint)?;
            }
        }
        Ok(())
    }

    /// Passes `result` through, except that under exactly-once a recoverable Kafka error aborts
    /// the transaction and rebuilds the tasks of `partitions` (see the module doc).
    pub(crate) fn recover_or_fail<C: ConsumerContext>(
        &mut self,
        result: Result<(), StreamsError>,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<(), StreamsError> {
        match result {
            Err(error) if self.recoverable(&error) => {
                self.abort_and_recover(consumer, partitions, error)
            }
            other => other,
        }
    }

    fn recoverable(&self, error: &StreamsError) -> bool {
        let exactly_once = self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        let StreamsError::Kafka { source, .. } = error else {
            return false;
        };
        let fatal = matches!(source, KafkaError::Transaction(e) if e.is_fatal());
        exactly_once && !fatal
    }

    /// Aborts the open transaction, drops every task with its uncommitted state, learns the
    /// records the broker refused for a reason of their own, rewinds the consumer to the
    /// committed offsets of `partitions` and rebuilds their tasks from their stores and
    /// changelogs. Returns `cause` instead of rebuilding once the aborts in a row reach
    /// their bound.
    fn abort_and_recover<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
        cause: StreamsError,
    ) -> Result<(), StreamsError> {
        tracing::warn!(error = %cause, "aborting the transaction");
        if let Err(error) = self.producer.abort_transaction(TIMEOUT) {
            tracing::warn!(%error, "abort failed; the new producer's initialization aborts instead");
        }
        // The delivery report of a refused record may still wait in the queue the producer's
        // thread serves; the in-flight count covers those reports too.
        if let Err(error) = self.await_acks() {
            tracing::warn!(%error, "delivery reports of the aborted transaction");
        }
        for (_, task) in std::mem::take(&mut self.tasks) {
            // Dropped without a commit: the stores keep their last committed state.
            self.closed_totals.add(task.metrics());
        }
        self.pending.clear();
        self.dirty = false;
        let suspects = self.suspect_refusals();
        let culprit = std::mem::take(&mut self.culprit_found);
        let handled = std::mem::take(&mut self.handled);
        self.refusals.extend(handled);
        let (aborts, bound) = if suspects > 0 || culprit {
            self.consecutive_refusal_aborts += 1;
            (
                self.consecutive_refusal_aborts,
                MAX_CONSECUTIVE_REFUSAL_ABORTS,
            )
        } else {
            self.consecutive_aborts += 1;
            (self.consecutive_aborts, MAX_CONSECUTIVE_ABORTS)
        };
        if aborts > bound {
            return Err(cause);
        }
        tracing::warn!(attempt = aborts, suspects, culprit, "recovering the tasks");
        self.metrics
            .aborted_transactions
            .fetch_add(1, Ordering::Relaxed);
        self.rewind(consumer, partitions)?;
        // A fresh producer (same transactional id, so `init_transactions` bumps the epoch)
        // starts with clean sequence numbers and no delivery reports of the aborted work;
        // librdkafka's own producer may fail the next transaction once with "skipped sequence
        // numbers" after a refused record.
        (self.producer, self.tracker) =
            create_producer(&self.config, self.transactional_id.as_deref())?;
        self.assign(partitions.iter().copied())?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Takes the records the aborted transaction's broker refused in batches, and makes the
    /// redo send outputs alone until it has passed the inputs they came from; returns how many.
    fn suspect_refusals(&mut self) -> usize {
        let refused = self.tracker.take_failures().refused;
        for suspect in &refused {
            match &suspect.origin.source {
                Some(source) => {
                    let last = self
                        .isolate_until
                        .entry((source.topic.to_string(), source.partition))
                        .or_insert(source.offset);
                    *last = (*last).max(source.offset);
                }
                None => self.isolate_unsourced = true,
            }
        }
        refused.len()
    }

    /// Moves the consumer of `partitions` (of every topic it reads) back to the committed
    /// offsets, or to the beginning where nothing was committed yet.
    fn rewind<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<(), StreamsError> {
        let mut assigned = TopicPartitionList::new();
        for element in consumer
            .assignment()
            .map_err(StreamsError::kafka("reading the assignment"))?
            .elements()
        {
            if partitions.contains(&element.partition()) {
                assigned.add_partition(element.topic(), element.partition());
            }
        }
        if assigned.count() == 0 {
            return Ok(());
        }
        let committed = consumer
            .committed_offsets(assigned, TIMEOUT)
            .map_err(StreamsError::kafka("reading the committed offsets"))?;
        let mut positions = TopicPartitionList::new();
        for element in committed.elements() {
            let offset = match element.offset() {
                Offset::Offset(next) => Offset::Offset(next),
                _ => Offset::Beginning,
            };
            positions
                .add_partition_offset(element.topic(), element.partition(), offset)
                .map_err(StreamsError::kafka("rewinding"))?;
        }
        consumer
            .seek_partitions(positions, TIMEOUT)
            .map_err(StreamsError::kafka("rewinding to the committed offsets"))?;
        Ok(())
    }

    /// Drops every task without committing, after an error stopped the thread: the stores
    /// keep their last committed state, and under exactly-once the open transaction aborts,
    /// so nothing of the failed work becomes visible.
    pub(crate) fn abandon(&mut self) {
        if self.transactional_id.is_some() {
            if let Err(error) = self.producer.abort_transaction(TIMEOUT) {
                tracing::warn!(%error, "aborting the open transaction");
            }
        }
        for (_, task) in std::mem::take(&mut self.tasks) {
            self.closed_totals.add(task.metrics());
        }
        self.pending.clear();
        self.isolate_until.clear();
        self.metrics.tasks.store(0, Ordering::Relaxed);
    }

    /// Commits and closes every task (clean shutdown).
    pub(crate) fn shutdown<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let partitions = self.partitions();
        self.revoke(partitions, consumer)
    }
}

/// Stops on a refused dead letter: the record it stands for can go nowhere else.
fn fail_on_dead_letter(refused: &Refused) -> Result<(), StreamsError> {
    if refused.origin.role == Role::DeadLetter {
        return Err(StreamsError::DeadLetterRefused {
            topic: refused.record.topic.to_string(),
            source: refused.error.clone(),
        });
    }
    Ok(())
}

/// The instance's producer, idempotent, and under exactly-once transactional with its first
/// transaction begun (`init_transactions` fences any older producer with the same id).
fn create_producer(
    config: &StreamsConfig,
    transactional_id: Option<&str>,
) -> Result<(ThreadedProducer<DeliveryTracker>, DeliveryTracker), StreamsError> {
    let tracker = DeliveryTracker::default();
    let mut defaults = vec![
        ("enable.idempotence", "true"),
        ("acks", "all"),
        // Kafka's Java partitioner, so keys land where Kafka Streams would put them.
        ("partitioner", "murmur2_random"),
        ("linger.ms", "5"),
    ];
    if let Some(id) = transactional_id {
        defaults.push(("transactional.id", id));
        defaults.push(("transaction.timeout.ms", "10000"));
    }
    let producer: ThreadedProducer<DeliveryTracker> = config
        .client(&defaults)
        .create_with_context(tracker.clone())
        .map_err(StreamsError::kafka("creating the producer"))?;
    if transactional_id.is_some() {
        producer
            .init_transactions(TIMEOUT)
            .map_err(StreamsError::kafka("initializing transactions"))?;
        producer
            .begin_transaction()
            .map_err(StreamsError::kafka("beginning a transaction"))?;
    }
    Ok((producer, tracker))
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Identifies this process among the instances of an application.
fn fresh_instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}
