//! Standby replicas on the real broker (ADR-043). Two instances — child processes of this
//! binary, started with `--child` — run an exactly-once count over two partitions and 200 000
//! distinct keys, so each holds a store of about 100 000 entries. One is killed with SIGKILL;
//! the survivor takes over its task. With `num_standby_replicas = 1` it restores at most the
//! records written since its standby last applied the changelog (asserted through the
//! restored-record count it reports); without standbys it restores the whole changelog (the
//! control, so the assertion can fail). In both runs every count stays exactly once.
//!
//! Needs `KAFKA_BOOTSTRAP`. `STANDBY_TEST_KEYS` (default 200000) sizes the store; the run prints
//! how long after the SIGKILL the survivor had taken the task over and answered a new batch of
//! records on both tasks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, produce, unique_topic};

const PARTITIONS: i32 = 2;
/// Keys whose counts the later phases raise.
const HOT_KEYS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(300);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The instance under test: counts per key, prints its status every 100 ms, runs until killed.
fn child() {
    let b = StreamsBuilder::new();
    b.stream(&env("SB_INPUT"), StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        .to(&env("SB_OUTPUT"), StringSerde, I64Serde);
    let mut config = StreamsConfig::new(&env("SB_APP"), &kafka_bootstrap());
    config.state_dir = env("SB_STATE").into();
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.instance_id = Some(env("SB_INSTANCE"));
    config.num_standby_replicas = env("SB_STANDBYS").parse().expect("SB_STANDBYS");
    config
        .client_properties
        .insert("session.timeout.ms".into(), "6000".into());
    let mut app = KafkaStreams::new(b.build(), config);
    if let Err(error) = app.start() {
        eprintln!("child: start failed: {error}");
        std::process::exit(2);
    }
    loop {
        let metrics = app.metrics();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let partitions: Vec<String> = app
            .assigned_partitions()
            .iter()
            .map(i32::to_string)
            .collect();
        println!(
            "status partitions={} restored={} standby={}",
            partitions.join(","),
            load(&metrics.restored),
            load(&metrics.standby_records)
        );
        if !app.is_running() {
            eprintln!("child: stopped: {:?}", app.close());
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a child last reported.
#[derive(Clone, Debug, Default, PartialEq)]
struct Status {
    partitions: Vec<i32>,
    restored: u64,
    standby: u64,
}

impl Status {
    fn parse(line: &str) -> Option<Self> {
        let mut status = Status::default();
        for field in line.strip_prefix("status ")?.split(' ') {
            let (name, value) = field.split_once('=')?;
            match name {
                "partitions" => {
                    status.partitions = value
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().ok())
                        .collect::<Option<_>>()?;
                }
                "restored" => status.restored = value.parse().ok()?,
                "standby" => status.standby = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(status)
    }
}

/// A running child and its latest status.
struct Instance {
    child: Child,
    status: Arc<Mutex<Status>>,
    _state: tempfile::TempDir,
}

impl Instance {
    fn spawn(run: &Run, name: &str) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--child")
            .env("SB_APP", &run.app)
            .env("SB_INPUT", &run.input)
            .env("SB_OUTPUT", &run.output)
            .env("SB_STATE", state.path())
            .env("SB_INSTANCE", name)
            .env("SB_STANDBYS", run.standbys.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn an instance");
        let status = Arc::new(Mutex::new(Status::default()));
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        let latest = status.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(status) = Status::parse(&line) {
                    *latest.lock().unwrap() = status;
                }
            }
        });
        Self {
            child,
            status,
            _state: state,
        }
    }

    fn status(&self) -> Status {
        self.status.lock().unwrap().clone()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    streamlib::testing::wait_for(what, WAIT, condition);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One key per record: `key-<i>` for `i` in `keys`.
fn records(keys: std::ops::Range<usize>) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let ts = now_ms();
    keys.map(|i| (format!("key-{i}").into_bytes(), b"x".to_vec(), ts))
        .collect()
}

/// The latest count per key in `topic`, once `done` holds for it.
fn counts_when(
    topic: &str,
    done: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> BTreeMap<String, i64> {
    let latest = |got: &[streamlib::testing::Consumed]| {
        let mut map = BTreeMap::new();
        for c in got {
            let value = c.value.as_deref().expect("a count");
            map.insert(
                String::from_utf8_lossy(&c.key).into_owned(),
                i64::from_be_bytes(value.try_into().expect("8 bytes")),
            );
        }
        map
    };
    let got = consume_until(&kafka_bootstrap(), topic, "read_committed", WAIT, |got| {
        done(&latest(got))
    });
    latest(&got)
}

struct Run {
    app: String,
    input: String,
    output: String,
    standbys: usize,
    keys: usize,
}

/// What a failover did.
struct Failover {
    /// Changelog records of the moved task's partition.
    changelog: u64,
    /// Records the survivor restored when it took the task over.
    restored: u64,
    /// From the SIGKILL until the survivor has taken the task over (the group noticed the
    /// death after `session.timeout.ms`, 6 s here) and restored it.
    took_over: Duration,
    /// From the SIGKILL until the survivor has answered a new batch on both tasks.
    recovered: Duration,
}

fn failover(standbys: usize, keys: usize) -> Failover {
    let run = Run {
        app: unique_topic(&format!("standby-{standbys}")),
        input: unique_topic("standby-in"),
        output: unique_topic("standby-out"),
        standbys,
        keys,
    };
    create_topic(&kafka_bootstrap(), &run.input, PARTITIONS);
    create_topic(&kafka_bootstrap(), &run.output, PARTITIONS);
    let survivor = Instance::spawn(&run, "a");
    let mut victim = Instance::spawn(&run, "b");
    wait_for("each instance to own one task", || {
        survivor.status().partitions.len() == 1 && victim.status().partitions.len() == 1
    });
    let moved = victim.status().partitions[0];

    // Phase 1: every key once.
    produce(&kafka_bootstrap(), &run.input, &records(0..run.keys));
    counts_when(&run.output, |c| c.len() == run.keys);
    let changelog_topic = streamlib::topology::changelog_topic(&run.app, "counts");
    let changelog = consume_until(
        &kafka_bootstrap(),
        &changelog_topic,
        "read_committed",
        WAIT,
        |got| got.len() >= run.keys,
    )
    .iter()
    .filter(|c| c.partition == moved)
    .count() as u64;
    if standbys > 0 {
        wait_for(
            "the survivor's standby to apply the moved task's changelog",
            || survivor.status().standby >= changelog,
        );
    }

    // Phase 2: the hot keys again, committed, then the victim dies.
    produce(&kafka_bootstrap(), &run.input, &records(0..HOT_KEYS));
    counts_when(&run.output, |c| {
        (0..HOT_KEYS).all(|i| c.get(&format!("key-{i}")) == Some(&2))
    });
    let restored_before = survivor.status().restored;
    let killed = Instant::now();
    victim.kill();
    wait_for("the survivor to take over the moved task", || {
        survivor.status().partitions.len() == 2
    });
    let restored = survivor.status().restored - restored_before;
    let took_over = killed.elapsed();

    // Phase 3: the hot keys a third time, through the survivor alone.
    produce(&kafka_bootstrap(), &run.input, &records(0..HOT_KEYS));
    let counts = counts_when(&run.output, |c| {
        (0..HOT_KEYS).all(|i| c.get(&format!("key-{i}")) == Some(&3))
    });
    let recovered = killed.elapsed();
    let wrong: Vec<(&String, &i64)> = counts
        .iter()
        .filter(|(key, count)| {
            let i: usize = key["key-".len()..].parse().expect("key-<i>");
            **count != if i < HOT_KEYS { 3 } else { 1 }
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "counts exactly once: {:?}",
        &wrong[..wrong.len().min(10)]
    );
    assert_eq!(counts.len(), run.keys);
    Failover {
        changelog,
        restored,
        took_over,
        recovered,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--child") {
        child();
        return;
    }
    let keys: usize = std::env::var("STANDBY_TEST_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for standbys in [1, 0] {
        let started = Instant::now();
        let f = failover(standbys, keys);
        println!(
            "standby_failover: num_standby_replicas={standbys}: the moved task's changelog holds {} records; the survivor restored {}; it took the task over {:.1} s and answered new records {:.1} s after the SIGKILL (run {:.0} s)",
            f.changelog,
            f.restored,
            f.took_over.as_secs_f64(),
            f.recovered.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        if standbys > 0 {
            // At most the hot keys' phase-2 updates of the moved partition.
            assert!(
                f.restored <= HOT_KEYS as u64,
                "with a standby only the tail is restored: {} of {}",
                f.restored,
                f.changelog
            );
        } else {
            assert!(
                f.restored >= f.changelog,
                "without a standby the whole changelog is restored: {} of {}",
                f.restored,
                f.changelog
            );
        }
    }
    println!("standby_failover: passed");
}
