//! The producer's source flags (mode, coins, CoinGecko, retries, replay, synthetic), shared by
//! the `producer` and `pipeline` binaries.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use super::coingecko::{ApiKey, CoinGeckoApi, Plan};
use super::replay::ReplayFormat;
use super::retry::RetryPolicy;
use super::{LiveConfig, Mode, ProducerConfig, ReplayConfig, SyntheticConfig};
use crate::topics;

/// The environment variable holding the CoinGecko API key. Deliberately not a flag: a flag
/// would show in `ps`, shell history and config files.
pub const API_KEY_ENV: &str = "COINGECKO_API_KEY";

/// The `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeName {
    /// Poll CoinGecko on wall-clock boundaries.
    Live,
    /// Re-publish a recorded file (`--file`).
    Replay,
    /// A seeded random walk per coin.
    Synthetic,
}

/// What a binary assumes for the flags left out.
#[derive(Clone, Copy, Debug)]
pub struct SourceDefaults {
    /// `--mode`.
    pub mode: ModeName,
    /// `--speedup`.
    pub speedup: f64,
    /// `--history-ticks`.
    pub history_ticks: u32,
}

/// Where events come from and how they are fetched.
#[derive(Args, Clone, Debug)]
pub struct SourceArgs {
    /// Where events come from (default: live for `producer`, synthetic for `pipeline`).
    #[arg(long, env = "PRODUCER_MODE", value_enum)]
    pub mode: Option<ModeName>,
    /// CoinGecko ids to follow (comma-separated).
    #[arg(long, env = "COINS", value_delimiter = ',', default_values_t = topics::DEFAULT_COINS.map(String::from))]
    pub coins: Vec<String>,
    /// Quote currency (also the currency a replay file is quoted in).
    #[arg(long, env = "VS_CURRENCY", default_value = "usd")]
    pub vs_currency: String,
    /// Time between polls or synthetic ticks, in seconds; ticks fall on multiples of it.
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 300)]
    pub interval_secs: u64,
    /// Stop after this many polls, replay batches or synthetic ticks.
    #[arg(long, env = "MAX_BATCHES")]
    pub max_batches: Option<u64>,
    /// CoinGecko plan: keyless, demo or pro (picks host and key header).
    #[arg(
        long,
        env = "COINGECKO_PLAN",
        default_value = "keyless",
        help_heading = "Live mode"
    )]
    pub plan: Plan,
    /// API root overriding the plan's host.
    #[arg(long, env = "COINGECKO_BASE_URL", help_heading = "Live mode")]
    pub coingecko_url: Option<String>,
    /// HTTP request timeout in milliseconds.
    #[arg(
        long,
        env = "REQUEST_TIMEOUT_MS",
        default_value_t = 10_000,
        help_heading = "Live mode"
    )]
    pub request_timeout_ms: u64,
    /// Time a poll may take, retries included, in seconds (default: 4/5 of the interval).
    #[arg(long, env = "RETRY_BUDGET_SECS", help_heading = "Live mode")]
    pub retry_budget_secs: Option<u64>,
    /// First backoff step in milliseconds (doubles per attempt, jittered).
    #[arg(
        long,
        env = "RETRY_BASE_MS",
        default_value_t = 2_000,
        help_heading = "Live mode"
    )]
    pub retry_base_ms: u64,
    /// Backoff cap in milliseconds.
    #[arg(
        long,
        env = "RETRY_MAX_MS",
        default_value_t = 60_000,
        help_heading = "Live mode"
    )]
    pub retry_max_ms: u64,
    /// Attempts per request, the first included.
    #[arg(
        long,
        env = "RETRY_MAX_ATTEMPTS",
        default_value_t = 4,
        help_heading = "Live mode"
    )]
    pub retry_max_attempts: u32,
    /// Items per page (1..=250); a full page makes the poller ask for the next.
    #[arg(
        long,
        env = "PER_PAGE",
        default_value_t = 250,
        help_heading = "Live mode"
    )]
    pub per_page: u32,
    /// Poll once at start instead of waiting for the first boundary.
    #[arg(long, env = "POLL_AT_START", help_heading = "Live mode")]
    pub poll_at_start: bool,
    /// Append every response page as a JSON line to this file (replayable with --mode replay).
    #[arg(long, env = "RECORD_TO", help_heading = "Live mode")]
    pub record_to: Option<PathBuf>,
    /// The recording to replay.
    #[arg(long, env = "REPLAY_FILE", help_heading = "Replay mode")]
    pub file: Option<PathBuf>,
    /// jsonl or csv (default: by extension, `.csv` is CSV).
    #[arg(long, env = "REPLAY_FORMAT", help_heading = "Replay mode")]
    pub format: Option<ReplayFormat>,
    /// Speed-up over recorded time (replay) or for synthetic history; 0 = as fast as possible
    /// (default: 1 for `producer`, 300 for `pipeline`).
    #[arg(long, env = "SPEEDUP", help_heading = "Replay mode")]
    pub speedup: Option<f64>,
    /// Random seed: the same seed gives the same prices.
    #[arg(
        long,
        env = "SYNTHETIC_SEED",
        default_value_t = 42,
        help_heading = "Synthetic mode"
    )]
    pub seed: u64,
    /// Start this many ticks in the past and emit them first, at --speedup (default: 0 for
    /// `producer`, 2016 = one week for `pipeline`).
    #[arg(long, env = "HISTORY_TICKS", help_heading = "Synthetic mode")]
    pub history_ticks: Option<u32>,
}

impl SourceArgs {
    /// The producer configuration these flags describe, with `defaults` for what they leave
    /// open.
    pub fn producer_config(&self, defaults: &SourceDefaults) -> anyhow::Result<ProducerConfig> {
        let speedup = self.speedup.unwrap_or(defaults.speedup);
        let history_ticks = self.history_ticks.unwrap_or(defaults.history_ticks);
        let interval = Duration::from_secs(self.interval_secs);
        if !(speedup.is_finite() && speedup >= 0.0) {
            bail!("--speedup must be 0 or more, got {}", speedup);
        }
        let mode = match self.mode.unwrap_or(defaults.mode) {
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
                speedup,
                max_batches: self.max_batches,
            }),
            ModeName::Synthetic => Mode::Synthetic(SyntheticConfig {
                seed: self.seed,
                interval,
                history_ticks,
                speedup,
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
