//! Checks the input topics and creates the internal ones before an application starts.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::StreamsError;
use crate::topology::{InternalTopicKind, Topology};

use super::StreamsConfig;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Retention of windowed changelogs (`compact,delete`): one week.
const WINDOWED_CHANGELOG_RETENTION_MS: &str = "604800000";

/// Partition counts of existing topics.
fn partition_counts(config: &StreamsConfig) -> Result<BTreeMap<String, i32>, StreamsError> {
    let consumer: BaseConsumer = config
        .client(&[])
        .create()
        .map_err(StreamsError::kafka("creating a metadata client"))?;
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(StreamsError::kafka("fetching cluster metadata"))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// Verifies the inputs (present, same partition count) and creates changelog and repartition
/// topics with that partition count. Returns the partition count.
pub(crate) fn prepare(topology: &Topology, config: &StreamsConfig) -> Result<i32, StreamsError> {
    let existing = partition_counts(config)?;
    let sources = topology.source_topics();
    let missing: Vec<String> = sources
        .iter()
        .filter(|t| !existing.contains_key(*t))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(StreamsError::MissingSourceTopics(missing));
    }
    let counts: Vec<(String, i32)> = sources.iter().map(|t| (t.clone(), existing[t])).collect();
    let partitions = match counts.first() {
        Some((_, n)) if counts.iter().all(|(_, c)| c == n) => *n,
        Some(_) => return Err(StreamsError::PartitionCountMismatch(counts)),
        None => return Err(StreamsError::Config("the topology reads no topic".into())),
    };
    let internal = topology.internal_topics();
    let names: Vec<String> = internal
        .iter()
        .map(|t| format!("{}-{}", config.application_id, t.name))
        .collect();
    let new_topics: Vec<NewTopic<'_>> = internal
        .iter()
        .zip(&names)
        .filter(|(_, name)| !existing.contains_key(*name))
        .map(|(topic, name)| {
            let new = NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            match topic.kind {
                InternalTopicKind::Repartition => new,
                InternalTopicKind::Changelog => new.set("cleanup.policy", "compact"),
                InternalTopicKind::WindowedChangelog => new
                    .set("cleanup.policy", "compact,delete")
                    .set("retention.ms", WINDOWED_CHANGELOG_RETENTION_MS),
            }
        })
        .collect();
    if !new_topics.is_empty() {
        create(config, &new_topics)?;
    }
    if let Some(name) = names
        .iter()
        .find(|n| existing.get(*n).is_some_and(|c| *c != partitions))
    {
        return Err(StreamsError::Config(format!(
            "internal topic {name} has {} partitions, inputs have {partitions}",
            existing[name]
        )));
    }
    Ok(partitions)
}

fn create(config: &StreamsConfig, topics: &[NewTopic<'_>]) -> Result<(), StreamsError> {
    let admin: AdminClient<DefaultClientContext> = config
        .client(&[])
        .create()
        .map_err(StreamsError::kafka("creating an admin client"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StreamsError::Config(format!("starting a tokio runtime: {e}")))?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = runtime
        .block_on(admin.create_topics(topics, &options))
        .map_err(StreamsError::kafka("creating internal topics"))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created internal topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StreamsError::Config(format!(
                    "creating internal topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}
