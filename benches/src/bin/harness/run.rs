//! One measured run: fresh output topic, application id and state directory; start the system
//! under test; wait until it is done (see [`wait_until_done`]); stop it; summarize.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use streamlib::runtime::{KafkaStreams, StreamsConfig};

use benches::ceiling::{Ceiling, CommitStats};
use benches::data::{self, PriceEvent};
use benches::sink::{Latency, LatencyProbe, OutputCounter};
use benches::wait::{self, Limits, Observed};
use benches::{kafka, topologies, Guarantee};

use crate::model::{Mode, Workload};
use crate::report::RunResult;

/// Settings common to every run.
pub struct Settings {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Partitions of input and output topics.
    pub partitions: i32,
    /// How long the output must stay unchanged, once every input was consumed, before a run
    /// that has not reached its expected output count is declared finished.
    pub settle: Duration,
    /// Longest a run may take.
    pub timeout: Duration,
    /// Keep the topics a run created.
    pub keep_topics: bool,
    /// Live runs: outputs of inputs produced in this first stretch are reported apart
    /// (warm-up), not in the steady-state percentiles.
    pub warmup: Duration,
}

/// What a run reads and how.
pub struct Plan<'a> {
    /// System under test.
    pub workload: Workload,
    /// Processing guarantee.
    pub guarantee: Guarantee,
    /// Throughput (pre-produced input) or live (paced input).
    pub mode: Mode,
    /// Input topic (must exist; pre-filled in throughput mode, empty in live mode).
    pub input: &'a str,
    /// The input events (already in `input` in throughput mode).
    pub events: &'a [PriceEvent],
}

impl Plan<'_> {
    /// Output records the workload emits for the plan's events.
    fn expected_outputs(&self) -> u64 {
        match self.workload {
            Workload::Ceiling | Workload::Passthrough => self.events.len() as u64,
            Workload::Hopping => topologies::expected_hopping_outputs(self.events),
        }
    }

    /// Where the workload's outputs carry `sent_ms` (only read in live runs).
    fn probe(&self) -> LatencyProbe {
        match (self.mode, self.workload) {
            (Mode::Throughput, _) => LatencyProbe::Off,
            (Mode::Live { .. }, Workload::Hopping) => LatencyProbe::StatsTail,
            (Mode::Live { .. }, _) => LatencyProbe::JsonSentMs,
        }
    }
}

/// The running system under test.
enum Sut {
    /// A streamlib application.
    Streams(Box<KafkaStreams>),
    /// The raw rdkafka pump.
    Ceiling(Ceiling),
}

impl Observed for Sut {
    fn consumed(&self) -> Option<u64> {
        Some(match self {
            Self::Streams(app) => app
                .metrics()
                .consumed
                .load(std::sync::atomic::Ordering::Relaxed),
            Self::Ceiling(ceiling) => ceiling.consumed(),
        })
    }

    fn is_running(&self) -> bool {
        match self {
            Self::Streams(app) => app.is_running(),
            Self::Ceiling(ceiling) => ceiling.is_running(),
        }
    }
}

impl Sut {
    /// Starts `plan`'s workload reading `plan.input` and writing `output`.
    fn start(
        settings: &Settings,
        plan: &Plan<'_>,
        app_id: &str,
        state_dir: PathBuf,
        output: &str,
    ) -> Result<Self> {
        let topology = match plan.workload {
            Workload::Ceiling => {
                return Ok(Self::Ceiling(Ceiling::start(
                    &settings.bootstrap,
                    app_id,
                    plan.input,
                    output,
                    settings.partitions,
                    plan.guarantee,
                    plan.guarantee.commit_interval(),
                )?))
            }
            Workload::Passthrough => topologies::passthrough(plan.input, output),
            Workload::Hopping => topologies::hopping(plan.input, output),
        };
        let mut config = StreamsConfig::new(app_id, &settings.bootstrap);
        config.state_dir = state_dir;
        config.processing_guarantee = plan.guarantee.streams();
        let mut app = Box::new(KafkaStreams::new(topology, config));
        app.start().context("starting the streams app")?;
        Ok(Self::Streams(app))
    }

    /// Whether every input partition is assigned (and, for streamlib, its task ready).
    fn ready(&self, partitions: i32) -> bool {
        match self {
            Self::Streams(app) => app.assigned_partitions().len() as i32 == partitions,
            Self::Ceiling(ceiling) => ceiling.assigned(),
        }
    }

    /// Commits, stops and returns the commit counters.
    fn stop(self) -> Result<CommitStats> {
        match self {
            Self::Streams(mut app) => {
                app.close().context("closing the streams app")?;
                let metrics = app.metrics();
                let load =
                    |x: &std::sync::atomic::AtomicU64| x.load(std::sync::atomic::Ordering::Relaxed);
                Ok(CommitStats {
                    commits: load(&metrics.commits),
                    commit_micros: load(&metrics.commit_micros),
                })
            }
            Self::Ceiling(ceiling) => ceiling.stop(),
        }
    }
}

/// Waits until `sut` owns every input partition.
fn wait_until_ready(settings: &Settings, sut: &Sut) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sut.ready(settings.partitions) {
        if !sut.is_running() {
            bail!("the system under test stopped while joining the group");
        }
        if Instant::now() >= deadline {
            bail!("the system under test did not get its partitions within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Topics a run creates, to delete afterwards.
fn run_topics(plan: &Plan<'_>, app_id: &str, output: &str) -> Vec<String> {
    let mut topics = vec![output.to_string()];
    if plan.workload == Workload::Hopping {
        topics.push(streamlib::topology::changelog_topic(
            app_id,
            topologies::STATS_STORE,
        ));
    }
    topics
}

/// Runs `plan` once and measures it.
///
/// Timing: `seconds` runs from the start of the system under test (throughput mode: this
/// includes creating internal topics, joining the group and restoring) or from the first
/// produced input (live mode) until the output counter read the last output record.
pub fn run(settings: &Settings, plan: &Plan<'_>) -> Result<RunResult> {
    let tag = format!("{}-{}-{}", plan.workload, plan.guarantee, plan.mode.name());
    let app_id = streamlib::testing::unique_topic(&format!("harness-{tag}"));
    let output = format!("{app_id}-out");
    let state_dir = std::env::temp_dir().join(&app_id);
    kafka::create_topics(&settings.bootstrap, &[&output], settings.partitions)?;
    let result = measure(settings, plan, &app_id, state_dir.clone(), &output);
    let _ = std::fs::remove_dir_all(&state_dir);
    if !settings.keep_topics {
        let topics = run_topics(plan, &app_id, &output);
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(error) = kafka::delete_topics(&settings.bootstrap, &refs) {
            eprintln!("  cleanup: {error:#}");
        }
    }
    result
}

/// Starts the counter and the system, feeds live inputs if needed, waits, stops, summarizes.
fn measure(
    settings: &Settings,
    plan: &Plan<'_>,
    app_id: &str,
    state_dir: PathBuf,
    output: &str,
) -> Result<RunResult> {
    let inputs = plan.events.len() as u64;
    let expected = plan.expected_outputs();
    let sink = OutputCounter::start(
        &settings.bootstrap,
        output,
        settings.partitions,
        plan.probe(),
    )?;
    let sut_started = Instant::now();
    let sut = Sut::start(settings, plan, app_id, state_dir, output)?;
    let (started, producer) = match plan.mode {
        Mode::Throughput => (sut_started, None),
        Mode::Live { rate } => {
            wait_until_ready(settings, &sut)?;
            let started = Instant::now();
            sink.set_warmup_until(kafka::now_ms() + settings.warmup.as_millis() as i64);
            let producer =
                data::spawn_paced(&settings.bootstrap, plan.input, plan.events.to_vec(), rate)?;
            (started, Some(producer))
        }
    };
    let limits = Limits {
        settle: settings.settle,
        timeout: settings.timeout,
    };
    let end = wait::until_done(limits, &sink, &sut, inputs, expected, started)?;
    let finished = sink.last_output().unwrap_or_else(Instant::now);
    let first_output = sink.first_output();
    let stats = sut.stop()?;
    if let Some(producer) = producer {
        producer
            .join()
            .map_err(|_| anyhow!("live producer panicked"))??;
    }
    let report = sink.finish()?;
    let seconds = finished.saturating_duration_since(started).as_secs_f64();
    Ok(RunResult {
        workload: plan.workload,
        guarantee: plan.guarantee,
        mode: plan.mode,
        records: inputs,
        expected_outputs: expected,
        outputs: report.count,
        seconds,
        records_per_s: if seconds > 0.0 {
            inputs as f64 / seconds
        } else {
            0.0
        },
        first_output_s: first_output.map(|t| t.saturating_duration_since(started).as_secs_f64()),
        latency: Latency::from_histogram(&report.latency.steady),
        warmup_latency: Latency::from_histogram(&report.latency.warmup),
        commits: stats.commits,
        commit_ms_total: stats.commit_micros as f64 / 1_000.0,
        end: end.name(),
        error: None,
    })
}
