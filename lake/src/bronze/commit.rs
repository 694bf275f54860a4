//! One exactly-once Bronze commit: re-read the progress in the table's log, drop what it already
//! covers, append the rest with the new progress; retry on a conflict or a store failure.

use std::collections::BTreeMap;
use std::time::Duration;

use deltalake::DeltaTable;

use super::metrics::{PartitionProgress, SinkMetrics};
use super::{append_with_positions, committed_offsets, BronzeRecord, Positions};
use crate::LakeError;

/// How often a Bronze commit is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after a store failure (object store down, I/O error) before the sink stops.
    pub store_attempts: u32,
    /// Wait before the first retry after a store failure; doubled each time, at most 8 s.
    pub store_backoff: Duration,
    /// Commits lost to concurrent writers of the same partitions before giving up.
    pub conflict_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            store_attempts: 5,
            store_backoff: Duration::from_millis(250),
            conflict_attempts: 50,
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Refreshes `table` to the latest version of its log.
pub(crate) async fn refresh(table: &mut DeltaTable, name: &str) -> Result<(), LakeError> {
    table
        .update_state()
        .await
        .map_err(LakeError::delta(name, "refresh"))
}

/// The next offsets committed by `sink_id` for every `(topic, partition)` of `records` and
/// `positions`.
async fn progress_of(
    table: &DeltaTable,
    name: &str,
    sink_id: &str,
    records: &[BronzeRecord],
    positions: &Positions,
) -> Result<Positions, LakeError> {
    let mut partitions: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    let keys = records
        .iter()
        .map(|r| (r.topic.as_str(), r.partition))
        .chain(positions.keys().map(|(t, p)| (t.as_str(), *p)));
    for (topic, partition) in keys {
        let list = partitions.entry(topic).or_default();
        if !list.contains(&partition) {
            list.push(partition);
        }
    }
    let mut progress = BTreeMap::new();
    for (topic, list) in partitions {
        for (partition, next) in committed_offsets(table, name, sink_id, topic, list).await? {
            progress.insert((topic.to_owned(), partition), next);
        }
    }
    Ok(progress)
}

/// Appends those of `records` that the log of `table` (named `name`) does not yet cover for
/// `sink_id`, in one commit with their progress (raised to `positions` where the log is behind
/// them), and returns the progress now committed for each partition of `records` and `positions`.
///
/// Invariant (exactly once): a record is written only if its offset is ≥ the partition's
/// committed next offset in the snapshot the commit is based on, and Delta rejects the commit if
/// any other commit since that snapshot moved one of its partitions; on rejection the log is
/// re-read and the covered records dropped. Store failures are retried `policy.store_attempts`
/// times, each retry starting from a re-read log, so a commit that landed although its answer was
/// lost is never written twice.
pub async fn append_exactly_once(
    table: &mut DeltaTable,
    name: &str,
    sink_id: &str,
    mut records: Vec<BronzeRecord>,
    mut positions: Positions,
    policy: &RetryPolicy,
    metrics: &SinkMetrics,
) -> Result<Positions, LakeError> {
    let mut store_failures = 0;
    let mut conflicts = 0;
    let mut backoff = policy.store_backoff;
    loop {
        let attempt: Result<Positions, LakeError> = async {
            refresh(table, name).await?;
            let progress = progress_of(table, name, sink_id, &records, &positions).await?;
            let before = records.len();
            records.retain(|r| {
                progress
                    .get(&(r.topic.clone(), r.partition))
                    .is_none_or(|next| r.offset >= *next)
            });
            metrics.already_committed((before - records.len()) as u64);
            positions
                .retain(|key, position| progress.get(key).is_none_or(|next| *position > *next));
            if records.is_empty() && positions.is_empty() {
                return Ok(progress);
            }
            let updated =
                append_with_positions(table.clone(), name, sink_id, &records, &positions).await?;
            *table = updated;
            Ok(progress)
        }
        .await;
        match attempt {
            Ok(mut progress) => {
                if records.is_empty() && positions.is_empty() {
                    return Ok(progress);
                }
                metrics.committed(records.len() as u64);
                for ((topic, partition), position) in &positions {
                    let next = progress
                        .entry((topic.clone(), *partition))
                        .or_insert(*position);
                    *next = (*next).max(*position);
                    metrics.progress(
                        topic,
                        *partition,
                        PartitionProgress {
                            next_offset: *next,
                            last_timestamp_ms: None,
                        },
                    );
                }
                let mut last: BTreeMap<(&str, i32), &BronzeRecord> = BTreeMap::new();
                for record in &records {
                    let entry = last
                        .entry((record.topic.as_str(), record.partition))
                        .or_insert(record);
                    if record.offset > entry.offset {
                        *entry = record;
                    }
                }
                for ((topic, partition), record) in last {
                    let next = progress
                        .entry((topic.to_owned(), partition))
                        .or_insert(record.offset + 1);
                    *next = (*next).max(record.offset + 1);
                    metrics.progress(
                        topic,
                        partition,
                        PartitionProgress {
                            next_offset: *next,
                            last_timestamp_ms: record.timestamp_ms,
                        },
                    );
                }
                return Ok(progress);
            }
            Err(LakeError::CommitConflict { table, source }) => {
                metrics.conflict();
                conflicts += 1;
                tracing::info!(table = %table, conflicts, "a concurrent commit moved the same partitions; re-reading the log");
                if conflicts >= policy.conflict_attempts {
                    return Err(LakeError::CommitConflict { table, source });
                }
            }
            Err(error) => {
                store_failures += 1;
                if store_failures >= policy.store_attempts {
                    return Err(error);
                }
                metrics.store_retry();
                tracing::warn!(table = name, attempt = store_failures, error = %error, "store failure; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
