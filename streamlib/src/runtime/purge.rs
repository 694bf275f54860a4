//! Deletes what the application has committed from its repartition topics (Kafka Streams'
//! `repartition.purge.interval.ms`). Repartition topics keep their records without a time limit
//! (`retention.ms=-1`, as Kafka Streams creates them): a record's timestamp is its event time,
//! so time-based retention would delete records of a replay or a backfill before a task reads
//! them. Once the offsets after them are committed they are never read again, and this deletes
//! them, at most every [`StreamsConfig::repartition_purge_interval`] (30 s by default).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;

use super::topics::admin;
use super::{StreamsConfig, TIMEOUT};

/// Committed offsets of one thread's repartition partitions, deleted up to periodically.
pub(crate) struct Purger {
    client: Option<(AdminClient<DefaultClientContext>, tokio::runtime::Runtime)>,
    /// Full names of the topology's repartition topics.
    topics: Vec<String>,
    /// Committed (next) offset per repartition partition, since the last purge.
    committed: BTreeMap<(String, i32), i64>,
    last: Instant,
    every: Duration,
}

impl Purger {
    /// A purger of `topics` (no client is created when there are none).
    pub(crate) fn new(config: &StreamsConfig, topics: Vec<String>) -> Result<Self, StreamsError> {
        let client = if topics.is_empty() {
            None
        } else {
            Some(admin(config)?)
        };
        Ok(Self {
            client,
            topics,
            committed: BTreeMap::new(),
            last: Instant::now(),
            every: config.repartition_purge_interval,
        })
    }

    /// Notes the offsets just committed; once per purge interval, deletes the repartition
    /// records before them. A failed deletion is logged and tried again at the next purge: it
    /// costs disk, not correctness.
    pub(crate) fn committed(&mut self, offsets: &TopicPartitionList) {
        let Some((admin, runtime)) = &self.client else {
            return;
        };
        for element in offsets.elements() {
            if let Offset::Offset(next) = element.offset() {
                if self.topics.iter().any(|t| t == element.topic()) {
                    self.committed
                        .insert((element.topic().to_string(), element.partition()), next);
                }
            }
        }
        if self.last.elapsed() < self.every || self.committed.is_empty() {
            return;
        }
        self.last = Instant::now();
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in std::mem::take(&mut self.committed) {
            // Only an invalid offset fails, and committed offsets are valid.
            let _ = list.add_partition_offset(&topic, partition, Offset::Offset(next));
        }
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        match runtime.block_on(admin.delete_records(&list, &options)) {
            Ok(result) => {
                for element in result.elements() {
                    if let Err(error) = element.error() {
                        tracing::warn!(topic = element.topic(), partition = element.partition(), %error, "purging a repartition partition");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "purging repartition topics"),
        }
    }
}
