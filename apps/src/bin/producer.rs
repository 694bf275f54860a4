//! `producer`: CoinGecko `/coins/markets` (live), a recording (replay) or a seeded random walk
//! (synthetic) → contract v1.2 events on `crypto.prices.raw`, and each coin's reference row on
//! `crypto.coins` when it changes. See docs/PRODUCER.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use apps::cli::{self, KafkaOptions};
use apps::producer::args::{ModeName, SourceArgs, SourceDefaults};
use apps::producer::metrics::{self, ProducerMetrics};
use apps::producer::sink::{EventSink, KafkaSink};
use apps::producer::{self};
use apps::topics::{self, Topics};
use clap::Parser;
use tokio::signal::unix::{signal as unix_signal, SignalKind};
use tokio::sync::watch;

/// Produces crypto price events (contract v1.2) to Kafka, keyed by coin_id, and each coin's
/// reference row (contract coin_reference 1.0) when it changes.
///
/// The CoinGecko API key is read from the COINGECKO_API_KEY environment variable only; it is
/// sent as a header and never logged.
#[derive(Parser, Debug)]
#[command(name = "producer", version, args_override_self = true)]
struct Args {
    /// Topic to produce price events to.
    #[arg(long, env = "PRODUCER_TOPIC", default_value = topics::RAW)]
    topic: String,
    /// Topic to produce coin reference rows to (compacted; see the `topics` command).
    #[arg(long, env = "PRODUCER_COINS_TOPIC", default_value = topics::COINS)]
    coins_topic: String,
    /// Serve Prometheus metrics on `GET /metrics` at this address (e.g. 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaOptions,
    /// Where events come from.
    #[command(flatten)]
    source: SourceArgs,
}

/// The producer's defaults: poll CoinGecko live, replay in real time, no synthetic history.
const DEFAULTS: SourceDefaults = SourceDefaults {
    mode: ModeName::Live,
    speedup: 1.0,
    history_ticks: 0,
};

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
    let config = args.source.producer_config(&DEFAULTS)?;
    let properties: BTreeMap<String, String> =
        args.kafka.kafka_properties.iter().cloned().collect();
    let topics = Topics {
        raw: args.topic.clone(),
        coins: args.coins_topic.clone(),
        ..Topics::default()
    };
    let sink = KafkaSink::new(args.kafka.bootstrap(), &topics, &properties)?;
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
    tracing::info!(mode = ?args.source.mode.unwrap_or(DEFAULTS.mode), topic = %args.topic, coins_topic = %args.coins_topic, "producer starting");
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
