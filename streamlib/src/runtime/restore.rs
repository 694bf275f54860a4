//! Restoring a task's stores from their changelog topics, starting after the checkpoint.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::StreamsError;
use crate::query::Position;
use crate::state::encoding::timestamped;
use crate::state::RestoreRecord;
use crate::task::Task;
use crate::topology::{SourceChangelog, StoreSpec};

use super::{StreamsConfig, TIMEOUT};

const BATCH: usize = 1_000;
/// How long one poll for changelog records waits; an empty poll is when the position is checked.
const POLL: Duration = Duration::from_millis(50);

/// The low and high watermark of `topic`/`partition`. A changelog topic created moments ago may
/// be missing from the client's or the broker's metadata yet (NotLeaderForPartition,
/// LeaderNotAvailable, UnknownTopicOrPartition, librdkafka's local UnknownPartition): those
/// answers are asked again until [`TIMEOUT`] has passed.
pub(super) fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), StreamsError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, TIMEOUT) {
            Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition,
            )) if Instant::now() < deadline => {
                // The broker's metadata catches up within milliseconds; ask again shortly.
                std::thread::sleep(Duration::from_millis(100));
            }
            result => {
                return result.map_err(StreamsError::kafka(format!(
                    "reading watermarks of {topic}"
                )))
            }
        }
    }
}

/// The consumer's position in `topic`/`partition` (-1 when it has none). librdkafka answers it
/// through its main thread, so it is asked only when a poll comes back empty, never per record.
pub(super) fn position(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    consumer
        .position()
        .ok()
        .and_then(|p| p.find_partition(topic, partition).map(|e| e.offset()))
        .and_then(|offset| match offset {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .unwrap_or(-1)
}

/// The changelog record `message` as a store applies it.
pub(crate) fn restore_record<M: Message>(message: &M) -> RestoreRecord {
    RestoreRecord {
        offset: message.offset(),
        key: message.key().unwrap_or_default().to_vec(),
        value: message.payload().map(<[u8]>::to_vec),
    }
}

/// Whether a consumer error while restoring is one librdkafka recovers from by itself (a broker
/// down or moving leadership): the restore waits for it, up to [`TIMEOUT`] without progress.
pub(super) fn transient(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
        )
    )
}

/// Replays partition `partition` of each store's changelog into that store of `task`, from the
/// store's checkpoint + 1: a logged store's changelog topic up to its end; a table's source
/// topic (its changelog) up to `committed`, the task's committed position, since the records
/// after it are processed again. Returns the number of records applied.
pub(crate) fn restore_task(
    task: &mut Task,
    partition: i32,
    stores: &[StoreSpec],
    committed: &Position,
    config: &StreamsConfig,
) -> Result<u64, StreamsError> {
    let consumer: BaseConsumer = config
        .client(&[
            ("group.id", &format!("{}-restore", config.application_id)),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ])
        .create()
        .map_err(StreamsError::kafka("creating the restore consumer"))?;
    let mut restored = 0;
    for spec in stores.iter().filter(|s| s.logged || s.source.is_some()) {
        let topic = spec.changelog_of(&config.application_id);
        let Some(store) = task.stores().get_mut(&spec.name) else {
            continue;
        };
        let store = store.as_state_store();
        let (low, high) = watermarks(&consumer, &topic, partition)?;
        let end = match &spec.source {
            Some(_) => committed
                .offset(&topic, partition)
                .map_or(low, |o| o + 1)
                .min(high),
            None => high,
        };
        let start = store.checkpoint().map_or(low, |c| (c + 1).max(low));
        if start >= end {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, partition, Offset::Offset(start))
            .map_err(StreamsError::kafka("assigning a changelog partition"))?;
        consumer
            .assign(&assignment)
            .map_err(StreamsError::kafka("assigning a changelog partition"))?;
        tracing::info!(%topic, partition, from = start, to = end, "restoring");
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_progress = Instant::now();
        loop {
            match consumer.poll(POLL) {
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    if message.offset() >= end {
                        break;
                    }
                    let last = message.offset() + 1 >= end;
                    let record = match &spec.source {
                        Some(source) => row_record(&message, source),
                        None => Some(restore_record(&message)),
                    };
                    batch.extend(record);
                    if batch.len() >= BATCH {
                        restored += batch.len() as u64;
                        store.restore(&batch)?;
                        batch.clear();
                    }
                    if last {
                        break;
                    }
                }
                Some(Err(error)) if transient(&error) && last_progress.elapsed() < TIMEOUT => {
                    tracing::warn!(%topic, partition, %error, "restore waits for the cluster");
                }
                Some(Err(error)) => {
                    return Err(StreamsError::kafka(format!("restoring from {topic}"))(
                        error,
                    ))
                }
                // Nothing more to read: done when the position has passed the end, which
                // also covers a tail of transaction markers or aborted records.
                None if position(&consumer, &topic, partition) >= end => break,
                None => {}
            }
        }
        if !batch.is_empty() {
            restored += batch.len() as u64;
            store.restore(&batch)?;
        }
        consumer
            .unassign()
            .map_err(StreamsError::kafka("releasing a changelog partition"))?;
    }
    Ok(restored)
}

/// A record of a table's source topic as its store holds it (`[timestamp][value]`, a null
/// value deleting); `None` for one processing would not have stored (a null key, or bytes the
/// serdes do not read: those went to the deserialization handler).
fn row_record<M: Message>(message: &M, source: &SourceChangelog) -> Option<RestoreRecord> {
    let key = message.key()?;
    if let Err(error) = (source.validate)(&source.topic, Some(key), message.payload()) {
        tracing::warn!(topic = %source.topic, offset = message.offset(), %error, "not restoring an unreadable record");
        return None;
    }
    let timestamp = message.timestamp().to_millis().unwrap_or_default();
    Some(RestoreRecord {
        offset: message.offset(),
        key: key.to_vec(),
        value: message.payload().map(|value| timestamped(timestamp, value)),
    })
}
