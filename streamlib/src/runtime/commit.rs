//! The commit step: makes the work of every task durable, or under exactly-once aborts it and
//! rewinds, so that it is redone (see docs/DECISIONS.md, ADR-017 and ADR-023).
//!
//! Commit protocol:
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
//! [`MAX_CONSECUTIVE_ABORTS`] times in a row stops the thread. Aborts caused by records the
//! broker refused ([`super::collector`]) count apart, up to
//! [`MAX_CONSECUTIVE_REFUSAL_ABORTS`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;
use crate::task::Task;

use super::collector::RecordCollector;
use super::purge::Purger;
use super::{ProcessingGuarantee, RuntimeMetrics, StreamsConfig, TIMEOUT};

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

/// The input positions processed since the last commit, when that was, and the aborts since.
pub(crate) struct Committer {
    config: StreamsConfig,
    /// Next offset to commit per input partition, since the last commit.
    pending: HashMap<(String, i32), i64>,
    last_commit: Instant,
    /// Aborts since the last successful commit, refusal aborts apart.
    consecutive_aborts: u32,
    /// Aborts caused by refused records since the last successful commit.
    consecutive_refusal_aborts: u32,
    metrics: Arc<RuntimeMetrics>,
    /// Deletes committed records of the repartition topics.
    purger: Purger,
}

impl Committer {
    /// Nothing processed yet; the commit interval starts now. `purger` deletes what each
    /// commit makes unneeded in the repartition topics.
    pub(crate) fn new(config: StreamsConfig, metrics: Arc<RuntimeMetrics>, purger: Purger) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            last_commit: Instant::now(),
            consecutive_aborts: 0,
            consecutive_refusal_aborts: 0,
            metrics,
            purger,
        }
    }

    /// Notes that the input at `offset` of `topic`/`partition` was processed: the next commit
    /// commits the offset after it.
    pub(crate) fn processed(&mut self, topic: &str, partition: i32, offset: i64) {
        self.pending
            .insert((topic.to_string(), partition), offset + 1);
    }

    /// Whether the commit interval has passed and there is something to commit.
    pub(crate) fn due(&self, collector: &RecordCollector) -> bool {
        let work = collector.dirty() || !self.pending.is_empty();
        work && self.last_commit.elapsed() >= self.config.effective_commit_interval()
    }

    /// Makes everything `tasks` processed and `collector` sent durable, in the order of the
    /// module doc.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        tasks: &mut BTreeMap<i32, Task>,
        collector: &mut RecordCollector,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let started = Instant::now();
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in &self.pending {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(StreamsError::kafka("building the offsets to commit"))?;
        }
        collector.await_acks()?;
        match self.config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => {
                collector.flush()?;
                commit_stores(tasks, collector)?;
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
                    collector.send_offsets_to_transaction(&offsets, &group)?;
                }
                collector.commit_transaction()?;
                commit_stores(tasks, collector)?;
                collector.begin_transaction()?;
            }
        }
        self.pending.clear();
        collector.committed();
        self.purger.committed(&offsets);
        self.last_commit = Instant::now();
        self.consecutive_aborts = 0;
        self.consecutive_refusal_aborts = 0;
        self.metrics.commits.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .commit_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `error` is one to abort and recover from: under exactly-once, every Kafka
    /// error but a fatal transaction error (this producer was fenced).
    pub(crate) fn recoverable(&self, error: &StreamsError) -> bool {
        let exactly_once = self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        let StreamsError::Kafka { source, .. } = error else {
            return false;
        };
        let fatal = matches!(source, KafkaError::Transaction(e) if e.is_fatal());
        exactly_once && !fatal
    }

    /// Aborts the open transaction (the caller has dropped the tasks with their uncommitted
    /// state), rewinds the consumer of `partitions` to their committed offsets and renews the
    /// producer, so that the caller rebuilds the tasks of `partitions` and redoes the work.
    /// Returns `cause` instead once the aborts in a row reach their bound.
    pub(crate) fn abort<C: ConsumerContext>(
        &mut self,
        collector: &mut RecordCollector,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
        cause: StreamsError,
    ) -> Result<(), StreamsError> {
        tracing::warn!(error = %cause, "aborting the transaction");
        let aborted = collector.abort();
        self.pending.clear();
        let (aborts, bound) = if aborted.suspects > 0 || aborted.culprit {
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
        tracing::warn!(
            attempt = aborts,
            suspects = aborted.suspects,
            culprit = aborted.culprit,
            "recovering the tasks"
        );
        self.metrics
            .aborted_transactions
            .fetch_add(1, Ordering::Relaxed);
        rewind(consumer, partitions)?;
        collector.renew_producer()
    }

    /// Starts the commit interval again, once the tasks are rebuilt after an abort.
    pub(crate) fn recovered(&mut self) {
        self.last_commit = Instant::now();
    }

    /// Forgets what was processed without being committed (the tasks were dropped).
    pub(crate) fn abandon(&mut self) {
        self.pending.clear();
    }
}

/// Commits every store of `tasks` with the offset of its last acknowledged changelog record.
fn commit_stores(
    tasks: &mut BTreeMap<i32, Task>,
    collector: &RecordCollector,
) -> Result<(), StreamsError> {
    for (partition, task) in tasks {
        task.commit(|topic| collector.acked_offset(topic, *partition))?;
    }
    Ok(())
}

/// Moves the consumer of `partitions` (of every topic it reads) back to the committed
/// offsets, or to the beginning where nothing was committed yet.
fn rewind<C: ConsumerContext>(
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
