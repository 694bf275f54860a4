//! Assignment: the tasks of one instance, created and restored when the group assigns their
//! partitions and committed and closed when it revokes them (Kafka Streams' `TaskManager`).
//! The task manager buffers each consumed record for its task ([`PartitionGroup`]), hands the
//! tasks their records in timestamp order, and what they drained to the [`RecordCollector`];
//! the [`Committer`] makes it durable, or aborts it and has the tasks rebuilt here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;
use crate::query::{Position, QueryFailure, RawAnswer, StoreQuery};
use crate::task::{SourceCoordinates, StoreLocation, Task, TaskMetrics};
use crate::topology::Topology;

use super::collector::RecordCollector;
use super::commit::Committer;
use super::partition_group::{IdleLimits, PartitionGroup};
use super::purge::Purger;
use super::queries::TaskStates;
use super::restore::restore_task;
use super::standby::Standbys;
use super::thread::ThreadSetup;
use super::topics::{input_topics, repartition_topics};
use super::{to_raw, wall_clock_ms, ProcessingGuarantee, RuntimeMetrics, StreamsConfig, TIMEOUT};

/// The tasks of one stream thread with the producer and commit state they share.
pub(crate) struct TaskManager {
    topology: Arc<Topology>,
    config: StreamsConfig,
    location: StoreLocation,
    tasks: BTreeMap<i32, Task>,
    /// Counters of tasks already closed, so totals survive rebalances.
    closed_totals: TaskMetrics,
    collector: RecordCollector,
    committer: Committer,
    metrics: Arc<RuntimeMetrics>,
    /// The instance's standby replicas: released before a task opens, adopted after it closes.
    standbys: Option<Arc<Standbys>>,
    /// Tasks this manager has counted in `metrics.tasks` (the instance's sum over threads).
    counted_tasks: u64,
    /// What interactive queries may see of the tasks: restoring or active.
    states: Arc<TaskStates>,
    /// Each task's polled records, waiting to be processed in timestamp order.
    inputs: BTreeMap<i32, PartitionGroup>,
    /// The input topics of each sub-topology (full names).
    source_groups: Vec<Vec<String>>,
    /// Input partitions paused because their task has [`MAX_BUFFERED`] records of them.
    paused: BTreeSet<(Arc<str>, i32)>,
}

/// Records buffered per input partition before the consumer stops fetching it (Kafka
/// Streams' `buffered.records.per.partition`); it fetches again below half of it.
const MAX_BUFFERED: usize = 1000;

impl TaskManager {
    /// No tasks yet; creates the producer of the stream thread `identity`. `totals` are the
    /// task counters of the thread this one replaces, so that they never go backwards.
    pub(crate) fn new(
        setup: &ThreadSetup,
        identity: &str,
        totals: TaskMetrics,
        states: Arc<TaskStates>,
    ) -> Result<Self, StreamsError> {
        let config = setup.config.clone();
        let metrics = setup.metrics.clone();
        Ok(Self {
            collector: RecordCollector::new(config.clone(), metrics.clone(), identity)?,
            committer: Committer::new(
                config.clone(),
                metrics.clone(),
                Purger::new(
                    &config,
                    repartition_topics(&setup.topology, &config.application_id),
                )?,
            ),
            topology: setup.topology.clone(),
            config,
            location: setup.location.clone(),
            tasks: BTreeMap::new(),
            closed_totals: totals,
            metrics,
            standbys: setup.standbys.clone(),
            counted_tasks: 0,
            states,
            inputs: BTreeMap::new(),
            source_groups: setup.topology.source_groups(&setup.config.application_id),
            paused: BTreeSet::new(),
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

    /// The partitions whose tasks this instance runs.
    pub(crate) fn partitions(&self) -> Vec<i32> {
        self.tasks.keys().copied().collect()
    }

    /// Creates, restores and initializes the task of each newly assigned partition; its
    /// position starts at the group's committed offsets of its input partitions.
    pub(crate) fn assign<C: ConsumerContext>(
        &mut self,
        partitions: impl IntoIterator<Item = i32>,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let partitions: Vec<i32> = partitions
            .into_iter()
            .filter(|p| !self.tasks.contains_key(p))
            .collect();
        // Every new task is restoring (or waiting to) until it is ready.
        for &partition in &partitions {
            self.states.restoring(partition);
        }
        for partition in partitions {
            if let Some(standbys) = &self.standbys {
                standbys.release(partition);
            }
            let mut task = Task::new(
                &self.topology,
                &self.config.application_id,
                partition,
                &self.location,
                self.config.handlers.clone(),
                wall_clock_ms(),
            )?;
            let committed = self.committed_position(partition, consumer);
            let restored = restore_task(
                &mut task,
                partition,
                self.topology.stores(),
                &committed,
                &self.config,
            )?;
            self.metrics.restored.fetch_add(restored, Ordering::Relaxed);
            tracing::info!(partition, restored, "task ready");
            task.start_at(committed);
            task.init()?;
            let drained = task.drain();
            self.tasks.insert(partition, task);
            self.inputs
                .insert(partition, PartitionGroup::new(&self.source_groups));
            self.states.active(partition);
            self.collector.send(partition, drained, None)?;
        }
        self.count_tasks();
        Ok(())
    }

    /// Commits, then closes the tasks of revoked partitions.
    pub(crate) fn revoke<C: ConsumerContext>(
        &mut self,
        partitions: impl IntoIterator<Item = i32>,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let partitions: Vec<i32> = partitions.into_iter().collect();
        if self.tasks.is_empty() {
            // Nothing to commit or close (e.g. the consumer of a failed thread leaving the
            // group after its tasks were dropped).
            return Ok(());
        }
        let committed = self.commit(consumer);
        if let Err(error) = committed {
            let kept = self
                .partitions()
                .into_iter()
                .filter(|p| !partitions.contains(p));
            let kept: Vec<i32> = kept.collect();
            self.recover_or_fail(Err(error), consumer, &kept)?;
        }
        self.collector.forget(&partitions);
        self.resume(consumer, |p| partitions.contains(&p));
        for partition in partitions {
            self.states.remove(partition);
            self.inputs.remove(&partition);
            if let Some(mut task) = self.tasks.remove(&partition) {
                task.close()?;
                self.closed_totals.add(task.metrics());
                // The stores close when the task drops: before the standby thread may reopen
                // them (it would find their RocksDB locks still held).
                drop(task);
                tracing::info!(partition, "task closed");
                if let Some(standbys) = &self.standbys {
                    standbys.adopt(partition);
                }
            }
        }
        self.count_tasks();
        Ok(())
    }

    /// Buffers one consumed record for its task; stops fetching its partition when the task
    /// holds [`MAX_BUFFERED`] records of it.
    pub(crate) fn buffer<C: ConsumerContext>(
        &mut self,
        message: &BorrowedMessage<'_>,
        consumer: &BaseConsumer<C>,
    ) {
        let partition = message.partition();
        let Some(inputs) = self.inputs.get_mut(&partition) else {
            tracing::warn!(
                partition,
                "record for a partition without a task; it will be read again"
            );
            return;
        };
        self.metrics.consumed.fetch_add(1, Ordering::Relaxed);
        let record = to_raw(message);
        let topic = record.topic.clone();
        match inputs.push(record) {
            Ok(buffered) if buffered >= MAX_BUFFERED => {
                if self.paused.insert((topic.clone(), partition)) {
                    let mut list = TopicPartitionList::new();
                    list.add_partition(&topic, partition);
                    if let Err(error) = consumer.pause(&list) {
                        tracing::warn!(%topic, partition, %error, "pausing a full input partition");
                    }
                }
            }
            Ok(_) => {}
            Err(record) => tracing::warn!(
                topic = %record.topic,
                partition,
                "record of a topic no sub-topology reads; skipped"
            ),
        }
    }

    /// Processes up to `budget` buffered records, an equal share per task (none starves behind
    /// another's backlog), each task's in timestamp order within each of its sub-topologies,
    /// and sends what they produced. Returns how many it processed.
    pub(crate) fn process_buffered<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        budget: usize,
    ) -> Result<usize, StreamsError> {
        let now = Instant::now();
        let limits = IdleLimits {
            behind: self.config.max_task_idle,
            caught_up: self.config.max_task_idle_caught_up,
        };
        // Positions change only when the consumer is polled: one answer per partition per call.
        let mut read_to_end: HashMap<(Arc<str>, i32), bool> = HashMap::new();
        let mut positions: Option<TopicPartitionList> = None;
        let mut processed = 0;
        let mut drained_partitions = Vec::new();
        let share = budget.div_ceil(self.inputs.len().max(1));
        for (&partition, inputs) in &mut self.inputs {
            let Some(task) = self.tasks.get_mut(&partition) else {
                continue;
            };
            let limit = processed + share;
            while processed < limit {
                let mut is_caught_up = |topic: &str| {
                    *read_to_end
                        .entry((Arc::from(topic), partition))
                        .or_insert_with(|| {
                            let positions = positions
                                .get_or_insert_with(|| consumer.position().unwrap_or_default());
                            caught_up(
                                consumer,
                                positions,
                                topic,
                                partition,
                                task.next_offset(topic),
                            )
                        })
                };
                let Some(next) = inputs.next(now, limits, &mut is_caught_up) else {
                    break;
                };
                if next.enforced {
                    self.metrics
                        .enforced_processing
                        .fetch_add(1, Ordering::Relaxed);
                }
                let raw = next.record;
                processed += 1;
                task.process(&raw)?;
                let drained = task.drain();
                self.collector.processed(&raw.topic, partition, raw.offset);
                self.committer.processed(&raw.topic, partition, raw.offset);
                self.collector
                    .send(partition, drained, Some(SourceCoordinates::of(&raw)))?;
                let key = (raw.topic.clone(), partition);
                if self.paused.contains(&key) && inputs.buffered(&raw.topic) <= MAX_BUFFERED / 2 {
                    drained_partitions.push(key);
                }
            }
        }
        for key in drained_partitions {
            if self.paused.remove(&key) {
                let mut list = TopicPartitionList::new();
                list.add_partition(&key.0, key.1);
                if let Err(error) = consumer.resume(&list) {
                    tracing::warn!(topic = %key.0, partition = key.1, %error, "resuming an input partition");
                }
            }
        }
        Ok(processed)
    }

    /// Fetches again the paused input partitions of the tasks for which `which` holds (their
    /// queues are gone: revoked or rebuilt tasks).
    fn resume<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        which: impl Fn(i32) -> bool,
    ) {
        let (resumed, kept): (BTreeSet<_>, BTreeSet<_>) = std::mem::take(&mut self.paused)
            .into_iter()
            .partition(|(_, p)| which(*p));
        self.paused = kept;
        if resumed.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &resumed {
            list.add_partition(topic, *partition);
        }
        if let Err(error) = consumer.resume(&list) {
            tracing::warn!(%error, "resuming input partitions");
        }
    }

    /// Moves every task's wall clock to now (wall-clock punctuators, idle-window closing).
    pub(crate) fn punctuate(&mut self) -> Result<(), StreamsError> {
        let now = wall_clock_ms();
        for (partition, task) in &mut self.tasks {
            task.advance_wall_clock(now)?;
            self.collector.send(*partition, task.drain(), None)?;
        }
        self.collector.punctuated();
        Ok(())
    }

    /// Commits when the commit interval has passed and there is something to commit.
    pub(crate) fn maybe_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        if self.committer.due(&self.collector) {
            self.commit(consumer)?;
        }
        Ok(())
    }

    fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        self.committer
            .commit(&mut self.tasks, &mut self.collector, consumer)
    }

    /// Passes `result` through, except that under exactly-once a recoverable Kafka error aborts
    /// the transaction and rebuilds the tasks of `partitions` from their stores' last commit
    /// and their changelogs ([`super::commit`]).
    pub(crate) fn recover_or_fail<C: ConsumerContext>(
        &mut self,
        result: Result<(), StreamsError>,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<(), StreamsError> {
        match result {
            Err(error) if self.committer.recoverable(&error) => {
                // Dropped without a commit: the stores keep their last committed state, and
                // the buffered records are read again from the committed offsets.
                self.drop_tasks();
                self.resume(consumer, |_| true);
                self.committer
                    .abort(&mut self.collector, consumer, partitions, error)?;
                self.assign(partitions.iter().copied(), consumer)?;
                self.committer.recovered();
                Ok(())
            }
            other => other,
        }
    }

    /// Drops every task without committing, after an error stopped the thread: the stores
    /// keep their last committed state, and under exactly-once the open transaction aborts,
    /// so nothing of the failed work becomes visible.
    pub(crate) fn abandon(&mut self) {
        self.collector.abandon();
        let partitions = self.partitions();
        self.drop_tasks();
        if let Some(standbys) = &self.standbys {
            for partition in partitions {
                standbys.adopt(partition);
            }
        }
        self.committer.abandon();
        self.count_tasks();
    }

    /// Commits and closes every task (clean shutdown).
    pub(crate) fn shutdown<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let partitions = self.partitions();
        self.revoke(partitions, consumer)
    }

    /// Answers `query` on store `name` of the task of `partition`: from committed state under
    /// exactly-once (a transaction may still abort), from everything processed otherwise.
    pub(crate) fn query(
        &self,
        partition: i32,
        name: &str,
        query: &StoreQuery,
    ) -> Result<(RawAnswer, Position), QueryFailure> {
        let task = self.tasks.get(&partition).ok_or(QueryFailure::NotPresent)?;
        let committed = self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        task.query(name, query, committed)
    }

    /// The offsets before the group's committed ones of `partition` of every input topic: the
    /// last records a task starting there reflects. Empty (a lower bound all the same) when
    /// the group coordinator does not answer.
    fn committed_position<C: ConsumerContext>(
        &self,
        partition: i32,
        consumer: &BaseConsumer<C>,
    ) -> Position {
        let mut list = TopicPartitionList::new();
        for topic in input_topics(&self.topology, &self.config.application_id) {
            list.add_partition(&topic, partition);
        }
        let mut position = Position::default();
        match consumer.committed_offsets(list, TIMEOUT) {
            Ok(committed) => {
                for element in committed.elements() {
                    if let Offset::Offset(next) = element.offset() {
                        if next > 0 {
                            position.advance(element.topic(), partition, next - 1);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(partition, %error, "reading committed offsets for the task's position")
            }
        }
        position
    }

    /// Drops every task uncommitted, keeping its counters.
    fn drop_tasks(&mut self) {
        self.states.clear();
        self.inputs.clear();
        for (_, task) in std::mem::take(&mut self.tasks) {
            self.closed_totals.add(task.metrics());
        }
    }

    fn count_tasks(&mut self) {
        let now = self.tasks.len() as u64;
        self.metrics.tasks.fetch_add(now, Ordering::Relaxed);
        self.metrics
            .tasks
            .fetch_sub(self.counted_tasks, Ordering::Relaxed);
        self.counted_tasks = now;
    }
}

/// Whether the consumer has read `topic`/`partition` to the high watermark of its last fetch
/// (local knowledge, no request): its position (`positions`, past transaction markers too),
/// or else `next_offset` (where the task starts), is at or past it. `false` while unknown.
fn caught_up<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    positions: &TopicPartitionList,
    topic: &str,
    partition: i32,
    next_offset: Option<i64>,
) -> bool {
    let Ok(name) = CString::new(topic) else {
        return false;
    };
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client pointer is valid while `consumer` lives; `name` is a NUL-terminated
    // string that outlives the call; `low` and `high` are valid for writes. The call reads
    // librdkafka's cached watermarks under its own lock.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            name.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    if error != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
        return false;
    }
    let position = match positions
        .find_partition(topic, partition)
        .map(|e| e.offset())
    {
        Some(Offset::Offset(offset)) => Some(offset),
        _ => next_offset.or((low >= 0).then_some(low)),
    };
    position.is_some_and(|position| position >= high)
}
