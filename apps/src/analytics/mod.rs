//! What the metrics and alerts apps compute, independent of Kafka: the price history of a
//! series kept in a key-value store ([`history`]), the horizons ([`Horizon`]) and the formulas
//! ([`stats`]). `docs/METRICS.md` states every formula and edge case.

pub mod history;
pub mod stats;

use std::fmt;

use streamlib::prelude::{JsonSerde, KStream, StreamsBuilder, StringSerde};

use crate::event::PriceEvent;

/// The deduplicated price events of `topic`, keyed by coin and timestamped by `ts_event` (the
/// input of the metrics and alerts apps).
pub fn price_stream(builder: &StreamsBuilder, topic: &str) -> KStream<String, PriceEvent> {
    builder.stream_with_timestamps(
        topic,
        StringSerde,
        JsonSerde::<PriceEvent>::new(),
        |_, event: &PriceEvent, kafka_ts| event.ts_event_millis().unwrap_or(kafka_ts),
    )
}

/// A look-back period of the metrics and alert rules.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Horizon {
    /// Five minutes.
    #[serde(rename = "5m")]
    M5,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// One day.
    #[serde(rename = "24h")]
    H24,
    /// Seven days.
    #[serde(rename = "7d")]
    D7,
}

impl Horizon {
    /// Every horizon, shortest first.
    pub const ALL: [Horizon; 4] = [Horizon::M5, Horizon::H1, Horizon::H24, Horizon::D7];

    /// Length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Horizon::M5 => 5 * 60_000,
            Horizon::H1 => 3_600_000,
            Horizon::H24 => 24 * 3_600_000,
            Horizon::D7 => 7 * 24 * 3_600_000,
        }
    }

    /// The contract's label (`5m`, `1h`, `24h`, `7d`).
    pub fn label(self) -> &'static str {
        match self {
            Horizon::M5 => "5m",
            Horizon::H1 => "1h",
            Horizon::H24 => "24h",
            Horizon::D7 => "7d",
        }
    }

    /// Whether realized volatility is reported for this horizon (not for 5 minutes: with
    /// 5-minute polls the window holds a single return).
    pub fn has_volatility(self) -> bool {
        self != Horizon::M5
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
