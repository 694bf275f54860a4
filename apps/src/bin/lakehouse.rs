//! `lakehouse`: the lake's batch jobs for one data interval `[start, end)` of event time —
//! `silver` (Bronze → Silver + quarantine), `gold` (the SQL models over Silver) and `all` (both).
//! Every job replaces exactly its interval, so a re-run or a backfill is safe. Prints the run's
//! counts as JSON on stdout.
//!
//! Around them, for an orchestrator: `bronze-progress` (has the lake sink committed past an
//! interval's end? exit code 3 while not, for a sensor to poke again), and the maintenance jobs
//! `compact` and `vacuum`.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use apps::cli::LakeIntervalArgs;
use clap::{Args, Parser, Subcommand};
use lake::gold::GoldConfig;
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
    /// Whether the lake sink has committed every partition past `--end`: exit 0 when it has,
    /// 3 while it has not (the partitions missing are printed), 1 on an error.
    BronzeProgress(BronzeProgressArgs),
    /// Rewrite the small files of the lake's tables into large ones (Delta optimize).
    Compact(MaintenanceArgs),
    /// Delete the files no table version younger than the retention refers to.
    Vacuum(VacuumArgs),
}

/// The exit code of `bronze-progress` while the sink has not committed past the end.
const NOT_YET: u8 = 3;

#[derive(Args, Debug)]
struct BronzeProgressArgs {
    /// Root of the lake: a folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "LAKE_URL", default_value = "./lake")]
    lake: String,
    /// The sink's topics, tables, id and Kafka connection (the same options as `lake-sink`).
    #[command(flatten)]
    sink: apps::cli::LakeSinkOptions,
    /// The instant the sink must have committed past (the data interval's end), RFC 3339.
    #[arg(long)]
    end: String,
}

#[derive(Args, Debug)]
struct MaintenanceArgs {
    /// Root of the lake: a folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "LAKE_URL", default_value = "./lake")]
    lake: String,
    /// A table under the root, like `bronze/prices_raw`; repeatable (default: every table).
    #[arg(long = "table")]
    tables: Vec<String>,
}

#[derive(Args, Debug)]
struct VacuumArgs {
    #[command(flatten)]
    maintenance: MaintenanceArgs,
    /// Keep the files of the table versions of the last this many hours (time travel); the age
    /// of a version is measured from the clock when the vacuum runs, as Delta defines it.
    #[arg(long, default_value_t = 168)]
    retention_hours: i64,
}

#[derive(Args, Debug)]
struct SilverArgs {
    #[command(flatten)]
    interval: LakeIntervalArgs,
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
    interval: LakeIntervalArgs,
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
    interval: LakeIntervalArgs,
    #[command(flatten)]
    silver: SilverOptions,
    #[command(flatten)]
    gold: GoldOptions,
}

fn main() -> ExitCode {
    apps::cli::init_tracing();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("lakehouse failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match command {
            Command::Silver(args) => {
                let (lake, interval) = args.interval.open()?;
                let report = lake::silver::run(&lake, &interval, &args.options.config()).await?;
                print_json(&report)
            }
            Command::Gold(args) => {
                let (lake, interval) = args.interval.open()?;
                let report = lake::gold::run(&lake, &interval, &args.options.config()).await?;
                print_json(&report)
            }
            Command::All(args) => {
                let (lake, interval) = args.interval.open()?;
                let silver = lake::silver::run(&lake, &interval, &args.silver.config()).await?;
                let gold = lake::gold::run(&lake, &interval, &args.gold.config()).await?;
                print_json(&serde_json::json!({ "silver": silver, "gold": gold }))
            }
            Command::BronzeProgress(args) => bronze_progress(&args).await,
            Command::Compact(args) => {
                let lake = open_lake(&args.lake)?;
                let mut reports = Vec::new();
                for table in tables(&lake, &args.tables).await? {
                    reports.extend(lake::maintenance::compact(&lake, &table).await?);
                }
                print_json(&reports)
            }
            Command::Vacuum(args) => {
                let lake = open_lake(&args.maintenance.lake)?;
                let retention = chrono::Duration::hours(args.retention_hours);
                let mut reports = Vec::new();
                for table in tables(&lake, &args.maintenance.tables).await? {
                    reports.extend(lake::maintenance::vacuum(&lake, &table, retention).await?);
                }
                print_json(&reports)
            }
        }
    })
}

fn open_lake(url: &str) -> anyhow::Result<Lake> {
    Lake::parse(url).with_context(|| format!("opening the lake {url}"))
}

/// The tables asked for, else every table of the lake.
async fn tables(lake: &Lake, asked: &[String]) -> anyhow::Result<Vec<String>> {
    if asked.is_empty() {
        Ok(lake::maintenance::tables(lake).await?)
    } else {
        Ok(asked.to_vec())
    }
}

async fn bronze_progress(args: &BronzeProgressArgs) -> anyhow::Result<ExitCode> {
    let lake = open_lake(&args.lake)?;
    let end = chrono::DateTime::parse_from_rfc3339(&args.end)
        .with_context(|| format!("--end {:?} is not an RFC 3339 timestamp", args.end))?
        .with_timezone(&chrono::Utc);
    let progress = lake::bronze::progress::bronze_progress(
        &lake,
        &args.sink.bootstrap_servers,
        &args.sink.client_properties(),
        &args.sink.routes()?,
        &args.sink.sink_id,
        end,
    )
    .await?;
    for partition in progress.missing() {
        println!(
            "not yet: {}[{}] committed up to {} of {}, nothing at or after {}",
            partition.topic,
            partition.partition,
            partition
                .committed
                .map_or_else(|| "nothing".to_owned(), |next| next.to_string()),
            partition.high_watermark,
            args.end
        );
    }
    if progress.complete() {
        println!(
            "complete: {} partitions committed past {}",
            progress.partitions.len(),
            args.end
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(NOT_YET))
    }
}

fn print_json(report: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string(report).context("encoding the report")?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
