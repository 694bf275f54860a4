//! The processing guarantee a benchmark run uses, and what it means for each system.

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;
use streamlib::runtime::ProcessingGuarantee;

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
