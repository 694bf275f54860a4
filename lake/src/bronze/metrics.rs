//! What a Bronze sink has done: counters and per-partition progress, shared with whoever reads
//! them. As a `prometheus-client` collector they are read at scrape time (the `lake-sink`
//! binary registers it in the registry it serves).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
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

impl Collector for SinkMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.snapshot();
        for (name, help, value) in [
            (
                "lake_sink_records_written",
                "Records appended to Bronze tables.",
                s.records_written,
            ),
            ("lake_sink_commits", "Delta commits made.", s.commits),
            (
                "lake_sink_commit_conflicts",
                "Commits lost to a concurrent writer of the same partitions.",
                s.commit_conflicts,
            ),
            (
                "lake_sink_store_retries",
                "Store operations retried after a failure.",
                s.store_retries,
            ),
            (
                "lake_sink_already_committed",
                "Records dropped because the table's log already covered them.",
                s.already_committed,
            ),
            (
                "lake_sink_not_assigned",
                "Records dropped because their partition was no longer assigned.",
                s.not_assigned,
            ),
            (
                "lake_sink_rebalances",
                "Partition assignments received.",
                s.rebalances,
            ),
            (
                "lake_sink_consumer_errors",
                "Errors reported by the Kafka consumer.",
                s.consumer_errors,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let partitions = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut family = encoder.encode_descriptor(
            "lake_sink_next_offset",
            "The next offset of each partition recorded in its table's log.",
            None,
            MetricType::Gauge,
        )?;
        for ((topic, partition), p) in &partitions {
            let partition = partition.to_string();
            ConstGauge::new(p.next_offset).encode(
                family.encode_family(&[("topic", topic.as_str()), ("partition", &partition)])?,
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "lake_sink_last_record_timestamp_seconds",
            "Kafka timestamp of the last record committed from each partition.",
            None,
            MetricType::Gauge,
        )?;
        for ((topic, partition), p) in &partitions {
            if let Some(ms) = p.last_timestamp_ms {
                let partition = partition.to_string();
                ConstGauge::new(ms as f64 / 1e3).encode(
                    family
                        .encode_family(&[("topic", topic.as_str()), ("partition", &partition)])?,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_reads_the_counters_and_the_progress_at_scrape_time() {
        let metrics = std::sync::Arc::new(SinkMetrics::default());
        let registry = streamlib::metrics::MetricsRegistry::default();
        registry.register_collector(metrics.clone());
        metrics.committed(5);
        metrics.progress(
            "raw",
            1,
            PartitionProgress {
                next_offset: 42,
                last_timestamp_ms: Some(1_500),
            },
        );
        metrics.progress(
            "raw",
            0,
            PartitionProgress {
                next_offset: 7,
                last_timestamp_ms: None,
            },
        );
        let text = registry.encode();
        for expected in [
            "# HELP lake_sink_records_written_total Records appended to Bronze tables.\n\
             # TYPE lake_sink_records_written_total counter\n\
             lake_sink_records_written_total 5\n",
            "\nlake_sink_commits_total 1\n",
            "\nlake_sink_rebalances_total 0\n",
            "# TYPE lake_sink_next_offset gauge\n\
             lake_sink_next_offset{topic=\"raw\",partition=\"0\"} 7\n\
             lake_sink_next_offset{topic=\"raw\",partition=\"1\"} 42\n",
            "# TYPE lake_sink_last_record_timestamp_seconds gauge\n\
             lake_sink_last_record_timestamp_seconds{topic=\"raw\",partition=\"1\"} 1.5\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        assert!(
            !text
                .contains("lake_sink_last_record_timestamp_seconds{topic=\"raw\",partition=\"0\"}"),
            "no timestamp without a record: {text}"
        );
    }
}
