//! `lake-sink`: appends every record of the platform's topics, as received, to Bronze Delta
//! tables, exactly once (the progress lives in each table's log). Runs until SIGTERM/SIGINT,
//! then commits what it has buffered and exits 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use lake::bronze::sink::{BronzeSink, SinkConfig};
use lake::storage::Lake;
use streamlib::metrics::MetricsRegistry;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Kafka topics → Bronze Delta tables (a local folder or s3://bucket/prefix), exactly once.
///
/// S3 settings come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
/// and AWS_ALLOW_HTTP; the secret is never logged.
#[derive(Parser, Debug)]
#[command(name = "lake-sink", version, args_override_self = true)]
struct Args {
    /// Root of the lake: a folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "LAKE_URL", default_value = "./lake")]
    lake: String,
    /// The topics, their tables, the sink's id and the Kafka connection.
    #[command(flatten)]
    source: apps::cli::LakeSinkOptions,
    /// Commit when this many records are buffered.
    #[arg(long, env = "LAKE_SINK_FLUSH_RECORDS", default_value_t = 10_000)]
    flush_records: usize,
    /// Commit when the oldest buffered record has waited this long (milliseconds).
    #[arg(long, env = "LAKE_SINK_FLUSH_INTERVAL_MS", default_value_t = 5_000)]
    flush_interval_ms: u64,
    /// Stable identity of this instance (static group membership: a restart keeps its partitions).
    #[arg(long, env = "INSTANCE_ID")]
    instance_id: Option<String>,
    /// Serve the sink's metrics (Prometheus text) on `GET /metrics` at this address (e.g.
    /// 127.0.0.1:9465).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

fn main() -> ExitCode {
    apps::cli::init_tracing();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("lake-sink failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let lake = Lake::parse(&args.lake)?;
    let mut config = SinkConfig::new(&args.source.bootstrap_servers, args.source.routes()?);
    config.sink_id = args.source.sink_id.clone();
    config.flush_records = args.flush_records;
    config.flush_interval = Duration::from_millis(args.flush_interval_ms);
    config.instance_id = args.instance_id;
    config.client_properties = args.source.client_properties();
    let sink = BronzeSink::new(lake, config)?;
    let (stop, stopped) = watch::channel(false);
    {
        let _entered = runtime.enter();
        // Listen before consuming anything, so no signal can arrive unheard.
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        runtime.spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(signal = name, "stopping after the last commit");
            stop.send_replace(true);
        });
    }
    // Metrics are served until the sink has made its last commit.
    let (finished, until_finished) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = args.metrics_addr {
        let registry = MetricsRegistry::default();
        registry.register_collector(sink.metrics());
        let (bound, _) =
            runtime.block_on(streamlib::metrics::serve(registry, addr, async move {
                let _ = until_finished.await;
            }))?;
        tracing::info!(%bound, "serving metrics on /metrics");
    }
    let result = sink.run(runtime.handle(), stopped);
    drop(finished);
    result?;
    Ok(())
}
