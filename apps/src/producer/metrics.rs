//! The producer's counters, registered in a metrics registry and served on an opt-in address.
//!
//! ```
//! use apps::producer::metrics::ProducerMetrics;
//! use streamlib::metrics::MetricsRegistry;
//!
//! let metrics = ProducerMetrics::default();
//! metrics.request("429");
//! metrics.missing_id("renamed-coin");
//! let registry = MetricsRegistry::default();
//! metrics.register(&registry);
//! let text = registry.encode();
//! assert!(text.contains("crypto_producer_polls_total{outcome=\"failed\"} 0"));
//! assert!(text.contains("crypto_producer_requests_total{status=\"429\"} 1"));
//! assert!(text.contains("crypto_producer_missing_ids_total{coin_id=\"renamed-coin\"} 1"));
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use streamlib::metrics::{MetricsError, MetricsRegistry};
use tokio::sync::watch;

/// One label pair: `(name, value)`.
type Label = [(&'static str, String); 1];

/// Counters by one label.
type Labelled = Family<Label, Counter>;

fn label(name: &'static str, value: &str) -> Label {
    [(name, value.to_string())]
}

/// Every counter of one producer. Shared (`Arc`) between the run loop and whoever registers
/// them ([`ProducerMetrics::register`]); the metrics are `prometheus-client`'s, so the
/// registered ones are these.
#[derive(Debug, Default)]
pub struct ProducerMetrics {
    polls: Labelled,
    ticks_skipped: Counter,
    retries: Counter,
    events_produced: Counter,
    reference_rows_produced: Counter,
    delivery_errors: Counter,
    unkeyed_items: Counter,
    malformed_lines: Counter,
    last_success_seconds: Gauge,
    requests: Labelled,
    missing_ids: Labelled,
    incomplete_items: Labelled,
    reference_rows_refused: Labelled,
}

/// The value of `family{name=value}`, 0 before its first count.
fn count(family: &Labelled, name: &'static str, value: &str) -> u64 {
    family
        .get(&label(name, value))
        .map(|c| c.get())
        .unwrap_or(0)
}

impl ProducerMetrics {
    /// A poll (all pages) finished; `ok` is false when it gave up.
    pub fn poll(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.polls.get_or_create(&label("outcome", outcome)).inc();
        if ok {
            self.last_success_seconds
                .set(chrono::Utc::now().timestamp().max(0));
        }
    }

    /// `n` tick boundaries passed without a poll.
    pub fn ticks_skipped(&self, n: u64) {
        self.ticks_skipped.inc_by(n);
    }

    /// One HTTP request ended with `status` (a code, `timeout`, `network`, `unexpected_body`).
    pub fn request(&self, status: &str) {
        self.requests.get_or_create(&label("status", status)).inc();
    }

    /// One retry is about to be made.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// `n` records were acknowledged by the sink.
    pub fn produced(&self, n: u64) {
        self.events_produced.inc_by(n);
    }

    /// `n` coin reference rows were acknowledged by the sink.
    pub fn reference_rows_produced(&self, n: u64) {
        self.reference_rows_produced.inc_by(n);
    }

    /// A coin reference row broke the contract in `field` and was not sent.
    pub fn reference_row_refused(&self, field: &str) {
        self.reference_rows_refused
            .get_or_create(&label("field", field))
            .inc();
    }

    /// `n` records could not be delivered.
    pub fn delivery_errors(&self, n: u64) {
        self.delivery_errors.inc_by(n);
    }

    /// A requested coin id was absent from a complete poll.
    pub fn missing_id(&self, coin_id: &str) {
        self.missing_ids
            .get_or_create(&label("coin_id", coin_id))
            .inc();
    }

    /// An item was produced with a defect in `field` (the validator will dead-letter it).
    pub fn incomplete_item(&self, field: &str) {
        self.incomplete_items
            .get_or_create(&label("field", field))
            .inc();
    }

    /// An item without a usable id was skipped.
    pub fn unkeyed_item(&self) {
        self.unkeyed_items.inc();
    }

    /// A replay line could not be read and was skipped.
    pub fn malformed_line(&self) {
        self.malformed_lines.inc();
    }

    /// Requests that ended with `status` so far.
    pub fn requests_with(&self, status: &str) -> u64 {
        count(&self.requests, "status", status)
    }

    /// Retries so far.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// How often `coin_id` was missing so far.
    pub fn missing(&self, coin_id: &str) -> u64 {
        count(&self.missing_ids, "coin_id", coin_id)
    }

    /// Items produced with a defect in `field` so far.
    pub fn incomplete(&self, field: &str) -> u64 {
        count(&self.incomplete_items, "field", field)
    }

    /// Coin reference rows acknowledged so far.
    pub fn reference_rows(&self) -> u64 {
        self.reference_rows_produced.get()
    }

    /// Coin reference rows refused for `field` so far.
    pub fn refused_rows(&self, field: &str) -> u64 {
        count(&self.reference_rows_refused, "field", field)
    }

    /// Records not delivered so far.
    pub fn delivery_failures(&self) -> u64 {
        self.delivery_errors.get()
    }

    /// Registers these metrics in `registry` (once per registry: names must be unique).
    pub fn register(&self, registry: &MetricsRegistry) {
        // Both outcomes show from the start, so that a rate of failures is defined.
        for outcome in ["ok", "failed"] {
            self.polls.get_or_create_owned(&label("outcome", outcome));
        }
        registry.register(
            "crypto_producer_polls",
            "Polls (all pages of one tick) by outcome",
            self.polls.clone(),
        );
        for (name, help, counter) in [
            (
                "crypto_producer_ticks_skipped",
                "Tick boundaries that passed without a poll (a poll overran)",
                &self.ticks_skipped,
            ),
            (
                "crypto_producer_retries",
                "HTTP requests that were retries",
                &self.retries,
            ),
            (
                "crypto_producer_events_produced",
                "Price events acknowledged by the sink",
                &self.events_produced,
            ),
            (
                "crypto_producer_reference_rows_produced",
                "Coin reference rows (crypto.coins) acknowledged by the sink",
                &self.reference_rows_produced,
            ),
            (
                "crypto_producer_delivery_errors",
                "Records the sink could not deliver (price events and reference rows)",
                &self.delivery_errors,
            ),
            (
                "crypto_producer_unkeyed_items",
                "Response items without a usable id, skipped",
                &self.unkeyed_items,
            ),
            (
                "crypto_producer_replay_malformed_lines",
                "Replay file lines that could not be read, skipped",
                &self.malformed_lines,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        for (name, help, family) in [
            (
                "crypto_producer_requests",
                "HTTP requests by status (or timeout, network, unexpected_body)",
                &self.requests,
            ),
            (
                "crypto_producer_missing_ids",
                "Requested coin ids absent from a complete poll",
                &self.missing_ids,
            ),
            (
                "crypto_producer_incomplete_items",
                "Items produced with a field the contract refuses, by field",
                &self.incomplete_items,
            ),
            (
                "crypto_producer_reference_rows_refused",
                "Coin reference rows not sent because they break their contract, by field",
                &self.reference_rows_refused,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "crypto_producer_last_success_timestamp_seconds",
            "Unix time of the last successful poll (0: none yet)",
            self.last_success_seconds.clone(),
        );
    }
}

/// Serves `GET /metrics` with these metrics alone on `addr` until `shutdown` turns true
/// ([`streamlib::metrics::serve`]). Returns the bound address (port 0 picks a free one) and the
/// server task.
///
/// # Errors
/// [`MetricsError::Bind`] when `addr` cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<ProducerMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    let registry = MetricsRegistry::default();
    metrics.register(&registry);
    streamlib::metrics::serve(registry, addr, async move {
        super::stopped(&mut shutdown).await
    })
    .await
}
