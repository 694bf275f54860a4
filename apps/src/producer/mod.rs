//! The producer app (issue 5, item 1): CoinGecko `/coins/markets` → contract v1.2 events on
//! `crypto.prices.raw`, keyed by `coin_id`. Three modes share one sink and one set of metrics:
//!
//! - [`Mode::Live`]: polls on wall-clock boundaries ([`schedule`]), one request per tick with a
//!   page loop ([`coingecko`]), retries as REFERENCE.md §A says ([`retry`]), maps leniently
//!   ([`mapping`]) and reports missing ids ([`live`]);
//! - [`Mode::Replay`]: re-publishes a recorded file at a speed-up ([`replay`]);
//! - [`Mode::Synthetic`]: a seeded random walk per coin ([`synthetic`]).
//!
//! [`run`] is the entry point for the `producer` binary and for the in-process `pipeline`:
//!
//! ```
//! use std::sync::Arc;
//! use apps::producer::{run, Mode, ProducerConfig, SyntheticConfig};
//! use apps::producer::metrics::ProducerMetrics;
//! use apps::producer::sink::MemorySink;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = ProducerConfig::new(Mode::Synthetic(SyntheticConfig {
//!     history_ticks: 2, speedup: 0.0, max_ticks: Some(3), ..SyntheticConfig::default()
//! }));
//! let sink = MemorySink::default();
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let stats = run(config, &sink, Arc::new(ProducerMetrics::default()), shutdown).await.unwrap();
//! assert_eq!(stats.produced, 30); // 3 ticks × 10 default coins
//! # });
//! ```

pub mod args;
pub mod coingecko;
pub mod coins;
pub mod live;
pub mod mapping;
pub mod metrics;
pub mod replay;
pub mod retry;
pub mod schedule;
pub mod sink;
pub mod synthetic;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::topics::DEFAULT_COINS;

pub use live::LiveConfig;
pub use replay::ReplayConfig;
pub use synthetic::SyntheticConfig;

use mapping::MappedResponse;
use metrics::ProducerMetrics;
use sink::{EventSink, OutRecord};

/// Where events come from.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Poll CoinGecko.
    Live(LiveConfig),
    /// Re-publish a recorded file.
    Replay(ReplayConfig),
    /// Generate a random walk.
    Synthetic(SyntheticConfig),
}

/// Everything [`run`] needs besides the sink.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// The source of events.
    pub mode: Mode,
    /// CoinGecko ids to follow (live, synthetic).
    pub coins: Vec<String>,
    /// Quote currency, lower case.
    pub vs_currency: String,
}

impl ProducerConfig {
    /// `mode` with the ten default coins quoted in `usd`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            coins: DEFAULT_COINS.iter().map(|id| id.to_string()).collect(),
            vs_currency: "usd".into(),
        }
    }
}

/// Errors that stop the producer before or while it runs (per-poll and per-record failures
/// are counted and logged instead).
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// An invalid setting.
    #[error("configuration: {0}")]
    Config(String),
    /// A tick interval below one millisecond.
    #[error(transparent)]
    Interval(#[from] schedule::BadInterval),
    /// The CoinGecko client could not be set up.
    #[error(transparent)]
    CoinGecko(#[from] coingecko::CoinGeckoError),
    /// The replay file could not be opened or read.
    #[error("replay file {path}: {source}")]
    ReplayFile {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Batches sent: polls that produced, replay batches, synthetic ticks.
    pub batches: u64,
    /// Records acknowledged by the sink.
    pub produced: u64,
    /// Records the sink could not deliver (each also logged and counted).
    pub delivery_failures: u64,
    /// Live polls that gave up.
    pub failed_polls: u64,
    /// Replay lines skipped as unreadable.
    pub malformed_lines: u64,
}

impl Stats {
    /// Adds one sent batch of `(delivered, failed)` records.
    pub(crate) fn add_batch(&mut self, (delivered, failed): (u64, u64)) {
        self.batches += 1;
        self.produced += delivered;
        self.delivery_failures += failed;
    }
}

/// Runs `config` until its mode ends (bounded runs, end of file) or `shutdown` turns true;
/// an in-flight batch is always finished. Records go to `sink`, counters to `metrics`. The
/// caller flushes the sink afterwards.
pub async fn run<S: EventSink>(
    config: ProducerConfig,
    sink: &S,
    metrics: Arc<ProducerMetrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Stats, ProducerError> {
    if config.coins.is_empty() && !matches!(config.mode, Mode::Replay(_)) {
        return Err(ProducerError::Config("no coins to follow".into()));
    }
    let out = Output {
        sink,
        metrics: &metrics,
    };
    match config.mode {
        Mode::Live(live) => {
            live::run(&live, &config.vs_currency, &config.coins, out, shutdown).await
        }
        Mode::Replay(replay) => replay::run(&replay, &config.vs_currency, out, shutdown).await,
        Mode::Synthetic(synthetic) => {
            synthetic::run(
                &synthetic,
                &config.vs_currency,
                &config.coins,
                out,
                shutdown,
            )
            .await
        }
    }
}

/// The sink and the metrics, with the reporting every mode shares.
#[derive(Clone, Copy)]
pub(crate) struct Output<'a, S> {
    pub(crate) sink: &'a S,
    pub(crate) metrics: &'a ProducerMetrics,
}

impl<S: EventSink> Output<'_, S> {
    /// Sends a batch; counts what was delivered and logs and counts every failure. Returns
    /// `(delivered, failed)`.
    pub(crate) async fn send(&self, records: Vec<OutRecord>) -> (u64, u64) {
        if records.is_empty() {
            return (0, 0);
        }
        let report = self.sink.send_batch(records).await;
        for (key, error) in &report.failures {
            tracing::error!(coin_id = %key, %error, "record not delivered");
        }
        let (delivered, failed) = (report.delivered as u64, report.failures.len() as u64);
        self.metrics.produced(delivered);
        self.metrics.delivery_errors(failed);
        (delivered, failed)
    }

    /// The records of a mapped response; incomplete and unkeyed items are logged and counted.
    pub(crate) fn records(&self, mapped: MappedResponse) -> Vec<OutRecord> {
        for unkeyed in &mapped.unkeyed {
            tracing::warn!(%unkeyed, "skipping an item without id");
            self.metrics.unkeyed_item();
        }
        mapped
            .items
            .into_iter()
            .map(|item| {
                if !item.defects.is_empty() {
                    let defects: Vec<String> = item.defects.iter().map(|d| d.to_string()).collect();
                    tracing::warn!(
                        coin_id = %item.coin_id,
                        defects = %defects.join(", "),
                        "producing an item the contract refuses; the validator will dead-letter it"
                    );
                    for defect in &item.defects {
                        self.metrics.incomplete_item(defect.field);
                    }
                }
                OutRecord {
                    value: item.to_bytes(),
                    key: item.coin_id,
                }
            })
            .collect()
    }
}

/// Waits until wall-clock time `at`; false if `shutdown` turned true first.
pub(crate) async fn wait_until(at: DateTime<Utc>, shutdown: &mut watch::Receiver<bool>) -> bool {
    let delay = (at - Utc::now()).to_std().unwrap_or_default();
    if delay.is_zero() {
        // A zero sleep still waits for the timer wheel (~1 ms): too slow for a backfill.
        return !*shutdown.borrow();
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => !*shutdown.borrow(),
        _ = stopped(shutdown) => false,
    }
}

/// Resolves once `shutdown` is true; never, if its sender is gone without saying so.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sink::KafkaSink;

    /// The pipeline spawns `run` on a multi-threaded runtime: its future must be `Send`.
    #[test]
    fn the_run_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let sink = KafkaSink::new("127.0.0.1:9", "t", &Default::default()).unwrap();
        let (_stop, shutdown) = watch::channel(false);
        for mode in [
            Mode::Live(LiveConfig::default()),
            Mode::Synthetic(SyntheticConfig::default()),
        ] {
            let future = run(
                ProducerConfig::new(mode),
                &sink,
                Arc::default(),
                shutdown.clone(),
            );
            assert_send(&future);
        }
    }
}
