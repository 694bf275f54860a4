//! `warehouse`: the PostgreSQL star schema — `migrate` applies its migrations, `load` copies one
//! data interval of the Silver/Gold Delta tables into it, idempotently.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use warehouse::connection::WarehouseTarget;
use warehouse::interval::Interval;

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
        /// The lake root: a folder or s3://bucket/prefix (S3 settings from AWS_*).
        #[arg(long, env = "LAKE_URL", default_value = "./lake")]
        lake: String,
        /// Start of the data interval (RFC 3339, inclusive).
        #[arg(long)]
        start: String,
        /// End of the data interval (RFC 3339, exclusive).
        #[arg(long)]
        end: String,
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
            lake,
            start,
            end,
        } => {
            let target = warehouse.target()?;
            let interval = Interval::parse(&start, &end)?;
            let lake = lake::storage::Lake::parse(&lake)?;
            tracing::info!(%target, lake = %lake.root(), %interval, "loading");
            let report = warehouse::load::load(&lake, &target, interval)
                .await
                .with_context(|| format!("loading {interval} into {target}"))?;
            print!("{report}");
        }
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
