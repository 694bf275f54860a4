//! streamlib against Kafka Streams, record for record: every case of `streamlib/crosscheck/`
//! runs through streamlib's `TopologyTestDriver`, and its output
//! must equal what Kafka Streams 4.4's own `TopologyTestDriver` produced for it
//! (`expected/<case>.out.json`, recorded and re-verified in CI by `streamlib/crosscheck/run
//! verify`): the same records, in the same order, with the same keys, values and timestamps.
//!
//! Keys and values are `Option<String>` read and written with `Nullable(StringSerde)`, so that
//! the cases' nulls (null keys, tombstones) mean to streamlib what they mean to Kafka Streams.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use streamlib::prelude::*;
use streamlib::testing::{DriverConfig, TopologyTestDriver};
use streamlib::topology::{JoinWindows, StreamJoined};
use streamlib::window::{SessionWindows, SlidingWindows, TimeWindows, Windowed};

type Text = Option<String>;

const N: Nullable<StringSerde> = Nullable(StringSerde);

/// `l + "|" + r` as Java renders it: a missing side is `null`.
fn joined(l: Option<&String>, r: Option<&String>) -> Text {
    let show = |v: Option<&String>| v.map_or("null".to_string(), String::clone);
    Some(format!("{}|{}", show(l), show(r)))
}

/// `Some(v)` of a stream value that a join never passes as null.
fn present(v: &Text) -> Option<&String> {
    v.as_ref()
}

/// `group:amount` → `(group, amount)`, as `v.split(":")` does in Java.
fn group_and_amount(v: &str) -> (Text, String) {
    let (group, amount) = v.split_once(':').unwrap_or((v, ""));
    (Some(group.to_string()), amount.to_string())
}

fn number(v: &str) -> i64 {
    v.parse().unwrap_or_default()
}

/// `v.split(":")[0]` of a `fk:payload` value.
fn foreign_key(_: &Text, v: &Text) -> Text {
    let v = v.as_deref().unwrap_or_default();
    Some(v.split(':').next().unwrap_or_default().to_string())
}

/// `key@start`, the windowed key of the time and sliding window cases.
fn window_start(w: &Windowed<Text>) -> Text {
    let key = w.key.as_deref().unwrap_or("null");
    Some(format!("{key}@{}", w.window.start))
}

/// `key@start-end` (both inclusive), the windowed key of the session cases.
fn session(w: &Windowed<Text>) -> Text {
    let key = w.key.as_deref().unwrap_or("null");
    Some(format!("{key}@{}-{}", w.window.start, w.window.end))
}

/// `agg + v` as Java concatenates strings.
fn concat(agg: Text, v: Text) -> Text {
    let show = |v: Text| v.unwrap_or_else(|| "null".to_string());
    Some(show(agg) + &show(v))
}

fn sessions() -> SessionWindows {
    SessionWindows::with_inactivity_gap(Duration::from_secs(5)).grace(Duration::from_secs(10))
}

fn sliding() -> SlidingWindows {
    SlidingWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(5))
}

fn windows() -> JoinWindows {
    JoinWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(5))
}

/// The named topology of `Topologies.java`, or `None` for a name it does not have.
fn topology(name: &str) -> Option<Topology> {
    let b = StreamsBuilder::new();
    match name {
        "count" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .count("counts")
            .to_stream()
            .map_values(|n| n.map(|n| n.to_string()))
            .to("out", N, N),
        "tumbling_count" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(TimeWindows::of(Duration::from_secs(10)).grace(Duration::from_secs(5)))
            .count("counts")
            .to_stream()
            .map(|w, n| (window_start(&w), n.map(|n| n.to_string())))
            .to("out", N, N),
        "session_count" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sessions())
            .count("counts")
            .to_stream()
            .map(|w, n| (session(&w), n.map(|n| n.to_string())))
            .to("out", N, N),
        "session_count_final" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sessions())
            .emit(EmitStrategy::OnWindowClose)
            .count("counts")
            .to_stream()
            .map(|w, n| (session(&w), n.map(|n| n.to_string())))
            .to("out", N, N),
        "session_reduce" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sessions())
            .reduce(concat, "reduced")
            .to_stream()
            .map(|w, v| (session(&w), v.flatten()))
            .to("out", N, N),
        "sliding_count" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sliding())
            .count("counts")
            .to_stream()
            .map(|w, n| (window_start(&w), n.map(|n| n.to_string())))
            .to("out", N, N),
        "sliding_count_final" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sliding())
            .emit(EmitStrategy::OnWindowClose)
            .count("counts")
            .to_stream()
            .map(|w, n| (window_start(&w), n.map(|n| n.to_string())))
            .to("out", N, N),
        "sliding_reduce" => b
            .stream("in", N, N)
            .group_by_key(N, N)
            .windowed_by(sliding())
            .reduce(concat, "reduced")
            .to_stream()
            .map(|w, v| (window_start(&w), v.flatten()))
            .to("out", N, N),
        "table_ops" => b
            .table("in", N, StringSerde, "in-table")
            .filter(|_, v| v.chars().count() % 2 == 0)
            .map_values(|v| v.to_uppercase())
            .to_stream()
            .to("out", N, N),
        "table_ops_unmaterialized" => b
            .stream("in", N, N)
            .to_table(N, StringSerde)
            .filter(|_, v| v.chars().count() % 2 == 0)
            .map_values(|v| v.to_uppercase())
            .to_stream()
            .to("out", N, N),
        "to_table" => b
            .stream("in", N, N)
            .to_table(N, StringSerde)
            .to_stream()
            .to("out", N, N),
        "stream_table_inner" => {
            let table = b.table("right", N, StringSerde, "right");
            b.stream("left", N, N)
                .join_table(&table, N, |l, r| joined(present(l), Some(r)))
                .to("out", N, N)
        }
        "stream_table_left" => {
            let table = b.table("right", N, StringSerde, "right");
            b.stream("left", N, N)
                .left_join_table(&table, N, |l, r| joined(present(l), r))
                .to("out", N, N)
        }
        "stream_globaltable_inner" => {
            let table = b.global_table("right", N, StringSerde, "right");
            b.stream("left", N, N)
                .join_global(&table, foreign_key, N, |l, r| joined(present(l), Some(r)))
                .to("out", N, N)
        }
        "stream_globaltable_left" => {
            let table = b.global_table("right", N, StringSerde, "right");
            b.stream("left", N, N)
                .left_join_global(&table, foreign_key, N, |l, r| joined(present(l), r))
                .to("out", N, N)
        }
        "stream_stream_inner" => b
            .stream("left", N, N)
            .join(
                &b.stream("right", N, N),
                |l, r| joined(present(l), present(r)),
                windows(),
                StreamJoined::with(N, N, N),
            )
            .to("out", N, N),
        "stream_stream_left" => b
            .stream("left", N, N)
            .left_join(
                &b.stream("right", N, N),
                |l, r| joined(present(l), r.and_then(present)),
                windows(),
                StreamJoined::with(N, N, N),
            )
            .to("out", N, N),
        "stream_stream_outer" => b
            .stream("left", N, N)
            .outer_join(
                &b.stream("right", N, N),
                |l, r| joined(l.and_then(present), r.and_then(present)),
                windows(),
                StreamJoined::with(N, N, N),
            )
            .to("out", N, N),
        "table_table_inner" => {
            let right = b.table("right", N, StringSerde, "right");
            b.table("left", N, StringSerde, "left")
                .join(&right, |l, r| joined(Some(l), Some(r)))
                .to_stream()
                .map_values(Option::flatten)
                .to("out", N, N)
        }
        "table_table_left" => {
            let right = b.table("right", N, StringSerde, "right");
            b.table("left", N, StringSerde, "left")
                .left_join(&right, |l, r| joined(Some(l), r))
                .to_stream()
                .map_values(Option::flatten)
                .to("out", N, N)
        }
        "table_table_outer" => {
            let right = b.table("right", N, StringSerde, "right");
            b.table("left", N, StringSerde, "left")
                .outer_join(&right, joined)
                .to_stream()
                .map_values(Option::flatten)
                .to("out", N, N)
        }
        "table_fk_join" => {
            let right = b.table("right", N, StringSerde, "right");
            b.table("left", N, StringSerde, "left")
                .join_foreign_key(
                    &right,
                    |v| foreign_key(&None, &Some(v.clone())),
                    |l, r| joined(Some(l), Some(r)),
                )
                .to_stream()
                .map_values(Option::flatten)
                .to("out", N, N)
        }
        "table_group_reduce" => b
            .table("in", N, StringSerde, "in")
            .group_by(|_, v| group_and_amount(v), N, StringSerde)
            .reduce(
                |agg, v| (number(&agg) + number(&v)).to_string(),
                |agg, v| (number(&agg) - number(&v)).to_string(),
                "groups",
            )
            .to_stream()
            .to("out", N, N),
        "table_group_aggregate" => b
            .table("in", N, StringSerde, "in")
            .group_by(|_, v| group_and_amount(v), N, StringSerde)
            .aggregate(
                || "0".to_string(),
                |_, v, agg| (number(&agg) + number(v)).to_string(),
                |_, v, agg| (number(&agg) - number(v)).to_string(),
                StringSerde,
                "groups",
            )
            .to_stream()
            .to("out", N, N),
        _ => return None,
    }
    Some(b.build())
}

fn crosscheck_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crosscheck")
}

fn text(value: &Value) -> Text {
    value.as_str().map(str::to_owned)
}

/// The output records of one case through streamlib, in the layout of `expected/`.
fn run(case: &Value, topology: Topology) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        application_id: "crosscheck".into(),
        state_dir: Some(dir.path().to_path_buf()),
        ..DriverConfig::default()
    };
    let mut driver = TopologyTestDriver::new(topology, config).unwrap();
    for input in case["inputs"].as_array().unwrap() {
        driver
            .pipe(
                input["topic"].as_str().unwrap(),
                &N,
                &N,
                text(&input["key"]),
                text(&input["value"]),
                input["ts"].as_i64().unwrap(),
            )
            .unwrap();
    }
    driver
        .read_output("out", &N, &N)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::json!({"key": r.key, "value": r.value, "ts": r.timestamp}))
        .collect()
}

#[test]
fn streamlib_produces_what_kafka_streams_produces() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(crosscheck_dir().join("cases"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    cases.sort();
    let mut checked = Vec::new();
    let mut differing = Vec::new();
    for path in cases {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let topology = topology(case["topology"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{name}: streamlib has no topology {}", case["topology"]));
        let expected_path = crosscheck_dir().join(format!("expected/{name}.out.json"));
        let expected: Value =
            serde_json::from_slice(&std::fs::read(expected_path).unwrap()).unwrap();
        let expected = expected["outputs"]["out"].as_array().unwrap().clone();
        let actual = run(&case, topology);
        if actual != expected {
            let show = |records: &[Value]| {
                records
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            };
            differing.push(format!(
                "{name}:\n  Kafka Streams:\n    {}\n  streamlib:\n    {}",
                show(&expected),
                show(&actual)
            ));
        }
        checked.push(name);
    }
    assert!(!checked.is_empty(), "no case found");
    assert!(
        differing.is_empty(),
        "{} of {} cases differ from Kafka Streams:\n{}",
        differing.len(),
        checked.len(),
        differing.join("\n")
    );
}
