//! `warehouse`: jobs of the PostgreSQL warehouse. `check` runs the data-quality checks of one data
//! interval `[start, end)` (warehouse::quality): every result goes to `dq_check_result`, every
//! breach is logged, and a breach of a `fail` rule makes the exit code non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lake::job::interval::Interval;
use lake::storage::Lake;
use warehouse::quality::{self, rules::Rules};

/// Jobs of the warehouse, per data interval.
#[derive(Parser, Debug)]
#[command(name = "warehouse", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Data-quality checks of an interval of whole UTC hours (docs/ORCHESTRATION.md).
    Check(CheckArgs),
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Root of the lake: a folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "LAKE_URL", default_value = "./lake")]
    lake: String,
    /// The warehouse, postgresql://user:password@host:port/database (never logged).
    #[arg(long, env = "WAREHOUSE_URL", hide_env_values = true)]
    warehouse_url: String,
    /// Start of the data interval (inclusive), RFC 3339, on a whole hour.
    #[arg(long)]
    start: String,
    /// End of the data interval (exclusive), RFC 3339, on a whole hour.
    #[arg(long)]
    end: String,
    /// Rules file (JSON; default: warehouse/src/quality/default_rules.json, built in).
    #[arg(long, env = "DQ_RULES_FILE")]
    rules: Option<PathBuf>,
}

fn main() -> ExitCode {
    apps::cli::init_tracing();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("warehouse failed: {error:#}");
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
            Command::Check(args) => check(&args).await,
        }
    })
}

async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let lake =
        Lake::parse(&args.lake).with_context(|| format!("opening the lake {}", args.lake))?;
    let interval = Interval::parse(&args.start, &args.end)?;
    let rules = match &args.rules {
        Some(path) => Rules::from_file(path)?,
        None => Rules::default(),
    };
    let report = quality::check(&lake, &args.warehouse_url, &interval, &rules).await?;
    for warning in report.warnings() {
        tracing::warn!("{}", warning.message);
    }
    let failures: Vec<_> = report.failures().collect();
    for failure in &failures {
        tracing::error!("{}", failure.message);
    }
    println!(
        "{} results for [{}, {}): {} warnings, {} failures",
        report.results.len(),
        interval.start().to_rfc3339(),
        interval.end().to_rfc3339(),
        report.warnings().count(),
        failures.len()
    );
    if let Some(first) = failures.first() {
        anyhow::bail!(
            "{} critical data-quality breaches, the first: {}",
            failures.len(),
            first.message
        );
    }
    Ok(())
}
