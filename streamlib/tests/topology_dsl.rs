//! The DSL on the TopologyTestDriver: stateless operations, grouping, repartitioning, tables,
//! custom processors, punctuators and error handling.

use std::time::Duration;

use streamlib::prelude::*;
use streamlib::testing::{DriverConfig, TopologyTestDriver};
use streamlib::{dead_letter_headers, ErrorHandlers};

fn driver(builder: StreamsBuilder, partitions: i32) -> TopologyTestDriver {
    let config = DriverConfig {
        partitions,
        ..DriverConfig::default()
    };
    TopologyTestDriver::new(builder.build(), config).expect("driver")
}

fn pipe(d: &mut TopologyTestDriver, topic: &str, key: &str, value: &str, ts: i64) {
    d.pipe(
        topic,
        &StringSerde,
        &StringSerde,
        key.to_string(),
        value.to_string(),
        ts,
    )
    .expect("pipe");
}

fn values(d: &mut TopologyTestDriver, topic: &str) -> Vec<(String, String)> {
    d.read_output(topic, &StringSerde, &StringSerde)
        .expect("read")
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect()
}

#[test]
fn stateless_operations_compose() {
    let b = StreamsBuilder::new();
    let words = b.stream("in", StringSerde, StringSerde);
    words
        .filter(|_, v| v.len() > 2)
        .map_values(|v| v.to_uppercase())
        .flat_map(|k, v| {
            v.split(' ')
                .map(|w| (k.clone(), w.to_string()))
                .collect::<Vec<_>>()
        })
        .to("out", StringSerde, StringSerde);
    let mut d = driver(b, 1);
    pipe(&mut d, "in", "a", "hi", 1);
    pipe(&mut d, "in", "a", "hello big world", 2);
    assert_eq!(
        values(&mut d, "out"),
        vec![
            ("a".into(), "HELLO".into()),
            ("a".into(), "BIG".into()),
            ("a".into(), "WORLD".into())
        ]
    );
}

#[test]
fn split_sends_each_record_to_its_first_matching_branch() {
    let b = StreamsBuilder::new();
    let branches = b.stream("in", StringSerde, StringSerde).split(vec![
        Box::new(|_: &String, v: &String| v.starts_with('a')),
        Box::new(|_: &String, v: &String| v.len() > 3),
    ]);
    branches[0].to("a", StringSerde, StringSerde);
    branches[1].to("long", StringSerde, StringSerde);
    let mut d = driver(b, 1);
    for v in ["apple", "banana", "ax", "fig"] {
        pipe(&mut d, "in", "k", v, 1);
    }
    let a: Vec<String> = values(&mut d, "a").into_iter().map(|(_, v)| v).collect();
    let long: Vec<String> = values(&mut d, "long").into_iter().map(|(_, v)| v).collect();
    assert_eq!(a, vec!["apple", "ax"]);
    assert_eq!(long, vec!["banana"]);
}

#[test]
fn merge_feeds_one_shared_downstream_node() {
    let b = StreamsBuilder::new();
    let left = b.stream("left", StringSerde, StringSerde);
    let right = b.stream("right", StringSerde, StringSerde);
    left.merge(&right)
        .group_by_key(StringSerde, StringSerde)
        .count(Materialized::as_store("merged-count").in_memory())
        .to_stream()
        .to("counts", StringSerde, Nullable(I64Serde));
    let mut d = driver(b, 1);
    pipe(&mut d, "left", "k", "x", 1);
    pipe(&mut d, "right", "k", "y", 2);
    pipe(&mut d, "left", "k", "z", 3);
    let counts: Vec<i64> = d
        .read_output("counts", &StringSerde, &I64Serde)
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(counts, vec![1, 2, 3], "both inputs update the same count");
}

#[test]
fn a_topic_read_as_a_stream_and_as_a_table_feeds_both() {
    let b = StreamsBuilder::new();
    let names = b.table("coins", StringSerde, StringSerde, "coins");
    b.stream("coins", StringSerde, StringSerde)
        .map_values(|v| v.len().to_string())
        .to("lengths", StringSerde, StringSerde);
    b.stream("trades", StringSerde, StringSerde)
        .join_table(&names, StringSerde, |t, name| format!("{t} {name}"))
        .to("named", StringSerde, StringSerde);
    let mut d = driver(b, 2);
    pipe(&mut d, "coins", "btc", "Bitcoin", 1);
    pipe(&mut d, "trades", "btc", "2", 2);
    assert_eq!(values(&mut d, "lengths"), [("btc".into(), "7".into())]);
    assert_eq!(
        values(&mut d, "named"),
        [("btc".into(), "2 Bitcoin".into())]
    );
}

#[test]
fn group_by_repartitions_so_each_new_key_is_counted_in_one_task() {
    let b = StreamsBuilder::new();
    b.stream("in", StringSerde, StringSerde)
        .group_by(|_, v| v.clone(), StringSerde, StringSerde)
        .count("by-value")
        .to_stream()
        .to("counts", StringSerde, Nullable(I64Serde));
    let topology = b.build();
    let description = topology.describe();
    assert!(description.contains("-repartition"), "{description}");
    let mut d = TopologyTestDriver::new(
        topology,
        DriverConfig {
            partitions: 4,
            ..DriverConfig::default()
        },
    )
    .unwrap();
    // Ten different input keys spread over four partitions, all with value "x".
    for i in 0..10 {
        pipe(&mut d, "in", &format!("user-{i}"), "x", i);
    }
    let counts: Vec<i64> = d
        .read_output("counts", &StringSerde, &I64Serde)
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>());
    assert_eq!(
        d.store_get("by-value", &StringSerde, &I64Serde, &"x".to_string())
            .unwrap(),
        Some(10)
    );
}

#[test]
fn reduce_and_aggregate_keep_one_value_per_key() {
    let b = StreamsBuilder::new();
    let grouped = b
        .stream("in", StringSerde, I64Serde)
        .group_by_key(StringSerde, I64Serde);
    grouped
        .reduce(|a, b| a.max(b), Materialized::as_store("max").in_memory())
        .to_stream()
        .to("max", StringSerde, Nullable(I64Serde));
    grouped
        .aggregate(|| 0.0, |_, v, sum| sum + *v as f64, F64Serde, "sum")
        .filter(|_, sum| *sum > 5.0)
        .to_stream()
        .to("big-sums", StringSerde, Nullable(F64Serde));
    let mut d = driver(b, 2);
    for (k, v) in [("a", 3), ("b", 1), ("a", 7), ("a", 2), ("b", 9)] {
        d.pipe("in", &StringSerde, &I64Serde, k.to_string(), v, 0)
            .unwrap();
    }
    let max = |d: &mut TopologyTestDriver, k: &str| {
        d.store_get("max", &StringSerde, &I64Serde, &k.to_string())
            .unwrap()
    };
    assert_eq!(max(&mut d, "a"), Some(7));
    assert_eq!(max(&mut d, "b"), Some(9));
    let sums: Vec<(String, f64)> = d
        .read_output("big-sums", &StringSerde, &F64Serde)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(
        sums,
        vec![("a".into(), 10.0), ("a".into(), 12.0), ("b".into(), 10.0)]
    );
}

/// Counts records per key in its own store and reports every 10 s of wall clock.
struct Reporter {
    punctuator: Option<streamlib::processor::PunctuatorId>,
}

impl Processor<String, String, String, i64> for Reporter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<(), ProcessError> {
        self.punctuator = Some(ctx.schedule(10_000, PunctuationType::WallClockTime));
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, i64>,
    ) -> Result<(), ProcessError> {
        let meta = ctx
            .record_metadata()
            .expect("metadata while processing")
            .clone();
        assert_eq!(&*meta.topic, "in");
        let store = ctx.key_value_store("seen")?;
        let n = store
            .get(record.key.as_bytes())?
            .map(|b| i64::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        store.put(record.key.as_bytes(), &(n + 1).to_be_bytes())?;
        Ok(())
    }

    fn punctuate(
        &mut self,
        id: streamlib::processor::PunctuatorId,
        timestamp: i64,
        ctx: &mut ProcessorContext<'_, String, i64>,
    ) -> Result<(), ProcessError> {
        assert_eq!(Some(id), self.punctuator);
        let entries = ctx.key_value_store("seen")?.prefix_scan(&[])?;
        for (k, v) in entries {
            let n = i64::from_be_bytes(v.try_into().unwrap());
            ctx.forward(Record::new(String::from_utf8(k).unwrap(), n, timestamp))?;
        }
        Ok(())
    }
}

#[test]
fn custom_processor_uses_stores_and_wall_clock_punctuation() {
    let b = StreamsBuilder::new();
    let s = b.stream("in", StringSerde, StringSerde);
    s.with_store(StoreSpec::new("seen", StoreKind::KeyValue).in_memory());
    s.process(|| Reporter { punctuator: None }, &["seen"])
        .to("report", StringSerde, I64Serde);
    let mut d = driver(b, 1);
    pipe(&mut d, "in", "x", "1", 5);
    pipe(&mut d, "in", "x", "2", 6);
    pipe(&mut d, "in", "y", "3", 7);
    d.advance_wall_clock(Duration::from_secs(9)).unwrap();
    assert!(d
        .read_output("report", &StringSerde, &I64Serde)
        .unwrap()
        .is_empty());
    d.advance_wall_clock(Duration::from_secs(1)).unwrap();
    let report: Vec<(String, i64, i64)> = d
        .read_output("report", &StringSerde, &I64Serde)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        report,
        vec![("x".into(), 2, 10_000), ("y".into(), 1, 10_000)]
    );
}

#[test]
fn poison_pill_goes_to_the_dead_letter_topic_and_processing_goes_on() {
    let b = StreamsBuilder::new();
    b.stream("in", StringSerde, I64Serde)
        .map_values(|v| v * 2)
        .to("out", StringSerde, I64Serde);
    let config = DriverConfig {
        handlers: ErrorHandlers {
            deserialization: ErrorAction::DeadLetter,
            processing: ErrorAction::Fail,
            dead_letter_topic: Some("dlq".into()),
            ..ErrorHandlers::default()
        },
        ..DriverConfig::default()
    };
    let mut d = TopologyTestDriver::new(b.build(), config).unwrap();
    d.pipe("in", &StringSerde, &I64Serde, "k".into(), 1, 0)
        .unwrap();
    d.pipe_raw(
        "in",
        Some(b"k".to_vec()),
        Some(b"not eight bytes".to_vec()),
        1,
    )
    .unwrap();
    d.pipe("in", &StringSerde, &I64Serde, "k".into(), 2, 2)
        .unwrap();
    let out: Vec<i64> = d
        .read_output("out", &StringSerde, &I64Serde)
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(out, vec![2, 4]);
    let dead = d.read_raw("dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"not eight bytes"[..]));
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(
        header(dead_letter_headers::ERROR_KIND).as_deref(),
        Some("deserialization")
    );
    assert_eq!(
        header(dead_letter_headers::SOURCE_TOPIC).as_deref(),
        Some("in")
    );
    assert_eq!(
        header(dead_letter_headers::SOURCE_OFFSET).as_deref(),
        Some("1")
    );
    assert_eq!(d.metrics().dead_lettered, 1);
    assert_eq!(d.metrics().processed, 2);
}

#[test]
fn failing_handler_surfaces_the_error() {
    let b = StreamsBuilder::new();
    b.stream("in", StringSerde, I64Serde)
        .to("out", StringSerde, I64Serde);
    let mut d = driver(b, 1);
    let err = d
        .pipe_raw("in", Some(b"k".to_vec()), Some(b"bad".to_vec()), 0)
        .unwrap_err();
    assert!(matches!(err, ProcessError::Deserialization { .. }), "{err}");
}
