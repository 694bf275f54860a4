//! `lakehouse`: the lake's batch jobs for one data interval `[start, end)` of event time —
//! `silver` (Bronze → Silver + quarantine), `gold` (the SQL models over Silver) and `all` (both).
//! Every job replaces exactly its interval, so a re-run or a backfill is safe. Prints the run's
//! counts as JSON on stdout.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lake::gold::GoldConfig;
use lake::job::interval::Interval;
use lake::silver::SilverConfig;
use lake::storage::Lake;

/// Batch jobs of the lake (a local folder or s3://bucket/prefix), per data interval.
///
/// S3 settings come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
/// and AWS_ALLOW_HTTP; the secret is never logged.
#[derive(Parser, Debug)]
#[command(name = "lakehouse", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bronze → silver/prices, silver/dead_letters, silver/alerts and silver/quarantine.
    Silver(SilverArgs),
    /// The Gold models (candles, daily metrics, dominance, data quality) from Silver.
    Gold(GoldArgs),
    /// `silver`, then `gold`, for the same interval.
    All(AllArgs),
}

/// The lake and the interval every job takes.
#[derive(Args, Debug)]
struct IntervalArgs {
    /// Root of the lake: a folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "LAKE_URL", default_value = "./lake")]
    lake: String,
    /// Start of the data interval (inclusive), RFC 3339, e.g. 2026-01-01T00:00:00Z.
    #[arg(long)]
    start: String,
    /// End of the data interval (exclusive), RFC 3339.
    #[arg(long)]
    end: String,
}

#[derive(Args, Debug)]
struct SilverArgs {
    #[command(flatten)]
    interval: IntervalArgs,
    #[command(flatten)]
    options: SilverOptions,
}

#[derive(Args, Debug)]
struct SilverOptions {
    /// The coins followed; valid events of other coins are quarantined (`unknown_coin`).
    #[arg(long, env = "COINS", value_delimiter = ',', default_values_t = apps::topics::DEFAULT_COINS.map(String::from))]
    coins: Vec<String>,
    /// Follow every coin (no `unknown_coin` quarantine).
    #[arg(long, conflicts_with = "coins")]
    all_coins: bool,
    /// The contract check's settings: the validator's, so that Silver accepts what it accepts.
    #[command(flatten)]
    contract: apps::cli::ValidatorOptions,
    /// How long before the interval a record of it may have reached Kafka, in minutes.
    #[arg(long, env = "SILVER_TOLERANCE_MINUTES", default_value_t = 60)]
    tolerance_minutes: i64,
    /// Read Bronze ingested at most this many hours after the interval (default: no limit, so a
    /// re-run always picks up late records).
    #[arg(long, env = "SILVER_MAX_LATENESS_HOURS")]
    max_lateness_hours: Option<i64>,
}

impl SilverOptions {
    fn config(&self) -> SilverConfig {
        SilverConfig {
            coins: (!self.all_coins).then(|| self.coins.iter().cloned().collect::<BTreeSet<_>>()),
            contract: self.contract.check_config(),
            tolerance: chrono::Duration::minutes(self.tolerance_minutes),
            max_lateness: self.max_lateness_hours.map(chrono::Duration::hours),
        }
    }
}

#[derive(Args, Debug)]
struct GoldArgs {
    #[command(flatten)]
    interval: IntervalArgs,
    #[command(flatten)]
    options: GoldOptions,
}

#[derive(Args, Debug)]
struct GoldOptions {
    /// The producer's poll interval in seconds (data_quality's polls expected = 3600 / it).
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 300)]
    poll_interval_secs: u64,
}

impl GoldOptions {
    fn config(&self) -> GoldConfig {
        GoldConfig {
            poll_interval: Duration::from_secs(self.poll_interval_secs),
        }
    }
}

#[derive(Args, Debug)]
struct AllArgs {
    #[command(flatten)]
    interval: IntervalArgs,
    #[command(flatten)]
    silver: SilverOptions,
    #[command(flatten)]
    gold: GoldOptions,
}

fn main() -> ExitCode {
    apps::cli::init_tracing();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("lakehouse failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match command {
            Command::Silver(args) => {
                let (lake, interval) = open(&args.interval)?;
                let report = lake::silver::run(&lake, &interval, &args.options.config()).await?;
                print_json(&report)
            }
            Command::Gold(args) => {
                let (lake, interval) = open(&args.interval)?;
                let report = lake::gold::run(&lake, &interval, &args.options.config()).await?;
                print_json(&report)
            }
            Command::All(args) => {
                let (lake, interval) = open(&args.interval)?;
                let silver = lake::silver::run(&lake, &interval, &args.silver.config()).await?;
                let gold = lake::gold::run(&lake, &interval, &args.gold.config()).await?;
                print_json(&serde_json::json!({ "silver": silver, "gold": gold }))
            }
        }
    })
}

fn open(args: &IntervalArgs) -> anyhow::Result<(Lake, Interval)> {
    let lake =
        Lake::parse(&args.lake).with_context(|| format!("opening the lake {}", args.lake))?;
    let interval = Interval::parse(&args.start, &args.end)?;
    Ok((lake, interval))
}

fn print_json(report: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(report).context("encoding the report")?;
    println!("{text}");
    Ok(())
}
