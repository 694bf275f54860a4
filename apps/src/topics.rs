//! The platform's topics (README "Topics"): their names, their settings (docs/NFR.md §1, the
//! source; a unit test compares), and [`ensure`], which creates the missing ones and refuses
//! existing ones whose partition count breaks co-partitioning. Used by the `topics` command and
//! by `pipeline`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// Events as the producer wrote them, not yet validated.
pub const RAW: &str = "crypto.prices.raw";
/// Events that satisfy contract v1.2.
pub const VALID: &str = "crypto.prices.valid";
/// Rejected records in the dead-letter envelope (`contracts/dead_letter.schema.json`).
pub const DLQ: &str = "crypto.prices.dlq";
/// First occurrence of each `(coin_id, vs_currency, ts_event)`.
pub const DEDUP: &str = "crypto.prices.dedup";
/// Rolling returns and volatility (`contracts/metrics_event.schema.json`).
pub const METRICS: &str = "crypto.metrics";
/// Anomaly alerts (`contracts/alert_event.schema.json`).
pub const ALERTS: &str = "crypto.alerts";
/// The latest reference row of each coin (`contracts/coin_reference.schema.json`), compacted.
pub const COINS: &str = "crypto.coins";

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// How a platform topic gets rid of old records (its `cleanup.policy`, docs/NFR.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// `delete` after `retention.ms` of this many days.
    Delete {
        /// Retention in days.
        days: i64,
    },
    /// `compact`: the latest record of each key is kept for good (`retention.ms` does not
    /// apply).
    Compact,
}

impl Cleanup {
    /// The topic configuration it stands for.
    pub fn config(self) -> BTreeMap<String, String> {
        match self {
            Cleanup::Delete { days } => BTreeMap::from([
                ("cleanup.policy".to_string(), "delete".to_string()),
                ("retention.ms".to_string(), (days * DAY_MS).to_string()),
            ]),
            Cleanup::Compact => {
                BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
            }
        }
    }
}

/// The cleanup of each platform topic (docs/NFR.md §1), in the order of [`Topics::all`].
pub const CLEANUP: [(&str, Cleanup); 7] = [
    (RAW, Cleanup::Delete { days: 30 }),
    (COINS, Cleanup::Compact),
    (VALID, Cleanup::Delete { days: 30 }),
    (DLQ, Cleanup::Delete { days: 90 }),
    (DEDUP, Cleanup::Delete { days: 30 }),
    (METRICS, Cleanup::Delete { days: 30 }),
    (ALERTS, Cleanup::Delete { days: 365 }),
];

/// Partitions of every platform topic when none are given (docs/NFR.md §1).
pub const DEFAULT_PARTITIONS: i32 = 6;

/// How a topic is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Full name (prefix included).
    pub name: String,
    /// Partition count; an existing topic must have exactly this many.
    pub partitions: i32,
    /// Replication factor; -1 = the broker's default.
    pub replication_factor: i32,
    /// Topic-level configuration (`cleanup.policy`, `retention.ms`).
    pub config: BTreeMap<String, String>,
}

impl TopicSpec {
    /// The same topic keeping every record (`retention.ms=-1`) where its cleanup deletes by
    /// time: for replays and backfills of history older than the retention of docs/NFR.md §1.
    /// Kafka deletes by record timestamp, which is the event time on the platform topics, so
    /// a topic with 30 days' retention drops a replayed day of last year at the broker's next
    /// retention check — before the apps or the lake sink have read it (ADR-052).
    pub fn keeping_records(mut self) -> Self {
        if let Some(retention) = self.config.get_mut("retention.ms") {
            *retention = "-1".to_string();
        }
        self
    }
}

/// Why [`ensure`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// A Kafka client call failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The tokio runtime for the admin calls could not start.
    #[error("starting a tokio runtime for the admin client: {0}")]
    Runtime(#[from] std::io::Error),
    /// The broker refused to create a topic.
    #[error("creating topic {topic}: {code}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// Existing topics have another partition count than the one asked for.
    #[error(
        "{}; the platform topics are keyed by coin_id and must all have {expected} partitions \
         (co-partitioning, docs/NFR.md §1): pass --partitions with their count, or recreate them",
        describe(.mismatched)
    )]
    PartitionMismatch {
        /// The partition count asked for.
        expected: i32,
        /// `(topic, its partition count)` of each existing topic that differs.
        mismatched: Vec<(String, i32)>,
    },
    /// Created topics did not show up in the cluster metadata in time.
    #[error("topics {0:?} were created but are not in the cluster metadata after 30 s")]
    NotVisible(Vec<String>),
}

fn describe(mismatched: &[(String, i32)]) -> String {
    mismatched
        .iter()
        .map(|(topic, n)| format!("topic {topic} has {n} partitions"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`ensure`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ensured {
    /// Topics it created.
    pub created: Vec<String>,
    /// Topics that existed with the right partition count (their configuration is left as is).
    pub existing: Vec<String>,
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the topics of `specs` that do not exist (with their partitions, replication factor
/// and configuration) on the cluster at `bootstrap` (client `properties` such as SASL/SSL), and
/// waits until they are visible. Fails, before creating anything, when an existing topic has
/// another partition count than its spec.
pub fn ensure(
    bootstrap: &str,
    properties: &BTreeMap<String, String>,
    specs: &[TopicSpec],
) -> Result<Ensured, TopicsError> {
    let mut config = ClientConfig::new();
    for (name, value) in properties {
        config.set(name, value);
    }
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|source| TopicsError::Kafka {
            context: "creating an admin client",
            source,
        })?;
    let existing = partition_counts(&admin)?;
    let mismatched: Vec<(String, i32)> = specs
        .iter()
        .filter_map(|spec| {
            let count = *existing.get(&spec.name)?;
            (count != spec.partitions).then(|| (spec.name.clone(), count))
        })
        .collect();
    if let Some(expected) = specs.first().map(|spec| spec.partitions) {
        if !mismatched.is_empty() {
            return Err(TopicsError::PartitionMismatch {
                expected,
                mismatched,
            });
        }
    }
    let (present, missing): (Vec<&TopicSpec>, Vec<&TopicSpec>) = specs
        .iter()
        .partition(|spec| existing.contains_key(&spec.name));
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication_factor),
                ),
                |topic, (name, value)| topic.set(name, value),
            )
        })
        .collect();
    let mut created = Vec::new();
    if !new.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let results = runtime
            .block_on(admin.create_topics(&new, &options))
            .map_err(|source| TopicsError::Kafka {
                context: "creating topics",
                source,
            })?;
        for result in results {
            match result {
                Ok(name) => {
                    tracing::info!(topic = %name, "created topic");
                    created.push(name);
                }
                // Created by someone else meanwhile: checked below like the others.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(TopicsError::Refused { topic, code }),
            }
        }
    }
    wait_until_visible(&admin, specs)?;
    Ok(Ensured {
        created,
        existing: present.iter().map(|spec| spec.name.clone()).collect(),
    })
}

/// Partition counts of the topics that exist.
fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
) -> Result<BTreeMap<String, i32>, TopicsError> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, ADMIN_TIMEOUT)
        .map_err(|source| TopicsError::Kafka {
            context: "fetching cluster metadata",
            source,
        })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| (topic.name().to_string(), topic.partitions().len() as i32))
        .collect())
}

/// Polls the metadata until every spec's topic is there with its partitions, or fails after
/// [`ADMIN_TIMEOUT`] (also with [`TopicsError::PartitionMismatch`] if a topic created by
/// someone else meanwhile has another count).
fn wait_until_visible(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<(), TopicsError> {
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    loop {
        let counts = partition_counts(admin)?;
        let mismatched: Vec<(String, i32)> = specs
            .iter()
            .filter_map(|spec| {
                let count = *counts.get(&spec.name)?;
                (count != spec.partitions && count > 0).then(|| (spec.name.clone(), count))
            })
            .collect();
        if let (false, Some(spec)) = (mismatched.is_empty(), specs.first()) {
            return Err(TopicsError::PartitionMismatch {
                expected: spec.partitions,
                mismatched,
            });
        }
        let pending: Vec<String> = specs
            .iter()
            .filter(|spec| counts.get(&spec.name) != Some(&spec.partitions))
            .map(|spec| spec.name.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TopicsError::NotVisible(pending));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ten coins the platform follows (DESIGN.md §4), in market-cap order.
pub const DEFAULT_COINS: [&str; 10] = [
    "bitcoin",
    "ethereum",
    "ripple",
    "binancecoin",
    "solana",
    "dogecoin",
    "tron",
    "cardano",
    "hyperliquid",
    "sui",
];

/// The platform's topic names; [`Topics::default`] gives the names above, [`Topics::prefixed`]
/// a separate set (tests, side-by-side deployments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// See [`RAW`].
    pub raw: String,
    /// See [`COINS`].
    pub coins: String,
    /// See [`VALID`].
    pub valid: String,
    /// See [`DLQ`].
    pub dlq: String,
    /// See [`DEDUP`].
    pub dedup: String,
    /// See [`METRICS`].
    pub metrics: String,
    /// See [`ALERTS`].
    pub alerts: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::prefixed("")
    }
}

impl Topics {
    /// Every name preceded by `prefix` (e.g. `test-42.`).
    pub fn prefixed(prefix: &str) -> Self {
        let name = |topic: &str| format!("{prefix}{topic}");
        Self {
            raw: name(RAW),
            coins: name(COINS),
            valid: name(VALID),
            dlq: name(DLQ),
            dedup: name(DEDUP),
            metrics: name(METRICS),
            alerts: name(ALERTS),
        }
    }

    /// Every platform topic with `partitions` partitions, `replication_factor` replicas (-1:
    /// the broker's default) and the cleanup of docs/NFR.md §1 ([`CLEANUP`]).
    pub fn specs(&self, partitions: i32, replication_factor: i32) -> Vec<TopicSpec> {
        self.all()
            .iter()
            .zip(CLEANUP)
            .map(|(name, (_, cleanup))| TopicSpec {
                name: name.to_string(),
                partitions,
                replication_factor,
                config: cleanup.config(),
            })
            .collect()
    }

    /// Every name, in pipeline order (the producer's two topics first).
    pub fn all(&self) -> [&str; 7] {
        [
            &self.raw,
            &self.coins,
            &self.valid,
            &self.dlq,
            &self.dedup,
            &self.metrics,
            &self.alerts,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(topic, cleanup)` of the platform rows of docs/NFR.md's settings table.
    fn documented_cleanup() -> BTreeMap<String, Cleanup> {
        include_str!("../../docs/NFR.md")
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let topic = cells.get(1)?.strip_prefix("`crypto.")?.strip_suffix('`')?;
                let (policy, retention) = (*cells.get(2)?, *cells.get(3)?);
                let cleanup = match policy {
                    "delete" => {
                        assert!(retention.contains(" d"), "{line}: retention in days");
                        let days = retention.split_whitespace().next()?.parse().ok()?;
                        Cleanup::Delete { days }
                    }
                    "compact" => {
                        assert!(retention.starts_with("infinite"), "{line}: compacted");
                        Cleanup::Compact
                    }
                    other => panic!("{line}: cleanup.policy {other}"),
                };
                Some((format!("crypto.{topic}"), cleanup))
            })
            .collect()
    }

    #[test]
    fn the_specs_follow_the_table_of_docs_nfr() {
        let documented = documented_cleanup();
        assert_eq!(documented.len(), 7, "{documented:?}");
        assert_eq!(documented[COINS], Cleanup::Compact);
        let specs = Topics::default().specs(6, 3);
        assert_eq!(specs.len(), documented.len());
        for spec in specs {
            assert_eq!(
                spec.config,
                documented[&spec.name].config(),
                "{}",
                spec.name
            );
            assert_eq!((spec.partitions, spec.replication_factor), (6, 3));
        }
        let coins = &Topics::default().specs(6, 3)[1];
        assert_eq!(coins.name, COINS);
        assert_eq!(
            coins.config,
            BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
        );
    }

    #[test]
    fn keeping_records_lifts_time_retention_only() {
        for spec in Topics::default().specs(6, 3) {
            let kept = spec.clone().keeping_records();
            match spec.config.get("retention.ms") {
                Some(_) => assert_eq!(kept.config["retention.ms"], "-1", "{}", spec.name),
                None => assert_eq!(kept.config, spec.config, "{}", spec.name),
            }
            assert_eq!(kept.config["cleanup.policy"], spec.config["cleanup.policy"]);
        }
    }

    #[test]
    fn a_prefix_applies_to_every_spec() {
        let specs = Topics::prefixed("t.").specs(2, -1);
        assert!(specs.iter().all(|s| s.name.starts_with("t.crypto.")));
    }
}
