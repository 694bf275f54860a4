//! `lake-sink`: appends every record of the platform's topics, as received, to Bronze Delta
//! tables, exactly once (the progress lives in each table's log). Runs until SIGTERM/SIGINT,
//! then commits what it has buffered and exits 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::header;
use axum::routing::get;
use clap::Parser;
use lake::bronze::metrics::SinkMetrics;
use lake::bronze::sink::{parse_routes, BronzeSink, SinkConfig, DEFAULT_ROUTES};
use lake::storage::Lake;
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
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = apps::cli::DEFAULT_BOOTSTRAP)]
    bootstrap_servers: String,
    /// `topic=table` pairs, comma-separated.
    #[arg(long, env = "LAKE_SINK_TOPICS", default_value = DEFAULT_ROUTES)]
    topics: String,
    /// Consumer group and prefix of the progress entries in the tables' logs.
    #[arg(long, env = "LAKE_SINK_ID", default_value = "lake-sink")]
    sink_id: String,
    /// Commit when this many records are buffered.
    #[arg(long, env = "LAKE_SINK_FLUSH_RECORDS", default_value_t = 10_000)]
    flush_records: usize,
    /// Commit when the oldest buffered record has waited this long (milliseconds).
    #[arg(long, env = "LAKE_SINK_FLUSH_INTERVAL_MS", default_value_t = 5_000)]
    flush_interval_ms: u64,
    /// Stable identity of this instance (static group membership: a restart keeps its partitions).
    #[arg(long, env = "INSTANCE_ID")]
    instance_id: Option<String>,
    /// librdkafka property, `name=value`; repeatable (SASL/SSL, timeouts, …).
    #[arg(short = 'X', long = "kafka-property", value_name = "NAME=VALUE", value_parser = apps::cli::parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Serve the sink's counters as JSON on `GET /metrics` at this address (e.g. 127.0.0.1:9465).
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
    let mut config = SinkConfig::new(&args.bootstrap_servers, parse_routes(&args.topics)?);
    config.sink_id = args.sink_id;
    config.flush_records = args.flush_records;
    config.flush_interval = Duration::from_millis(args.flush_interval_ms);
    config.instance_id = args.instance_id;
    config.client_properties = args.kafka_properties.into_iter().collect();
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
    if let Some(addr) = args.metrics_addr {
        let bound = runtime.block_on(serve_metrics(addr, sink.metrics()))?;
        tracing::info!(%bound, "serving metrics on /metrics");
    }
    sink.run(runtime.handle(), stopped)?;
    Ok(())
}

/// Serves the counters as JSON until the process ends; returns the bound address.
async fn serve_metrics(addr: SocketAddr, metrics: Arc<SinkMetrics>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the metrics address")?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                let body = serde_json::to_string(&metrics.snapshot()).unwrap_or_default();
                ([(header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}
