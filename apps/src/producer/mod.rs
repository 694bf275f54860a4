//! The producer app (issue 5, item 1): CoinGecko `/coins/markets` → contract v1.2 events on
//! `crypto.prices.raw`, keyed by `coin_id`, and each coin's reference row on `crypto.coins`
//! when it changes ([`reference`]). Three modes share one sink and one set of metrics:
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
//! assert_eq!(stats.reference_rows, 10); // one per coin: the profiles do not change
//! # });
//! ```

pub mod args;
pub mod coingecko;
pub mod coins;
pub mod live;
pub mod mapping;
pub mod metrics;
pub mod reference;
pub mod replay;
pub mod retry;
pub mod schedule;
pub mod sink;
pub mod synthetic;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use crate::topics::DEFAULT_COINS;

pub use live::LiveConfig;
pub use replay::ReplayConfig;
pub use synthetic::SyntheticConfig;

use mapping::MappedResponse;
use metrics::ProducerMetrics;
use reference::SentRows;
use sink::{Destination, EventSink, OutRecord};

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
    /// Price events acknowledged by the sink.
    pub produced: u64,
    /// Coin reference rows acknowledged by the sink.
    pub reference_rows: u64,
    /// Records (events and reference rows) the sink could not deliver (each also logged and
    /// counted).
    pub delivery_failures: u64,
    /// Live polls that gave up.
    pub failed_polls: u64,
    /// Replay lines skipped as unreadable.
    pub malformed_lines: u64,
}

impl Stats {
    /// Adds one sent batch.
    pub(crate) fn add_batch(&mut self, delivered: Delivered) {
        self.batches += 1;
        self.produced += delivered.events;
        self.reference_rows += delivered.reference_rows;
        self.delivery_failures += delivered.failed;
    }
}

/// What the sink acknowledged of one batch, and what it could not deliver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) events: u64,
    pub(crate) reference_rows: u64,
    pub(crate) failed: u64,
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
    /// Sends one batch: first the reference rows of `rows` that changed since the last ones
    /// `sent` (a row the contract refuses is logged and counted instead), then `events`.
    /// Counts what was delivered, logs and counts every failure, and remembers the rows
    /// delivered, so a row the sink could not deliver is sent again with the next batch.
    pub(crate) async fn send(
        &self,
        rows: Vec<Value>,
        events: Vec<OutRecord>,
        sent: &mut SentRows,
    ) -> Delivered {
        let (changed, refused) = sent.changed(rows);
        for refusal in &refused {
            tracing::warn!(
                coin_id = %refusal.coin_id,
                field = %refusal.field,
                reason = %refusal.reason,
                "not sending a coin reference row its contract refuses"
            );
            self.metrics.reference_row_refused(&refusal.field);
        }
        let mut records: Vec<OutRecord> = changed
            .iter()
            .map(|row| OutRecord {
                destination: Destination::Coins,
                key: row.coin_id.clone(),
                value: serde_json::to_vec(row).unwrap_or_default(),
            })
            .collect();
        records.extend(events);
        if records.is_empty() {
            return Delivered::default();
        }
        let sent_rows = changed.len() as u64;
        let sent_events = records.len() as u64 - sent_rows;
        let report = self.sink.send_batch(records).await;
        for failure in &report.failures {
            tracing::error!(
                destination = failure.destination.as_str(),
                coin_id = %failure.key,
                error = %failure.error,
                "record not delivered"
            );
        }
        let failed = |destination| {
            report
                .failures
                .iter()
                .filter(|failure| failure.destination == destination)
                .count() as u64
        };
        let delivered = Delivered {
            events: sent_events - failed(Destination::Prices),
            reference_rows: sent_rows - failed(Destination::Coins),
            failed: report.failures.len() as u64,
        };
        self.metrics.produced(delivered.events);
        self.metrics
            .reference_rows_produced(delivered.reference_rows);
        self.metrics.delivery_errors(delivered.failed);
        for row in changed {
            let lost = report.failures.iter().any(|failure| {
                failure.destination == Destination::Coins && failure.key == row.coin_id
            });
            if !lost {
                sent.remember(row);
            }
        }
        delivered
    }

    /// The reference rows and the event records of a mapped response; incomplete and unkeyed
    /// items are logged and counted.
    pub(crate) fn records(&self, mapped: MappedResponse) -> (Vec<Value>, Vec<OutRecord>) {
        for unkeyed in &mapped.unkeyed {
            tracing::warn!(%unkeyed, "skipping an item without id");
            self.metrics.unkeyed_item();
        }
        let rows = mapped.items.iter().map(reference::item_row).collect();
        let events = mapped
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
                    destination: Destination::Prices,
                    value: item.to_bytes(),
                    key: item.coin_id,
                }
            })
            .collect();
        (rows, events)
    }
}

/// The record of a price event built in the producer (synthetic ticks, replayed bars).
pub(crate) fn event_record(event: &crate::event::PriceEvent) -> OutRecord {
    OutRecord {
        destination: Destination::Prices,
        key: event.coin_id.clone(),
        value: serde_json::to_vec(event).unwrap_or_default(),
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
    use crate::event::Source;
    use sink::{DeliveryReport, KafkaSink, MemorySink, SinkError, Undelivered};

    /// Delivers the events and refuses the reference rows, as a broker refusing them would.
    struct RefusingCoins;

    impl EventSink for RefusingCoins {
        async fn send_batch(&self, records: Vec<OutRecord>) -> DeliveryReport {
            let (coins, events): (Vec<OutRecord>, Vec<OutRecord>) = records
                .into_iter()
                .partition(|r| r.destination == Destination::Coins);
            DeliveryReport {
                delivered: events.len(),
                failures: coins
                    .into_iter()
                    .map(|r| Undelivered {
                        destination: r.destination,
                        key: r.key,
                        error: "Broker: Message size too large".into(),
                    })
                    .collect(),
            }
        }

        async fn flush(&self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_reference_row_the_sink_cannot_deliver_is_counted_and_sent_with_the_next_batch() {
        let metrics = ProducerMetrics::default();
        let mut sent = SentRows::default();
        let rows = || {
            vec![reference::profile_row(
                "bitcoin",
                "btc",
                Utc::now(),
                Source::Synthetic,
            )]
        };
        let events = || {
            vec![OutRecord {
                destination: Destination::Prices,
                key: "bitcoin".into(),
                value: b"{}".to_vec(),
            }]
        };
        let refusing = Output {
            sink: &RefusingCoins,
            metrics: &metrics,
        };
        let first = refusing.send(rows(), events(), &mut sent).await;
        let failed = Delivered {
            events: 1,
            reference_rows: 0,
            failed: 1,
        };
        assert_eq!(first, failed);
        assert_eq!(
            (metrics.delivery_failures(), metrics.reference_rows()),
            (1, 0)
        );

        let memory = MemorySink::default();
        let working = Output {
            sink: &memory,
            metrics: &metrics,
        };
        let second = working.send(rows(), events(), &mut sent).await;
        assert_eq!((second.reference_rows, second.failed), (1, 0));
        let third = working.send(rows(), events(), &mut sent).await;
        assert_eq!((third.events, third.reference_rows), (1, 0), "unchanged");
        let order: Vec<Destination> = memory.records().iter().map(|r| r.destination).collect();
        assert_eq!(
            order,
            [Destination::Coins, Destination::Prices, Destination::Prices],
            "a batch's rows go before its events"
        );
        assert_eq!(metrics.reference_rows(), 1);
    }

    /// The pipeline spawns `run` on a multi-threaded runtime: its future must be `Send`.
    #[test]
    fn the_run_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let sink = KafkaSink::new("127.0.0.1:9", &Default::default(), &Default::default()).unwrap();
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
