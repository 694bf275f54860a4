//! The Kafka runtime: runs a [`Topology`] on a Kafka cluster.
//!
//! Each instance runs [`StreamsConfig::num_stream_threads`] stream threads; each thread is a
//! member of the group `application.id` with a consumer of its own subscribed to every input
//! (and repartition) topic, and, under exactly-once, a transactional producer of its own. Each
//! partition number assigned to a thread gets a [`crate::task`]-level task whose stores are
//! restored from their changelogs (from the checkpoint on) before it processes. Start more
//! threads, or more instances with the same `application.id`, to scale out; the group spreads
//! the tasks over every thread of every instance (ADR-042).
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
mod global;
mod metrics;
mod partition_group;
mod purge;
mod queries;
mod refusal;
mod restore;
mod signal;
mod standby;
mod thread;
mod topics;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::message::{Header, Headers, Message};

pub use config::{ProcessingGuarantee, StreamsConfig, ThreadFailure};
pub use queries::Queryable;
pub use signal::run_until_signal;

use crate::error::StreamsError;
use crate::metrics::{MetricsRegistry, MetricsServer};
use crate::query::{
    GroupMembers, KeyQueryMetadata, Query, QueryError, StateQueryRequest, StateQueryResult,
};
use crate::record::RawRecord;
use crate::serdes::Serde;
use crate::state::global::GlobalStores;
use crate::state::RocksDbShared;
use crate::task::StoreLocation;
use crate::topology::Topology;
use global::GlobalThread;
use standby::Standbys;
use thread::{Shared, ThreadSetup};

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
    /// Stream threads that failed and were replaced ([`ThreadFailure::ReplaceThread`]).
    pub replaced_threads: AtomicU64,
    /// Changelog records applied to standby replicas.
    pub standby_records: AtomicU64,
    /// Records of global tables' topics applied to the global stores.
    pub global_records: AtomicU64,
    /// Records of global tables' topics skipped (null key, or bytes the serdes do not read).
    pub global_skipped: AtomicU64,
    /// Times a task stopped waiting for an empty input partition after
    /// [`StreamsConfig::max_task_idle`] (or [`StreamsConfig::max_task_idle_caught_up`]) and
    /// went on out of timestamp order (`partition_group`).
    pub enforced_processing: AtomicU64,
}

/// A running (or ready to run) application instance.
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: StreamsConfig,
    running: Arc<AtomicBool>,
    metrics: Arc<RuntimeMetrics>,
    /// Each stream thread's tasks, consumer lag and rebalance errors.
    shared: Vec<Arc<Shared>>,
    threads: Vec<JoinHandle<Result<(), StreamsError>>>,
    /// The collector this instance reports to, while started with a registry or an address.
    collector: Option<Arc<metrics::RuntimeCollector>>,
    metrics_server: Option<MetricsServer>,
    /// The interactive-query handle, from `start` until `close`.
    queryable: Option<Queryable>,
}

impl KafkaStreams {
    /// An instance of `topology` configured by `config`; nothing connects until `start`.
    pub fn new(topology: Topology, config: StreamsConfig) -> Self {
        Self {
            topology: Arc::new(topology),
            config,
            running: Arc::new(AtomicBool::new(false)),
            metrics: Arc::new(RuntimeMetrics::default()),
            shared: Vec::new(),
            threads: Vec::new(),
            collector: None,
            metrics_server: None,
            queryable: None,
        }
    }

    /// Checks the input topics, creates internal topics, joins the group and starts processing
    /// on [`StreamsConfig::num_stream_threads`] threads of its own.
    ///
    /// # Errors
    /// [`StreamsError::MissingSourceTopics`] when an input topic does not exist,
    /// [`StreamsError::PartitionCountMismatch`] when inputs differ in partition count,
    /// [`StreamsError::Config`] for zero threads, or the Kafka error that prevented starting.
    pub fn start(&mut self) -> Result<(), StreamsError> {
        if !self.threads.is_empty() {
            return Err(StreamsError::Config("already started".into()));
        }
        if self.config.num_stream_threads == 0 {
            return Err(StreamsError::Config(
                "num_stream_threads must be at least 1".into(),
            ));
        }
        let partitions = topics::prepare(&self.topology, &self.config)?;
        // The registry to report to: the one given, or one of our own to serve.
        let registry = self
            .config
            .metrics_registry
            .clone()
            .or_else(|| self.config.metrics_addr.map(|_| MetricsRegistry::default()));
        let app_state_dir = self.config.state_dir.join(&self.config.application_id);
        let shared = RocksDbShared::new(self.config.store_memory_bytes);
        let globals = GlobalStores::open(
            self.topology.global_stores(),
            Some(&app_state_dir.join("global")),
            &shared,
        )?;
        // The global tables are read up to their end before any task processes a record.
        let global = match self.topology.global_stores().is_empty() {
            true => None,
            false => Some(GlobalThread::restore(
                globals.clone(),
                &self.config,
                self.metrics.clone(),
            )?),
        };
        let location = StoreLocation {
            app_state_dir: Some(app_state_dir),
            shared,
            globals,
        };
        let standbys = Standbys::new(
            &self.topology,
            &self.config,
            &location,
            partitions,
            self.metrics.clone(),
        )
        .map(Arc::new);
        let setup = Arc::new(ThreadSetup {
            topology: self.topology.clone(),
            config: self.config.clone(),
            location,
            standbys: standbys.clone(),
            metrics: self.metrics.clone(),
            instance: self
                .config
                .instance_id
                .clone()
                .unwrap_or_else(fresh_instance_id),
            statistics: registry.is_some(),
            running: self.running.clone(),
        });
        let threads = (1..=self.config.num_stream_threads)
            .map(|index| setup.create(index))
            .collect::<Result<Vec<_>, _>>()?;
        let members = match &self.config.application_server {
            Some(_) => Some(GroupMembers::new(&self.config)?),
            None => None,
        };
        self.queryable = Some(Queryable::new(queries::Inner {
            stores: self
                .topology
                .stores()
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            partitions,
            threads: threads.iter().map(|t| t.shared.clone()).collect(),
            standbys: standbys.clone(),
            members,
            standbys_on: self.config.num_standby_replicas > 0,
            server: self.config.application_server.clone(),
            running: self.running.clone(),
        }));
        let metrics_server = match (&registry, self.config.metrics_addr) {
            (Some(registry), Some(addr)) => Some(MetricsServer::start(registry.clone(), addr)?),
            _ => None,
        };
        self.running.store(true, Ordering::SeqCst);
        let mut spawn =
            |name: String, work: Box<dyn FnOnce() -> Result<(), StreamsError> + Send>| {
                match std::thread::Builder::new().name(name).spawn(work) {
                    Ok(handle) => {
                        self.threads.push(handle);
                        Ok(())
                    }
                    Err(e) => {
                        self.running.store(false, Ordering::SeqCst);
                        Err(StreamsError::Config(format!("spawning a thread: {e}")))
                    }
                }
            };
        let app = self.config.application_id.clone();
        for thread in threads {
            self.shared.push(thread.shared.clone());
            let setup = setup.clone();
            let name = format!("{app}-stream-{}", thread.index);
            spawn(name, Box::new(move || setup.supervise(thread)))?;
        }
        if let Some(standbys) = standbys {
            let (config, running) = (self.config.clone(), self.running.clone());
            let work = move || standbys.run(&config, &running);
            spawn(format!("{app}-standby"), Box::new(work))?;
        }
        if let Some(global) = global {
            let running = self.running.clone();
            let work = move || {
                let result = global.run(&running);
                if result.is_err() {
                    // A global store that cannot be written stops the instance.
                    running.store(false, Ordering::SeqCst);
                }
                result
            };
            spawn(format!("{app}-global"), Box::new(work))?;
        }
        if let Some(registry) = registry {
            let collector = registry.shared_collector::<metrics::RuntimeCollector>();
            collector.add(
                &self.config.application_id,
                self.metrics.clone(),
                &self.shared,
            );
            self.collector = Some(collector);
        }
        self.metrics_server = metrics_server;
        Ok(())
    }

    /// Whether every stream thread is still processing (false once one stopped with an
    /// error that stops the instance, or after `close`).
    pub fn is_running(&self) -> bool {
        !self.threads.is_empty()
            && self.running.load(Ordering::SeqCst)
            && self.threads.iter().all(|t| !t.is_finished())
    }

    /// Partitions whose tasks this instance runs now, over all its threads, ascending.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self
            .shared
            .iter()
            .flat_map(|s| s.tasks().partitions())
            .collect();
        partitions.sort_unstable();
        partitions
    }

    /// Partitions whose tasks each stream thread runs now, in thread order.
    pub fn thread_partitions(&self) -> Vec<Vec<i32>> {
        self.shared.iter().map(|s| s.tasks().partitions()).collect()
    }

    /// Where Prometheus metrics are served, from `start` until `close` with `metrics_addr` set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::addr)
    }

    /// Live counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// A handle for interactive queries ([`crate::query`]), from `start` until `close`.
    pub fn queryable(&self) -> Option<Queryable> {
        self.queryable.clone()
    }

    fn started(&self) -> Result<&Queryable, QueryError> {
        self.queryable.as_ref().ok_or(QueryError::NotRunning)
    }

    /// Asks `request` of this instance's tasks ([`Queryable::query`]).
    ///
    /// # Errors
    /// [`QueryError::NotRunning`] before `start` and after `close`; see [`Queryable::query`].
    pub fn query<Q: Query>(
        &self,
        request: &StateQueryRequest<Q>,
    ) -> Result<StateQueryResult<Q::Output>, QueryError> {
        self.started()?.query(request)
    }

    /// Where `key` of `store` lives ([`Queryable::query_metadata_for_key`]).
    ///
    /// # Errors
    /// [`QueryError::NotRunning`] before `start` and after `close`; see
    /// [`Queryable::query_metadata_for_key`].
    pub fn query_metadata_for_key<K>(
        &self,
        store: &str,
        key: &K,
        serde: &impl Serde<K>,
    ) -> Result<KeyQueryMetadata, QueryError> {
        self.started()?.query_metadata_for_key(store, key, serde)
    }

    /// Finishes in-flight work, commits, closes stores and leaves the group on every thread;
    /// stops reporting and serving metrics; returns the first error that stopped a thread, if
    /// one did.
    pub fn close(&mut self) -> Result<(), StreamsError> {
        self.running.store(false, Ordering::SeqCst);
        self.queryable = None;
        if let Some(collector) = self.collector.take() {
            collector.remove(&self.metrics);
        }
        if let Some(server) = self.metrics_server.take() {
            server.stop();
        }
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(StreamsError::ThreadPanicked));
            if result.is_ok() {
                result = outcome;
            }
        }
        self.shared.clear();
        result
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

/// Identifies this process among the instances of an application.
fn fresh_instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
