//! The batch half inside `pipeline`: the exactly-once Bronze sink on its own thread, and a worker
//! that runs Silver and Gold (and the warehouse load, when a PostgreSQL URL is given) every few
//! seconds over the data seen so far — the jobs Airflow runs per hour in production
//! (`orchestration/airflow/`), here so that a newcomer sees Delta tables appear.
//!
//! The worker is the scheduler, not a job: it picks the data interval (whole days from the first
//! event seen to the end of the hour of the last one) from the event times the view reports, and
//! each job run replaces exactly that interval, as under Airflow.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use lake::bronze::metrics::SinkMetrics;
use lake::bronze::sink::{BronzeSink, Route, SinkConfig};
use lake::gold::GoldConfig;
use lake::job::interval::Interval;
use lake::silver::SilverConfig;
use lake::storage::Lake;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::watch;
use warehouse::connection::WarehouseTarget;

use crate::topics::{Topics, DEFAULT_COINS};

/// Event times seen so far: `(first, last)`.
pub type EventSpan = Option<(DateTime<Utc>, DateTime<Utc>)>;

/// How the embedded batch half runs.
#[derive(Clone, Debug)]
pub struct BatchSettings {
    /// The lake (a folder, or `s3://bucket/prefix`).
    pub lake: Lake,
    /// Warehouse to load after each Gold run, if any (its password is never shown).
    pub warehouse: Option<WarehouseTarget>,
    /// Pause between two Silver/Gold runs.
    pub every: Duration,
    /// The sink's id: consumer group and `txn` app-id prefix in the Bronze tables' logs.
    pub sink_id: String,
}

/// What the view shows of the batch half.
#[derive(Clone, Debug, Default)]
pub struct BatchStatus {
    /// The interval of the last successful run.
    pub last_interval: Option<Interval>,
    /// Rows in `silver/prices` for it.
    pub silver_rows: u64,
    /// Rows written by the Gold models.
    pub gold_rows: usize,
    /// Whether the warehouse was loaded by the last run.
    pub loaded: bool,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// Runs completed.
    pub runs: u64,
}

/// How long [`EmbeddedBatch::finish`] waits for the sink to reach the end of its topics.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The running batch half.
pub struct EmbeddedBatch {
    lake: Lake,
    bootstrap: String,
    /// The topics the sink reads.
    topics: Vec<String>,
    sink: JoinHandle<anyhow::Result<()>>,
    /// Stops the sink; [`EmbeddedBatch::finish`] sends it once the sink has caught up.
    sink_stop: watch::Sender<bool>,
    worker: JoinHandle<()>,
    sink_metrics: Arc<SinkMetrics>,
    status: Arc<Mutex<BatchStatus>>,
    jobs: Jobs,
}

impl EmbeddedBatch {
    /// Starts the sink of `topics.raw`, `topics.dlq` and `topics.alerts` into Bronze and the
    /// Silver/Gold worker; the worker runs until `stop` turns true, the sink until
    /// [`EmbeddedBatch::finish`]. `span` carries the event times seen.
    pub fn start(
        bootstrap: &str,
        topics: &Topics,
        settings: &BatchSettings,
        stop: watch::Receiver<bool>,
        span: watch::Receiver<EventSpan>,
    ) -> anyhow::Result<Self> {
        let lake = settings.lake.clone();
        let routes = vec![
            route(&topics.raw, lake::silver::BRONZE_PRICES),
            route(&topics.dlq, lake::silver::BRONZE_DEAD_LETTERS),
            route(&topics.alerts, lake::silver::BRONZE_ALERTS),
        ];
        let topics = routes_topics(&routes);
        let mut config = SinkConfig::new(bootstrap, routes);
        config.sink_id = settings.sink_id.clone();
        config.flush_interval = Duration::from_secs(1);
        let sink = BronzeSink::new(lake.clone(), config).context("configuring the lake sink")?;
        let sink_metrics = sink.metrics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lake-io")
            .enable_all()
            .build()
            .context("starting the lake's runtime")?;
        let handle = runtime.handle().clone();
        let jobs = Jobs {
            lake,
            warehouse: settings.warehouse.clone(),
            runtime: Arc::new(runtime),
        };
        let (sink_stop, sink_stopped) = watch::channel(false);
        let sink = std::thread::Builder::new()
            .name("lake-sink".into())
            .spawn(move || sink.run(&handle, sink_stopped).map_err(anyhow::Error::from))?;
        let status = Arc::new(Mutex::new(BatchStatus::default()));
        let worker = {
            let (jobs, status, every) = (jobs.clone(), status.clone(), settings.every);
            std::thread::Builder::new()
                .name("lake-jobs".into())
                .spawn(move || jobs.run_every(every, stop, span, &status))?
        };
        Ok(Self {
            lake: settings.lake.clone(),
            bootstrap: bootstrap.to_string(),
            topics,
            sink,
            sink_stop,
            worker,
            sink_metrics,
            status,
            jobs,
        })
    }

    /// One line for the view: where the lake is, what reached Bronze, the last Silver/Gold run.
    pub fn status_line(&self) -> String {
        let bronze = self.sink_metrics.snapshot().records_written;
        let status = lock(&self.status).clone();
        let last = match (&status.last_interval, &status.last_error) {
            (_, Some(error)) => format!("last run failed: {error}"),
            (Some(interval), None) => format!(
                "silver {} rows · gold {} rows{} · [{}, {})",
                status.silver_rows,
                status.gold_rows,
                if status.loaded {
                    " · warehouse loaded"
                } else {
                    ""
                },
                interval.start().format("%m-%d %H:%M"),
                interval.end().format("%m-%d %H:%M"),
            ),
            (None, None) => "waiting for data".to_string(),
        };
        format!(
            "lake {} · bronze {bronze} records · {last}",
            self.lake.root()
        )
    }

    /// Call once the producer and the stream apps have stopped (and `stop` has turned true):
    /// waits until the sink has committed every record up to the end of its topics (at most
    /// [`CATCH_UP`]), stops it, then runs Silver and Gold (and the load) one last time over
    /// `span`, so the tables hold every event — the alerts of the apps' last commit included.
    pub fn finish(self, span: EventSpan) -> anyhow::Result<BatchStatus> {
        if let Err(error) = self.await_sink_caught_up() {
            tracing::warn!(error = %format!("{error:#}"), "the lake sink did not reach the end of its topics");
        }
        self.sink_stop.send_replace(true);
        let sink = self
            .sink
            .join()
            .map_err(|_| anyhow::anyhow!("the lake sink panicked"))?;
        sink.context("the lake sink")?;
        self.worker
            .join()
            .map_err(|_| anyhow::anyhow!("the lake jobs panicked"))?;
        if let Some(interval) = interval_of(span)? {
            self.jobs.run_once(&interval, &self.status)?;
        }
        Ok(lock(&self.status).clone())
    }
}

impl EmbeddedBatch {
    /// Waits until the sink's committed next offset reaches the end of every partition of its
    /// topics (or the sink stopped on its own, or [`CATCH_UP`] passed: an error).
    fn await_sink_caught_up(&self) -> anyhow::Result<()> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .context("creating a metadata client")?;
        let mut ends = Vec::new();
        for topic in &self.topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("reading the metadata of {topic}"))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (_, high) = consumer
                        .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                        .with_context(|| format!("reading the end of {topic}/{}", p.id()))?;
                    ends.push((format!("{topic}/{}", p.id()), high));
                }
            }
        }
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let progress = self.sink_metrics.snapshot().partitions;
            let behind = ends.iter().find(|(partition, end)| {
                progress.get(partition).map_or(0, |p| p.next_offset) < *end
            });
            let Some((partition, end)) = behind else {
                return Ok(());
            };
            if self.sink.is_finished() {
                anyhow::bail!("the sink stopped before reaching offset {end} of {partition}");
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "after {CATCH_UP:?} the sink has not reached offset {end} of {partition}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The distinct topics of `routes`.
fn routes_topics(routes: &[Route]) -> Vec<String> {
    let topics: BTreeSet<&str> = routes.iter().map(|r| r.topic.as_str()).collect();
    topics.into_iter().map(str::to_string).collect()
}

fn route(topic: &str, table: &str) -> Route {
    Route {
        topic: topic.to_string(),
        table: table.to_string(),
    }
}

fn lock(status: &Mutex<BatchStatus>) -> std::sync::MutexGuard<'_, BatchStatus> {
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whole days from the first event to the end of the last event's hour.
fn interval_of(span: EventSpan) -> anyhow::Result<Option<Interval>> {
    let Some((first, last)) = span else {
        return Ok(None);
    };
    let start = first.duration_trunc(TimeDelta::days(1))?;
    let end = last.duration_trunc(TimeDelta::hours(1))? + TimeDelta::hours(1);
    Ok(Some(Interval::new(start, end)?))
}

/// The Silver → Gold (→ warehouse) chain, on the lake's runtime.
#[derive(Clone)]
struct Jobs {
    lake: Lake,
    warehouse: Option<WarehouseTarget>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Jobs {
    fn run_every(
        &self,
        every: Duration,
        mut stop: watch::Receiver<bool>,
        span: watch::Receiver<EventSpan>,
        status: &Mutex<BatchStatus>,
    ) {
        loop {
            let stopped = self.runtime.block_on(async {
                tokio::time::timeout(every, stop.wait_for(|stopped| *stopped))
                    .await
                    .is_ok()
            });
            if stopped {
                return;
            }
            let result = interval_of(*span.borrow()).and_then(|interval| match interval {
                Some(interval) => self.run_once(&interval, status),
                None => Ok(()),
            });
            if let Err(error) = result {
                tracing::warn!(error = %format!("{error:#}"), "lake jobs failed; retrying at the next run");
                lock(status).last_error = Some(format!("{error:#}"));
            }
        }
    }

    fn run_once(&self, interval: &Interval, status: &Mutex<BatchStatus>) -> anyhow::Result<()> {
        let silver_config = SilverConfig {
            coins: Some(
                DEFAULT_COINS
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<BTreeSet<_>>(),
            ),
            ..SilverConfig::default()
        };
        let (silver, gold) = self.runtime.block_on(async {
            let silver = lake::silver::run(&self.lake, interval, &silver_config).await?;
            let gold = lake::gold::run(&self.lake, interval, &GoldConfig::default()).await?;
            anyhow::Ok((silver, gold))
        })?;
        let loaded = match &self.warehouse {
            Some(target) => {
                self.load(target, interval)?;
                true
            }
            None => false,
        };
        let mut status = lock(status);
        status.last_interval = Some(*interval);
        status.silver_rows = silver.prices.written;
        status.gold_rows = gold.models.iter().map(|m| m.rows).sum();
        status.loaded = loaded;
        status.last_error = None;
        status.runs += 1;
        Ok(())
    }

    fn load(&self, target: &WarehouseTarget, interval: &Interval) -> anyhow::Result<()> {
        self.runtime
            .block_on(warehouse::load::load(&self.lake, target, *interval))
            .with_context(|| format!("loading {interval} into {target}"))?;
        Ok(())
    }
}
