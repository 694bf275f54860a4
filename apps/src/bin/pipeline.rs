//! `pipeline`: the whole platform in one process — producer (synthetic by default, or replay
//! or live), validator, dedup, metrics and alerts — with a live terminal view and a live web
//! dashboard at a printed address. Without `--bootstrap-servers` it runs on librdkafka's
//! in-process mock cluster: nothing to install.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use apps::alerts::RulesConfig;
use apps::batch::{BatchSettings, EmbeddedBatch, EventSpan};
use apps::cli::{self, StreamOptions, ValidatorOptions};
use apps::dashboard::{self, health::HealthSource, server::Sources, sources::QuerySource};
use apps::pipeline::{AppsSettings, Cluster, StreamApps};
use apps::producer::args::{ModeName, SourceArgs, SourceDefaults};
use apps::producer::metrics::ProducerMetrics;
use apps::producer::sink::{EventSink, KafkaSink};
use apps::serving::Server;
use apps::topics::Topics;
use apps::view::Dashboard;
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Runs the producer and every stream app in one process and shows prices, returns,
/// volatility and alerts as they flow. Without --bootstrap-servers (and KAFKA_BOOTSTRAP) it
/// starts an in-process Kafka-protocol broker, so it needs nothing installed.
#[derive(Parser, Debug)]
#[command(name = "pipeline", args_override_self = true)]
struct Args {
    /// Stream-app options (Kafka, guarantee, state dir, client properties, topic prefix, …).
    #[command(flatten)]
    stream: StreamOptions,
    /// Where events come from.
    #[command(flatten)]
    source: SourceArgs,
    /// The validator's contract check.
    #[command(flatten)]
    validator: ValidatorOptions,
    /// Partitions of the platform topics the pipeline creates.
    #[arg(long, env = "PARTITIONS", default_value_t = 3)]
    partitions: i32,
    /// Create the platform topics keeping every record (`retention.ms=-1`), for replays and
    /// backfills of history older than their retention: Kafka deletes by record timestamp (the
    /// event time), so it would drop such records at its next retention check. Existing topics
    /// are left as they are.
    #[arg(long, env = "KEEP_RECORDS")]
    keep_records: bool,
    /// How long dedup remembers a key, in hours.
    #[arg(long, env = "DEDUP_HORIZON_HOURS", default_value_t = apps::dedup::DEFAULT_HORIZON.as_secs() / 3600)]
    dedup_horizon_hours: u64,
    /// Alert rules file (see docs/METRICS.md).
    #[arg(long, env = "ALERT_RULES")]
    rules: Option<PathBuf>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, env = "DURATION_SECS")]
    duration_secs: Option<u64>,
    /// Root of the lake the pipeline writes Bronze, Silver and Gold Delta tables to: a folder or
    /// s3://bucket/prefix (AWS_* settings).
    #[arg(long, env = "LAKE_URL", default_value = "lake")]
    lake: String,
    /// Run without the lake (no Bronze sink, no Silver/Gold jobs).
    #[arg(long, env = "NO_LAKE")]
    no_lake: bool,
    /// Seconds between two in-process Silver/Gold runs over the data seen so far.
    #[arg(long, env = "BATCH_EVERY_SECS", default_value_t = 10)]
    batch_every_secs: u64,
    /// PostgreSQL warehouse loaded after each Gold run (postgres://…; or the PG* environment with
    /// WAREHOUSE_URL unset means no warehouse). The password is never logged.
    #[arg(long, env = "WAREHOUSE_URL", hide_env_values = true)]
    warehouse_url: Option<String>,
    /// Address of the live dashboard (a web page fed by interactive queries); when it is taken,
    /// a free port of 127.0.0.1 is used. The address is printed.
    #[arg(long, env = "DASHBOARD_ADDR", default_value = "127.0.0.1:8787")]
    dashboard_addr: String,
    /// Run without the live dashboard.
    #[arg(long, env = "NO_DASHBOARD")]
    no_dashboard: bool,
    /// Print log lines instead of the refreshing view.
    #[arg(long, env = "NO_VIEW")]
    no_view: bool,
    /// Stop once the producer has finished (a bounded run) and every event it produced has
    /// reached the view: as a valid, deduplicated event with its four metric updates, or as a
    /// dead letter or a duplicate.
    #[arg(long, env = "UNTIL_DRAINED")]
    until_drained: bool,
}

/// Synthetic by default, one simulated week replayed at 600× (two polls a second) so metrics
/// and alerts show within seconds; then live synthetic ticks every 5 minutes.
const DEFAULTS: SourceDefaults = SourceDefaults {
    mode: ModeName::Synthetic,
    speedup: 600.0,
    history_ticks: 2016,
};

fn main() -> anyhow::Result<()> {
    let args: Args = cli::parse_args();
    let log_file = if args.no_view {
        cli::init_tracing();
        None
    } else {
        Some(log_to_file(&args.stream.state_dir)?)
    };
    let cluster = Cluster::connect_or_embed(args.stream.kafka.bootstrap_servers.as_deref())?;
    if cluster.is_embedded() {
        tracing::info!(bootstrap = %cluster.bootstrap, "started the in-process Kafka cluster");
    }
    let rules = match &args.rules {
        Some(path) => RulesConfig::from_file(path)?,
        None => RulesConfig::default(),
    };
    let producer_metrics = Arc::new(ProducerMetrics::default());
    let mut stream = args.stream.clone();
    // The in-process cluster starts empty: local state from an earlier run would be ahead of
    // its changelogs, so each embedded run gets a fresh state folder, removed at the end.
    let embedded_state = cluster.is_embedded().then(|| {
        stream
            .state_dir
            .join(format!("embedded-{}", std::process::id()))
    });
    if let Some(dir) = &embedded_state {
        let _ = std::fs::remove_dir_all(dir);
        stream.state_dir = dir.clone();
    }
    let settings = AppsSettings {
        stream,
        check: args.validator.check_config(),
        dedup_horizon: Duration::from_secs(args.dedup_horizon_hours * 3600),
        rules,
        producer_metrics: Some(producer_metrics.clone()),
        keep_records: args.keep_records,
    };
    let apps = StreamApps::start(&cluster, &settings, args.partitions)?;
    let dashboard = if args.no_dashboard {
        None
    } else {
        Some(start_dashboard(&args.dashboard_addr, &apps)?)
    };
    let dashboard_url = dashboard
        .as_ref()
        .map(|server| format!("http://{}/", server.addr()));
    for app in apps::pipeline::QUERYABLE_APPS {
        if let Some(url) = apps.query_url(app) {
            println!("interactive queries of {app}: {url}");
        }
    }
    if let Some(url) = &dashboard_url {
        println!("dashboard: {url}");
        tracing::info!(%url, "serving the live dashboard");
    }
    let topics = Topics::prefixed(&args.stream.topic_prefix);
    // `true` stops everything: sent by SIGINT/SIGTERM or when the view loop ends.
    let stop = Arc::new(watch::channel(false).0);
    stop_on_signals(stop.clone())?;
    let (span_tx, span_rx) = watch::channel(EventSpan::None);
    let batch = if args.no_lake {
        None
    } else {
        // Offsets of an in-process cluster start at 0 on every run: a sink id of its own keeps
        // this run's positions apart from an earlier run's in the same tables.
        let sink_id = if cluster.is_embedded() {
            format!("pipeline-{}", std::process::id())
        } else {
            "pipeline-lake-sink".to_string()
        };
        let warehouse = args
            .warehouse_url
            .as_deref()
            .map(warehouse::connection::WarehouseTarget::from_url)
            .transpose()
            .context("the warehouse URL")?;
        let settings = BatchSettings {
            lake: lake::storage::Lake::parse(&args.lake).context("the lake URL")?,
            warehouse,
            every: Duration::from_secs(args.batch_every_secs.max(1)),
            sink_id,
        };
        Some(EmbeddedBatch::start(
            &cluster.bootstrap,
            &topics,
            &settings,
            stop.subscribe(),
            span_rx,
        )?)
    };
    let produced = Arc::new(OnceLock::new());
    let producer = spawn_producer(
        &args,
        &cluster,
        &topics,
        (stop.subscribe(), produced.clone()),
        producer_metrics,
    )?;
    let result = watch(
        &args,
        &cluster,
        &topics,
        &apps,
        (&stop, &span_tx),
        &produced,
        (
            log_file.as_deref(),
            batch.as_ref(),
            dashboard_url.as_deref(),
        ),
    );
    stop.send_replace(true);
    let dashboard = dashboard.map_or(Ok(()), |server| server.stop());
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the producer panicked"))?;
    // The apps commit their last transactions before the sink reads to the end of its topics,
    // so Bronze gets the last alerts too.
    let counters = apps.counters.clone();
    let closed = apps.close();
    let batch = batch.map(|batch| batch.finish(*span_tx.borrow()));
    if let Some(dir) = &embedded_state {
        if let Err(error) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), %error, "could not remove the embedded run's state");
        }
    }
    match &produced {
        Ok(n) => println!(
            "pipeline stopped; the producer produced {n} events; the apps raised {} alerts",
            counters.total("alerts_raised_total")
        ),
        Err(error) => println!("pipeline stopped; the producer failed: {error:#}"),
    }
    let batch = match batch {
        Some(Ok(status)) => {
            println!(
                "lake {}: {} Silver/Gold runs; silver/prices {} rows, Gold {} rows{}",
                args.lake,
                status.runs,
                status.silver_rows,
                status.gold_rows,
                if status.loaded {
                    "; warehouse loaded"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Some(Err(error)) => Err(error),
        None => Ok(()),
    };
    result
        .and(dashboard)
        .and(closed)
        .and(produced.map(|_| ()))
        .and(batch)
}

/// Serves the live dashboard at `addr` (or, when that is taken, at a free loopback port) from
/// the apps' interactive queries and the process's metrics registry.
fn start_dashboard(addr: &str, apps: &StreamApps) -> anyhow::Result<Server> {
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(addr, %error, "the dashboard's address is taken; using a free port");
            TcpListener::bind("127.0.0.1:0").context("binding the dashboard")?
        }
    };
    let url = |app: &str| {
        apps.query_url(app)
            .with_context(|| format!("the {app} app serves no interactive queries"))
    };
    let sources = Sources {
        queries: QuerySource::new(url("metrics")?, url("alerts")?)?,
        health: HealthSource::Registry(apps.counters.registry().clone()),
    };
    dashboard::server::start(listener, sources, Duration::from_secs(1))
}

/// Logs go to `<state dir>/pipeline.log` while the view owns the terminal.
fn log_to_file(state_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join("pipeline.log");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Arc::new(file))
        .init();
    Ok(path)
}

/// Sets `stop` on SIGINT or SIGTERM, from a small thread of its own.
fn stop_on_signals(stop: Arc<watch::Sender<bool>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Listen before returning, so no signal can arrive unheard.
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        stop.send_replace(true);
    });
    Ok(())
}

/// Runs the producer on its own thread and runtime until its mode ends or `stop` turns true;
/// returns how many events it produced, also set in `produced` when it finishes.
fn spawn_producer(
    args: &Args,
    cluster: &Cluster,
    topics: &Topics,
    (stop, produced): (watch::Receiver<bool>, Arc<OnceLock<u64>>),
    metrics: Arc<ProducerMetrics>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<u64>>> {
    let config = args.source.producer_config(&DEFAULTS)?;
    let properties: BTreeMap<String, String> =
        args.stream.kafka.kafka_properties.iter().cloned().collect();
    let sink = KafkaSink::new(&cluster.bootstrap, topics, &properties)?;
    Ok(std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let result = apps::producer::run(config, &sink, metrics, stop).await;
            sink.flush().await?;
            let stats = result?;
            tracing::info!(?stats, "producer finished");
            let _ = produced.set(stats.produced);
            Ok(stats.produced)
        })
    }))
}

/// Reads dedup, metrics and alerts and refreshes the view once a second, until `stop`, the
/// duration, or an app stops on its own.
fn watch(
    args: &Args,
    cluster: &Cluster,
    topics: &Topics,
    apps: &StreamApps,
    (stop, span): (&watch::Sender<bool>, &watch::Sender<EventSpan>),
    produced: &OnceLock<u64>,
    (log_file, batch, dashboard_url): (
        Option<&std::path::Path>,
        Option<&EmbeddedBatch>,
        Option<&str>,
    ),
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("group.id", "crypto-pipeline-view")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("creating the view's consumer")?;
    let mut assignment = TopicPartitionList::new();
    for topic in [&topics.dedup, &topics.metrics, &topics.alerts] {
        for partition in 0..args.partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let deadline = args.duration_secs.map(|s| started + Duration::from_secs(s));
    let mut dashboard = Dashboard::default();
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    while !*stop.borrow() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if args.until_drained && drained(&dashboard, topics, apps, produced.get().copied()) {
            break;
        }
        if let Some(name) = apps.stopped() {
            anyhow::bail!("the {name} app stopped; see the log");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => dashboard.apply(
                topics,
                message.topic(),
                message.payload().unwrap_or_default(),
            ),
            Some(Err(error)) => tracing::warn!(%error, "view consumer"),
            None => {}
        }
        span.send_if_modified(|span| {
            let changed = *span != dashboard.event_span;
            *span = dashboard.event_span;
            changed
        });
        if !args.no_view && last_draw.elapsed() >= Duration::from_secs(1) {
            let mut screen = format!(
                "\x1b[2J\x1b[Hcrypto pipeline — {} — Ctrl-C to stop\n\n",
                if cluster.is_embedded() {
                    "in-process Kafka".to_string()
                } else {
                    cluster.bootstrap.clone()
                }
            );
            if let Some(url) = dashboard_url {
                screen.push_str(&format!("live dashboard: {url}\n\n"));
            }
            screen.push_str(&dashboard.render(topics));
            screen.push_str(&format!(
                "\ndead-lettered {} · duplicates {} · alerts {}",
                apps.counters.total("validator_dead_lettered_total"),
                apps.counters.total("dedup_duplicates_total"),
                apps.counters.total("alerts_raised_total"),
            ));
            if let Some(log) = log_file {
                screen.push_str(&format!(" · log {}", log.display()));
            }
            if let Some(batch) = batch {
                screen.push_str(&format!("\n{}", batch.status_line()));
            }
            println!("{screen}");
            std::io::stdout().flush()?;
            last_draw = Instant::now();
        }
    }
    if args.no_view {
        println!("{}", dashboard.render(topics));
    }
    Ok(())
}

/// Whether all `produced` events (`None` while the producer runs) reached the view.
fn drained(
    dashboard: &Dashboard,
    topics: &Topics,
    apps: &StreamApps,
    produced: Option<u64>,
) -> bool {
    let Some(produced) = produced else {
        return false;
    };
    let seen = |topic: &str| dashboard.counts.get(topic).copied().unwrap_or_default();
    let accounted = seen(&topics.dedup)
        + apps.counters.total("validator_dead_lettered_total")
        + apps.counters.total("dedup_duplicates_total");
    accounted >= produced && dashboard.metric_updates >= 4 * seen(&topics.dedup)
}
