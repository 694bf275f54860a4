//! The producer's counters in the Prometheus text format, served on an opt-in address.
//!
//! ```
//! use apps::producer::metrics::ProducerMetrics;
//!
//! let metrics = ProducerMetrics::default();
//! metrics.request("429");
//! metrics.missing_id("renamed-coin");
//! let text = metrics.render();
//! assert!(text.contains("crypto_producer_requests_total{status=\"429\"} 1"));
//! assert!(text.contains("crypto_producer_missing_ids_total{coin_id=\"renamed-coin\"} 1"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Every counter of one producer. Shared (`Arc`) between the run loop and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct ProducerMetrics {
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    ticks_skipped: AtomicU64,
    retries: AtomicU64,
    events_produced: AtomicU64,
    delivery_errors: AtomicU64,
    unkeyed_items: AtomicU64,
    malformed_lines: AtomicU64,
    last_success_seconds: AtomicU64,
    requests: Labelled,
    missing_ids: Labelled,
    incomplete_items: Labelled,
}

/// Counters by one label value.
#[derive(Debug, Default)]
struct Labelled(Mutex<BTreeMap<String, u64>>);

impl Labelled {
    fn add(&self, label: &str) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(label.to_string()).or_default() += 1;
    }

    fn get(&self, label: &str) -> u64 {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(label).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, label: &str) {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (value, count) in counts.iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
        }
    }
}

/// Label values come partly from the network (coin ids): escape as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl ProducerMetrics {
    /// A poll (all pages) finished; `ok` is false when it gave up.
    pub fn poll(&self, ok: bool) {
        add(
            if ok {
                &self.polls_ok
            } else {
                &self.polls_failed
            },
            1,
        );
        if ok {
            let now = chrono::Utc::now().timestamp().max(0).unsigned_abs();
            self.last_success_seconds.store(now, Ordering::Relaxed);
        }
    }

    /// `n` tick boundaries passed without a poll.
    pub fn ticks_skipped(&self, n: u64) {
        add(&self.ticks_skipped, n);
    }

    /// One HTTP request ended with `status` (a code, `timeout`, `network`, `unexpected_body`).
    pub fn request(&self, status: &str) {
        self.requests.add(status);
    }

    /// One retry is about to be made.
    pub fn retry(&self) {
        add(&self.retries, 1);
    }

    /// `n` records were acknowledged by the sink.
    pub fn produced(&self, n: u64) {
        add(&self.events_produced, n);
    }

    /// `n` records could not be delivered.
    pub fn delivery_errors(&self, n: u64) {
        add(&self.delivery_errors, n);
    }

    /// A requested coin id was absent from a complete poll.
    pub fn missing_id(&self, coin_id: &str) {
        self.missing_ids.add(coin_id);
    }

    /// An item was produced with a defect in `field` (the validator will dead-letter it).
    pub fn incomplete_item(&self, field: &str) {
        self.incomplete_items.add(field);
    }

    /// An item without a usable id was skipped.
    pub fn unkeyed_item(&self) {
        add(&self.unkeyed_items, 1);
    }

    /// A replay line could not be read and was skipped.
    pub fn malformed_line(&self) {
        add(&self.malformed_lines, 1);
    }

    /// Requests that ended with `status` so far.
    pub fn requests_with(&self, status: &str) -> u64 {
        self.requests.get(status)
    }

    /// Retries so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// How often `coin_id` was missing so far.
    pub fn missing(&self, coin_id: &str) -> u64 {
        self.missing_ids.get(coin_id)
    }

    /// Items produced with a defect in `field` so far.
    pub fn incomplete(&self, field: &str) -> u64 {
        self.incomplete_items.get(field)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let name = "crypto_producer_polls_total";
        header(
            &mut out,
            name,
            "counter",
            "Polls (all pages of one tick) by outcome.",
        );
        let _ = writeln!(out, "{name}{{outcome=\"ok\"}} {}", load(&self.polls_ok));
        let _ = writeln!(
            out,
            "{name}{{outcome=\"failed\"}} {}",
            load(&self.polls_failed)
        );
        for (name, help, value) in [
            (
                "crypto_producer_ticks_skipped_total",
                "Tick boundaries that passed without a poll (a poll overran).",
                &self.ticks_skipped,
            ),
            (
                "crypto_producer_retries_total",
                "HTTP requests that were retries.",
                &self.retries,
            ),
            (
                "crypto_producer_events_produced_total",
                "Records acknowledged by the sink.",
                &self.events_produced,
            ),
            (
                "crypto_producer_delivery_errors_total",
                "Records the sink could not deliver.",
                &self.delivery_errors,
            ),
            (
                "crypto_producer_unkeyed_items_total",
                "Response items without a usable id, skipped.",
                &self.unkeyed_items,
            ),
            (
                "crypto_producer_replay_malformed_lines_total",
                "Replay file lines that could not be read, skipped.",
                &self.malformed_lines,
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", load(value));
        }
        let name = "crypto_producer_requests_total";
        header(
            &mut out,
            name,
            "counter",
            "HTTP requests by status (or timeout, network, unexpected_body).",
        );
        self.requests.render(&mut out, name, "status");
        let name = "crypto_producer_missing_ids_total";
        header(
            &mut out,
            name,
            "counter",
            "Requested coin ids absent from a complete poll.",
        );
        self.missing_ids.render(&mut out, name, "coin_id");
        let name = "crypto_producer_incomplete_items_total";
        header(
            &mut out,
            name,
            "counter",
            "Items produced with a field the contract refuses, by field.",
        );
        self.incomplete_items.render(&mut out, name, "field");
        let name = "crypto_producer_last_success_timestamp_seconds";
        header(
            &mut out,
            name,
            "gauge",
            "Unix time of the last successful poll (0: none yet).",
        );
        let _ = writeln!(out, "{name} {}", load(&self.last_success_seconds));
        out
    }
}

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
#[error("serving metrics on {addr}: {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

/// Serves `GET /metrics` on `addr` until `shutdown` turns true. Returns the bound address
/// (port 0 picks a free one) and the server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<ProducerMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        let stopped = async move { super::stopped(&mut shutdown).await };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(%error, "metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}
