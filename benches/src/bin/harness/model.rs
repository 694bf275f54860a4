//! What a run is: a workload under a processing guarantee, in throughput or live mode.

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;
use streamlib::runtime::ProcessingGuarantee;

/// The system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Raw rdkafka consume → produce, no parsing: what the broker and client allow.
    Ceiling,
    /// streamlib: parse JSON → filter → map_values → to.
    Passthrough,
    /// streamlib: hopping 1 h / 5 min windowed aggregate on RocksDB, emit-on-update.
    Hopping,
}

impl Workload {
    /// Name in tables, JSON and topic names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ceiling => "ceiling",
            Self::Passthrough => "passthrough",
            Self::Hopping => "hopping",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Processing guarantee of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Guarantee {
    /// At-least-once (streamlib default: 30 s commit interval).
    Alos,
    /// Exactly-once v2 (transactions, 100 ms commit interval).
    Eos,
}

impl Guarantee {
    /// Name in tables, JSON and topic names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alos => "alos",
            Self::Eos => "eos",
        }
    }

    /// The streamlib setting.
    pub fn streams(self) -> ProcessingGuarantee {
        match self {
            Self::Alos => ProcessingGuarantee::AtLeastOnce,
            Self::Eos => ProcessingGuarantee::ExactlyOnceV2,
        }
    }

    /// streamlib's default commit interval for this guarantee (the ceiling uses it too).
    pub fn commit_interval(self) -> Duration {
        let mut config = streamlib::runtime::StreamsConfig::new("harness", "unused");
        config.processing_guarantee = self.streams();
        config.effective_commit_interval()
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How inputs reach the input topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// All inputs are in the topic before the system starts; measures throughput.
    Throughput,
    /// Inputs are produced at `rate` records/s while the system runs; measures latency.
    Live {
        /// Records per second.
        rate: u64,
    },
}

impl Mode {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Throughput => "throughput",
            Self::Live { .. } => "live",
        }
    }
}
