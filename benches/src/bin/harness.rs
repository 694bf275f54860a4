//! `harness`: end-to-end throughput and latency of streamlib on a real Kafka broker.
//!
//! For each workload (`ceiling`: raw rdkafka consume → produce; `passthrough`: JSON filter +
//! map; `hopping`: 1 h / 5 min windowed aggregate on RocksDB) and each guarantee (`alos`,
//! `eos`) it runs
//! - a **throughput** run over `--records` pre-produced events, and
//! - a **live** run where `--live-records` events are produced at `--live-rate` records/s while
//!   the system runs, measuring end-to-end latency (output consumed − input produced).
//!
//! It prints a Markdown table and writes JSON to `--out`. What exactly is measured:
//! `benches/HARNESS.md`.
//!
//! ```text
//! harness --bootstrap 127.0.0.1:9092 --records 100000 --partitions 6 --keys 10000
//! ```

#[path = "harness/model.rs"]
mod model;
#[path = "harness/report.rs"]
mod report;
#[path = "harness/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use serde_json::{json, Value};

use benches::data::{self, PriceEvent};
use benches::{kafka, Guarantee};
use model::{Mode, Workload};
use report::RunResult;
use run::{Plan, Settings};

/// End-to-end throughput and latency harness for streamlib on a real Kafka broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Input records of each throughput run.
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Partitions of input and output topics.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Distinct keys (coins).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Workloads to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ceiling,passthrough,hopping"
    )]
    workloads: Vec<Workload>,
    /// Processing guarantees to run each workload under, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "alos,eos")]
    guarantees: Vec<Guarantee>,
    /// Input records of each live (latency) run; 0 skips the live runs.
    #[arg(long, default_value_t = 20_000)]
    live_records: u64,
    /// Produce rate of the live runs, records/s.
    #[arg(long, default_value_t = 5_000)]
    live_rate: u64,
    /// Live runs: seconds at the start whose inputs' latencies are reported apart as warm-up
    /// (group join, first transaction, first fetches), not in p50/p99.
    #[arg(long, default_value_t = 1.0)]
    live_warmup_secs: f64,
    /// Seconds the output must stay unchanged, after all inputs were consumed, before a run
    /// that has not reached its expected output count ends.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Longest one run may take, seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Keep the topics the harness creates (they are deleted by default).
    #[arg(long)]
    keep_topics: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "benches/results/e2e.json")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let brokers = kafka::check_broker(&cli.bootstrap)?;
    let load_before = load_average();
    eprintln!("broker(s) at {}: {brokers}", cli.bootstrap);
    let settings = Settings {
        bootstrap: cli.bootstrap.clone(),
        partitions: cli.partitions,
        settle: Duration::from_secs(cli.settle_secs),
        timeout: Duration::from_secs(cli.timeout_secs),
        keep_topics: cli.keep_topics,
        warmup: Duration::from_secs_f64(cli.live_warmup_secs.max(0.0)),
    };
    let (mut results, produce_s) = throughput_runs(&cli, &settings)?;
    if cli.live_records > 0 {
        results.extend(live_runs(&cli, &settings)?);
    }
    println!("{}", report::markdown(&results));
    let mut setup = setup(&cli, produce_s);
    setup["loadavg_before"] = json!(load_before);
    setup["loadavg_after"] = json!(load_average());
    write_json(&cli.out, &report::document(setup, &results))?;
    eprintln!("wrote {}", cli.out.display());
    Ok(())
}

/// Pre-produces `--records` events into one fresh input topic and runs every workload ×
/// guarantee over it; returns the results and how long pre-producing took (s).
fn throughput_runs(cli: &Cli, settings: &Settings) -> Result<(Vec<RunResult>, f64)> {
    let input = streamlib::testing::unique_topic("harness-in");
    kafka::create_topics(&settings.bootstrap, &[&input], settings.partitions)?;
    let events = data::generate(cli.records, cli.keys, kafka::now_ms());
    eprintln!("producing {} records to {input}", events.len());
    let produce = data::preproduce(&settings.bootstrap, &input, &events)?;
    eprintln!(
        "  {:.1} s ({:.0} records/s)",
        produce.as_secs_f64(),
        events.len() as f64 / produce.as_secs_f64()
    );
    let mut results = Vec::new();
    for (workload, guarantee) in combinations(cli) {
        results.push(run_logged(
            settings,
            &Plan {
                workload,
                guarantee,
                mode: Mode::Throughput,
                input: &input,
                events: &events,
            },
        ));
    }
    cleanup(settings, &input);
    Ok((results, produce.as_secs_f64()))
}

/// Runs every workload × guarantee live, each on a fresh (empty) input topic fed at
/// `--live-rate` while it runs.
fn live_runs(cli: &Cli, settings: &Settings) -> Result<Vec<RunResult>> {
    let mut results = Vec::new();
    for (workload, guarantee) in combinations(cli) {
        let input = streamlib::testing::unique_topic("harness-live-in");
        kafka::create_topics(&settings.bootstrap, &[&input], settings.partitions)?;
        let events: Vec<PriceEvent> = data::generate(cli.live_records, cli.keys, kafka::now_ms());
        results.push(run_logged(
            settings,
            &Plan {
                workload,
                guarantee,
                mode: Mode::Live {
                    rate: cli.live_rate,
                },
                input: &input,
                events: &events,
            },
        ));
        cleanup(settings, &input);
    }
    Ok(results)
}

/// Every selected (workload, guarantee) pair, workload-major.
fn combinations(cli: &Cli) -> Vec<(Workload, Guarantee)> {
    cli.workloads
        .iter()
        .flat_map(|w| cli.guarantees.iter().map(move |g| (*w, *g)))
        .collect()
}

/// Runs `plan`, logging progress; a failed run becomes a `failed` row instead of ending the
/// harness.
fn run_logged(settings: &Settings, plan: &Plan<'_>) -> RunResult {
    eprintln!(
        "running {} / {} / {} ({} records)",
        plan.workload,
        plan.guarantee,
        plan.mode.name(),
        plan.events.len()
    );
    match run::run(settings, plan) {
        Ok(result) => {
            eprintln!(
                "  {:.1} s, {:.0} records/s, {} of {} outputs ({}), latency {:?}",
                result.seconds,
                result.records_per_s,
                result.outputs,
                result.expected_outputs,
                result.end,
                result.latency
            );
            result
        }
        Err(error) => {
            eprintln!("  failed: {error:#}");
            RunResult::failed(
                plan.workload,
                plan.guarantee,
                plan.mode,
                format!("{error:#}"),
            )
        }
    }
}

/// Deletes an input topic unless `--keep-topics`.
fn cleanup(settings: &Settings, topic: &str) {
    if !settings.keep_topics {
        if let Err(error) = kafka::delete_topics(&settings.bootstrap, &[topic]) {
            eprintln!("  cleanup: {error:#}");
        }
    }
}

/// The parameters and machine of this invocation, for the JSON document.
fn setup(cli: &Cli, produce_s: f64) -> Value {
    json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "bootstrap": cli.bootstrap,
        "records": cli.records,
        "partitions": cli.partitions,
        "keys": cli.keys,
        "live_records": cli.live_records,
        "live_rate": cli.live_rate,
        "live_warmup_secs": cli.live_warmup_secs,
        "settle_secs": cli.settle_secs,
        "preproduce_s": produce_s,
        "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "cpu_model": cpu_model(),
        "finished_at_ms": kafka::now_ms(),
    })
}

/// The CPU model from `/proc/cpuinfo`, when readable.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
}

/// `/proc/loadavg` (1, 5 and 15 min), when readable: other work on the machine skews results.
fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Writes `document` to `path`, creating its directory.
fn write_json(path: &Path, document: &Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(document).context("encoding the results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
