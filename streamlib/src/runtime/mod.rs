//! The Kafka runtime: runs a [`Topology`] on a Kafka cluster.
//!
//! One stream thread per instance consumes every input (and repartition) topic in the group
//! `application.id` with the cooperative-sticky assignor; each assigned partition number gets a
//! [`crate::task`]-level task whose stores are restored from their changelogs (from the
//! checkpoint on) before it processes. Start more instances with the same `application.id` to
//! scale out.
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

mod config;
mod metrics;
mod producer;
mod refusal;
mod restore;
mod signal;
mod task_manager;
mod thread;
mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rdkafka::consumer::{BaseConsumer, Consumer};

pub use config::{ExtraMetrics, ProcessingGuarantee, StreamsConfig};
pub use signal::run_until_signal;
pub use task_manager::RuntimeMetrics;

use crate::error::StreamsError;
use crate::state::RocksDbShared;
use crate::task::StoreLocation;
use crate::topology::{InternalTopicKind, Topology};
use task_manager::TaskManager;
use thread::{RebalanceContext, Shared};

/// A running (or ready to run) application instance.
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: StreamsConfig,
    running: Arc<AtomicBool>,
    metrics: Arc<RuntimeMetrics>,
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<Result<(), StreamsError>>>,
    metrics_addr: Option<std::net::SocketAddr>,
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
            metrics_addr: None,
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
        let metrics_listener = match self.config.metrics_addr {
            Some(addr) => Some(metrics::bind(addr).map_err(|e| {
                StreamsError::Config(format!("binding the metrics port {addr}: {e}"))
            })?),
            None => None,
        };
        let mut consumer_config = self.config.client(&[
            ("group.id", &self.config.application_id),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            (
                "statistics.interval.ms",
                if metrics_listener.is_some() {
                    "1000"
                } else {
                    "0"
                },
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
        if let Some(listener) = metrics_listener {
            self.metrics_addr = listener.local_addr().ok();
            metrics::serve(
                listener,
                self.config.application_id.clone(),
                self.metrics.clone(),
                shared.clone(),
                self.running.clone(),
                self.config.extra_metrics.clone(),
            )
            .map_err(|e| StreamsError::Config(format!("starting the metrics server: {e}")))?;
        }
        let running = self.running.clone();
        let thread_shared = shared.clone();
        self.shared = Some(shared);
        self.thread = Some(
            std::thread::Builder::new()
                .name(format!("{}-stream", self.config.application_id))
                .spawn(move || thread::run(consumer, thread_shared, running))
                .map_err(|e| StreamsError::Config(format!("spawning the stream thread: {e}")))?,
        );
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

    /// Where Prometheus metrics are served, once started with `metrics_addr` set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// Live counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// Finishes in-flight work, commits, closes stores and leaves the group; returns the error
    /// that stopped the thread, if one did.
    pub fn close(&mut self) -> Result<(), StreamsError> {
        self.running.store(false, Ordering::SeqCst);
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
