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

/// Every topic, in pipeline order.
pub const ALL: [&str; 6] = [RAW, VALID, DLQ, DEDUP, METRICS, ALERTS];

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
