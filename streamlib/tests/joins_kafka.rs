//! Tables and joins on the real broker, under exactly-once: one application with a stream–table
//! (inner, left), a windowed stream–stream (inner, left, outer) and a table–table (inner, left,
//! outer) join over four partitions, restarted mid-stream on an empty state directory (so its
//! stores restore from their changelogs, the tables' from their source topics), must write what the `TopologyTestDriver` writes for
//! the same inputs; and a global table, restored before processing and kept current. Needs
//! `KAFKA_BOOTSTRAP` (see `scripts/test`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use streamlib::error::StreamsError;
use streamlib::partition::partition_for_key;
use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{
    consume_until, create_topic, kafka_bootstrap, produce_nullable, unique_topic, Consumed,
    DriverConfig, TopologyTestDriver,
};
use streamlib::topology::{JoinWindows, StreamJoined};

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 4;
const OUTPUTS: [&str; 8] = [
    "st-inner", "st-left", "ss-inner", "ss-left", "ss-outer", "tt-inner", "tt-left", "tt-outer",
];

/// Topic names of one run: inputs `ls`, `rs` (streams), `lt`, `rt` (tables) and the outputs.
struct Topics {
    app: String,
    names: BTreeMap<&'static str, String>,
}

impl Topics {
    fn new() -> Self {
        let names = ["ls", "rs", "lt", "rt"]
            .into_iter()
            .chain(OUTPUTS)
            .map(|name| (name, unique_topic(&format!("joins-{name}"))))
            .collect();
        Self {
            app: unique_topic("joins"),
            names,
        }
    }

    fn get(&self, name: &str) -> &str {
        &self.names[name]
    }
}

fn pair(l: &str, r: Option<&String>) -> String {
    format!("{l}|{}", r.map_or("null", String::as_str))
}

fn topology(t: &Topics) -> Topology {
    let b = StreamsBuilder::new();
    let s = StringSerde;
    let right_table = b.table(t.get("rt"), s, s, "rt");
    let left_table = b.table(t.get("lt"), s, s, "lt");
    let left = b.stream(t.get("ls"), s, s);
    let right = b.stream(t.get("rs"), s, s);
    left.join_table(&right_table, s, |l, r| pair(l, Some(r)))
        .to(t.get("st-inner"), s, s);
    left.left_join_table(&right_table, s, |l, r| pair(l, r))
        .to(t.get("st-left"), s, s);
    let windows =
        JoinWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(5));
    let serdes = || StreamJoined::with(s, s, s);
    left.join(&right, |l, r| pair(l, Some(r)), windows, serdes())
        .to(t.get("ss-inner"), s, s);
    left.left_join(&right, |l, r| pair(l, r), windows, serdes())
        .to(t.get("ss-left"), s, s);
    left.outer_join(
        &right,
        |l, r| pair(l.map_or("null", String::as_str), r),
        windows,
        serdes(),
    )
    .to(t.get("ss-outer"), s, s);
    let tables = Nullable(s);
    left_table
        .join(&right_table, |l, r| pair(l, Some(r)))
        .to_stream()
        .to(t.get("tt-inner"), s, tables);
    left_table
        .left_join(&right_table, |l, r| pair(l, r))
        .to_stream()
        .to(t.get("tt-left"), s, tables);
    left_table
        .outer_join(&right_table, |l, r| {
            pair(l.map_or("null", String::as_str), r)
        })
        .to_stream()
        .to(t.get("tt-outer"), s, tables);
    b.build()
}

/// One input record: topic, key, value (`None`: tombstone), timestamp.
type Input = (&'static str, String, Option<String>, i64);

/// The inputs, in phases of one topic each: table rows (updates, deletes, keys on one side
/// only), then stream records (some joining within the window, some never joining), then one
/// left record per partition an hour later, so that every task's stream time passes the windows
/// and grace of all the others and the left and outer joins emit what never joined.
/// Every record is later than the ones of the phases before it.
fn phases(base: i64) -> Vec<Vec<Input>> {
    let row = |topic, key: String, value: Option<String>, dt| (topic, key, value, base + dt);
    let k = |i| format!("k{i}");
    let right_rows = (0..12).map(|i| row("rt", k(i), Some(format!("r{i}")), i));
    let left_rows = (0..12)
        .filter(|i| i % 3 != 0)
        .map(|i| row("lt", k(i), Some(format!("l{i}")), 20 + i));
    let right_deletes = (0..4).map(|i| row("rt", k(i), None, 100 + i));
    let left_updates = (0..4)
        .map(|i| row("lt", k(i), Some(format!("l{i}b")), 110 + i))
        .chain([row("lt", k(5), None, 120)]);
    let lefts = (0..16).map(|i| row("ls", k(i), Some(format!("a{i}")), 1_000 + i * 10));
    let rights = (0..16)
        .filter(|i| i % 2 == 0)
        .map(|i| row("rs", k(i), Some(format!("b{i}")), 3_000 + i * 10))
        .chain((0..6).map(|i| row("rs", format!("only-right-{i}"), Some("c".into()), 4_000 + i)));
    let mut flushed = [false; PARTITIONS as usize];
    let mut flush = Vec::new();
    for i in 0.. {
        let key = format!("flush-{i}");
        let p = partition_for_key(key.as_bytes(), PARTITIONS) as usize;
        if !flushed[p] {
            flushed[p] = true;
            flush.push(row("ls", key, Some("f".into()), 3_600_000));
        }
        if flushed.iter().all(|f| *f) {
            break;
        }
    }
    vec![
        right_rows.collect(),
        left_rows.collect(),
        right_deletes.collect(),
        left_updates.collect(),
        lefts.collect(),
        rights.collect(),
        flush,
    ]
}

/// What the driver writes to each output for `inputs`, piped in order.
fn expected(t: &Topics, inputs: &[Input]) -> BTreeMap<&'static str, Vec<(String, Option<String>)>> {
    let config = DriverConfig {
        partitions: PARTITIONS,
        ..DriverConfig::default()
    };
    let mut driver = TopologyTestDriver::new(topology(t), config).unwrap();
    for (topic, key, value, ts) in inputs {
        driver
            .pipe(
                t.get(topic),
                &StringSerde,
                &Nullable(StringSerde),
                key.clone(),
                value.clone(),
                *ts,
            )
            .unwrap();
    }
    OUTPUTS
        .into_iter()
        .map(|name| {
            let records = driver
                .read_output(t.get(name), &StringSerde, &Nullable(StringSerde))
                .unwrap();
            (
                name,
                records.into_iter().map(|r| (r.key, r.value)).collect(),
            )
        })
        .collect()
}

fn produce_all(t: &Topics, inputs: &[Input]) {
    for topic in ["ls", "rs", "lt", "rt"] {
        let records: Vec<_> = inputs
            .iter()
            .filter(|(name, ..)| *name == topic)
            .map(|(_, key, value, ts)| {
                (
                    key.clone().into_bytes(),
                    value.clone().map(String::into_bytes),
                    *ts,
                )
            })
            .collect();
        produce_nullable(&kafka_bootstrap(), t.get(topic), &records);
    }
}

fn decoded(records: &[Consumed]) -> Vec<(String, Option<String>)> {
    records
        .iter()
        .map(|c| {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            (text(&c.key), c.value.as_deref().map(text))
        })
        .collect()
}

/// Waits until `output` holds `count` committed records, and returns them.
fn read(t: &Topics, output: &str, count: usize) -> Vec<(String, Option<String>)> {
    read_topic(t.get(output), count)
}

fn config(t: &Topics, state_dir: &Path) -> StreamsConfig {
    let mut config = StreamsConfig::new(&t.app, &kafka_bootstrap());
    config.state_dir = state_dir.to_path_buf();
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.commit_interval = Some(Duration::from_millis(100));
    config
}

/// Records grouped by key in production order: partitions interleave differently on the broker
/// and in the driver, but each key's records keep their order.
fn by_key(records: Vec<(String, Option<String>)>) -> BTreeMap<String, Vec<Option<String>>> {
    let mut keys: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (key, value) in records {
        keys.entry(key).or_default().push(value);
    }
    keys
}

/// Inputs with [`PARTITIONS`] partitions, outputs with one (one order to compare).
fn create_topics(t: &Topics) {
    for (name, topic) in &t.names {
        let partitions = if OUTPUTS.contains(name) {
            1
        } else {
            PARTITIONS
        };
        create_topic(&kafka_bootstrap(), topic, partitions);
    }
}

/// Waits for every output to hold what the driver wrote for `inputs`, and compares.
fn assert_outputs(t: &Topics, inputs: &[Input], when: &str) {
    let want = expected(t, inputs);
    for name in OUTPUTS {
        let got = read(t, name, want[name].len());
        assert_eq!(by_key(got), by_key(want[name].clone()), "{name} {when}");
    }
}

#[test]
fn every_join_kind_on_kafka_equals_the_driver_across_a_restart_with_restore() {
    let t = Topics::new();
    create_topics(&t);
    // The tables' source topics are their changelogs: no changelog topic of their own.
    let changelogs: Vec<String> = topology(&t)
        .internal_topics()
        .into_iter()
        .map(|topic| topic.name)
        .filter(|name| name.ends_with("-changelog"))
        .collect();
    assert!(
        !changelogs
            .iter()
            .any(|c| c == "rt-changelog" || c == "lt-changelog"),
        "{changelogs:?}"
    );
    let phases = phases(streamlib_now());
    // Restarting before the left stream's records makes them meet the right table as restored
    // from its source topic.
    let restart_after = 4;
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(topology(&t), config(&t, dir.path()));
    app.start().unwrap();
    for (i, phase) in phases.iter().enumerate() {
        if i == restart_after {
            // Run 2 on an empty state directory: every store restores from its changelog.
            app.close().unwrap();
            app = KafkaStreams::new(topology(&t), config(&t, empty.path()));
            app.start().unwrap();
            wait_for("the tasks restored", || {
                app.metrics()
                    .restored
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0
            });
        }
        produce_all(&t, phase);
        let so_far: Vec<Input> = phases[..=i].iter().flatten().cloned().collect();
        assert_outputs(&t, &so_far, &format!("after phase {i}"));
    }
    assert!(app.is_running());
    app.close().unwrap();
}

/// Everything is on the broker before the application starts, the streams' topics written
/// first and the tables' last, with more left-stream records (later than every table row)
/// than the stream thread polls at once, so it polls stream records before the rows they join:
/// each task still takes its partitions' records in timestamp order, as the driver processes
/// them piped in that order, without giving up on a partition.
#[test]
fn a_task_takes_the_records_of_its_partitions_in_timestamp_order() {
    let t = Topics::new();
    create_topics(&t);
    let base = streamlib_now();
    let mut inputs: Vec<Input> = phases(base).into_iter().flatten().collect();
    inputs.extend((0..780).map(|i| {
        (
            "ls",
            format!("k{}", i % 12),
            Some(format!("p{i}")),
            base + 200 + i,
        )
    }));
    inputs.sort_by_key(|(.., ts)| *ts);
    produce_all(&t, &inputs);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(topology(&t), config(&t, dir.path()));
    app.start().unwrap();
    assert_outputs(&t, &inputs, "from pre-produced inputs");
    assert_eq!(
        app.metrics()
            .enforced_processing
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    app.close().unwrap();
}

/// With `max_task_idle_caught_up`, a stream record that the task has buffered while its table's
/// partition is read to the end (empty topics) waits for that table: the row, produced only
/// after the stream thread has consumed the record, is joined by the earlier timestamp it
/// carries. Without the wait the record would be joined at once, with no row. As in Kafka
/// Streams, the wait lasts while the table's queue is empty, so a later row ends it.
#[test]
fn a_task_waits_for_a_caught_up_table_when_asked_to() {
    let (stream, table, out) = (
        unique_topic("idle-s"),
        unique_topic("idle-t"),
        unique_topic("idle-out"),
    );
    for topic in [&stream, &table, &out] {
        create_topic(&kafka_bootstrap(), topic, 1);
    }
    let b = StreamsBuilder::new();
    let rows = b.table(&table, StringSerde, StringSerde, "rows");
    b.stream(&stream, StringSerde, StringSerde)
        .left_join_table(&rows, StringSerde, |l, r| pair(l, r))
        .to(&out, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut config = StreamsConfig::new(&unique_topic("idle"), &kafka_bootstrap());
    config.state_dir = dir.path().to_path_buf();
    config.commit_interval = Some(Duration::from_millis(100));
    // Both waits outlast the test: only the row can end this one.
    config.max_task_idle = WAIT;
    config.max_task_idle_caught_up = WAIT;
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().unwrap();
    let record = |key: &str, value: &str, ts: i64| {
        vec![(key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()), ts)]
    };
    let base = streamlib_now();
    produce_nullable(&kafka_bootstrap(), &stream, &record("k1", "b", base + 1));
    wait_for("the stream record to be consumed", || {
        app.metrics().consumed.load(Relaxed) >= 1
    });
    // The row, and a later one: once the row is taken the table's queue is empty again, and
    // the stream record waits on until a record later than itself arrives there.
    let rows = [record("k1", "r1", base), record("k2", "r2", base + 2)].concat();
    produce_nullable(&kafka_bootstrap(), &table, &rows);
    assert_eq!(read_topic(&out, 1), [("k1".into(), Some("b|r1".into()))]);
    assert_eq!(app.metrics().enforced_processing.load(Relaxed), 0);
    app.close().unwrap();
}

#[test]
fn a_join_of_topics_with_different_partition_counts_does_not_start() {
    let (stream, table) = (unique_topic("copart-s"), unique_topic("copart-t"));
    create_topic(&kafka_bootstrap(), &stream, 4);
    create_topic(&kafka_bootstrap(), &table, 2);
    let b = StreamsBuilder::new();
    let rows = b.table(&table, StringSerde, StringSerde, "rows");
    b.stream(&stream, StringSerde, StringSerde)
        .join_table(&rows, StringSerde, |l, r| pair(l, Some(r)))
        .to(&unique_topic("copart-out"), StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut config = StreamsConfig::new(&unique_topic("copart"), &kafka_bootstrap());
    config.state_dir = dir.path().to_path_buf();
    let mut app = KafkaStreams::new(b.build(), config);
    match app.start() {
        Err(StreamsError::PartitionCountMismatch(counts)) => {
            assert!(counts.contains(&(stream.clone(), 4)), "{counts:?}");
            assert!(counts.contains(&(table.clone(), 2)), "{counts:?}");
        }
        other => panic!("expected a partition count mismatch, got {other:?}"),
    }
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    streamlib::testing::wait_for(what, WAIT, condition);
}

/// Now, in ms: record timestamps must be recent, or the broker's time-based retention deletes
/// them while the test runs.
fn streamlib_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A global table of a two-partition topic joined from a four-partition stream: restored in full
/// before processing starts, kept current while running, a malformed row skipped and counted,
/// and resumed from its stored offsets after a restart (nothing read twice).
#[test]
fn a_global_table_restores_before_processing_and_stays_current() {
    let (coins, trades, out) = (
        unique_topic("global-coins"),
        unique_topic("global-trades"),
        unique_topic("global-out"),
    );
    create_topic(&kafka_bootstrap(), &coins, 2);
    create_topic(&kafka_bootstrap(), &trades, PARTITIONS);
    create_topic(&kafka_bootstrap(), &out, 1);
    let now = streamlib_now();
    let row =
        |key: &str, value: Option<&[u8]>| (key.as_bytes().to_vec(), value.map(<[u8]>::to_vec), now);
    produce_nullable(
        &kafka_bootstrap(),
        &coins,
        &[
            row("btc", Some(b"Bitcoin")),
            row("eth", Some(b"Ether")),
            row("bad", Some(&[0xff, 0xfe])), // not UTF-8: skipped
            row("doge", Some(b"Dogecoin")),
            row("doge", None),
        ],
    );
    let topology = || {
        let b = StreamsBuilder::new();
        let names = b.global_table(&coins, StringSerde, StringSerde, "coin-names");
        b.stream(&trades, StringSerde, StringSerde)
            .left_join_global(
                &names,
                |_, trade: &String| trade.split(':').next().unwrap_or_default().to_string(),
                StringSerde,
                |trade, name| pair(trade, name),
            )
            .to(&out, StringSerde, StringSerde);
        b.build()
    };
    let app_id = unique_topic("global");
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = StreamsConfig::new(&app_id, &kafka_bootstrap());
        config.state_dir = dir.path().to_path_buf();
        config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
        config.commit_interval = Some(Duration::from_millis(100));
        config
    };
    let trade =
        |id: &str, value: &str| (id.as_bytes().to_vec(), Some(value.as_bytes().to_vec()), now);
    let mut app = KafkaStreams::new(topology(), config());
    app.start().unwrap();
    assert_eq!(global_records(&app), 4);
    assert_eq!(app.metrics().global_skipped.load(Relaxed), 1);
    produce_nullable(
        &kafka_bootstrap(),
        &trades,
        &[
            trade("t1", "btc:1"),
            trade("t2", "doge:2"),
            trade("t3", "bad:3"),
        ],
    );
    let got = read_topic(&out, 3);
    assert_eq!(
        by_key(got),
        by_key(vec![
            ("t1".into(), Some("btc:1|Bitcoin".into())),
            ("t2".into(), Some("doge:2|null".into())),
            ("t3".into(), Some("bad:3|null".into())),
        ])
    );
    // An update while running is seen by the next record.
    produce_nullable(&kafka_bootstrap(), &coins, &[row("doge", Some(b"Doge"))]);
    streamlib::testing::wait_for("the global update", WAIT, || global_records(&app) == 5);
    produce_nullable(&kafka_bootstrap(), &trades, &[trade("t4", "doge:4")]);
    let got = read_topic(&out, 4);
    assert_eq!(got[3], ("t4".into(), Some("doge:4|Doge".into())));
    app.close().unwrap();
    // A restart on the same state directory resumes from the stored offsets.
    let mut app = KafkaStreams::new(topology(), config());
    app.start().unwrap();
    assert_eq!(global_records(&app), 0);
    produce_nullable(&kafka_bootstrap(), &trades, &[trade("t5", "eth:5")]);
    let got = read_topic(&out, 5);
    assert_eq!(got[4], ("t5".into(), Some("eth:5|Ether".into())));
    app.close().unwrap();
}

/// Records the global thread has applied so far.
fn global_records(app: &KafkaStreams) -> u64 {
    app.metrics().global_records.load(Relaxed)
}

/// Waits until `topic` holds `count` committed records, and returns them.
fn read_topic(topic: &str, count: usize) -> Vec<(String, Option<String>)> {
    let got = consume_until(&kafka_bootstrap(), topic, "read_committed", WAIT, |got| {
        got.len() >= count
    });
    decoded(&got)
}
