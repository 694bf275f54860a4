//! `producer`: CoinGecko `/coins/markets` (live), a recording (replay) or a seeded random walk
//! (synthetic) → contract v1.1 events on `crypto.prices.raw`. See docs/PRODUCER.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use apps::cli::{self, KafkaOptions};
use apps::producer::coingecko::{ApiKey, CoinGeckoApi, Plan};
use apps::producer::metrics::{self, ProducerMetrics};
use apps::producer::replay::ReplayFormat;
use apps::producer::retry::RetryPolicy;
use apps::producer::sink::{EventSink, KafkaSink};
use apps::producer::{self, LiveConfig, Mode, ProducerConfig, ReplayConfig, SyntheticConfig};
use apps::topics;
use clap::{Parser, ValueEnum};
use tokio::signal::unix::{signal as unix_signal, SignalKind};
use tokio::sync::watch;

/// The environment variable holding the CoinGecko API key. Deliberately not a flag: a flag
/// would show in `ps`, shell history and config files.
const API_KEY_ENV: &str = "COINGECKO_API_KEY";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeName {
    /// Poll CoinGecko on wall-clock boundaries.
    Live,
    /// Re-publish a recorded file (`--file`).
    Replay,
    /// A seeded random walk per coin.
    Synthetic,
}

/// Produces crypto price events (contract v1.1) to Kafka, keyed by coin_id.
///
/// The CoinGecko API key is read from the COINGECKO_API_KEY environment variable only; it is
/// sent as a header and never logged.
#[derive(Parser, Debug)]
#[command(name = "producer", version, args_override_self = true)]
struct Args {
    /// Where events come from.
    #[arg(long, env = "PRODUCER_MODE", value_enum, default_value_t = ModeName::Live)]
    mode: ModeName,
    /// Topic to produce to.
    #[arg(long, env = "PRODUCER_TOPIC", default_value = topics::RAW)]
    topic: String,
    /// CoinGecko ids to follow (comma-separated).
    #[arg(long, env = "COINS", value_delimiter = ',', default_values_t = topics::DEFAULT_COINS.map(String::from))]
    coins: Vec<String>,
    /// Quote currency (also the currency a replay file is quoted in).
    #[arg(long, env = "VS_CURRENCY", default_value = "usd")]
    vs_currency: String,
    /// Time between polls or synthetic ticks, in seconds; ticks fall on multiples of it.
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 300)]
    interval_secs: u64,
    /// Stop after this many polls, replay batches or synthetic ticks.
    #[arg(long, env = "MAX_BATCHES")]
    max_batches: Option<u64>,
    /// Serve Prometheus metrics on `GET /metrics` at this address (e.g. 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaOptions,

    /// CoinGecko plan: keyless, demo or pro (picks host and key header).
    #[arg(
        long,
        env = "COINGECKO_PLAN",
        default_value = "keyless",
        help_heading = "Live mode"
    )]
    plan: Plan,
    /// API root overriding the plan's host.
    #[arg(long, env = "COINGECKO_BASE_URL", help_heading = "Live mode")]
    coingecko_url: Option<String>,
    /// HTTP request timeout in milliseconds.
    #[arg(
        long,
        env = "REQUEST_TIMEOUT_MS",
        default_value_t = 10_000,
        help_heading = "Live mode"
    )]
    request_timeout_ms: u64,
    /// Time a poll may take, retries included, in seconds (default: 4/5 of the interval).
    #[arg(long, env = "RETRY_BUDGET_SECS", help_heading = "Live mode")]
    retry_budget_secs: Option<u64>,
    /// First backoff step in milliseconds (doubles per attempt, jittered).
    #[arg(
        long,
        env = "RETRY_BASE_MS",
        default_value_t = 2_000,
        help_heading = "Live mode"
    )]
    retry_base_ms: u64,
    /// Backoff cap in milliseconds.
    #[arg(
        long,
        env = "RETRY_MAX_MS",
        default_value_t = 60_000,
        help_heading = "Live mode"
    )]
    retry_max_ms: u64,
    /// Attempts per request, the first included.
    #[arg(
        long,
        env = "RETRY_MAX_ATTEMPTS",
        default_value_t = 4,
        help_heading = "Live mode"
    )]
    retry_max_attempts: u32,
    /// Items per page (1..=250); a full page makes the poller ask for the next.
    #[arg(
        long,
        env = "PER_PAGE",
        default_value_t = 250,
        help_heading = "Live mode"
    )]
    per_page: u32,
    /// Poll once at start instead of waiting for the first boundary.
    #[arg(long, env = "POLL_AT_START", help_heading = "Live mode")]
    poll_at_start: bool,
    /// Append every response page as a JSON line to this file (replayable with --mode replay).
    #[arg(long, env = "RECORD_TO", help_heading = "Live mode")]
    record_to: Option<PathBuf>,

    /// The recording to replay.
    #[arg(long, env = "REPLAY_FILE", help_heading = "Replay mode")]
    file: Option<PathBuf>,
    /// jsonl or csv (default: by extension, `.csv` is CSV).
    #[arg(long, env = "REPLAY_FORMAT", help_heading = "Replay mode")]
    format: Option<ReplayFormat>,
    /// Speed-up over recorded time (replay) or for synthetic history; 0 = as fast as possible.
    #[arg(
        long,
        env = "SPEEDUP",
        default_value_t = 1.0,
        help_heading = "Replay mode"
    )]
    speedup: f64,

    /// Random seed: the same seed gives the same prices.
    #[arg(
        long,
        env = "SYNTHETIC_SEED",
        default_value_t = 42,
        help_heading = "Synthetic mode"
    )]
    seed: u64,
    /// Start this many ticks in the past and emit them first, at --speedup.
    #[arg(
        long,
        env = "HISTORY_TICKS",
        default_value_t = 0,
        help_heading = "Synthetic mode"
    )]
    history_ticks: u32,
}

impl Args {
    fn producer_config(&self) -> anyhow::Result<ProducerConfig> {
        let interval = Duration::from_secs(self.interval_secs);
        if !(self.speedup.is_finite() && self.speedup >= 0.0) {
            bail!("--speedup must be 0 or more, got {}", self.speedup);
        }
        let mode = match self.mode {
            ModeName::Live => Mode::Live(LiveConfig {
                api: CoinGeckoApi {
                    plan: self.plan,
                    base_url: self.coingecko_url.clone(),
                    api_key: std::env::var(API_KEY_ENV)
                        .ok()
                        .filter(|key| !key.trim().is_empty())
                        .map(|key| ApiKey::new(key.trim())),
                    per_page: self.per_page,
                    ..CoinGeckoApi::default()
                },
                retry: RetryPolicy {
                    base_delay: Duration::from_millis(self.retry_base_ms),
                    max_delay: Duration::from_millis(self.retry_max_ms),
                    max_attempts: self.retry_max_attempts.max(1),
                    request_timeout: Duration::from_millis(self.request_timeout_ms),
                },
                interval,
                retry_budget: self.retry_budget_secs.map(Duration::from_secs),
                poll_at_start: self.poll_at_start,
                max_polls: self.max_batches,
                record_to: self.record_to.clone(),
                ..LiveConfig::default()
            }),
            ModeName::Replay => Mode::Replay(ReplayConfig {
                path: self
                    .file
                    .clone()
                    .context("--mode replay needs --file (or REPLAY_FILE)")?,
                format: self.format,
                speedup: self.speedup,
                max_batches: self.max_batches,
            }),
            ModeName::Synthetic => Mode::Synthetic(SyntheticConfig {
                seed: self.seed,
                interval,
                history_ticks: self.history_ticks,
                speedup: self.speedup,
                max_ticks: self.max_batches,
            }),
        };
        Ok(ProducerConfig {
            mode,
            coins: self.coins.iter().map(|c| c.trim().to_string()).collect(),
            vs_currency: self.vs_currency.trim().to_ascii_lowercase(),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args: Args = cli::parse_args();
    cli::init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.producer_config()?;
    let properties: BTreeMap<String, String> =
        args.kafka.kafka_properties.iter().cloned().collect();
    let sink = KafkaSink::new(&args.kafka.bootstrap_servers, &args.topic, &properties)?;
    let metrics = Arc::new(ProducerMetrics::default());
    let (stop, shutdown) = watch::channel(false);
    let stop = Arc::new(stop);
    if let Some(addr) = args.metrics_addr {
        let (bound, _) = metrics::serve(addr, metrics.clone(), shutdown.clone()).await?;
        tracing::info!(%bound, "serving metrics on /metrics");
    }
    // Listen before producing anything, so no signal can arrive unheard.
    let mut interrupt = unix_signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = unix_signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let signalled = stop.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "stopping after the batch in flight");
        signalled.send_replace(true);
    });
    tracing::info!(mode = ?args.mode, topic = %args.topic, "producer starting");
    let result = producer::run(config, &sink, metrics, shutdown).await;
    stop.send_replace(true);
    let flushed = sink.flush().await;
    let stats = result?;
    flushed.context("flushing the producer")?;
    tracing::info!(?stats, "producer stopped");
    if stats.delivery_failures > 0 {
        bail!(
            "{} records could not be delivered (each is logged above)",
            stats.delivery_failures
        );
    }
    Ok(())
}
