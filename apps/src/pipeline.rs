//! The whole platform in one process (the `pipeline` binary): a Kafka cluster (the given one,
//! or librdkafka's in-process mock cluster when none is given), the platform topics, the four
//! stream apps (the metrics and alerts apps serving interactive queries on loopback), and
//! the producer.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use streamlib::prelude::Topology;
use streamlib::runtime::KafkaStreams;

use crate::alerts::{self, RulesConfig};
use crate::cli::StreamOptions;
use crate::counters::Counters;
use crate::producer::metrics::ProducerMetrics;
use crate::runner::app_config;
use crate::serving::Server;
use crate::topics::{self, TopicSpec, Topics};
use crate::{dedup, metrics, queries, validator};

/// Where the pipeline's Kafka is.
pub struct Cluster {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// The in-process cluster, kept alive while the pipeline runs.
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Cluster {
    /// `bootstrap` if given, else a new one-broker in-process mock cluster.
    pub fn connect_or_embed(bootstrap: Option<&str>) -> anyhow::Result<Self> {
        match bootstrap {
            Some(bootstrap) => Ok(Self {
                bootstrap: bootstrap.to_string(),
                mock: None,
            }),
            None => {
                let mock = MockCluster::new(1).context("starting the in-process Kafka cluster")?;
                Ok(Self {
                    bootstrap: mock.bootstrap_servers(),
                    mock: Some(mock),
                })
            }
        }
    }

    /// Whether this is the in-process mock cluster.
    pub fn is_embedded(&self) -> bool {
        self.mock.is_some()
    }

    /// Creates the topics of `specs` that do not exist yet ([`topics::ensure`]: an existing
    /// one with another partition count is an error). The mock cluster has no admin API, so
    /// there every topic (internal ones included) is created directly, without configuration.
    pub fn create_topics(
        &self,
        specs: &[TopicSpec],
        properties: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        if let Some(mock) = &self.mock {
            for spec in specs {
                mock.create_topic(&spec.name, spec.partitions, 1)
                    .with_context(|| format!("creating topic {}", spec.name))?;
            }
            return Ok(());
        }
        topics::ensure(&self.bootstrap, properties, specs)?;
        Ok(())
    }
}

/// How the stream apps of a pipeline are set up.
#[derive(Clone, Debug)]
pub struct AppsSettings {
    /// Shared runtime options (guarantee, state dir, client properties, topic prefix).
    pub stream: StreamOptions,
    /// The validator's contract check (future-dated tolerance).
    pub check: contract::CheckConfig,
    /// How long dedup remembers a key.
    pub dedup_horizon: Duration,
    /// Alert rules.
    pub rules: RulesConfig,
    /// The in-process producer's counters, registered with the apps' and served with them on
    /// `--metrics-addr`.
    pub producer_metrics: Option<Arc<ProducerMetrics>>,
    /// Create the platform topics keeping every record ([`TopicSpec::keeping_records`]): for
    /// replays of history older than their retention.
    pub keep_records: bool,
}

/// The apps whose stores answer interactive queries ([`crate::queries`]).
pub const QUERYABLE_APPS: [&str; 2] = ["metrics", "alerts"];

/// The four stream apps of a pipeline, their counters, and the query servers of the
/// [`QUERYABLE_APPS`] (each on a free loopback port).
pub struct StreamApps {
    /// `(name, instance)` in pipeline order.
    pub apps: Vec<(&'static str, KafkaStreams)>,
    /// Counters of all four apps.
    pub counters: Counters,
    /// `(name, server)` of the apps serving interactive queries.
    queries: Vec<(&'static str, Server)>,
}

/// Each app's name and topology.
pub fn topologies(
    topics: &Topics,
    settings: &AppsSettings,
    counters: &Counters,
) -> Vec<(&'static str, Topology)> {
    vec![
        (
            validator::APP,
            validator::topology(topics, settings.check, counters),
        ),
        (
            "dedup",
            dedup::topology(topics, settings.dedup_horizon, counters),
        ),
        ("metrics", metrics::topology(topics, counters)),
        (
            "alerts",
            alerts::topology(topics, settings.rules.clone(), counters),
        ),
    ]
}

impl StreamApps {
    /// Creates the missing platform topics (and on the mock cluster the internal ones) with
    /// `partitions` partitions and the settings of docs/NFR.md, then starts the four apps. An
    /// existing platform topic with another partition count is an error.
    pub fn start(
        cluster: &Cluster,
        settings: &AppsSettings,
        partitions: i32,
    ) -> anyhow::Result<Self> {
        let topics = Topics::prefixed(&settings.stream.topic_prefix);
        let counters = Counters::default();
        if let Some(producer) = &settings.producer_metrics {
            producer.register(counters.registry());
        }
        let mut options = settings.stream.clone();
        options.kafka.bootstrap_servers = Some(cluster.bootstrap.clone());
        let topologies = topologies(&topics, settings, &counters);
        let mut specs = topics.specs(partitions, options.replication_factor);
        if settings.keep_records {
            specs = specs.into_iter().map(TopicSpec::keeping_records).collect();
        }
        if cluster.is_embedded() {
            for (name, topology) in &topologies {
                let app_id = options.streams_config(name).application_id;
                specs.extend(topology.internal_topics().into_iter().map(|t| TopicSpec {
                    name: t.topic(&app_id),
                    partitions,
                    replication_factor: 1,
                    config: BTreeMap::new(),
                }));
            }
        }
        let properties: BTreeMap<String, String> =
            options.kafka.kafka_properties.iter().cloned().collect();
        cluster.create_topics(&specs, &properties)?;
        let mut apps = Vec::new();
        let mut servers = Vec::new();
        for (name, topology) in topologies {
            let mut config = app_config(name, &options, &topics, &counters);
            // One process, one registry, one metrics port: the first app serves the registry
            // every app (runtime and counters) and the producer report to.
            if !apps.is_empty() {
                config.metrics_addr = None;
            }
            let listener = if QUERYABLE_APPS.contains(&name) {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .context("binding a port for interactive queries")?;
                config.application_server = Some(listener.local_addr()?.to_string());
                Some(listener)
            } else {
                None
            };
            let mut app = KafkaStreams::new(topology, config);
            app.start().with_context(|| format!("starting {name}"))?;
            if let (Some(listener), Some(queryable)) = (listener, app.queryable()) {
                let server = queries::start_server(listener, queries::service(name, queryable))?;
                servers.push((name, server));
            }
            apps.push((name, app));
        }
        Ok(Self {
            apps,
            counters,
            queries: servers,
        })
    }

    /// The URL of app `name`'s interactive queries (`http://127.0.0.1:port`), if it serves them.
    pub fn query_url(&self, name: &str) -> Option<reqwest::Url> {
        self.queries
            .iter()
            .find(|(app, _)| *app == name)
            .and_then(|(_, server)| reqwest::Url::parse(&format!("http://{}", server.addr())).ok())
    }

    /// The first app that stopped on its own, if any.
    pub fn stopped(&self) -> Option<&'static str> {
        self.apps
            .iter()
            .find(|(_, app)| !app.is_running())
            .map(|(name, _)| *name)
    }

    /// Stops the query servers, then closes every app (commit, close stores, leave the
    /// group); the first error wins.
    pub fn close(mut self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for (name, server) in self.queries.drain(..) {
            if let Err(error) = server.stop() {
                tracing::error!(app = name, %error, "stopping the query server");
                if first.is_ok() {
                    first = Err(error.context(format!("{name}'s query server")));
                }
            }
        }
        for (name, app) in &mut self.apps {
            if let Err(error) = app.close() {
                tracing::error!(app = *name, %error, "closing");
                if first.is_ok() {
                    first = Err(anyhow::anyhow!("{name}: {error}"));
                }
            }
        }
        first
    }
}
