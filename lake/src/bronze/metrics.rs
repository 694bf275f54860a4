//! What a Bronze sink has done: counters and per-partition progress, shared with whoever serves
//! them (the `lake-sink` binary serves a [`SinkMetrics::snapshot`] as JSON).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Counters of one sink; shared (`Arc`) between the sink's loop and readers.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    records_written: AtomicU64,
    commits: AtomicU64,
    commit_conflicts: AtomicU64,
    store_retries: AtomicU64,
    already_committed: AtomicU64,
    not_assigned: AtomicU64,
    rebalances: AtomicU64,
    consumer_errors: AtomicU64,
    partitions: Mutex<BTreeMap<(String, i32), PartitionProgress>>,
}

/// The committed progress of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PartitionProgress {
    /// The next offset recorded in the table's log (the `txn` version).
    pub next_offset: i64,
    /// Kafka timestamp (ms) of the last record this sink committed, if it had one.
    pub last_timestamp_ms: Option<i64>,
}

/// A point-in-time copy of [`SinkMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Records appended to Bronze tables.
    pub records_written: u64,
    /// Delta commits made.
    pub commits: u64,
    /// Commits lost to a concurrent writer of the same partitions (then re-read and retried).
    pub commit_conflicts: u64,
    /// Store operations retried after a failure.
    pub store_retries: u64,
    /// Records dropped because the table's log already covered them (another instance wrote them).
    pub already_committed: u64,
    /// Records dropped because their partition was no longer assigned to this instance.
    pub not_assigned: u64,
    /// Partition assignments received.
    pub rebalances: u64,
    /// Errors reported by the Kafka consumer (logged; the consumer retries by itself).
    pub consumer_errors: u64,
    /// Progress per `"topic/partition"`.
    pub partitions: BTreeMap<String, PartitionProgress>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl SinkMetrics {
    pub(crate) fn committed(&self, records: u64) {
        add(&self.records_written, records);
        add(&self.commits, 1);
    }

    pub(crate) fn conflict(&self) {
        add(&self.commit_conflicts, 1);
    }

    pub(crate) fn store_retry(&self) {
        add(&self.store_retries, 1);
    }

    pub(crate) fn already_committed(&self, records: u64) {
        add(&self.already_committed, records);
    }

    pub(crate) fn not_assigned(&self) {
        add(&self.not_assigned, 1);
    }

    pub(crate) fn rebalance(&self) {
        add(&self.rebalances, 1);
    }

    pub(crate) fn consumer_error(&self) {
        add(&self.consumer_errors, 1);
    }

    pub(crate) fn progress(&self, topic: &str, partition: i32, progress: PartitionProgress) {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = partitions.entry((topic.to_owned(), partition)).or_default();
        entry.next_offset = entry.next_offset.max(progress.next_offset);
        if progress.last_timestamp_ms.is_some() {
            entry.last_timestamp_ms = progress.last_timestamp_ms;
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let partitions = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((topic, partition), p)| (format!("{topic}/{partition}"), *p))
            .collect();
        MetricsSnapshot {
            records_written: load(&self.records_written),
            commits: load(&self.commits),
            commit_conflicts: load(&self.commit_conflicts),
            store_retries: load(&self.store_retries),
            already_committed: load(&self.already_committed),
            not_assigned: load(&self.not_assigned),
            rebalances: load(&self.rebalances),
            consumer_errors: load(&self.consumer_errors),
            partitions,
        }
    }
}
