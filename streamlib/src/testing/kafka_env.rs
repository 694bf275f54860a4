//! Locating the real Apache Kafka broker that integration tests run against.

/// Environment variable holding the bootstrap address of the broker used by integration tests.
pub const KAFKA_BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";

/// Returns the bootstrap address of the test broker from `KAFKA_BOOTSTRAP`.
///
/// # Panics
///
/// Panics with instructions when the variable is absent or empty: a test that needs Kafka must
/// fail loudly, never pass without having talked to a broker.
pub fn kafka_bootstrap() -> String {
    match std::env::var(KAFKA_BOOTSTRAP_ENV) {
        Ok(addr) if !addr.trim().is_empty() => addr,
        _ => panic!(
            "{KAFKA_BOOTSTRAP_ENV} is not set: this test needs a real Apache Kafka broker. \
             Start one with `scripts/kafka fetch && scripts/kafka start` and export \
             {KAFKA_BOOTSTRAP_ENV}=$(scripts/kafka bootstrap), or run the whole suite with \
             `scripts/test`, which does both."
        ),
    }
}

/// A topic name that no other test run uses, for tests that share one broker.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}
