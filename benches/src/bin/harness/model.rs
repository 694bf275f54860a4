//! What a run is: a workload under a processing guarantee, in throughput or live mode.

use std::fmt;

use clap::ValueEnum;

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
