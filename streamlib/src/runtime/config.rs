//! Configuration of a Kafka Streams application.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use crate::metrics::MetricsRegistry;
use crate::task::ErrorHandlers;

/// Delivery guarantee of processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// Outputs and changelogs are acknowledged before input offsets are committed; after a
    /// crash some inputs are processed again.
    #[default]
    AtLeastOnce,
    /// Outputs, changelog records and input offsets commit in one Kafka transaction; readers
    /// using `read_committed` see each input's effects exactly once.
    ExactlyOnceV2,
}

impl ProcessingGuarantee {
    /// Parses `at_least_once` or `exactly_once_v2`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "at_least_once" => Some(Self::AtLeastOnce),
            "exactly_once_v2" => Some(Self::ExactlyOnceV2),
            _ => None,
        }
    }
}

/// What happens when a stream thread stops with an error (a record that fails with a failing
/// handler, a store failure, a cluster error it cannot recover from) — Kafka Streams'
/// `StreamsUncaughtExceptionHandler` responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThreadFailure {
    /// The instance stops: its other threads commit and close, `is_running` turns false and
    /// `close` returns the error (`SHUTDOWN_CLIENT`).
    #[default]
    ShutdownInstance,
    /// The thread's tasks are dropped uncommitted (their stores keep the last commit), its
    /// consumer leaves the group, and a new consumer and producer with the same identity take
    /// its place and join again (`REPLACE_THREAD`). Counted in
    /// [`super::RuntimeMetrics::replaced_threads`]. A record that fails every time fails the
    /// replacement too: use it for failures that pass (a broker outage), not for poison
    /// records, which the error handlers are for.
    ReplaceThread,
}

/// Everything a [`super::KafkaStreams`] instance needs.
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// Consumer group, prefix of internal topics and of the state directory.
    pub application_id: String,
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// Root of persistent stores: `<state_dir>/<application_id>/<task>/<store>`.
    pub state_dir: PathBuf,
    /// At-least-once or exactly-once.
    pub processing_guarantee: ProcessingGuarantee,
    /// How often offsets (and transactions) commit; defaults to 30 s (at-least-once) or
    /// 100 ms (exactly-once).
    pub commit_interval: Option<Duration>,
    /// Bytes of block cache and write buffers shared by every RocksDB store of the process.
    pub store_memory_bytes: usize,
    /// How long a task with several input partitions waits for one of them that is empty
    /// while data is known to be on the broker (or it has not been fetched yet) before it goes
    /// on without it, out of timestamp order (default 1 s). A partition read to its end is never
    /// waited for, as in Kafka Streams with `max.task.idle.ms = 0`; see
    /// `runtime::partition_group`.
    pub max_task_idle: Duration,
    /// How long a task with several input partitions waits for an empty one that the consumer
    /// has read to its end — for data not produced yet — before it goes on without it: Kafka
    /// Streams' `max.task.idle.ms` when positive. Default zero: never waited for, as with
    /// Kafka Streams' default. With a positive value, a stream–table join whose row and stream
    /// record are produced less than this apart joins them in timestamp order whichever the
    /// consumer fetches first, at the cost of up to this much latency while the other input
    /// is quiet.
    pub max_task_idle_caught_up: Duration,
    /// How often the records of repartition topics this instance has committed are deleted
    /// (Kafka Streams' `repartition.purge.interval.ms`, default 30 s). Repartition topics have
    /// no time-based retention: their timestamps are event times.
    pub repartition_purge_interval: Duration,
    /// Stream threads of this instance (default 1), each with its own consumer and, under
    /// exactly-once, its own transactional producer; the group spreads the tasks over them.
    pub num_stream_threads: usize,
    /// What a stream thread's failure does to the instance.
    pub thread_failure: ThreadFailure,
    /// Standby replicas: with 1 or more, the instance keeps a warm copy of the persistent
    /// logged stores of every task it does not run, from their changelogs, so that a task
    /// moving here restores only what its standby had not applied yet. librdkafka has no
    /// pluggable assignor, so the placement is "every other instance" (ADR-043): any value
    /// above 0 gives each task one standby per other instance. Default 0.
    pub num_standby_replicas: usize,
    /// Replication factor of internal topics (`-1`: the broker's default).
    pub replication_factor: i32,
    /// What happens to records that fail.
    pub handlers: ErrorHandlers,
    /// Stable identity of this instance across restarts (e.g. a host name): with the thread
    /// number it becomes each thread's consumer `group.instance.id`, `<instance_id>-<n>`
    /// (static membership: a restarted instance gets its partitions back at once, without a
    /// rebalance) and the suffix of its transactional id, `<application_id>-<instance_id>-<n>`
    /// (a restarted instance fences its predecessor and aborts its open transaction at once).
    /// `None`: a fresh identity per start.
    pub instance_id: Option<String>,
    /// This instance's address for interactive queries (`host:port`, Kafka Streams'
    /// `application.server`): published to the other instances through the group (each
    /// consumer's `client.id` becomes `<application_id>@<host:port>`), so that any instance
    /// can tell which one holds a key ([`crate::runtime::Queryable::query_metadata_for_key`]).
    pub application_server: Option<String>,
    /// Serve Prometheus metrics on `GET /metrics` at this address (port 0 picks a free one):
    /// the registry of `metrics_registry`, or one of the instance's own.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Extra librdkafka properties for every client (SASL/SSL, timeouts, …); they win over the
    /// defaults set here and over the stream threads' fetch settings (`queued.min.messages`
    /// 20 000, `fetch.queue.backoff.ms` 10, `fetch.wait.max.ms` 100; ADR-053).
    pub client_properties: BTreeMap<String, String>,
    /// The registry the instance reports its metrics to (labelled `application_id`), next to
    /// the application's own. Instances of one process share one, served by the one of them
    /// that has `metrics_addr` set (or by the application).
    pub metrics_registry: Option<MetricsRegistry>,
}

impl StreamsConfig {
    /// A configuration with defaults for everything but the id and the servers.
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Self {
        Self {
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            state_dir: std::env::temp_dir().join("streamlib"),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval: None,
            store_memory_bytes: 128 << 20,
            max_task_idle: Duration::from_secs(1),
            max_task_idle_caught_up: Duration::ZERO,
            repartition_purge_interval: Duration::from_secs(30),
            num_stream_threads: 1,
            thread_failure: ThreadFailure::ShutdownInstance,
            num_standby_replicas: 0,
            replication_factor: -1,
            handlers: ErrorHandlers::default(),
            metrics_addr: None,
            application_server: None,
            instance_id: None,
            client_properties: BTreeMap::new(),
            metrics_registry: None,
        }
    }

    /// The commit interval in effect.
    pub fn effective_commit_interval(&self) -> Duration {
        self.commit_interval
            .unwrap_or(match self.processing_guarantee {
                ProcessingGuarantee::AtLeastOnce => Duration::from_secs(30),
                ProcessingGuarantee::ExactlyOnceV2 => Duration::from_millis(100),
            })
    }

    /// Base client configuration: servers plus the pass-through properties.
    pub(crate) fn client(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.client_properties {
            config.set(k, v);
        }
        config
    }
}
