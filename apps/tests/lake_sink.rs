//! The `lake-sink` binary, SIGKILLed again and again during an ingest on the real broker: Bronze
//! holds each record exactly once and the tables' progress equals the topic's end offsets; a
//! SIGTERM commits what is buffered and exits 0.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lake::bronze;
use lake::storage::Lake;
use lake::testing::read_bronze;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, produce, unique_topic};

const TABLE: &str = "bronze/prices_raw";
const SINK_ID: &str = "kill-test";
const RECORDS: usize = 20_000;
const KILLS: usize = 6;
const DEADLINE: Duration = Duration::from_secs(180);

fn spawn_sink(lake: &str, bootstrap: &str, topic: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lake-sink"))
        .args(["--lake", lake, "--bootstrap-servers", bootstrap])
        .args([
            "--topics",
            &format!("{topic}={TABLE}"),
            "--sink-id",
            SINK_ID,
        ])
        .args(["--flush-records", "250", "--flush-interval-ms", "100"])
        .args(["--instance-id", "kill-test-instance"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start lake-sink")
}

fn committed(runtime: &tokio::runtime::Runtime, lake: &Lake, topic: &str) -> BTreeMap<i32, i64> {
    runtime.block_on(async {
        match lake.open(TABLE).await.expect("open") {
            None => BTreeMap::new(),
            Some(table) => bronze::committed_offsets(&table, TABLE, SINK_ID, topic, 0..3)
                .await
                .expect("txn versions"),
        }
    })
}

fn end_offsets(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    (0..3)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// Polls the table's log until `done(progress)` holds.
fn await_log(
    runtime: &tokio::runtime::Runtime,
    lake: &Lake,
    topic: &str,
    what: &str,
    done: impl Fn(&BTreeMap<i32, i64>) -> bool,
) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = committed(runtime, lake, topic);
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: the log holds {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_during_ingest_never_loses_or_doubles_a_record() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("lake-sink-kill");
    create_topic(&bootstrap, &topic, 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().display().to_string();
    let lake = Lake::parse(&root).expect("lake");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let records: Vec<(Vec<u8>, Vec<u8>, i64)> = (0..RECORDS)
        .map(|i| {
            let key = format!("coin-{}", i % 23).into_bytes();
            (
                key,
                format!("{{\"seq\":{i}}}").into_bytes(),
                1_796_083_200_000 + i as i64,
            )
        })
        .collect();
    let chunk = RECORDS.div_ceil(KILLS);
    let mut total = 0;
    for (round, batch) in records.chunks(chunk).enumerate() {
        produce(&bootstrap, &topic, batch);
        let mut sink = spawn_sink(&root, &bootstrap, &topic);
        let before = total;
        let progress = await_log(&runtime, &lake, &topic, "no commit after a restart", |p| {
            p.values().sum::<i64>() > before
        });
        sink.kill().expect("SIGKILL");
        sink.wait().expect("reap");
        total = progress.values().sum();
        eprintln!("round {round}: killed with {total} records committed");
    }
    // An empty partition has nothing to commit, so no progress entry.
    let mut ends = end_offsets(&bootstrap, &topic);
    ends.retain(|_, end| *end > 0);
    let last = spawn_sink(&root, &bootstrap, &topic);
    await_log(
        &runtime,
        &lake,
        &topic,
        "the last instance did not catch up",
        |p| *p == ends,
    );
    let status = common::terminate(last);
    assert!(
        status.success(),
        "SIGTERM must end lake-sink with 0, got {status}"
    );

    let rows = runtime
        .block_on(read_bronze(&lake, TABLE))
        .expect("read bronze");
    let stored: BTreeSet<(i32, i64, Option<Vec<u8>>)> = rows
        .iter()
        .map(|r| (r.partition, r.offset, r.value.clone()))
        .collect();
    assert_eq!(stored.len(), rows.len(), "a record is in Bronze twice");
    let expected: BTreeSet<(i32, i64, Option<Vec<u8>>)> =
        consume_until(&bootstrap, &topic, "read_committed", DEADLINE, |r| {
            r.len() >= RECORDS
        })
        .into_iter()
        .map(|r| (r.partition, r.offset, r.value))
        .collect();
    assert_eq!(expected.len(), RECORDS);
    assert_eq!(stored, expected, "Bronze differs from the topic");
    assert_eq!(committed(&runtime, &lake, &topic), ends);
}
