//! `peers`: streamlib side by side with Kafka Streams and Quix Streams on the same broker,
//! machine and data, in one run (`benches/PEERS.md`).
//!
//! `peers bench` pre-produces one input topic, then runs every system (each as its own process,
//! one processing thread) on every workload (stateless, hopping window, dedup) under
//! at-least-once and exactly-once; it measures records/s, CPU seconds, peak RSS and live
//! end-to-end latency, reads every output back and compares it with a reference model, and
//! writes JSON, a Markdown table with ratios to Kafka Streams, and an SVG chart. It exits
//! non-zero when any system's output is wrong or a run failed.
//!
//! `peers app` is the streamlib (or raw rdkafka ceiling) child process it starts.
//!
//! `peers failover` kills one of two instances holding a store and measures how soon the
//! survivor answers for the moved task, with and without a standby replica, on streamlib and on
//! Kafka Streams; `peers failover-app` is its streamlib instance.
//!
//! ```text
//! scripts/peers --records 300000           # builds everything, then runs `peers bench`
//! ```

#[path = "peers/app.rs"]
mod app;
#[path = "peers/failover.rs"]
mod failover;
#[path = "peers/process.rs"]
mod process;
#[path = "peers/report.rs"]
mod report;
#[path = "peers/run.rs"]
mod run;
#[path = "peers/system.rs"]
mod system;
#[path = "peers/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use benches::data::{self, Shape};
use benches::wait::Limits;
use benches::{kafka, Guarantee};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use report::Row;
use run::{Job, Settings};
use system::{Launchers, System};
use workload::Workload;

/// streamlib side by side with Kafka Streams and Quix Streams.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the comparison and write the results.
    Bench(Box<BenchArgs>),
    /// Run streamlib or the ceiling as a system under test (started by `bench`).
    App(Box<app::AppArgs>),
    /// Failover of a stateful task with and without a standby replica, streamlib and Kafka
    /// Streams side by side (PEERS.md "Failover").
    Failover(Box<failover::FailoverArgs>),
    /// The streamlib instance `peers failover` starts.
    FailoverApp(Box<benches::failover::Instance>),
}

/// What `peers bench` runs and where it writes.
#[derive(Args, Debug)]
struct BenchArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Input records of the throughput runs (duplicates and invalid events included).
    #[arg(long, default_value_t = 300_000)]
    records: u64,
    /// Partitions of input and output topics.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Distinct keys (coins).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Event time between consecutive distinct events, ms (100: each key every ~17 min, so a
    /// 1 h window holds several events per key).
    #[arg(long, default_value_t = 100)]
    event_step_ms: i64,
    /// Per mille of events sent twice in a row.
    #[arg(long, default_value_t = 50)]
    duplicates_per_mille: u64,
    /// Per mille of events with a null price.
    #[arg(long, default_value_t = 10)]
    invalid_per_mille: u64,
    /// Systems to run, comma-separated (the ceiling runs the copy workload only).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kafka-streams,quix,streamlib,ceiling"
    )]
    systems: Vec<System>,
    /// Workloads to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stateless,hopping,dedup"
    )]
    workloads: Vec<Workload>,
    /// Processing guarantees, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "alos,eos")]
    guarantees: Vec<Guarantee>,
    /// Commit interval of every system under at-least-once, ms (Kafka Streams' default).
    #[arg(long, default_value_t = 30_000)]
    alos_commit_ms: u64,
    /// Commit interval of every system under exactly-once, ms (Kafka Streams' default).
    #[arg(long, default_value_t = 100)]
    eos_commit_ms: u64,
    /// Records of each live (latency) run, after the warm-up records; 0 skips live runs.
    #[arg(long, default_value_t = 10_000)]
    live_records: u64,
    /// Produce rate of the live runs, records/s.
    #[arg(long, default_value_t = 1_000)]
    live_rate: u64,
    /// Stream threads of streamlib and of Kafka Streams (`num.stream.threads`); Quix Streams
    /// is single-threaded and always runs one.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Options for the Kafka Streams JVM.
    #[arg(long, default_value = "-Xms256m -Xmx1g", allow_hyphen_values = true)]
    jvm_opts: String,
    /// Seconds the output must stay unchanged, short of the expected count, before a run ends.
    #[arg(long, default_value_t = 20)]
    settle_secs: u64,
    /// Longest one run may take, seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout_secs: u64,
    /// Keep every run's topics, state and log (failed runs always keep state and log).
    #[arg(long)]
    keep: bool,
    /// Where the peer projects are (scripts set it: a build cache shared between clones may
    /// hold a binary built in another one).
    #[arg(long, env = "PEERS_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peers"))]
    peers_dir: PathBuf,
    /// Directory for the results.
    #[arg(long, default_value = "benches/results")]
    out_dir: PathBuf,
    /// File name (without extension) of the results; default `peers-<records>`.
    #[arg(long)]
    name: Option<String>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::App(args) => app::run(&args),
        Command::Bench(args) => bench(&args),
        Command::Failover(args) => failover::bench(&args),
        Command::FailoverApp(args) => failover::instance(&args),
    }
}

/// `peers bench`.
fn bench(cli: &BenchArgs) -> Result<()> {
    let brokers = kafka::check_broker(&cli.bootstrap)?;
    eprintln!("broker(s) at {}: {brokers}", cli.bootstrap);
    let load_before = load_average();
    let launchers = Launchers::prepare(&cli.systems, &cli.peers_dir, &cli.jvm_opts)?;
    let work_dir = std::env::temp_dir().join(streamlib::testing::unique_topic("peers-runs"));
    let settings = Settings {
        bootstrap: cli.bootstrap.clone(),
        partitions: cli.partitions,
        limits: Limits {
            settle: Duration::from_secs(cli.settle_secs),
            timeout: Duration::from_secs(cli.timeout_secs),
        },
        alos_commit_ms: cli.alos_commit_ms,
        eos_commit_ms: cli.eos_commit_ms,
        threads: cli.threads,
        keep: cli.keep,
        work_dir,
    };
    let shape = Shape {
        keys: cli.keys,
        step_ms: cli.event_step_ms,
        duplicates_per_mille: cli.duplicates_per_mille,
        invalid_per_mille: cli.invalid_per_mille,
    };
    let started = Instant::now();
    let jobs = jobs(cli);
    let (mut rows, produce_s) = throughput_runs(cli, &settings, &launchers, shape, &jobs)?;
    if cli.live_records > 0 {
        live_runs(cli, &settings, &launchers, shape, &mut rows);
    }
    let _ = std::fs::remove_dir(&settings.work_dir);

    let name = cli
        .name
        .clone()
        .unwrap_or_else(|| format!("peers-{}", cli.records));
    let mut setup = setup(cli, &launchers, produce_s);
    setup["loadavg_before"] = json!(load_before);
    setup["loadavg_after"] = json!(load_average());
    setup["total_s"] = json!(started.elapsed().as_secs_f64());
    let table = report::markdown(&rows);
    println!("{table}");
    std::fs::create_dir_all(&cli.out_dir)
        .with_context(|| format!("creating {}", cli.out_dir.display()))?;
    write(
        &cli.out_dir.join(format!("{name}.json")),
        &(serde_json::to_string_pretty(&report::document(setup.clone(), &rows))? + "\n"),
    )?;
    write(
        &cli.out_dir.join(format!("{name}.md")),
        &format!("{}\n{table}", describe(&setup)),
    )?;
    let subtitle = format!(
        "{} input records, {} partitions, {} keys; {} stream thread(s) each; {}",
        cli.records,
        cli.partitions,
        cli.keys,
        cli.threads,
        setup["machine"]["summary"].as_str().unwrap_or_default()
    );
    write(
        &cli.out_dir.join(format!("{name}.svg")),
        &report::svg(
            &rows,
            "Throughput per system and workload (records/s)",
            &subtitle,
        ),
    )?;
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok())
        .map(|r| format!("{}/{}/{}", r.job.system, r.job.workload, r.job.guarantee))
        .collect();
    println!(
        "peers: {} passed, {} failed",
        rows.len() - bad.len(),
        bad.len()
    );
    if !bad.is_empty() {
        bail!("wrong output or failed run: {}", bad.join(", "));
    }
    Ok(())
}

/// Every (system, workload, guarantee) to run, workload-major; the ceiling copies, once per
/// guarantee.
fn jobs(cli: &BenchArgs) -> Vec<Job> {
    let mut jobs = Vec::new();
    let peers: Vec<System> = cli
        .systems
        .iter()
        .copied()
        .filter(|s| *s != System::Ceiling)
        .collect();
    for workload in cli.workloads.iter().filter(|w| **w != Workload::Copy) {
        for guarantee in &cli.guarantees {
            for system in &peers {
                jobs.push(Job {
                    system: *system,
                    workload: *workload,
                    guarantee: *guarantee,
                });
            }
        }
    }
    if cli.systems.contains(&System::Ceiling) {
        for guarantee in &cli.guarantees {
            jobs.push(Job {
                system: System::Ceiling,
                workload: Workload::Copy,
                guarantee: *guarantee,
            });
        }
    }
    jobs
}

/// Pre-produces the input and runs every job over it; returns the rows and how long
/// pre-producing took (s).
fn throughput_runs(
    cli: &BenchArgs,
    settings: &Settings,
    launchers: &Launchers,
    shape: Shape,
    jobs: &[Job],
) -> Result<(Vec<Row>, f64)> {
    let input = streamlib::testing::unique_topic("peers-in");
    kafka::create_topics(&settings.bootstrap, &[&input], settings.partitions)?;
    let events = data::generate_with(cli.records, shape, kafka::now_ms());
    eprintln!("producing {} records to {input}", events.len());
    let produce = data::preproduce(&settings.bootstrap, &input, &events)?;
    eprintln!("  {:.1} s", produce.as_secs_f64());
    let mut rows = Vec::new();
    for job in jobs {
        eprintln!(
            "throughput: {} / {} / {} ({} records)",
            job.system,
            job.workload,
            job.guarantee,
            events.len()
        );
        let result = run::throughput(settings, launchers, job, &input, &events);
        match &result {
            Ok(t) => eprintln!(
                "  {:.0} records/s, startup {:.1} s, CPU {:.1} s, peak RSS {:.0} MiB, output {}",
                t.records_per_s,
                t.startup_s,
                t.usage.cpu_s,
                t.usage.peak_rss_mib,
                t.check.summary()
            ),
            Err(error) => eprintln!("  failed: {error:#}"),
        }
        rows.push(Row {
            job: *job,
            throughput: result.map_err(|e| format!("{e:#}")),
            live: None,
        });
    }
    if !settings.keep {
        if let Err(error) = kafka::delete_topics(&settings.bootstrap, &[&input]) {
            eprintln!("  cleanup: {error:#}");
        }
    }
    Ok((rows, produce.as_secs_f64()))
}

/// Runs every row's job live, each on fresh topics.
fn live_runs(
    cli: &BenchArgs,
    settings: &Settings,
    launchers: &Launchers,
    shape: Shape,
    rows: &mut [Row],
) {
    // 20 records per partition: with murmur2 over 10 000 keys every partition gets some.
    let warmup = (settings.partitions.max(1) as usize) * 20;
    for row in rows {
        let job = row.job;
        eprintln!(
            "live: {} / {} / {} ({} records at {}/s)",
            job.system, job.workload, job.guarantee, cli.live_records, cli.live_rate
        );
        let events = data::generate_with(cli.live_records + warmup as u64, shape, kafka::now_ms());
        let result = run::live(settings, launchers, &job, &events, warmup, cli.live_rate);
        match &result {
            Ok(live) => eprintln!(
                "  latency {:?}, output {}",
                live.latency,
                live.check.summary()
            ),
            Err(error) => eprintln!("  failed: {error:#}"),
        }
        row.live = Some(result.map_err(|e| format!("{e:#}")));
    }
}

/// The parameters, versions and machine of this invocation.
fn setup(cli: &BenchArgs, launchers: &Launchers, produce_s: f64) -> Value {
    let versions: serde_json::Map<String, Value> = launchers
        .versions
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "bootstrap": cli.bootstrap,
        "broker": format!("Apache Kafka {} (scripts/kafka), single KRaft node on the same machine",
            std::env::var("KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".into())),
        "records": cli.records,
        "partitions": cli.partitions,
        "keys": cli.keys,
        "event_step_ms": cli.event_step_ms,
        "duplicates_per_mille": cli.duplicates_per_mille,
        "invalid_per_mille": cli.invalid_per_mille,
        "alos_commit_ms": cli.alos_commit_ms,
        "eos_commit_ms": cli.eos_commit_ms,
        "threads": cli.threads,
        "live_records": cli.live_records,
        "live_rate": cli.live_rate,
        "jvm_opts": cli.jvm_opts,
        "preproduce_s": produce_s,
        "versions": versions,
        "machine": machine(),
        "finished_at_ms": kafka::now_ms(),
    })
}

/// CPU model, cores, memory and kernel, from `/proc`.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpu_model": cpu,
        "cores": cores,
        "memory_gib": (mem_gib * 10.0).round() / 10.0,
        "kernel": kernel,
        "summary": format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM, Linux {kernel}"),
    })
}

/// The Markdown header of the results: what ran, on what, with which command.
fn describe(setup: &Value) -> String {
    let versions = setup["versions"]
        .as_object()
        .map(|v| {
            v.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "# Peer comparison: {records} records\n\n\
         - Command: `{command}` ({total:.0} s in all)\n\
         - Machine: {machine}; load average before {before}, after {after}\n\
         - Broker: {broker}\n\
         - Data: {records} records, {partitions} partitions, {keys} keys, event step {step} ms, \
           {dups}‰ duplicates, {invalid}‰ null prices\n\
         - Commit interval: {alos} ms at-least-once, {eos} ms exactly-once; live runs: \
           {live} records at {rate}/s\n\
         - Versions: {versions}\n\
         - Definitions: [`benches/PEERS.md`](../PEERS.md)\n",
        records = setup["records"],
        command = setup["command"].as_str().unwrap_or_default(),
        total = setup["total_s"].as_f64().unwrap_or_default(),
        machine = setup["machine"]["summary"].as_str().unwrap_or_default(),
        before = setup["loadavg_before"].as_str().unwrap_or_default(),
        after = setup["loadavg_after"].as_str().unwrap_or_default(),
        broker = setup["broker"].as_str().unwrap_or_default(),
        partitions = setup["partitions"],
        keys = setup["keys"],
        step = setup["event_step_ms"],
        dups = setup["duplicates_per_mille"],
        invalid = setup["invalid_per_mille"],
        alos = setup["alos_commit_ms"],
        eos = setup["eos_commit_ms"],
        live = setup["live_records"],
        rate = setup["live_rate"],
    )
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews the results.
fn load_average() -> Option<String> {
    read_trimmed("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// A small text file, trimmed.
fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Writes `text` to `path`.
fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
