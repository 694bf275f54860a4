//! `warehouse`: the PostgreSQL star schema — `migrate` applies its migrations, `load` copies one
//! data interval of the Silver/Gold Delta tables into it, idempotently, and `check` runs the
//! data-quality checks of an interval (warehouse::quality): every result goes to
//! `dq_check_result`, every breach is logged, and a breach of a `fail` rule makes the exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use apps::cli::LakeIntervalArgs;
use clap::{Args, Parser, Subcommand};
use lake::job::interval::Interval;
use warehouse::connection::WarehouseTarget;
use warehouse::quality::{self, rules::Rules};

/// The crypto platform's PostgreSQL warehouse (docs/DATA_MODEL.md).
#[derive(Parser, Debug)]
#[command(name = "warehouse", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the schema migrations the database does not have yet.
    Migrate {
        #[command(flatten)]
        warehouse: WarehouseArgs,
    },
    /// Migrate, then replace the interval [start, end) of every fact with the lake's rows.
    Load {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        interval: LakeIntervalArgs,
    },
    /// Data-quality checks of an interval of whole UTC hours (docs/ORCHESTRATION.md): results in
    /// dq_check_result, exit code 1 on a critical breach.
    Check {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        interval: LakeIntervalArgs,
        /// Rules file (JSON; default: warehouse/src/quality/default_rules.json, built in).
        #[arg(long, env = "DQ_RULES_FILE")]
        rules: Option<PathBuf>,
    },
    /// VACUUM (ANALYZE) the warehouse's tables (the daily maintenance).
    Maintain {
        #[command(flatten)]
        warehouse: WarehouseArgs,
    },
}

/// Where the warehouse is.
#[derive(Args, Debug)]
struct WarehouseArgs {
    /// postgres://user:password@host:port/database; else the libpq PG* variables.
    #[arg(long, env = "WAREHOUSE_URL", hide_env_values = true)]
    warehouse_url: Option<String>,
}

impl WarehouseArgs {
    fn target(&self) -> anyhow::Result<WarehouseTarget> {
        Ok(WarehouseTarget::from_url_or_env(
            self.warehouse_url.as_deref(),
        )?)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate { warehouse } => {
            let target = warehouse.target()?;
            let mut client = target.connect().await?;
            let report = warehouse::migrations::migrate(&mut client)
                .await
                .with_context(|| format!("migrating {target}"))?;
            tracing::info!(%target, applied = ?report.applied, up_to_date = report.up_to_date, "migrated");
            println!(
                "migrate {target}: {} applied ({}), {} already applied",
                report.applied.len(),
                report.applied.join(", "),
                report.up_to_date
            );
        }
        Command::Load {
            warehouse,
            interval,
        } => {
            let target = warehouse.target()?;
            let (lake, interval) = interval.open()?;
            tracing::info!(%target, lake = %lake.root(), %interval, "loading");
            let report = warehouse::load::load(&lake, &target, interval)
                .await
                .with_context(|| format!("loading {interval} into {target}"))?;
            print!("{report}");
        }
        Command::Check {
            warehouse,
            interval,
            rules,
        } => {
            let target = warehouse.target()?;
            let (lake, interval) = interval.open()?;
            let rules = match &rules {
                Some(path) => Rules::from_file(path)?,
                None => Rules::default(),
            };
            check(&lake, &target, &interval, &rules).await?;
        }
        Command::Maintain { warehouse } => {
            let target = warehouse.target()?;
            let client = target.connect().await?;
            client
                .batch_execute("VACUUM (ANALYZE)")
                .await
                .with_context(|| format!("VACUUM (ANALYZE) on {target}"))?;
            println!("maintain {target}: VACUUM (ANALYZE) done");
        }
    }
    Ok(())
}

async fn check(
    lake: &lake::storage::Lake,
    target: &WarehouseTarget,
    interval: &Interval,
    rules: &Rules,
) -> anyhow::Result<()> {
    let report = quality::check(lake, target, interval, rules)
        .await
        .with_context(|| format!("checking {interval} in {target}"))?;
    for warning in report.warnings() {
        tracing::warn!("{}", warning.message);
    }
    let failures: Vec<_> = report.failures().collect();
    for failure in &failures {
        tracing::error!("{}", failure.message);
    }
    println!(
        "check {interval}: {} results, {} warnings, {} failures",
        report.results.len(),
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

fn main() -> ExitCode {
    apps::cli::init_tracing();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
