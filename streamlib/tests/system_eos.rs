//! System test: an application is killed with SIGKILL at random moments and restarted, while a
//! verifier proves from its `read_committed` outputs that every input is reflected exactly once
//! (exactly-once v2), or at least once with the duplicates counted (at-least-once).
//!
//! The app under test — echo of the input, per-key running sum and count, a 10 s windowed count,
//! and a stream–table join of each input with its key's running sum and count (so every input
//! must meet the table exactly as it stood after that input) — is this same binary started with
//! `--child`. Needs `KAFKA_BOOTSTRAP`.
//! `SYSTEM_TEST_KILLS` (default 10) and `SYSTEM_TEST_RECORDS` (default 20000) size the run;
//! `SYSTEM_TEST_GUARANTEES` (default `exactly_once_v2,at_least_once`) picks the guarantees.
//! Then the exactly-once run repeats on a three-broker cluster of its own (started with
//! `scripts/kafka`, on free ports the script picks) while broker 2 is stopped and restarted;
//! `SYSTEM_TEST_THREE_BROKERS=0` leaves that part out (local runs only).

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streamlib::prelude::*;
use streamlib::runtime::{run_until_signal, KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{create_topic, kafka_bootstrap, produce, unique_topic};

const PARTITIONS: i32 = 4;
const KEYS: i64 = 40;
const WINDOW_MS: i64 = 10_000;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The app under test; runs until killed.
fn child() {
    let guarantee = ProcessingGuarantee::parse(&env("SYS_GUARANTEE")).expect("guarantee");
    let b = StreamsBuilder::new();
    let input = b.stream(&env("SYS_INPUT"), StringSerde, I64Serde);
    input.to(&env("SYS_ECHO"), StringSerde, I64Serde);
    let grouped = input.group_by_key(StringSerde, I64Serde);
    let sums = grouped.aggregate(
        || (0i64, 0i64),
        |_, v, (sum, n)| (sum + v, n + 1),
        JsonSerde::<(i64, i64)>::new(),
        "sums",
    );
    sums.to_stream().to(
        &env("SYS_SUMS"),
        StringSerde,
        Nullable(JsonSerde::<(i64, i64)>::new()),
    );
    // The aggregate runs first (it was attached first), so each input meets its own update.
    input
        .join_table(&sums, I64Serde, |v, (sum, n)| (*v, *sum, *n))
        .to(
            &env("SYS_JOINED"),
            StringSerde,
            JsonSerde::<(i64, i64, i64)>::new(),
        );
    grouped
        .windowed_by(
            TimeWindows::of(Duration::from_millis(WINDOW_MS as u64))
                .grace(Duration::from_secs(3_600)),
        )
        .count("windowed")
        .to_stream()
        .to(
            &env("SYS_WINDOWED"),
            WindowedSerde::new(StringSerde),
            Nullable(I64Serde),
        );
    let mut config = StreamsConfig::new(&env("SYS_APP"), &kafka_bootstrap());
    config.state_dir = env("SYS_STATE").into();
    config.processing_guarantee = guarantee;
    let commit_ms = std::env::var("SYS_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    config.commit_interval = Some(Duration::from_millis(commit_ms));
    config.instance_id = Some("system-test-instance".into());
    config
        .client_properties
        .insert("session.timeout.ms".into(), "6000".into());
    let mut app = KafkaStreams::new(b.build(), config);
    if let Err(error) = app.start() {
        eprintln!("child: start failed: {error}");
        std::process::exit(2);
    }
    match run_until_signal(&mut app) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("child: stopped with {error}");
            std::process::exit(3);
        }
    }
}

struct Run {
    bootstrap: String,
    guarantee: &'static str,
    app: String,
    input: String,
    echo: String,
    sums: String,
    windowed: String,
    joined: String,
    state: tempfile::TempDir,
}

impl Run {
    fn new(bootstrap: &str, guarantee: &'static str) -> Self {
        let run = Self {
            bootstrap: bootstrap.to_string(),
            guarantee,
            app: unique_topic(&format!("system-{guarantee}")),
            input: unique_topic("system-in"),
            echo: unique_topic("system-echo"),
            sums: unique_topic("system-sums"),
            windowed: unique_topic("system-windowed"),
            joined: unique_topic("system-joined"),
            state: tempfile::tempdir().expect("state dir"),
        };
        for topic in [&run.input, &run.echo, &run.sums, &run.windowed, &run.joined] {
            create_topic(&run.bootstrap, topic, PARTITIONS);
        }
        run
    }

    fn spawn(&self) -> Child {
        self.spawn_with(&[])
    }

    fn spawn_with(&self, extra_env: &[(&str, &str)]) -> Child {
        Command::new(std::env::current_exe().expect("own path"))
            .envs(extra_env.iter().copied())
            .arg("--child")
            .env("KAFKA_BOOTSTRAP", &self.bootstrap)
            .env("SYS_GUARANTEE", self.guarantee)
            .env("SYS_APP", &self.app)
            .env("SYS_INPUT", &self.input)
            .env("SYS_ECHO", &self.echo)
            .env("SYS_SUMS", &self.sums)
            .env("SYS_WINDOWED", &self.windowed)
            .env("SYS_JOINED", &self.joined)
            .env("SYS_STATE", self.state.path())
            .spawn()
            .expect("spawn the app")
    }
}

/// Deterministic pseudo-random numbers for kill moments (the seed is printed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

type Rec = (i32, Vec<u8>, Vec<u8>);

/// Every record of `topic`, read `read_committed` from the start until `done` holds.
fn read_all(bootstrap: &str, topic: &str, done: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
    let as_rec = |c: &streamlib::testing::Consumed| {
        (
            c.partition,
            c.key.clone(),
            c.value.clone().unwrap_or_default(),
        )
    };
    let got = streamlib::testing::consume_until(
        bootstrap,
        topic,
        "read_committed",
        Duration::from_secs(180),
        |r| done(&r.iter().map(as_rec).collect::<Vec<_>>()),
    );
    got.iter().map(as_rec).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Splits a windowed key (key bytes, start, end) into the key and the window start.
fn window_key(bytes: &[u8]) -> (String, i64) {
    let (key, times) = bytes.split_at(bytes.len() - 16);
    (
        text(key),
        i64::from_be_bytes(times[..8].try_into().expect("8 bytes")),
    )
}

fn joined_of(bytes: &[u8]) -> (i64, i64, i64) {
    serde_json::from_slice(bytes).expect("joined json")
}

fn i64_of(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes.try_into().expect("8-byte value"))
}

/// A `read_committed` reader reaches the high watermark of every partition: no transaction
/// is left open.
fn assert_no_open_transactions(bootstrap: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("system-lso"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut highs = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        highs.insert(p, high);
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        let positions = consumer.position().expect("position");
        let at_end = highs.iter().all(|(p, high)| {
            *high == 0 || matches!(positions.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *high)
        });
        if at_end {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: read_committed stops before the high watermark: a transaction is open"
        );
    }
}

/// A three-node cluster of its own (on free ports `scripts/kafka` picks), for the broker-failure run.
struct Cluster {
    run_dir: tempfile::TempDir,
}

impl Cluster {
    fn script(&self, args: &[&str]) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka");
        let output = Command::new("bash")
            .arg(script)
            .args(args)
            .env("KAFKA_RUN_DIR", self.run_dir.path())
            .output()
            .expect("run scripts/kafka");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "scripts/kafka {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Starts the cluster; returns it with its bootstrap address.
    fn start() -> (Self, String) {
        let cluster = Self {
            run_dir: tempfile::tempdir().expect("cluster dir"),
        };
        let out = cluster.script(&["start", "--brokers", "3"]);
        let bootstrap = out
            .lines()
            .last()
            .expect("bootstrap line")
            .trim()
            .to_string();
        (cluster, bootstrap)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.script(&["stop"]);
    }
}

fn run(
    bootstrap: &str,
    guarantee: &'static str,
    kills: usize,
    records: i64,
    cluster: Option<&Cluster>,
) {
    let run = Run::new(bootstrap, guarantee);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("system test {guarantee}: {records} records, {kills} kills, seed {seed}");
    let mut rng = Lcg(seed);
    // Recent timestamps: the broker's time-based retention (7 days) would delete older ones
    // while the test runs.
    let base = (seed / 1_000_000) as i64;
    let inputs: Vec<(Vec<u8>, Vec<u8>, i64)> = (1..=records)
        .map(|i| {
            (
                format!("k{}", i % KEYS).into_bytes(),
                i.to_be_bytes().to_vec(),
                base + i * 10,
            )
        })
        .collect();
    let batch = inputs.len().div_ceil(kills);
    let mut child = run.spawn();
    for (round, chunk) in inputs.chunks(batch).enumerate() {
        if let Some(cluster) = cluster {
            if round == kills / 3 {
                cluster.script(&["stop", "--node", "2"]);
                println!("  broker 2 stopped");
            } else if round == 2 * kills / 3 {
                cluster.script(&["start-node", "2"]);
                println!("  broker 2 restarted");
            }
        }
        produce(bootstrap, &run.input, chunk);
        // Chaos, not synchronisation: the kill lands at a random moment of processing.
        std::thread::sleep(Duration::from_millis(300 + rng.next(1_500)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        println!("  kill {} of {kills}", round + 1);
        child = run.spawn();
    }

    // Input as produced, per partition.
    let input = read_all(bootstrap, &run.input, |r| r.len() >= records as usize);
    assert_eq!(input.len(), records as usize);
    let echo = read_all(bootstrap, &run.echo, |r| {
        let mut seen: Vec<i64> = r.iter().map(|(_, _, v)| i64_of(v)).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() >= records as usize
    });
    let per_partition = |recs: &[Rec]| {
        let mut map: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (p, _, v) in recs {
            map.entry(*p).or_default().push(i64_of(v));
        }
        map
    };
    let (input_pp, echo_pp) = (per_partition(&input), per_partition(&echo));
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut windows: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (_, key, v) in &input {
        let value = i64_of(v);
        let e = expected.entry(text(key)).or_default();
        e.0 += value;
        e.1 += 1;
        let ts = base + value * 10;
        *windows
            .entry((text(key), ts - ts.rem_euclid(WINDOW_MS)))
            .or_default() += 1;
    }
    let sums = read_all(bootstrap, &run.sums, |r| {
        let mut last: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (_, k, v) in r {
            last.insert(text(k), serde_json::from_slice(v).unwrap_or_default());
        }
        expected
            .iter()
            .all(|(k, e)| last.get(k).is_some_and(|l| l.1 >= e.1))
    });
    let windowed = read_all(bootstrap, &run.windowed, |r| {
        let mut last: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for (_, k, v) in r {
            last.insert(window_key(k), i64_of(v));
        }
        windows
            .iter()
            .all(|(w, c)| last.get(w).is_some_and(|l| l >= c))
    });
    let joined = read_all(bootstrap, &run.joined, |r| {
        let mut seen: Vec<i64> = r.iter().map(|(_, _, v)| joined_of(v).0).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() >= records as usize
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let duplicates = echo.len() - input.len();
    println!(
        "  {guarantee}: {} echo records for {} inputs ({duplicates} duplicates)",
        echo.len(),
        input.len()
    );
    match guarantee {
        "exactly_once_v2" => {
            assert_eq!(
                echo_pp, input_pp,
                "echo equals input, per partition, in order"
            );
            let mut seen: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
            for (_, k, v) in &sums {
                seen.entry(text(k))
                    .or_default()
                    .push(serde_json::from_slice(v).expect("sum json"));
            }
            for (key, (sum, count)) in &expected {
                let updates = &seen[key];
                let counts: Vec<i64> = updates.iter().map(|u| u.1).collect();
                assert_eq!(
                    counts,
                    (1..=*count).collect::<Vec<_>>(),
                    "{key}: each input counted once"
                );
                assert_eq!(
                    updates.last(),
                    Some(&(*sum, *count)),
                    "{key}: exact sum and count"
                );
            }
            let mut last: BTreeMap<(String, i64), Vec<i64>> = BTreeMap::new();
            for (_, k, v) in &windowed {
                last.entry(window_key(k)).or_default().push(i64_of(v));
            }
            for (w, c) in &windows {
                assert_eq!(
                    last[w],
                    (1..=*c).collect::<Vec<_>>(),
                    "window {w:?} counted exactly once"
                );
            }
            // Each input joined once, with its key's sum and count just after it.
            let mut joins: BTreeMap<String, Vec<(i64, i64, i64)>> = BTreeMap::new();
            for (_, k, v) in &joined {
                joins.entry(text(k)).or_default().push(joined_of(v));
            }
            let mut running: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            let mut want: BTreeMap<String, Vec<(i64, i64, i64)>> = BTreeMap::new();
            for (_, key, v) in &input {
                let value = i64_of(v);
                let r = running.entry(text(key)).or_default();
                *r = (r.0 + value, r.1 + 1);
                want.entry(text(key)).or_default().push((value, r.0, r.1));
            }
            assert_eq!(
                joins, want,
                "every input joined exactly once with its own update"
            );
            for topic in [&run.echo, &run.sums, &run.windowed, &run.joined] {
                assert_no_open_transactions(bootstrap, topic);
            }
        }
        _ => {
            for (p, values) in &input_pp {
                let mut have = echo_pp.get(p).cloned().unwrap_or_default();
                have.sort_unstable();
                for v in values {
                    assert!(
                        have.binary_search(v).is_ok(),
                        "input {v} on partition {p} lost"
                    );
                }
            }
            println!("  at_least_once: nothing lost, {duplicates} duplicate echo records");
        }
    }
}

/// SIGTERM: the app finishes, commits and exits 0. At-least-once with a one-minute commit
/// interval, so only the shutdown itself can have committed the input offsets.
fn graceful_shutdown(bootstrap: &str) {
    let run = Run::new(bootstrap, "at_least_once");
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let inputs: Vec<(Vec<u8>, Vec<u8>, i64)> = (1..=2_000i64)
        .map(|i| {
            (
                format!("k{}", i % KEYS).into_bytes(),
                i.to_be_bytes().to_vec(),
                base + i,
            )
        })
        .collect();
    produce(bootstrap, &run.input, &inputs);
    let child = run.spawn_with(&[("SYS_COMMIT_MS", "60000")]);
    read_all(bootstrap, &run.echo, |r| r.len() >= inputs.len());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let output = child.wait_with_output().expect("reap");
    assert!(
        output.status.success(),
        "exit after SIGTERM: {:?}",
        output.status
    );
    // Everything was committed: the group has no lag, so a new instance processes nothing.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &run.app)
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition(&run.input, p);
    }
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(&run.input, p, Duration::from_secs(10))
            .expect("watermarks");
        let offset = committed.find_partition(&run.input, p).map(|e| e.offset());
        assert_eq!(
            offset,
            Some(Offset::Offset(high)),
            "partition {p} fully committed at shutdown"
        );
    }
    println!("graceful shutdown: SIGTERM → exit 0 with every input offset committed");
}

fn main() {
    if std::env::args().any(|a| a == "--child") {
        child();
        return;
    }
    // `cargo test` passes harness flags (e.g. --list, filters); run only when not listing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let kills: usize = std::env::var("SYSTEM_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let records: i64 = std::env::var("SYSTEM_TEST_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let guarantees = std::env::var("SYSTEM_TEST_GUARANTEES")
        .unwrap_or_else(|_| "exactly_once_v2,at_least_once".into());
    let bootstrap = kafka_bootstrap();
    graceful_shutdown(&bootstrap);
    for guarantee in guarantees.split(',') {
        match guarantee {
            "exactly_once_v2" => run(&bootstrap, "exactly_once_v2", kills, records, None),
            "at_least_once" => run(&bootstrap, "at_least_once", kills, records, None),
            other => panic!("unknown guarantee {other}"),
        }
    }
    if std::env::var("SYSTEM_TEST_THREE_BROKERS").as_deref() != Ok("0") {
        println!("three brokers: broker 2 stops and restarts during the kills");
        let (cluster, bootstrap) = Cluster::start();
        run(
            &bootstrap,
            "exactly_once_v2",
            kills,
            records,
            Some(&cluster),
        );
    }
    println!("system tests passed");
}
