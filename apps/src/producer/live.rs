//! Live mode: one poll per wall-clock tick, each a page loop with retries, each page mapped
//! and produced as it arrives, and the requested ids that no page returned reported.
//!
//! A poll has a deadline (the tick plus the retry budget, which is shorter than the interval):
//! the retry policy gives up rather than run past it, so the next tick always finds the poller
//! idle. Shutdown interrupts a backoff wait, never a request or a batch being produced.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::coingecko::{CoinGeckoApi, CoinGeckoClient};
use super::mapping::{map_response, missing_ids};
use super::metrics::ProducerMetrics;
use super::reference::SentRows;
use super::retry::{Decision, Failure, GiveUp, RetryPolicy};
use super::schedule::Schedule;
use super::sink::EventSink;
use super::{stopped, wait_until, Delivered, Output, ProducerError, Stats};
use crate::event::Source;

/// How the poller waits before a retry: [`sleep`] in production; tests pass a function that
/// returns at once and read the delays from [`PollReport::delays`].
pub type Pause = fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sleeps for `delay` (the production [`Pause`]).
pub fn sleep(delay: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(tokio::time::sleep(delay))
}

/// Live-mode settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Plan, host, key, page size.
    pub api: CoinGeckoApi,
    /// Retry rules and the request timeout.
    pub retry: RetryPolicy,
    /// Tick interval (wall-clock aligned).
    pub interval: Duration,
    /// Time a poll may take, retries included, from its tick (default: 4/5 of the interval).
    pub retry_budget: Option<Duration>,
    /// Poll once right away instead of waiting for the first boundary.
    pub poll_at_start: bool,
    /// Stop after this many polls.
    pub max_polls: Option<u64>,
    /// Append each page's items as one JSON line to this file (a replay recording).
    pub record_to: Option<PathBuf>,
    /// How to wait before a retry.
    pub pause: Pause,
}

impl Default for LiveConfig {
    /// Keyless CoinGecko every 5 minutes, default retry policy, until stopped.
    fn default() -> Self {
        Self {
            api: CoinGeckoApi::default(),
            retry: RetryPolicy::default(),
            interval: Duration::from_secs(300),
            retry_budget: None,
            poll_at_start: false,
            max_polls: None,
            record_to: None,
            pause: sleep,
        }
    }
}

impl LiveConfig {
    /// The retry budget, checked: shorter than the interval, longer than one request.
    pub fn budget(&self) -> Result<Duration, ProducerError> {
        let budget = self.retry_budget.unwrap_or(self.interval * 4 / 5);
        if budget >= self.interval {
            return Err(ProducerError::Config(format!(
                "the retry budget ({budget:?}) must be shorter than the interval ({:?})",
                self.interval
            )));
        }
        if budget < self.retry.request_timeout {
            return Err(ProducerError::Config(format!(
                "the retry budget ({budget:?}) must cover at least one request ({:?})",
                self.retry.request_timeout
            )));
        }
        Ok(budget)
    }
}

/// Why a poll stopped before its last page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollFailure {
    /// The retry policy gave up on a page.
    GaveUp {
        /// The page (from 1).
        page: u32,
        /// How its last attempt failed.
        failure: Failure,
        /// Why no further attempt was made.
        reason: GiveUp,
    },
    /// Shutdown was requested during a backoff wait.
    Shutdown,
}

/// What one poll did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// The waits before each retry, as the policy computed them.
    pub delays: Vec<Duration>,
    /// Price events acknowledged by the sink.
    pub delivered: u64,
    /// Coin reference rows acknowledged by the sink.
    pub reference_rows: u64,
    /// Records (events and reference rows) the sink could not deliver.
    pub delivery_failures: u64,
    /// Requested ids no page returned (only known when the poll completed).
    pub missing_ids: Vec<String>,
    /// Set when the poll did not complete.
    pub failure: Option<PollFailure>,
}

/// Polls CoinGecko for a fixed list of coins.
#[derive(Debug)]
pub struct Poller {
    client: CoinGeckoClient,
    retry: RetryPolicy,
    pause: Pause,
    vs_currency: String,
    ids: Vec<String>,
    rng: StdRng,
    record_to: Option<PathBuf>,
    sent: SentRows,
}

impl Poller {
    /// A poller for `ids` quoted in `vs_currency`.
    pub fn new(
        config: &LiveConfig,
        vs_currency: &str,
        ids: &[String],
    ) -> Result<Self, ProducerError> {
        Ok(Self {
            client: CoinGeckoClient::new(&config.api, config.retry.request_timeout)?,
            retry: config.retry.clone(),
            pause: config.pause,
            vs_currency: vs_currency.to_string(),
            ids: ids.to_vec(),
            rng: StdRng::from_os_rng(),
            record_to: config.record_to.clone(),
            sent: SentRows::default(),
        })
    }

    /// One poll: pages until one is not full, each produced to `sink` as it arrives (with the
    /// reference rows of its coins that changed since this poller last sent them); gives up on
    /// a page when the retry policy says so (the pages before it stay produced).
    pub async fn poll<S: EventSink>(
        &mut self,
        deadline: Instant,
        sink: &S,
        metrics: &ProducerMetrics,
        shutdown: &mut watch::Receiver<bool>,
    ) -> PollReport {
        let out = Output { sink, metrics };
        let mut report = PollReport::default();
        let mut returned = Vec::new();
        for page in 1..=self.client.max_pages() {
            let items = match self
                .fetch(page, deadline, metrics, shutdown, &mut report)
                .await
            {
                Ok(items) => items,
                Err(failure) => {
                    report.failure = Some(failure);
                    break;
                }
            };
            let full = items.len() >= self.client.per_page() as usize;
            self.record(&items);
            let mapped = map_response(&items, &self.vs_currency, Utc::now(), Source::Coingecko);
            returned.extend(mapped.items.iter().map(|item| item.coin_id.clone()));
            let (rows, events) = out.records(mapped);
            let delivered = out.send(rows, events, &mut self.sent).await;
            report.delivered += delivered.events;
            report.reference_rows += delivered.reference_rows;
            report.delivery_failures += delivered.failed;
            if !full {
                break;
            }
            if page == self.client.max_pages() {
                tracing::warn!(
                    page,
                    "stopping at the page limit although the last page was full"
                );
            }
        }
        if report.failure.is_none() {
            for id in missing_ids(&self.ids, &returned) {
                tracing::warn!(coin_id = %id, "requested coin missing from the response");
                metrics.missing_id(&id);
                report.missing_ids.push(id);
            }
        }
        metrics.poll(report.failure.is_none());
        report
    }

    async fn fetch(
        &mut self,
        page: u32,
        deadline: Instant,
        metrics: &ProducerMetrics,
        shutdown: &mut watch::Receiver<bool>,
        report: &mut PollReport,
    ) -> Result<Vec<serde_json::Value>, PollFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                metrics.retry();
            }
            report.requests += 1;
            let failure = match self
                .client
                .fetch_page(&self.vs_currency, &self.ids, page)
                .await
            {
                Ok(page) => {
                    metrics.request(&page.status.to_string());
                    return Ok(page.items);
                }
                Err(failure) => failure,
            };
            metrics.request(&failure.label());
            let remaining = deadline.saturating_duration_since(Instant::now());
            let jitter = self.rng.random::<f64>();
            match self
                .retry
                .decide(&failure, attempt, remaining, Utc::now(), jitter)
            {
                Decision::Retry(delay) => {
                    tracing::info!(
                        page,
                        attempt,
                        failure = %failure.label(),
                        delay_ms = delay.as_millis() as u64,
                        "retrying"
                    );
                    report.delays.push(delay);
                    tokio::select! {
                        _ = (self.pause)(delay) => {}
                        _ = stopped(shutdown) => return Err(PollFailure::Shutdown),
                    }
                }
                Decision::GiveUp(reason) => {
                    tracing::error!(page, attempt, failure = %failure.label(), %reason, "poll failed");
                    return Err(PollFailure::GaveUp {
                        page,
                        failure,
                        reason,
                    });
                }
            }
        }
    }

    fn record(&self, items: &[serde_json::Value]) {
        let Some(path) = &self.record_to else {
            return;
        };
        let line = serde_json::Value::Array(items.to_vec()).to_string() + "\n";
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "could not record the response");
        }
    }
}

/// The tick loop: waits for each boundary, polls, and skips (and counts) boundaries a poll
/// overran.
pub(crate) async fn run<S: EventSink>(
    config: &LiveConfig,
    vs_currency: &str,
    coins: &[String],
    out: Output<'_, S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Stats, ProducerError> {
    let schedule = Schedule::new(config.interval)?;
    let budget = config.budget()?;
    let mut poller = Poller::new(config, vs_currency, coins)?;
    let mut stats = Stats::default();
    let mut polls = 0;
    let mut tick = if config.poll_at_start {
        Utc::now()
    } else {
        schedule.next_after(Utc::now())
    };
    loop {
        tracing::info!(tick = %crate::event::format_ts(tick), "next poll");
        if !wait_until(tick, &mut shutdown).await {
            break;
        }
        let left = (tick + budget - Utc::now()).to_std().unwrap_or_default();
        let report = poller
            .poll(Instant::now() + left, out.sink, out.metrics, &mut shutdown)
            .await;
        stats.add_batch(Delivered {
            events: report.delivered,
            reference_rows: report.reference_rows,
            failed: report.delivery_failures,
        });
        stats.failed_polls += u64::from(report.failure.is_some());
        polls += 1;
        if config.max_polls.is_some_and(|max| polls >= max) || *shutdown.borrow() {
            break;
        }
        let next = schedule.next_after(Utc::now());
        let skipped = schedule.skipped_between(schedule.at_or_before(tick), next);
        if skipped > 0 {
            tracing::warn!(skipped, "a poll overran tick boundaries; they are skipped");
            out.metrics.ticks_skipped(skipped);
        }
        tick = next;
    }
    Ok(stats)
}
