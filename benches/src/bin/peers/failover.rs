//! `peers failover`: the failover of a stateful task, with and without a standby replica, on
//! streamlib and on Kafka Streams (the driver is [`benches::failover`]); and `peers
//! failover-app`, the streamlib instance it starts (Kafka Streams' is
//! `streamlib.peers.FailoverApp`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result};
use benches::failover::{self, Failover, Instance, Setup};
use clap::Args;
use serde_json::{json, Value};
use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};

use crate::system::{Launchers, System};

/// `peers failover` arguments.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Distinct keys: each of the two tasks holds about half of them.
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Keys counted again just before and just after the SIGKILL.
    #[arg(long, default_value_t = 1_000)]
    hot_keys: usize,
    /// Systems to run (streamlib, kafka-streams).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "streamlib,kafka-streams"
    )]
    systems: Vec<System>,
    /// `num_standby_replicas` values to run.
    #[arg(long, value_delimiter = ',', default_value = "1,0")]
    standbys: Vec<usize>,
    /// Runs of each system × standby count; the table shows the median and the range.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// JVM options of the Kafka Streams instances.
    #[arg(long, default_value = "-Xms256m -Xmx1g", allow_hyphen_values = true)]
    jvm_opts: String,
    /// How long any one step of a run may take, seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Where the peers' sources are.
    #[arg(long, env = "PEERS_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peers"))]
    peers_dir: PathBuf,
    /// Where to write `<name>.json` and `<name>.md`.
    #[arg(long, default_value = "benches/results")]
    out_dir: PathBuf,
    /// Results file name.
    #[arg(long, default_value = "failover")]
    name: String,
}

/// The failovers of one system and standby count.
struct Row {
    system: System,
    standbys: usize,
    runs: Vec<Failover>,
}

impl Row {
    /// The median and the range of `measure` over the runs.
    fn spread(&self, measure: impl Fn(&Failover) -> f64) -> (f64, f64, f64) {
        let mut values: Vec<f64> = self.runs.iter().map(measure).collect();
        values.sort_by(f64::total_cmp);
        (
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        )
    }

    fn first_output(&self) -> (f64, f64, f64) {
        self.spread(|f| f.first_output.as_secs_f64())
    }
}

/// Runs every system × standby count, prints and writes the results.
pub fn bench(args: &FailoverArgs) -> Result<()> {
    if let Some(other) = args
        .systems
        .iter()
        .find(|s| !matches!(s, System::Streamlib | System::KafkaStreams))
    {
        anyhow::bail!("`peers failover` runs streamlib and kafka-streams, not {other}");
    }
    let launchers = Launchers::prepare(&args.systems, &args.peers_dir, &args.jvm_opts)?;
    let mut rows = Vec::new();
    for &system in &args.systems {
        for &standbys in &args.standbys {
            let setup = Setup {
                bootstrap: args.bootstrap.clone(),
                keys: args.keys,
                hot_keys: args.hot_keys,
                standbys,
                timeout: Duration::from_secs(args.timeout_secs),
            };
            let launch = |instance: &Instance| launchers.failover_command(system, instance);
            let mut runs = Vec::new();
            for run in 1..=args.repeat.max(1) {
                let result = failover::run(&setup, &launch).with_context(|| {
                    format!("{system} with {standbys} standby replica(s), run {run}")
                })?;
                eprintln!(
                    "failover: {system}, standbys {standbys}, run {run}: changelog {}, restored {}, first output {:.1} s, all answered {:.1} s",
                    result.changelog,
                    result.restored,
                    result.first_output.as_secs_f64(),
                    result.all_answered.as_secs_f64()
                );
                runs.push(result);
            }
            rows.push(Row {
                system,
                standbys,
                runs,
            });
        }
    }
    let table = markdown(&rows);
    println!("{table}");
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let document = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "keys": args.keys,
        "hot_keys": args.hot_keys,
        "partitions": failover::PARTITIONS,
        "session_timeout_ms": 6000,
        "versions": launchers.versions.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
        "finished_at_ms": benches::kafka::now_ms(),
        "runs": rows.iter().flat_map(|r| r.runs.iter().map(|f| json!({
            "system": r.system.name(),
            "num_standby_replicas": r.standbys,
            "moved_store_records": f.changelog,
            "restored": f.restored,
            "first_output_s": f.first_output.as_secs_f64(),
            "all_answered_s": f.all_answered.as_secs_f64(),
        }))).collect::<Vec<_>>(),
    });
    crate::write(
        &args.out_dir.join(format!("{}.json", args.name)),
        &(serde_json::to_string_pretty(&document)? + "\n"),
    )?;
    crate::write(&args.out_dir.join(format!("{}.md", args.name)), &table)?;
    Ok(())
}

/// The results as a Markdown table: medians with their range, the first output also as a ratio
/// to Kafka Streams' median with the same standby count.
fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| system | standbys | runs | moved store (records) | restored (median) | SIGKILL → first output of the moved task, median (range) | ÷ Kafka Streams | SIGKILL → every key answered, median |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let (first, low, high) = row.first_output();
        let ratio = rows
            .iter()
            .find(|p| p.system == System::KafkaStreams && p.standbys == row.standbys)
            .map_or("–".to_string(), |p| {
                format!("{:.2}", first / p.first_output().0)
            });
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {first:.1} s ({low:.1}–{high:.1}) | {ratio} | {:.1} s |\n",
            row.system.label(),
            row.standbys,
            row.runs.len(),
            row.spread(|f| f.changelog as f64).0,
            row.spread(|f| f.restored as f64).0,
            row.spread(|f| f.all_answered.as_secs_f64()).0,
        ));
    }
    out
}

/// `peers failover-app`: the streamlib instance — an exactly-once count per key with the given
/// standby replicas, printing its status every 100 ms until standard input closes.
pub fn instance(args: &Instance) -> Result<()> {
    let stdin_closed = crate::app::watch_stdin()?;
    let b = StreamsBuilder::new();
    b.stream(&args.input, StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .count(failover::STORE)
        .to_stream()
        .to(&args.output, StringSerde, Nullable(I64Serde));
    let mut config = StreamsConfig::new(&args.app_id, &args.bootstrap);
    config.state_dir = args.state_dir.clone();
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.commit_interval = Some(Duration::from_millis(100));
    config.instance_id = Some(args.instance.clone());
    config.num_standby_replicas = args.standbys;
    config
        .client_properties
        .insert("session.timeout.ms".into(), "6000".into());
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().context("starting the instance")?;
    let metrics = app.metrics();
    let report = || {
        let partitions: Vec<String> = app
            .assigned_partitions()
            .iter()
            .map(i32::to_string)
            .collect();
        println!(
            "status partitions={} restored={} standby={}",
            partitions.join(","),
            metrics.restored.load(Ordering::Relaxed),
            metrics.standby_records.load(Ordering::Relaxed)
        );
    };
    let stopped_by_harness = crate::app::wait(&stdin_closed, || {
        report();
        app.is_running()
    });
    app.close().context("closing the instance")?;
    anyhow::ensure!(stopped_by_harness, "the instance stopped on its own");
    Ok(())
}
