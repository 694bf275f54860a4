//! A stream thread: its own consumer in the group and its own task manager (and so its own
//! producer, transactional under exactly-once), polling, processing, punctuating and
//! committing, and reacting to rebalances; and its supervision: a thread that stops with an
//! error is replaced, or stops the instance ([`ThreadFailure`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

use crate::error::StreamsError;
use crate::query::metadata_client_id;
use crate::task::{StoreLocation, TaskMetrics};
use crate::topology::Topology;

use super::assignment::TaskManager;
use super::metrics::ConsumerLag;
use super::queries::TaskStates;
use super::standby::Standbys;
use super::topics::input_topics;
use super::{RuntimeMetrics, StreamsConfig, ThreadFailure};

const POLL: Duration = Duration::from_millis(50);
const PUNCTUATE_EVERY: Duration = Duration::from_millis(100);
/// Records polled at most before the tasks process what they buffered.
const POLL_BATCH: usize = 500;
/// Records processed at most between two polls.
const PROCESS_BATCH: usize = 1000;
/// librdkafka's `queued.min.messages` for stream-thread consumers: a partition is fetched only
/// while the consumer queue holds fewer records. librdkafka checks the one queue every
/// partition is forwarded to (outdated records of paused partitions included), so its default
/// of 100 000 lets a backlog of one input hold back every other partition's fetch; 20 000 is a
/// few times what the tasks buffer (1 000 records per partition before it is paused) (ADR-053).
const QUEUED_MIN_MESSAGES: &str = "20000";
/// librdkafka's `fetch.queue.backoff.ms` for stream-thread consumers: how long a partition's
/// fetch waits when the consumer queue is full. Its default of one second starves a task whose
/// input (often a repartition topic the application writes itself) is behind another's
/// backlog; 10 ms retries as soon as the thread has drained some of the queue (ADR-053).
const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// librdkafka's `fetch.wait.max.ms` for stream-thread consumers: how long the broker holds a
/// fetch of caught-up partitions. A consumer has one fetch in flight per broker, so a partition
/// resumed after a pause waits for it; librdkafka's 500 ms made a task draining the last
/// backlog of a repartition topic wait half a second per 1 000 records (ADR-053).
const FETCH_WAIT_MAX_MS: &str = "100";

/// What every stream thread of an instance is built from (and rebuilt from when replaced).
pub(crate) struct ThreadSetup {
    pub(crate) topology: Arc<Topology>,
    pub(crate) config: StreamsConfig,
    pub(crate) location: StoreLocation,
    /// The instance's standby replicas, if it keeps any.
    pub(crate) standbys: Option<Arc<Standbys>>,
    pub(crate) metrics: Arc<RuntimeMetrics>,
    /// The instance's identity: `instance_id`, or a fresh one per start.
    pub(crate) instance: String,
    /// librdkafka statistics (consumer lag) are wanted: a registry takes the metrics.
    pub(crate) statistics: bool,
    /// Cleared to stop every thread of the instance.
    pub(crate) running: Arc<AtomicBool>,
}

impl ThreadSetup {
    /// The identity of thread `index` (from 1): `<instance>-<index>`. Under exactly-once the
    /// transactional id is `<application.id>-<identity>`; with `instance_id` set it is also
    /// the consumer's `group.instance.id`, so a replaced or restarted thread takes over its
    /// predecessor's partitions and fences its producer at once.
    fn identity(&self, index: usize) -> String {
        format!("{}-{index}", self.instance)
    }

    /// The assignor: with more than one subscribed topic a task's partitions (the same number
    /// in every topic) must go to one member, which `range` guarantees (members sorted by
    /// `group.instance.id`, or member id, and every topic split the same way);
    /// `cooperative-sticky` does not, but rebalances incrementally, so it serves the
    /// single-topic case (ADR-042).
    fn assignor(topics: &[String]) -> &'static str {
        if topics.len() > 1 {
            "range"
        } else {
            "cooperative-sticky"
        }
    }

    /// The input and repartition topics every thread subscribes to.
    fn topics(&self) -> Vec<String> {
        input_topics(&self.topology, &self.config.application_id)
    }

    /// A consumer for thread `index`, subscribed, with its rebalances going to `shared`.
    fn consumer(
        &self,
        index: usize,
        shared: &Arc<Shared>,
    ) -> Result<BaseConsumer<RebalanceContext>, StreamsError> {
        let topics = self.topics();
        let mut config = self.config.client(&[
            ("group.id", &self.config.application_id),
            ("partition.assignment.strategy", Self::assignor(&topics)),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("queued.min.messages", QUEUED_MIN_MESSAGES),
            ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
            ("fetch.wait.max.ms", FETCH_WAIT_MAX_MS),
            (
                "statistics.interval.ms",
                if self.statistics { "1000" } else { "0" },
            ),
        ]);
        if self.config.instance_id.is_some() {
            config.set("group.instance.id", self.identity(index));
        }
        if let Some(server) = &self.config.application_server {
            config.set(
                "client.id",
                metadata_client_id(&self.config.application_id, server),
            );
        }
        let consumer: BaseConsumer<RebalanceContext> = config
            .create_with_context(RebalanceContext(shared.clone()))
            .map_err(StreamsError::kafka("creating the consumer"))?;
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(StreamsError::kafka("subscribing"))?;
        Ok(consumer)
    }

    /// Creates stream thread `index`: its task manager (and producer) and its consumer.
    pub(crate) fn create(&self, index: usize) -> Result<StreamThread, StreamsError> {
        let states = Arc::new(TaskStates::default());
        let tasks = TaskManager::new(
            self,
            &self.identity(index),
            TaskMetrics::default(),
            states.clone(),
        )?;
        let shared = Arc::new(Shared {
            tasks: Mutex::new(tasks),
            states,
            error: Mutex::new(None),
            lag: ConsumerLag::default(),
        });
        let consumer = self.consumer(index, &shared)?;
        Ok(StreamThread {
            index,
            shared,
            consumer,
        })
    }

    /// Runs `thread` until the instance stops. When it stops with an error: under
    /// [`ThreadFailure::ReplaceThread`] (and while the instance runs) a new consumer and task
    /// manager take its place, keeping its counters, and carry on; otherwise the instance
    /// stops (every other thread commits and closes) and the error is returned.
    pub(crate) fn supervise(&self, mut thread: StreamThread) -> Result<(), StreamsError> {
        loop {
            let error = match run(&thread.consumer, &thread.shared, &self.running) {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if self.config.thread_failure != ThreadFailure::ReplaceThread
                || !self.running.load(Ordering::SeqCst)
            {
                self.running.store(false, Ordering::SeqCst);
                return Err(error);
            }
            tracing::error!(thread = thread.index, %error, "stream thread failed; replacing it");
            self.metrics
                .replaced_threads
                .fetch_add(1, Ordering::Relaxed);
            // The old consumer leaves the group before the new one joins; what its leaving
            // reported is the failed thread's, not the replacement's.
            drop(thread.consumer);
            thread
                .shared
                .error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let totals = thread.shared.tasks().task_totals();
            let states = thread.shared.states.clone();
            let replacement = TaskManager::new(self, &self.identity(thread.index), totals, states)
                .and_then(|tasks| {
                    *thread.shared.tasks() = tasks;
                    self.consumer(thread.index, &thread.shared)
                });
            match replacement {
                Ok(consumer) => thread.consumer = consumer,
                Err(error) => {
                    self.running.store(false, Ordering::SeqCst);
                    return Err(error);
                }
            }
        }
    }
}

/// One stream thread before it runs: its index (from 1), state and consumer.
pub(crate) struct StreamThread {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    consumer: BaseConsumer<RebalanceContext>,
}

/// Shared between the loop and the rebalance callbacks (which run inside `poll`).
pub(crate) struct Shared {
    pub(crate) tasks: Mutex<TaskManager>,
    /// Which tasks are restoring and which active, readable while `tasks` is locked.
    pub(crate) states: Arc<TaskStates>,
    /// First error raised inside a rebalance callback, surfaced by the loop.
    pub(crate) error: Mutex<Option<StreamsError>>,
    /// Consumer lag per partition, from librdkafka's statistics.
    pub(crate) lag: ConsumerLag,
}

impl Shared {
    pub(crate) fn tasks(&self) -> MutexGuard<'_, TaskManager> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail(&self, error: StreamsError) {
        tracing::error!(%error, "rebalance failed");
        let mut slot = self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }
}

pub(crate) struct RebalanceContext(pub(crate) Arc<Shared>);

fn partitions(list: &TopicPartitionList) -> BTreeSet<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for RebalanceContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.lag.record(&statistics);
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if let Err(error) = self.0.tasks().revoke(partitions(list), consumer) {
                self.0.fail(error);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            if let Err(error) = self.0.tasks().assign(partitions(list), consumer) {
                self.0.fail(error);
            }
        }
    }
}

/// Runs until `running` is cleared or an error stops it (a record failing with a failing
/// handler, a failing store, a cluster failure it cannot recover from); then commits and closes
/// the tasks (after an error: drops them uncommitted) and leaves the group.
fn run(
    consumer: &BaseConsumer<RebalanceContext>,
    shared: &Shared,
    running: &AtomicBool,
) -> Result<(), StreamsError> {
    let mut last_punctuation = Instant::now();
    // Whether the last round processed records: then more may be ready, so the next poll
    // does not wait.
    let mut busy = false;
    let result = (|| {
        while running.load(Ordering::Relaxed) {
            // Polled outside the task lock: rebalance callbacks run inside `poll` and take it.
            let mut messages = Vec::new();
            let mut timeout = if busy { Duration::ZERO } else { POLL };
            while messages.len() < POLL_BATCH {
                match consumer.poll(timeout) {
                    Some(message) => messages.push(message),
                    None => break,
                }
                timeout = Duration::ZERO;
            }
            if let Some(error) = shared
                .error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                return Err(error);
            }
            let mut tasks = shared.tasks();
            let step = (|| {
                for message in &messages {
                    match message {
                        Ok(message) => tasks.buffer(message, consumer),
                        Err(error) => tracing::warn!(%error, "consumer error"),
                    }
                }
                busy = tasks.process_buffered(consumer, PROCESS_BATCH)? > 0;
                if last_punctuation.elapsed() >= PUNCTUATE_EVERY {
                    tasks.punctuate()?;
                    last_punctuation = Instant::now();
                }
                tasks.maybe_commit(consumer)
            })();
            drop(messages);
            let partitions = tasks.partitions();
            tasks.recover_or_fail(step, consumer, &partitions)?;
        }
        Ok(())
    })();
    let shutdown = match &result {
        Ok(()) => shared.tasks().shutdown(consumer),
        Err(_) => {
            shared.tasks().abandon();
            Ok(())
        }
    };
    consumer.unsubscribe();
    result.and(shutdown)
}
