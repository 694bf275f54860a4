//! Errors, one enum per concern, and what the task does with a bad record.

use thiserror::Error;

pub use crate::serdes::SerdeError;
pub use crate::state::StateError;

/// Why a record could not be processed.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The record's key or value could not be deserialized at a source.
    #[error("deserializing a record from {topic}: {source}")]
    Deserialization {
        /// Source topic.
        topic: String,
        /// The serde's error.
        #[source]
        source: Box<SerdeError>,
    },
    /// An output record could not be serialized at a sink.
    #[error("serializing a record for {topic}: {source}")]
    Serialization {
        /// Sink topic.
        topic: String,
        /// The serde's error.
        #[source]
        source: Box<SerdeError>,
    },
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A processor asked for a store it was not connected to, or of another kind.
    #[error("processor has no {kind} store named {name:?}")]
    UnknownStore {
        /// Store name asked for.
        name: String,
        /// The kind of store asked for.
        kind: &'static str,
    },
    /// A user processor failed.
    #[error("processing failed: {0}")]
    User(String),
}

impl ProcessError {
    /// A closure turning a serde error into a serialization error for `topic`.
    pub fn serialization(topic: &str) -> impl Fn(SerdeError) -> ProcessError + '_ {
        move |source| ProcessError::Serialization {
            topic: topic.to_string(),
            source: Box::new(source),
        }
    }

    /// A closure turning a serde error into a deserialization error for `topic`.
    pub fn deserialization(topic: &str) -> impl Fn(SerdeError) -> ProcessError + '_ {
        move |source| ProcessError::Deserialization {
            topic: topic.to_string(),
            source: Box::new(source),
        }
    }
}

/// A topology that cannot be built or run as described.
#[derive(Debug, Error)]
pub enum TopologyError {
    /// Two stores, sources or nodes share a name.
    #[error("duplicate name {0:?} in topology")]
    DuplicateName(String),
    /// A processor names a store the topology does not define.
    #[error("processor {processor:?} uses undefined store {store:?}")]
    UnknownStore {
        /// Processor name.
        processor: String,
        /// Store name.
        store: String,
    },
    /// A record arrived for a topic with no source node.
    #[error("no source reads topic {0:?}")]
    UnknownTopic(String),
    /// A processor failed in `init`.
    #[error("initializing the topology: {0}")]
    Init(String),
    /// A store could not be opened for a task.
    #[error("opening store {store:?} for task {task}: {source}")]
    OpenStore {
        /// Store name.
        store: String,
        /// Task (partition) id.
        task: i32,
        /// The store's error.
        #[source]
        source: StateError,
    },
}

/// What to do with a record whose processing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ErrorAction {
    /// Stop the task and surface the error.
    #[default]
    Fail,
    /// Log it, count it as dropped and go on.
    LogAndContinue,
    /// Send the record to the dead-letter topic (with error headers), count it and go on: the
    /// input record for deserialization and processing errors, the refused output record for
    /// production errors.
    DeadLetter,
}

/// Why a Kafka Streams application could not start or stopped.
#[derive(Debug, Error)]
pub enum StreamsError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Input topics the topology reads do not exist.
    #[error(
        "input topic(s) {0:?} do not exist; create them (with the same partition count) before \
         starting the application"
    )]
    MissingSourceTopics(Vec<String>),
    /// Co-partitioned inputs have different partition counts.
    #[error("input topics must have the same number of partitions, found {0:?}")]
    PartitionCountMismatch(Vec<(String, i32)>),
    /// A Kafka client call failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused an output record for a reason of its own (e.g. its timestamp or
    /// size) and the production handler says fail.
    #[error(
        "the broker refused a record for {topic} and the production handler says fail: {source}"
    )]
    Refused {
        /// The topic the record was meant for.
        topic: String,
        /// The broker's (or the client's) reason.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused a dead letter, so the record it stood for can go nowhere.
    #[error(
        "the broker refused a dead letter for {topic} ({source}); fix the dead-letter topic's \
         limits (e.g. max.message.bytes) and restart"
    )]
    DeadLetterRefused {
        /// The dead-letter topic.
        topic: String,
        /// The broker's reason.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A record failed and its handler says fail.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A topology could not be instantiated.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The metrics endpoint could not be started.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The processing thread panicked.
    #[error("the stream thread panicked")]
    ThreadPanicked,
}

impl StreamsError {
    /// A closure wrapping a Kafka error with what was being done.
    pub fn kafka(
        context: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> StreamsError {
        let context = context.into();
        move |source| StreamsError::Kafka { context, source }
    }
}
