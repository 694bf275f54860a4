//! The global thread: reads every partition of the global tables' topics into the instance's
//! global stores, first up to the end (before the stream threads start), then as records come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;
use crate::state::global::{Applied, GlobalStores};

use super::restore::{position, transient, watermarks};
use super::{RuntimeMetrics, StreamsConfig, TIMEOUT};

const POLL: Duration = Duration::from_millis(100);

/// The consumer of the global topics and the stores it feeds.
pub(crate) struct GlobalThread {
    consumer: BaseConsumer,
    stores: GlobalStores,
    metrics: Arc<RuntimeMetrics>,
    commit_interval: Duration,
}

impl GlobalThread {
    /// Assigns every partition of every global topic at the offset its store has reached, and
    /// reads each up to its end as of now.
    pub(crate) fn restore(
        stores: GlobalStores,
        config: &StreamsConfig,
        metrics: Arc<RuntimeMetrics>,
    ) -> Result<Self, StreamsError> {
        let consumer: BaseConsumer = config
            .client(&[
                ("group.id", &format!("{}-global", config.application_id)),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
            ])
            .create()
            .map_err(StreamsError::kafka("creating the global consumer"))?;
        let mut assignment = TopicPartitionList::new();
        let mut ends = Vec::new();
        for (topic, store) in stores.topics() {
            let metadata =
                consumer
                    .fetch_metadata(Some(topic), TIMEOUT)
                    .map_err(StreamsError::kafka(format!(
                        "reading the metadata of {topic}"
                    )))?;
            let offsets = stores.offsets(store)?;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let id = partition.id();
                let (low, high) = watermarks(&consumer, topic, id)?;
                let start = offsets.get(&id).copied().unwrap_or(low).max(low);
                assignment
                    .add_partition_offset(topic, id, Offset::Offset(start))
                    .map_err(StreamsError::kafka("assigning a global partition"))?;
                if start < high {
                    ends.push((topic.clone(), id, high));
                }
            }
        }
        consumer
            .assign(&assignment)
            .map_err(StreamsError::kafka("assigning the global partitions"))?;
        let thread = Self {
            consumer,
            stores,
            metrics,
            commit_interval: config.effective_commit_interval(),
        };
        thread.catch_up(&ends)?;
        Ok(thread)
    }

    /// Reads until every `(topic, partition, end)` has been read up to its end.
    fn catch_up(&self, ends: &[(String, i32, i64)]) -> Result<(), StreamsError> {
        let mut last_progress = Instant::now();
        loop {
            match self.consumer.poll(POLL) {
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    self.apply(&message)?;
                }
                Some(Err(error)) if transient(&error) && last_progress.elapsed() < TIMEOUT => {
                    tracing::warn!(%error, "restoring the global tables waits for the cluster");
                }
                Some(Err(error)) => {
                    return Err(StreamsError::kafka("restoring the global tables")(error))
                }
                None if ends
                    .iter()
                    .all(|(topic, p, end)| position(&self.consumer, topic, *p) >= *end) =>
                {
                    break
                }
                None => {}
            }
        }
        self.stores.commit()?;
        tracing::info!(partitions = ends.len(), "global tables restored");
        Ok(())
    }

    fn apply<M: Message>(&self, message: &M) -> Result<(), StreamsError> {
        let timestamp = message.timestamp().to_millis().unwrap_or_default();
        let record = (message.key(), message.payload(), timestamp);
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        match self.stores.apply(topic, partition, offset, record)? {
            Applied::Stored => {
                self.metrics.global_records.fetch_add(1, Ordering::Relaxed);
            }
            Applied::Skipped(reason) => {
                self.metrics.global_skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, partition, offset, %reason, "skipping a record of a global table");
            }
        }
        Ok(())
    }

    /// Keeps the stores current until `running` turns false; commits every commit interval.
    /// A store failure ends it with the error (and the instance stops).
    pub(crate) fn run(self, running: &AtomicBool) -> Result<(), StreamsError> {
        let mut last_commit = Instant::now();
        while running.load(Ordering::SeqCst) {
            match self.consumer.poll(POLL) {
                Some(Ok(message)) => self.apply(&message)?,
                Some(Err(error)) => {
                    tracing::warn!(%error, "the global thread's consumer reports an error");
                }
                None => {}
            }
            if last_commit.elapsed() >= self.commit_interval {
                self.stores.commit()?;
                last_commit = Instant::now();
            }
        }
        self.stores.commit()?;
        Ok(())
    }
}
