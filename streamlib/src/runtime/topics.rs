//! Checks the input topics and creates the internal ones before an application starts.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::StreamsError;
use crate::topology::{InternalTopic, InternalTopicKind, Topology};

use super::{StreamsConfig, TIMEOUT};

/// Added to a window store's retention for its changelog's `retention.ms`, as Kafka Streams'
/// `windowstore.changelog.additional.retention.ms` does (default one day): a restore after a
/// stop of up to a day still finds every window the store keeps.
const WINDOWED_CHANGELOG_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

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

/// The input and repartition topics the tasks of `topology` read.
pub(crate) fn input_topics(topology: &Topology, application_id: &str) -> Vec<String> {
    let mut topics = topology.source_topics();
    topics.extend(repartition_topics(topology, application_id));
    topics
}

/// The full names of the topology's repartition topics.
pub(crate) fn repartition_topics(topology: &Topology, application_id: &str) -> Vec<String> {
    topology
        .internal_topics()
        .into_iter()
        .filter(|t| t.kind == InternalTopicKind::Repartition)
        .map(|t| t.topic(application_id))
        .collect()
}

/// Verifies the inputs (present, same partition count; global tables' topics present, with
/// any count) and creates changelog and repartition
/// topics with that partition count. Returns the partition count.
pub(crate) fn prepare(topology: &Topology, config: &StreamsConfig) -> Result<i32, StreamsError> {
    let existing = partition_counts(config)?;
    let sources = topology.source_topics();
    let missing: Vec<String> = sources
        .iter()
        .chain(&topology.global_topics())
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
        .map(|t| t.topic(&config.application_id))
        .collect();
    let missing: Vec<(&InternalTopic, &String)> = internal
        .iter()
        .zip(&names)
        .filter(|(_, name)| !existing.contains_key(*name))
        .collect();
    let retentions: Vec<String> = missing
        .iter()
        .map(|(topic, _)| match topic.kind {
            InternalTopicKind::WindowedChangelog { retention } => (retention
                + WINDOWED_CHANGELOG_MARGIN)
                .as_millis()
                .to_string(),
            InternalTopicKind::Repartition | InternalTopicKind::Changelog => String::new(),
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .zip(&retentions)
        .map(|((topic, name), retention_ms)| {
            let new = NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            match topic.kind {
                // Kept until purged (`super::purge`), not by time: timestamps are event times.
                InternalTopicKind::Repartition => new
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", "-1"),
                InternalTopicKind::Changelog => new.set("cleanup.policy", "compact"),
                InternalTopicKind::WindowedChangelog { .. } => new
                    .set("cleanup.policy", "compact,delete")
                    .set("retention.ms", retention_ms),
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

/// An admin client and a runtime to drive its futures on this thread.
pub(crate) fn admin(
    config: &StreamsConfig,
) -> Result<(AdminClient<DefaultClientContext>, tokio::runtime::Runtime), StreamsError> {
    let admin = config
        .client(&[])
        .create()
        .map_err(StreamsError::kafka("creating an admin client"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StreamsError::Config(format!("starting a tokio runtime: {e}")))?;
    Ok((admin, runtime))
}

fn create(config: &StreamsConfig, topics: &[NewTopic<'_>]) -> Result<(), StreamsError> {
    let (admin, runtime) = admin(config)?;
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
