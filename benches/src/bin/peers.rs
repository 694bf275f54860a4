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
//! `peers nexmark` runs the Nexmark queries of `benches/NEXMARK.md` on Kafka Streams and
//! streamlib the same way and checks their outputs against a reference model and each other;
//! `peers nexmark-app` is its streamlib child process.
//!
//! ```text
//! scripts/peers --records 300000           # builds everything, then runs `peers bench`
//! ```

#[path = "peers/app.rs"]
mod app;
#[path = "peers/failover.rs"]
mod failover;
#[path = "peers/nexmark.rs"]
mod nexmark;
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
    /// Nexmark on Kafka Streams and streamlib side by side (NEXMARK.md).
    Nexmark(Box<nexmark::NexmarkArgs>),
    /// Run one Nexmark query on streamlib (started by `nexmark`).
    NexmarkApp(Box<app::NexmarkAppArgs>),
}

/// What `peers bench` runs and where it writes.
#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
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
    /// Records of each live (latency) run, after the warm-up records; 0 skips live runs.
    #[arg(long, default_value_t = 10_000)]
    live_records: u64,
    /// Produce rate of the live runs, records/s.
    #[arg(long, default_value_t = 1_000)]
    live_rate: u64,
    /// File name (without extension) of the results; default `peers-<records>`.
    #[arg(long)]
    name: Option<String>,
}

/// The flags `peers bench` and `peers nexmark` share: the broker, how every system runs, where
/// the peer projects are and where the results go.
#[derive(Args, Debug)]
struct Common {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Processing guarantees, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "alos,eos")]
    guarantees: Vec<Guarantee>,
    /// Commit interval of every system under at-least-once, ms (Kafka Streams' default).
    #[arg(long, default_value_t = 30_000)]
    alos_commit_ms: u64,
    /// Commit interval of every system under exactly-once, ms (Kafka Streams' default).
    #[arg(long, default_value_t = 100)]
    eos_commit_ms: u64,
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
    #[arg(long, default_value_t = 7_200)]
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
}

impl Common {
    /// Checks the broker and builds the peers among `systems`; returns how to start them and
    /// the settings of every run (`partitions` per topic, state and logs under a fresh
    /// directory named after `tag`).
    fn prepare(
        &self,
        systems: &[System],
        partitions: i32,
        tag: &str,
    ) -> Result<(Launchers, Settings)> {
        let brokers = kafka::check_broker(&self.bootstrap)?;
        eprintln!("broker(s) at {}: {brokers}", self.bootstrap);
        let launchers = Launchers::prepare(systems, &self.peers_dir, &self.jvm_opts)?;
        let settings = Settings {
            bootstrap: self.bootstrap.clone(),
            partitions,
            limits: Limits {
                settle: Duration::from_secs(self.settle_secs),
                timeout: Duration::from_secs(self.timeout_secs),
            },
            alos_commit_ms: self.alos_commit_ms,
            eos_commit_ms: self.eos_commit_ms,
            threads: self.threads,
            keep: self.keep,
            work_dir: std::env::temp_dir().join(streamlib::testing::unique_topic(tag)),
        };
        Ok((launchers, settings))
    }

    /// Writes `text` to `<out-dir>/<name>.<ext>`.
    fn write(&self, name: &str, ext: &str, text: &str) -> Result<()> {
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("creating {}", self.out_dir.display()))?;
        write(&self.out_dir.join(format!("{name}.{ext}")), text)
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::App(args) => app::run(&args),
        Command::Bench(args) => bench(&args),
        Command::Failover(args) => failover::bench(&args),
        Command::FailoverApp(args) => failover::instance(&args),
        Command::Nexmark(args) => nexmark::bench(&args),
        Command::NexmarkApp(args) => app::run_nexmark(&args),
    }
}

/// `peers bench`.
fn bench(cli: &BenchArgs) -> Result<()> {
    let load_before = load_average();
    let (launchers, settings) = cli
        .common
        .prepare(&cli.systems, cli.partitions, "peers-runs")?;
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
    let setup = setup(cli, &launchers, produce_s, load_before, started);
    let table = report::markdown(&rows);
    println!("{table}");
    let common = &cli.common;
    common.write(
        &name,
        "json",
        &(serde_json::to_string_pretty(&report::document(setup.clone(), &rows))? + "\n"),
    )?;
    common.write(&name, "md", &format!("{}\n{table}", describe(&setup)))?;
    let subtitle = format!(
        "{} input records, {} partitions, {} keys; {} stream thread(s) each; {}",
        cli.records,
        cli.partitions,
        cli.keys,
        common.threads,
        setup["machine"]["summary"].as_str().unwrap_or_default()
    );
    let chart = report::svg(
        &rows,
        "Throughput per system and workload (records/s)",
        &subtitle,
    );
    common.write(&name, "svg", &chart)?;
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok())
        .map(|r| format!("{}/{}/{}", r.job.system, r.job.workload, r.job.guarantee))
        .collect();
    verdict("peers", rows.len(), &bad)
}

/// Prints how many of `runs` passed and fails naming the `bad` ones, if any.
fn verdict(what: &str, runs: usize, bad: &[String]) -> Result<()> {
    println!("{what}: {} passed, {} failed", runs - bad.len(), bad.len());
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
        for guarantee in &cli.common.guarantees {
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
        for guarantee in &cli.common.guarantees {
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

/// What every results file records of its invocation: the command, the broker, how the
/// systems ran, the versions of the peers, the machine and its load, and how long it all took
/// since `started`, plus `fields`.
fn environment(
    common: &Common,
    launchers: &Launchers,
    load_before: Option<String>,
    started: Instant,
    fields: Value,
) -> Value {
    let versions: serde_json::Map<String, Value> = launchers
        .versions
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut setup = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "bootstrap": common.bootstrap,
        "broker": format!("Apache Kafka {} (scripts/kafka), single KRaft node on the same machine",
            std::env::var("KAFKA_VERSION").unwrap_or_else(|_| "4.4.0".into())),
        "alos_commit_ms": common.alos_commit_ms,
        "eos_commit_ms": common.eos_commit_ms,
        "threads": common.threads,
        "jvm_opts": common.jvm_opts,
        "settle_secs": common.settle_secs,
        "versions": versions,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
        "total_s": started.elapsed().as_secs_f64(),
        "finished_at_ms": kafka::now_ms(),
    });
    if let (Some(setup), Value::Object(fields)) = (setup.as_object_mut(), fields) {
        setup.extend(fields);
    }
    setup
}

/// The parameters, versions and machine of this invocation.
fn setup(
    cli: &BenchArgs,
    launchers: &Launchers,
    produce_s: f64,
    load_before: Option<String>,
    started: Instant,
) -> Value {
    let fields = json!({
        "records": cli.records,
        "partitions": cli.partitions,
        "keys": cli.keys,
        "event_step_ms": cli.event_step_ms,
        "duplicates_per_mille": cli.duplicates_per_mille,
        "invalid_per_mille": cli.invalid_per_mille,
        "live_records": cli.live_records,
        "live_rate": cli.live_rate,
        "preproduce_s": produce_s,
    });
    environment(&cli.common, launchers, load_before, started, fields)
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
    let data = format!(
        "Data: {records} records, {partitions} partitions, {keys} keys, event step {step} ms, \
         {dups}‰ duplicates, {invalid}‰ null prices",
        records = setup["records"],
        partitions = setup["partitions"],
        keys = setup["keys"],
        step = setup["event_step_ms"],
        dups = setup["duplicates_per_mille"],
        invalid = setup["invalid_per_mille"],
    );
    let commits = format!(
        "Commit interval: {alos} ms at-least-once, {eos} ms exactly-once; live runs: {live} \
         records at {rate}/s",
        alos = setup["alos_commit_ms"],
        eos = setup["eos_commit_ms"],
        live = setup["live_records"],
        rate = setup["live_rate"],
    );
    header(
        &format!("Peer comparison: {} records", setup["records"]),
        setup,
        &[data, commits],
        "PEERS.md",
    )
}

/// The Markdown header of a results file made with an [`environment`]: `title`, the command,
/// machine and broker, `lines`, the versions and a link to the definitions in `benches/{doc}`.
fn header(title: &str, setup: &Value, lines: &[String], doc: &str) -> String {
    let versions = setup["versions"]
        .as_object()
        .map(|v| {
            v.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut out = format!(
        "# {title}\n\n\
         - Command: `{command}` ({total:.0} s in all)\n\
         - Machine: {machine}; load average before {before}, after {after}\n\
         - Broker: {broker}\n",
        command = setup["command"].as_str().unwrap_or_default(),
        total = setup["total_s"].as_f64().unwrap_or_default(),
        machine = setup["machine"]["summary"].as_str().unwrap_or_default(),
        before = setup["loadavg_before"].as_str().unwrap_or_default(),
        after = setup["loadavg_after"].as_str().unwrap_or_default(),
        broker = setup["broker"].as_str().unwrap_or_default(),
    );
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
    out.push_str(&format!(
        "- Versions: {versions}\n- Definitions: [`benches/{doc}`](../{doc})\n"
    ));
    out
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
