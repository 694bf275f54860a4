//! Bronze ingest throughput on the real broker against the raw rdkafka ceiling.
//!
//! Pre-produces `BRONZE_BENCH_RECORDS` (default 200 000) price events to a fresh topic, then
//! measures (1) the ceiling pump (`benches::ceiling`, consume → produce, no processing) and
//! (2) the exactly-once Bronze sink writing them to a Delta table under `BRONZE_BENCH_LAKE`
//! (default: a temporary folder; `s3://…` works with the `AWS_*` settings), from start to the
//! last commit. Run: `KAFKA_BOOTSTRAP=… cargo bench --bench bronze_ingest` (with the project's
//! usual cargo flags).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use benches::ceiling::Ceiling;
use benches::{data, kafka, Guarantee};
use lake::bronze::sink::{BronzeSink, Route, SinkConfig};
use lake::storage::Lake;
use streamlib::testing::{kafka_bootstrap, unique_topic};

const PARTITIONS: i32 = 6;
const KEYS: u64 = 10;
const TIMEOUT: Duration = Duration::from_secs(900);

fn main() -> Result<()> {
    let records: u64 = std::env::var("BRONZE_BENCH_RECORDS")
        .ok()
        .map(|n| n.parse().context("BRONZE_BENCH_RECORDS"))
        .transpose()?
        .unwrap_or(200_000);
    let bootstrap = kafka_bootstrap();
    let input = unique_topic("bench-bronze-in");
    let copy = unique_topic("bench-bronze-copy");
    kafka::create_topics(&bootstrap, &[&input, &copy], PARTITIONS)?;
    let events = data::generate(records, KEYS, kafka::now_ms());
    let produced = data::preproduce(&bootstrap, &input, &events)?;
    eprintln!("pre-produced {records} records in {produced:.1?}");

    let started = Instant::now();
    let ceiling = Ceiling::start(
        &bootstrap,
        &unique_topic("bench-ceiling"),
        &input,
        &copy,
        PARTITIONS,
        Guarantee::Alos,
        Duration::from_secs(30),
    )?;
    while ceiling.consumed() < records {
        if !ceiling.is_running() || started.elapsed() > TIMEOUT {
            bail!("the ceiling stopped at {} records", ceiling.consumed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let ceiling_secs = started.elapsed().as_secs_f64();
    ceiling.stop()?;

    let dir = tempfile::tempdir()?;
    let root =
        std::env::var("BRONZE_BENCH_LAKE").unwrap_or_else(|_| dir.path().display().to_string());
    let lake = Lake::parse(&root)?;
    let mut config = SinkConfig::new(
        &bootstrap,
        vec![Route {
            topic: input.clone(),
            table: "bronze/prices_raw".into(),
        }],
    );
    config.sink_id = unique_topic("bench-bronze");
    let runtime = tokio::runtime::Runtime::new()?;
    let sink = BronzeSink::new(lake, config)?;
    let metrics = sink.metrics();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let io = runtime.handle().clone();
    let started = Instant::now();
    let thread = std::thread::spawn(move || sink.run(&io, stopped));
    while metrics.snapshot().records_written < records {
        if thread.is_finished() || started.elapsed() > TIMEOUT {
            bail!("the sink stopped at {:?}", metrics.snapshot());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let bronze_secs = started.elapsed().as_secs_f64();
    stop.send_replace(true);
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the sink panicked"))??;
    let snapshot = metrics.snapshot();
    kafka::delete_topics(&bootstrap, &[&input, &copy])?;

    let rate = |secs: f64| records as f64 / secs;
    println!("| run | records | seconds | records/s | commits |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| ceiling (consume → produce, alos) | {records} | {ceiling_secs:.2} | {:.0} | – |",
        rate(ceiling_secs)
    );
    println!(
        "| bronze sink ({}) | {records} | {bronze_secs:.2} | {:.0} | {} |",
        if root.starts_with("s3") {
            "s3"
        } else {
            "local folder"
        },
        rate(bronze_secs),
        snapshot.commits
    );
    Ok(())
}
