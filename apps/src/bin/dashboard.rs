//! `dashboard`: the live dashboard against the apps of a cluster — freshness, candles with
//! volatility and alerts, returns, correlation, the alert feed and pipeline health, read from
//! the metrics and alerts apps' interactive queries (`--application-server`) and their
//! Prometheus endpoints. `pipeline` serves the same page by itself.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Context;
use apps::cli;
use apps::dashboard::health::HealthSource;
use apps::dashboard::server::{serve, Sources};
use apps::dashboard::sources::QuerySource;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Serves the live dashboard of a running platform.
#[derive(Parser, Debug)]
#[command(name = "dashboard", version, args_override_self = true)]
struct Args {
    /// Address to serve the page at.
    #[arg(long, env = "DASHBOARD_ADDR", default_value = "127.0.0.1:8787")]
    listen: String,
    /// Interactive queries of the metrics app: any instance's `--application-server`, as a URL
    /// (http://host:port).
    #[arg(long, env = "METRICS_QUERIES_URL")]
    metrics_queries: reqwest::Url,
    /// Interactive queries of the alerts app, likewise.
    #[arg(long, env = "ALERTS_QUERIES_URL")]
    alerts_queries: reqwest::Url,
    /// The apps' Prometheus endpoints (http://host:port/metrics, comma-separated) to read
    /// pipeline health from.
    #[arg(long, env = "METRICS_URLS", value_delimiter = ',')]
    scrape: Vec<reqwest::Url>,
    /// Milliseconds between two snapshots pushed to the page.
    #[arg(long, env = "REFRESH_MS", default_value_t = 1000)]
    refresh_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args: Args = cli::parse_args();
    cli::init_tracing();
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("binding the dashboard to {}", args.listen))?;
    println!("dashboard: http://{}/", listener.local_addr()?);
    let sources = Sources {
        queries: QuerySource::new(args.metrics_queries, args.alerts_queries)?,
        health: HealthSource::Scrape(args.scrape),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(async move {
            let (stop, stopped) = watch::channel(false);
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                stop.send_replace(true);
            });
            serve(
                listener,
                sources,
                Duration::from_millis(args.refresh_ms.max(100)),
                stopped,
            )
            .await
        })
}
