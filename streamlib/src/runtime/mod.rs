//! The Kafka runtime: runs a [`Topology`] on a Kafka cluster.
//!
//! One stream thread per instance consumes every input (and repartition) topic in the group
//! `application.id` with the cooperative-sticky assignor; each assigned partition number gets a
//! [`crate::task`]-level task whose stores are restored from their changelogs (from the
//! checkpoint on) before it processes. Start more instances with the same `application.id` to
//! scale out.
//!
//! The runtime is split by concern, as Kafka Streams' is (ADR-039): `assignment` (the task
//! manager: tasks created on assignment, closed on revocation), `collector` (the producer, the
//! sends and their delivery reports in `delivery`, refused records in `refusal`), `commit`
//! (the commit or transaction step, abort and rewind), `restore` (replaying changelogs) and
//! `thread` (the loop that polls and drives them).
//!
//! ```no_run
//! use streamlib::prelude::*;
//! use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("in", StringSerde, StringSerde).to("out", StringSerde, StringSerde);
//! let mut config = StreamsConfig::new("my-app", "127.0.0.1:9092");
//! config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
//! let mut app = KafkaStreams::new(builder.build(), config);
//! app.start()?;
//! // … until shutdown:
//! app.close()?;
//! # Ok::<(), streamlib::error::StreamsError>(())
//! ```

mod assignment;
mod collector;
mod commit;
mod config;
mod delivery;
mod metrics;
mod refusal;
mod restore;
mod signal;
mod thread;
mod topics;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message};

pub use config::{ProcessingGuarantee, StreamsConfig};
pub use signal::run_until_signal;

use crate::error::StreamsError;
use crate::metrics::{MetricsRegistry, MetricsServer};
use crate::record::RawRecord;
use crate::state::RocksDbShared;
use crate::task::StoreLocation;
use crate::topology::{InternalTopicKind, Topology};
use assignment::TaskManager;
use thread::{RebalanceContext, Shared};

/// How long a call to the cluster may take before it fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Counters of one instance, readable while it runs.
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    /// Records consumed from input and repartition topics.
    pub consumed: AtomicU64,
    /// Records produced (outputs, repartition records, changelog records, dead letters).
    pub produced: AtomicU64,
    /// Changelog records applied while restoring.
    pub restored: AtomicU64,
    /// Commits completed.
    pub commits: AtomicU64,
    /// Sum of commit durations in microseconds.
    pub commit_micros: AtomicU64,
    /// Tasks currently assigned.
    pub tasks: AtomicU64,
    /// Records the broker refused and the production handler dropped.
    pub production_dropped: AtomicU64,
    /// Records the broker refused that the production handler sent to the dead-letter topic.
    pub production_dead_lettered: AtomicU64,
    /// Transactions aborted and recovered from in process (exactly-once only).
    pub aborted_transactions: AtomicU64,
}

/// A running (or ready to run) application instance.
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: StreamsConfig,
    running: Arc<AtomicBool>,
    metrics: Arc<RuntimeMetrics>,
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<Result<(), StreamsError>>>,
    /// The collector this instance reports to, while started with a registry or an address.
    collector: Option<Arc<metrics::RuntimeCollector>>,
    metrics_server: Option<MetricsServer>,
}

impl KafkaStreams {
    /// An instance of `topology` configured by `config`; nothing connects until `start`.
    pub fn new(topology: Topology, config: StreamsConfig) -> Self {
        Self {
            topology: Arc::new(topology),
            config,
            running: Arc::new(AtomicBool::new(false)),
            metrics: Arc::new(RuntimeMetrics::default()),
            shared: None,
            thread: None,
            collector: None,
            metrics_server: None,
        }
    }

    /// Checks the input topics, creates internal topics, joins the group and starts processing
    /// on a thread of its own.
    ///
    /// # Errors
    /// [`StreamsError::MissingSourceTopics`] when an input topic does not exist,
    /// [`StreamsError::PartitionCountMismatch`] when inputs differ in partition count, or the
    /// Kafka error that prevented starting.
    pub fn start(&mut self) -> Result<(), StreamsError> {
        if self.thread.is_some() {
            return Err(StreamsError::Config("already started".into()));
        }
        topics::prepare(&self.topology, &self.config)?;
        let location = StoreLocation {
            app_state_dir: Some(self.config.state_dir.join(&self.config.application_id)),
            shared: RocksDbShared::new(self.config.store_memory_bytes),
        };
        let tasks = TaskManager::new(
            self.topology.clone(),
            self.config.clone(),
            location,
            self.metrics.clone(),
        )?;
        let shared = Arc::new(Shared {
            tasks: Mutex::new(tasks),
            error: Mutex::new(None),
            lag: Default::default(),
        });
        // The registry to report to: the one given, or one of our own to serve.
        let registry = self
            .config
            .metrics_registry
            .clone()
            .or_else(|| self.config.metrics_addr.map(|_| MetricsRegistry::default()));
        let metrics_server = match (&registry, self.config.metrics_addr) {
            (Some(registry), Some(addr)) => Some(MetricsServer::start(registry.clone(), addr)?),
            _ => None,
        };
        let mut consumer_config = self.config.client(&[
            ("group.id", &self.config.application_id),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            (
                "statistics.interval.ms",
                if registry.is_some() { "1000" } else { "0" },
            ),
        ]);
        if let Some(instance) = &self.config.instance_id {
            consumer_config.set("group.instance.id", instance);
        }
        let consumer: BaseConsumer<RebalanceContext> = consumer_config
            .create_with_context(RebalanceContext(shared.clone()))
            .map_err(StreamsError::kafka("creating the consumer"))?;
        let mut topics = self.topology.source_topics();
        topics.extend(
            self.topology
                .internal_topics()
                .into_iter()
                .filter(|t| t.kind == InternalTopicKind::Repartition)
                .map(|t| format!("{}-{}", self.config.application_id, t.name)),
        );
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .map_err(StreamsError::kafka("subscribing"))?;
        self.running.store(true, Ordering::SeqCst);
        let running = self.running.clone();
        let thread_shared = shared.clone();
        self.shared = Some(shared);
        self.thread = Some(
            std::thread::Builder::new()
                .name(format!("{}-stream", self.config.application_id))
                .spawn(move || thread::run(consumer, thread_shared, running))
                .map_err(|e| StreamsError::Config(format!("spawning the stream thread: {e}")))?,
        );
        if let (Some(registry), Some(shared)) = (registry, &self.shared) {
            let collector = registry.shared_collector::<metrics::RuntimeCollector>();
            collector.add(&self.config.application_id, self.metrics.clone(), shared);
            self.collector = Some(collector);
        }
        self.metrics_server = metrics_server;
        Ok(())
    }

    /// Whether the stream thread is still processing (false after an error or `close`).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Partitions whose tasks this instance runs now.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        self.shared
            .as_ref()
            .map(|s| s.tasks().partitions())
            .unwrap_or_default()
    }

    /// Where Prometheus metrics are served, from `start` until `close` with `metrics_addr` set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::addr)
    }

    /// Live counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// Finishes in-flight work, commits, closes stores and leaves the group; stops reporting
    /// and serving metrics; returns the error that stopped the thread, if one did.
    pub fn close(&mut self) -> Result<(), StreamsError> {
        self.running.store(false, Ordering::SeqCst);
        if let Some(collector) = self.collector.take() {
            collector.remove(&self.metrics);
        }
        if let Some(server) = self.metrics_server.take() {
            server.stop();
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| StreamsError::ThreadPanicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the streams instance");
        }
    }
}

/// The record of a consumed (or undelivered) Kafka message.
pub(crate) fn to_raw<M: Message>(message: &M) -> RawRecord {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|Header { key, value }| (key.to_string(), value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        topic: Arc::from(message.topic()),
        partition: Some(message.partition()),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        timestamp: message.timestamp().to_millis().unwrap_or_default(),
        headers,
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
