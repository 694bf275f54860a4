//! Names of the platform's topics (README "Topics").

/// Events as the producer wrote them, not yet validated.
pub const RAW: &str = "crypto.prices.raw";
/// Events that satisfy contract v1.1.
pub const VALID: &str = "crypto.prices.valid";
/// Rejected records in the dead-letter envelope (`contracts/dead_letter.schema.json`).
pub const DLQ: &str = "crypto.prices.dlq";
/// First occurrence of each `(coin_id, vs_currency, ts_event)`.
pub const DEDUP: &str = "crypto.prices.dedup";
/// Rolling returns and volatility (`contracts/metrics_event.schema.json`).
pub const METRICS: &str = "crypto.metrics";
/// Anomaly alerts (`contracts/alert_event.schema.json`).
pub const ALERTS: &str = "crypto.alerts";

/// The ten coins the platform follows (DESIGN.md §4), in market-cap order.
pub const DEFAULT_COINS: [&str; 10] = [
    "bitcoin",
    "ethereum",
    "ripple",
    "binancecoin",
    "solana",
    "dogecoin",
    "tron",
    "cardano",
    "hyperliquid",
    "sui",
];

/// The platform's topic names; [`Topics::default`] gives the names above, [`Topics::prefixed`]
/// a separate set (tests, side-by-side deployments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// See [`RAW`].
    pub raw: String,
    /// See [`VALID`].
    pub valid: String,
    /// See [`DLQ`].
    pub dlq: String,
    /// See [`DEDUP`].
    pub dedup: String,
    /// See [`METRICS`].
    pub metrics: String,
    /// See [`ALERTS`].
    pub alerts: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::prefixed("")
    }
}

impl Topics {
    /// Every name preceded by `prefix` (e.g. `test-42.`).
    pub fn prefixed(prefix: &str) -> Self {
        let name = |topic: &str| format!("{prefix}{topic}");
        Self {
            raw: name(RAW),
            valid: name(VALID),
            dlq: name(DLQ),
            dedup: name(DEDUP),
            metrics: name(METRICS),
            alerts: name(ALERTS),
        }
    }

    /// Every name, in pipeline order.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.raw,
            &self.valid,
            &self.dlq,
            &self.dedup,
            &self.metrics,
            &self.alerts,
        ]
    }
}
