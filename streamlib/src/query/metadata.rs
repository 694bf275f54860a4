//! Which instance holds which partition: read from the consumer group's assignment.
//!
//! librdkafka has no pluggable assignor, so an instance cannot put its `application_server`
//! into the group's user data as Kafka Streams does. Instead every stream thread's consumer
//! carries it in its `client.id` (`<application.id>@<host:port>`), and the group's member list
//! (DescribeGroups) gives each member's client id and assignment (ADR-046).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::{Deserialize, Serialize};

use crate::error::StreamsError;
use crate::runtime::StreamsConfig;

use super::QueryError;

/// How long reading the group's members may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One instance of the application and the partitions its stream threads hold now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamsMetadata {
    /// Its `application_server` (`host:port`).
    pub host: String,
    /// The partitions (task numbers) assigned to it.
    pub partitions: BTreeSet<i32>,
}

/// Where a key lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyQueryMetadata {
    /// The key's partition (task number).
    pub partition: i32,
    /// The instance whose task holds the partition, `None` while nobody does (a rebalance).
    pub active_host: Option<String>,
    /// Instances keeping a standby replica of it (with standbys on, every other instance).
    pub standby_hosts: Vec<String>,
}

/// The `client.id` that publishes `server` as the application server of `application_id`.
pub(crate) fn client_id(application_id: &str, server: &str) -> String {
    format!("{application_id}@{server}")
}

/// Reads the group's members and their assignments.
pub(crate) struct GroupMembers {
    consumer: BaseConsumer,
    group: String,
}

impl GroupMembers {
    /// A reader of the group `config.application_id` (a consumer that never joins it).
    pub(crate) fn new(config: &StreamsConfig) -> Result<Self, StreamsError> {
        let consumer = config
            .client(&[])
            .create()
            .map_err(StreamsError::kafka("creating the metadata client"))?;
        Ok(Self {
            consumer,
            group: config.application_id.clone(),
        })
    }

    /// Every instance that publishes an application server, with its partitions, by host.
    pub(crate) fn instances(&self) -> Result<Vec<StreamsMetadata>, QueryError> {
        let list = self
            .consumer
            .fetch_group_list(Some(&self.group), TIMEOUT)
            .map_err(|e| QueryError::Metadata(e.to_string()))?;
        let prefix = format!("{}@", self.group);
        let mut hosts: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for group in list.groups() {
            for member in group.members() {
                let Some(host) = member.client_id().strip_prefix(&prefix) else {
                    continue;
                };
                let partitions = hosts.entry(host.to_owned()).or_default();
                if let Some(assignment) = member.assignment() {
                    partitions.extend(assigned_partitions(assignment).unwrap_or_default());
                }
            }
        }
        Ok(hosts
            .into_iter()
            .map(|(host, partitions)| StreamsMetadata { host, partitions })
            .collect())
    }
}

/// Where `partition` lives among `instances`; with standbys on, every other instance keeps
/// one.
pub(crate) fn locate(
    instances: &[StreamsMetadata],
    partition: i32,
    standbys: bool,
) -> KeyQueryMetadata {
    let active_host = instances
        .iter()
        .find(|i| i.partitions.contains(&partition))
        .map(|i| i.host.clone());
    let standby_hosts = if standbys {
        instances
            .iter()
            .filter(|i| Some(&i.host) != active_host.as_ref())
            .map(|i| i.host.clone())
            .collect()
    } else {
        Vec::new()
    };
    KeyQueryMetadata {
        partition,
        active_host,
        standby_hosts,
    }
}

/// The partition numbers of a consumer protocol assignment (`ConsumerProtocolAssignment`,
/// versions 0 to 3: `int16 version`, then `[topic: string, partitions: [int32]]`, then user
/// data), over all its topics; `None` when the bytes are cut short.
fn assigned_partitions(bytes: &[u8]) -> Option<BTreeSet<i32>> {
    let mut reader = Reader(bytes);
    reader.take(2)?; // version
    let mut partitions = BTreeSet::new();
    for _ in 0..reader.count()? {
        let name_len = i16::from_be_bytes(reader.take(2)?.try_into().ok()?);
        reader.take(usize::try_from(name_len).ok()?)?;
        for _ in 0..reader.count()? {
            partitions.insert(i32::from_be_bytes(reader.take(4)?.try_into().ok()?));
        }
    }
    Some(partitions)
}

/// A cursor over big-endian protocol bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// An `int32` array length (`-1`, a null array, counts as empty).
    fn count(&mut self) -> Option<usize> {
        let n = i32::from_be_bytes(self.take(4)?.try_into().ok()?);
        Some(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 1i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes()); // null user data
        out
    }

    #[test]
    fn reads_the_partitions_of_every_topic() {
        let bytes = assignment(&[("in", &[0, 2]), ("app-repartition", &[2, 5])]);
        assert_eq!(assigned_partitions(&bytes), Some(BTreeSet::from([0, 2, 5])));
        assert_eq!(assigned_partitions(&bytes[..9]), None);
        assert_eq!(assigned_partitions(&assignment(&[])), Some(BTreeSet::new()));
    }

    #[test]
    fn locates_the_active_and_the_standby_hosts() {
        let instances = vec![
            StreamsMetadata {
                host: "a:1".into(),
                partitions: BTreeSet::from([0, 1]),
            },
            StreamsMetadata {
                host: "b:1".into(),
                partitions: BTreeSet::from([2]),
            },
        ];
        let located = locate(&instances, 2, true);
        assert_eq!(located.active_host.as_deref(), Some("b:1"));
        assert_eq!(located.standby_hosts, vec!["a:1".to_string()]);
        let nobody = locate(&instances, 3, false);
        assert_eq!(nobody.active_host, None);
        assert!(nobody.standby_hosts.is_empty());
    }
}
