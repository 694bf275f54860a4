//! The Kafka runtime on the real broker: end-to-end aggregation under both guarantees,
//! restore from the checkpoint, full restore, poison pills, scale-out over instances and over
//! stream threads, thread failures, and start-up errors.
//! Needs `KAFKA_BOOTSTRAP` (see `scripts/test`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use streamlib::error::{SerdeError, StreamsError};
use streamlib::metrics::MetricsRegistry;
use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig, ThreadFailure};
use streamlib::testing::{
    consume_until, create_topic, create_topic_with_configs, kafka_bootstrap, produce, topic_config,
    unique_topic,
};
use streamlib::topology::InternalTopicKind;
use streamlib::{dead_letter_headers, ErrorHandlers};

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 4;

struct Names {
    app: String,
    input: String,
    output: String,
}

fn names(prefix: &str) -> Names {
    Names {
        app: unique_topic(prefix),
        input: unique_topic(&format!("{prefix}-in")),
        output: unique_topic(&format!("{prefix}-out")),
    }
}

/// Creates the input with `partitions` partitions and a one-partition output topic.
fn create_topics(n: &Names, partitions: i32) {
    create_topic(&kafka_bootstrap(), &n.input, partitions);
    create_topic(&kafka_bootstrap(), &n.output, 1);
}

/// Per-key running count of the input, written to the output.
fn counting_topology(n: &Names) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        .to(&n.output, StringSerde, Nullable(I64Serde));
    b.build()
}

fn config(n: &Names, state_dir: &Path, guarantee: ProcessingGuarantee) -> StreamsConfig {
    let mut config = StreamsConfig::new(&n.app, &kafka_bootstrap());
    config.state_dir = state_dir.to_path_buf();
    config.processing_guarantee = guarantee;
    config.commit_interval = Some(Duration::from_millis(100));
    config
}

/// Now, in ms: record timestamps must be recent, or the broker's time-based retention
/// (7 days) deletes them while a test runs.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn records(keys: usize, per_key: usize, value: &str) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let base = now_ms();
    (0..keys * per_key)
        .map(|i| {
            (
                format!("key-{}", i % keys).into_bytes(),
                value.as_bytes().to_vec(),
                base + i as i64,
            )
        })
        .collect()
}

/// The latest count per key among `got` (a tombstone counts as -1).
fn latest_counts(got: &[streamlib::testing::Consumed]) -> BTreeMap<String, i64> {
    let mut map = BTreeMap::new();
    for c in got {
        let value = c
            .value
            .as_deref()
            .map(|v| i64::from_be_bytes(v.try_into().expect("8 bytes")));
        map.insert(
            String::from_utf8(c.key.clone()).expect("utf8"),
            value.unwrap_or(-1),
        );
    }
    map
}

/// Latest count per key in the output, once every key reached `expected`.
fn final_counts(output: &str, keys: usize, expected: i64) -> BTreeMap<String, i64> {
    let got = consume_until(&kafka_bootstrap(), output, "read_committed", WAIT, |got| {
        let map = latest_counts(got);
        map.len() == keys && map.values().all(|v| *v >= expected)
    });
    latest_counts(&got)
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    streamlib::testing::wait_for(what, WAIT, condition);
}

fn run_counting(guarantee: ProcessingGuarantee) {
    let n = names("count");
    create_topics(&n, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(counting_topology(&n), config(&n, dir.path(), guarantee));
    app.start().unwrap();
    produce(&kafka_bootstrap(), &n.input, &records(10, 20, "x"));
    let counts = final_counts(&n.output, 10, 20);
    assert!(counts.values().all(|c| *c == 20), "{counts:?}");
    assert!(app.is_running());
    app.close().unwrap();
}

#[test]
fn aggregation_end_to_end_at_least_once() {
    run_counting(ProcessingGuarantee::AtLeastOnce);
}

#[test]
fn aggregation_end_to_end_exactly_once() {
    run_counting(ProcessingGuarantee::ExactlyOnceV2);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Starts an exactly-once instance on `state_dir`, feeds it `per_key` more records per key,
/// waits until every key's count is `expected` and closes it cleanly. Returns how many
/// changelog records it restored at start.
fn run_restoring(n: &Names, state_dir: &Path, per_key: usize, expected: i64) -> u64 {
    let mut app = KafkaStreams::new(
        counting_topology(n),
        config(n, state_dir, ProcessingGuarantee::ExactlyOnceV2),
    );
    app.start().unwrap();
    produce(&kafka_bootstrap(), &n.input, &records(10, per_key, "x"));
    let counts = final_counts(&n.output, 10, expected);
    assert!(counts.values().all(|c| *c == expected), "{counts:?}");
    let restored = app
        .metrics()
        .restored
        .load(std::sync::atomic::Ordering::Relaxed);
    app.close().unwrap();
    restored
}

#[test]
fn restore_replays_only_what_the_checkpoint_has_not_seen() {
    let n = names("restore");
    create_topics(&n, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let snapshot = tempfile::tempdir().unwrap();

    // Run 1: 100 records; a clean close checkpoints every store.
    assert_eq!(run_restoring(&n, dir.path(), 10, 10), 0);
    copy_dir(dir.path(), &snapshot.path().join("state"));
    // Run 2 restores nothing (checkpoint = end of changelog), then counts 50 more.
    assert_eq!(run_restoring(&n, dir.path(), 5, 15), 0);
    // Run 3 starts from run 1's state: exactly the 50 changelog records of run 2 are replayed.
    assert_eq!(run_restoring(&n, &snapshot.path().join("state"), 1, 16), 50);
    // Run 4 without any local state restores the whole changelog: 160 writes.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(run_restoring(&n, empty.path(), 1, 17), 160);
}

#[test]
fn poison_pill_goes_to_the_dead_letter_topic_and_processing_goes_on() {
    let n = names("poison");
    let dlq = unique_topic("poison-dlq");
    create_topics(&n, 1);
    create_topic(&kafka_bootstrap(), &dlq, 1);
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, I64Serde)
        .map_values(|v| v * 10)
        .to(&n.output, StringSerde, I64Serde);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&n, dir.path(), ProcessingGuarantee::AtLeastOnce);
    config.handlers = ErrorHandlers {
        deserialization: ErrorAction::DeadLetter,
        processing: ErrorAction::Fail,
        dead_letter_topic: Some(dlq.clone()),
        ..ErrorHandlers::default()
    };
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().unwrap();
    produce(
        &kafka_bootstrap(),
        &n.input,
        &[
            (b"a".to_vec(), 1i64.to_be_bytes().to_vec(), now_ms()),
            (b"a".to_vec(), b"poison".to_vec(), now_ms()),
            (b"a".to_vec(), 2i64.to_be_bytes().to_vec(), now_ms()),
        ],
    );
    let out = consume_until(
        &kafka_bootstrap(),
        &n.output,
        "read_committed",
        WAIT,
        |got| got.len() >= 2,
    );
    let values: Vec<i64> = out
        .iter()
        .map(|c| i64::from_be_bytes(c.value.as_deref().unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(values, vec![10, 20]);
    let dead = consume_until(&kafka_bootstrap(), &dlq, "read_committed", WAIT, |got| {
        !got.is_empty()
    });
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"poison"[..]));
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(dead_letter_headers::ERROR_KIND),
        Some(b"deserialization".to_vec())
    );
    assert_eq!(
        header(dead_letter_headers::SOURCE_OFFSET),
        Some(b"1".to_vec())
    );
    assert!(app.is_running());
    app.close().unwrap();
}

#[test]
fn instances_split_partitions_and_rebalance_without_loss() {
    let n = names("scale");
    create_topics(&n, PARTITIONS);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |i: usize| {
        let mut app = KafkaStreams::new(
            counting_topology(&n),
            config(&n, dirs[i].path(), ProcessingGuarantee::ExactlyOnceV2),
        );
        app.start().unwrap();
        app
    };
    let mut a = start(0);
    let mut b = start(1);
    wait_for("two instances to share the partitions", || {
        let (pa, pb) = (a.assigned_partitions(), b.assigned_partitions());
        !pa.is_empty()
            && !pb.is_empty()
            && pa.len() + pb.len() == PARTITIONS as usize
            && pa.iter().all(|p| !pb.contains(p))
    });
    produce(&kafka_bootstrap(), &n.input, &records(20, 5, "1"));
    final_counts(&n.output, 20, 5);

    let mut c = start(2);
    wait_for("the third instance to get partitions", || {
        !c.assigned_partitions().is_empty()
    });
    produce(&kafka_bootstrap(), &n.input, &records(20, 5, "2"));
    final_counts(&n.output, 20, 10);
    c.close().unwrap();
    wait_for("the partitions to return to two instances", || {
        a.assigned_partitions().len() + b.assigned_partitions().len() == PARTITIONS as usize
    });
    produce(&kafka_bootstrap(), &n.input, &records(20, 5, "3"));
    let counts = final_counts(&n.output, 20, 15);
    assert!(
        counts.values().all(|v| *v == 15),
        "no loss, no double count: {counts:?}"
    );
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn a_missing_input_topic_is_a_clear_error_at_start() {
    let n = names("missing");
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(
        counting_topology(&n),
        config(&n, dir.path(), ProcessingGuarantee::AtLeastOnce),
    );
    let err = app.start().unwrap_err();
    match &err {
        StreamsError::MissingSourceTopics(topics) => assert_eq!(topics, &vec![n.input.clone()]),
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("do not exist"), "{err}");
}

#[test]
fn inputs_with_different_partition_counts_are_refused() {
    let n = names("copart");
    let other = unique_topic("copart-other");
    create_topic(&kafka_bootstrap(), &n.input, 2);
    create_topic(&kafka_bootstrap(), &other, 3);
    let b = StreamsBuilder::new();
    let left = b.stream(&n.input, StringSerde, StringSerde);
    left.merge(&b.stream(&other, StringSerde, StringSerde))
        .to(&n.output, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(
        b.build(),
        config(&n, dir.path(), ProcessingGuarantee::AtLeastOnce),
    );
    assert!(matches!(
        app.start(),
        Err(StreamsError::PartitionCountMismatch(_))
    ));
}

fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Two instances of different applications report to one registry that the first serves,
/// next to the application's own counter: each family is described once, with a series per
/// instance, and a closed instance leaves it.
#[test]
fn prometheus_metrics_count_records_and_report_lag() {
    let n = names("metrics");
    create_topics(&n, 2);
    let peer = Names {
        app: unique_topic("metrics-peer"),
        input: n.input.clone(),
        output: unique_topic("metrics-peer-out"),
    };
    create_topic(&kafka_bootstrap(), &peer.output, 1);
    let registry = MetricsRegistry::default();
    let widgets = prometheus_client::metrics::counter::Counter::<u64>::default();
    registry.register("app_widgets", "Widgets made", widgets.clone());
    widgets.inc_by(7);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&n, dir.path(), ProcessingGuarantee::AtLeastOnce);
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    config.metrics_registry = Some(registry.clone());
    let mut app = KafkaStreams::new(counting_topology(&n), config);
    app.start().unwrap();
    let mut peer_config = self::config(&peer, dir.path(), ProcessingGuarantee::AtLeastOnce);
    peer_config.metrics_registry = Some(registry);
    let mut peer_app = KafkaStreams::new(counting_topology(&peer), peer_config);
    peer_app.start().unwrap();
    assert_eq!(peer_app.metrics_addr(), None, "only the first serves");
    let addr = app.metrics_addr().expect("metrics port bound");
    produce(&kafka_bootstrap(), &n.input, &records(4, 10, "x"));
    final_counts(&n.output, 4, 10);
    final_counts(&peer.output, 4, 10);
    let consumed =
        |app: &str| format!("\nstreamlib_records_consumed_total{{application_id=\"{app}\"}} 40\n");
    let lag = format!(
        "\nstreamlib_consumer_lag{{application_id=\"{}\",topic=\"{}\",partition=\"",
        n.app, n.input
    );
    wait_for("metrics to show the records and the lag", || {
        let text = scrape(addr);
        text.contains(&consumed(&n.app))
            && text.contains(&consumed(&peer.app))
            && text.contains(&lag)
    });
    let text = scrape(addr);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("content-type: text/plain; version=0.0.4"),
        "{text}"
    );
    for (family, kind) in [
        ("streamlib_records_consumed_total", "counter"),
        ("streamlib_records_processed_total", "counter"),
        ("streamlib_records_produced_total", "counter"),
        ("streamlib_records_late_dropped_total", "counter"),
        ("streamlib_records_dropped_total", "counter"),
        ("streamlib_records_dead_lettered_total", "counter"),
        ("streamlib_restored_records_total", "counter"),
        ("streamlib_transactions_aborted_total", "counter"),
        ("streamlib_commit_latency_seconds", "histogram"),
        ("streamlib_tasks", "gauge"),
        ("streamlib_consumer_lag", "gauge"),
        ("app_widgets_total", "counter"),
    ] {
        assert_eq!(
            text.matches(&format!("\n# TYPE {family} {kind}\n")).count(),
            1,
            "{family} described once: {text}"
        );
    }
    for app in [&n.app, &peer.app] {
        for series in [
            format!("\nstreamlib_records_processed_total{{application_id=\"{app}\"}} 40\n"),
            format!(
                "\nstreamlib_records_dropped_total{{application_id=\"{app}\",kind=\"processing\"}} 0\n"
            ),
            format!(
                "\nstreamlib_records_dead_lettered_total{{application_id=\"{app}\",kind=\"production\"}} 0\n"
            ),
            format!(
                "\nstreamlib_commit_latency_seconds_bucket{{application_id=\"{app}\",le=\"+Inf\"}} "
            ),
            format!("\nstreamlib_commit_latency_seconds_count{{application_id=\"{app}\"}} "),
            format!("\nstreamlib_tasks{{application_id=\"{app}\"}} 2\n"),
        ] {
            assert!(text.contains(&series), "{series:?} in {text}");
        }
    }
    assert!(text.contains("\napp_widgets_total 7\n"), "{text}");
    peer_app.close().unwrap();
    let text = scrape(addr);
    assert!(
        !text.contains(&peer.app),
        "a closed instance leaves: {text}"
    );
    assert!(text.contains(&consumed(&n.app)), "{text}");
    app.close().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "closing the serving instance stops the endpoint"
    );
}

/// An output topic whose broker-side limit refuses records over 1 KiB.
fn create_small_message_topic(topic: &str) {
    create_topic_with_configs(
        &kafka_bootstrap(),
        topic,
        1,
        &[("max.message.bytes", "1024")],
    );
}

/// A stateless app (its state directory is never written) whose `big` outputs exceed the limit.
fn oversized_app(
    n: &Names,
    guarantee: ProcessingGuarantee,
    production: ErrorAction,
) -> (KafkaStreams, tempfile::TempDir) {
    create_topic(&kafka_bootstrap(), &n.input, 1);
    create_small_message_topic(&n.output);
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, StringSerde)
        .map_values(|v| if v == "big" { "x".repeat(10_000) } else { v })
        .to(&n.output, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(n, dir.path(), guarantee);
    config.handlers.production = production;
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().unwrap();
    (app, dir)
}

fn send(n: &Names, value: &str) {
    produce(
        &kafka_bootstrap(),
        &n.input,
        &[(b"k".to_vec(), value.as_bytes().to_vec(), now_ms())],
    );
}

/// The output topic's records, once the one with value `after` is among them.
fn outputs_through_after(n: &Names) -> Vec<streamlib::testing::Consumed> {
    consume_until(
        &kafka_bootstrap(),
        &n.output,
        "read_committed",
        WAIT,
        |got| {
            got.iter()
                .any(|c| c.value.as_deref() == Some(&b"after"[..]))
        },
    )
}

fn refused_records_are_dropped_and_counted_when_the_handler_continues(
    guarantee: ProcessingGuarantee,
) {
    use std::sync::atomic::Ordering;
    let n = names("refused");
    let (mut app, _state) = oversized_app(&n, guarantee, ErrorAction::LogAndContinue);
    send(&n, "before");
    send(&n, "big");
    send(&n, "after");
    let out = outputs_through_after(&n);
    let values: Vec<&[u8]> = out.iter().filter_map(|c| c.value.as_deref()).collect();
    assert_eq!(
        values,
        vec![&b"before"[..], &b"after"[..]],
        "processing went on without the refused record"
    );
    assert_eq!(app.metrics().production_dropped.load(Ordering::Relaxed), 1);
    assert_eq!(
        app.metrics()
            .production_dead_lettered
            .load(Ordering::Relaxed),
        0
    );
    assert!(app.is_running());
    app.close().unwrap();
}

#[test]
fn records_the_broker_refuses_are_dropped_and_counted_when_the_handler_continues() {
    refused_records_are_dropped_and_counted_when_the_handler_continues(
        ProcessingGuarantee::AtLeastOnce,
    );
}

#[test]
fn exactly_once_drops_and_counts_refused_records_when_the_handler_continues() {
    refused_records_are_dropped_and_counted_when_the_handler_continues(
        ProcessingGuarantee::ExactlyOnceV2,
    );
}

fn refused_records_stop_the_instance_when_the_handler_fails(guarantee: ProcessingGuarantee) {
    let n = names("refused-fail");
    let (mut app, _state) = oversized_app(&n, guarantee, ErrorAction::Fail);
    send(&n, "big");
    wait_for("the instance to stop", || !app.is_running());
    match app.close() {
        Err(StreamsError::Refused { topic, source }) => {
            assert_eq!(topic, n.output);
            assert!(
                source.to_string().contains("Message size too large"),
                "{source}"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[test]
fn records_the_broker_refuses_stop_the_instance_when_the_handler_fails() {
    refused_records_stop_the_instance_when_the_handler_fails(ProcessingGuarantee::AtLeastOnce);
}

#[test]
fn exactly_once_stops_on_a_refused_record_when_the_handler_fails() {
    refused_records_stop_the_instance_when_the_handler_fails(ProcessingGuarantee::ExactlyOnceV2);
}

/// Under exactly-once a record refused by chance (a processor that makes it too large only
/// once) aborts the transaction; the instance recovers in process (tasks rebuilt from their
/// last commit, consumer rewound) and redoes the work exactly once, the record now accepted.
#[test]
fn exactly_once_aborts_a_failed_transaction_and_recovers_in_process() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let n = names("abort");
    create_topic(&kafka_bootstrap(), &n.input, 2);
    create_small_message_topic(&n.output);
    let fired = Arc::new(AtomicBool::new(false));
    let fire_once = Arc::clone(&fired);
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        // The fifth count of the first key to reach it is too large for the output topic, once.
        .map_values(move |count| {
            let count = count.unwrap_or_default(); // an aggregation never deletes
            if count == 5 && !fire_once.swap(true, Ordering::SeqCst) {
                "x".repeat(10_000)
            } else {
                count.to_string()
            }
        })
        .to(&n.output, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let config = config(&n, dir.path(), ProcessingGuarantee::ExactlyOnceV2);
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().unwrap();
    let (keys, per_key) = (4, 10);
    produce(&kafka_bootstrap(), &n.input, &records(keys, per_key, "x"));
    let out = consume_until(
        &kafka_bootstrap(),
        &n.output,
        "read_committed",
        WAIT,
        |got| got.len() >= keys * per_key,
    );
    let mut per_key_counts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &out {
        let value = String::from_utf8(c.value.clone().unwrap_or_default()).unwrap();
        per_key_counts
            .entry(String::from_utf8(c.key.clone()).unwrap())
            .or_default()
            .push(value);
    }
    let expected: Vec<String> = (1..=per_key).map(|i| i.to_string()).collect();
    assert_eq!(per_key_counts.len(), keys, "{per_key_counts:?}");
    for (key, counts) in &per_key_counts {
        assert_eq!(
            counts, &expected,
            "key {key}: each count exactly once, in order"
        );
    }
    assert!(
        fired.load(Ordering::SeqCst),
        "the oversized record was produced"
    );
    assert_eq!(
        app.metrics().aborted_transactions.load(Ordering::Relaxed),
        1
    );
    assert!(app.is_running());
    app.close().unwrap();
}

/// Writes a 2 MB value to its store: a changelog record over the client's `message.max.bytes`.
struct HugeState;

impl Processor<String, String, String, String> for HugeState {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        ctx.key_value_store("huge")?
            .put(record.key.as_bytes(), &vec![0; 2 << 20])?;
        ctx.forward(record)
    }
}

/// A failure that repeats on every retry (a changelog record too large: a store cannot skip
/// a write, so no handler applies) stops the instance after a bounded number of aborts.
#[test]
fn exactly_once_stops_when_the_same_failure_repeats() {
    let n = names("abort-repeat");
    create_topics(&n, 1);
    let b = StreamsBuilder::new();
    let stream = b.stream(&n.input, StringSerde, StringSerde);
    stream.with_store(StoreSpec::new("huge", StoreKind::KeyValue));
    stream
        .process(|| HugeState, &["huge"])
        .to(&n.output, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&n, dir.path(), ProcessingGuarantee::ExactlyOnceV2);
    config.handlers.production = ErrorAction::LogAndContinue;
    let mut app = KafkaStreams::new(b.build(), config);
    app.start().unwrap();
    send(&n, "x");
    wait_for("the instance to stop", || !app.is_running());
    assert_eq!(
        app.metrics()
            .aborted_transactions
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    let err = app.close().unwrap_err();
    assert!(err.to_string().contains("changelog"), "{err}");
    assert!(err.to_string().contains("Message size too large"), "{err}");
}

#[test]
fn a_windowed_changelog_is_kept_for_window_plus_grace_plus_a_day() {
    let n = names("window-retention");
    create_topics(&n, 1);
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .windowed_by(TimeWindows::of(Duration::from_secs(60)).grace(Duration::from_secs(30)))
        .count("per-minute")
        .to_stream()
        .to(
            &n.output,
            WindowedSerde::new(StringSerde),
            Nullable(I64Serde),
        );
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(
        b.build(),
        config(&n, dir.path(), ProcessingGuarantee::AtLeastOnce),
    );
    app.start().unwrap();
    let changelog = format!("{}-per-minute-changelog", n.app);
    let day_ms = 24 * 3600 * 1000;
    assert_eq!(
        topic_config(&kafka_bootstrap(), &changelog, "retention.ms"),
        Some((60_000 + 30_000 + day_ms).to_string())
    );
    assert_eq!(
        topic_config(&kafka_bootstrap(), &changelog, "cleanup.policy"),
        Some("compact,delete".to_string())
    );
    app.close().unwrap();
}

/// A re-keying count (group by value: a repartition topic), so a task reads two topics.
fn rekeying_topology(n: &Names, values: impl Serde<String>) -> Topology {
    let b = StreamsBuilder::new();
    b.stream(&n.input, StringSerde, values)
        .group_by(|_, v| v.clone(), StringSerde, StringSerde)
        .count("by-value")
        .to_stream()
        .to(&n.output, StringSerde, Nullable(I64Serde));
    b.build()
}

/// `keys × per_key` records with distinct input keys whose values are `key-<i % keys>`.
fn rekeyed_records(keys: usize, per_key: usize) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let base = now_ms();
    (0..keys * per_key)
        .map(|i| {
            (
                format!("user-{i}").into_bytes(),
                format!("key-{}", i % keys).into_bytes(),
                base + i as i64,
            )
        })
        .collect()
}

#[test]
fn stream_threads_split_the_tasks_of_a_repartitioning_topology_and_count_exactly_once() {
    let n = names("threads");
    create_topics(&n, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&n, dir.path(), ProcessingGuarantee::ExactlyOnceV2);
    config.num_stream_threads = 2;
    config.repartition_purge_interval = Duration::ZERO;
    let topology = rekeying_topology(&n, StringSerde);
    let repartition = topology
        .internal_topics()
        .into_iter()
        .find(|t| t.kind == InternalTopicKind::Repartition)
        .unwrap()
        .topic(&n.app);
    let mut app = KafkaStreams::new(topology, config);
    app.start().unwrap();
    // Kept until purged, whatever the records' timestamps, as Kafka Streams creates it.
    assert_eq!(
        topic_config(&kafka_bootstrap(), &repartition, "retention.ms"),
        Some("-1".to_string())
    );
    // Each thread owns whole tasks: partition p of the input and of the repartition topic.
    wait_for("both threads to own two tasks each", || {
        let threads = app.thread_partitions();
        threads.len() == 2 && threads.iter().all(|p| p.len() == 2)
    });
    assert_eq!(app.assigned_partitions(), vec![0, 1, 2, 3]);
    assert_eq!(app.metrics().tasks.load(Ordering::Relaxed), 4);
    produce(&kafka_bootstrap(), &n.input, &rekeyed_records(10, 20));
    let counts = final_counts(&n.output, 10, 20);
    assert!(counts.values().all(|c| *c == 20), "{counts:?}");
    // Every repartition record is committed by now, and each commit purges what it committed:
    // all but the commit markers after the last record (one per thread's producer at most),
    // which no consumer offset passes.
    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .unwrap();
    wait_for("the committed repartition records to be purged", || {
        (0..PARTITIONS).all(|p| {
            watermarks
                .fetch_watermarks(&repartition, p, WAIT)
                .is_ok_and(|(low, high)| low > 0 && high - low <= 2)
        })
    });
    assert!(app.is_running());
    app.close().unwrap();
}

/// Fails to decode `boom` the first time it sees it, and never again: a failure that passes.
struct FailsOnce(Arc<AtomicBool>);

impl Serde<String> for FailsOnce {
    fn serialize(&self, topic: &str, value: &String) -> Result<Vec<u8>, SerdeError> {
        StringSerde.serialize(topic, value)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<String, SerdeError> {
        if bytes == b"boom" && !self.0.swap(true, Ordering::SeqCst) {
            return Err(SerdeError::Length {
                expected: 0,
                actual: bytes.len(),
            });
        }
        StringSerde.deserialize(topic, bytes)
    }
}

/// Two threads count `boom` among ten keys' values; the first decode of `boom` fails the
/// thread that reads it (the deserialization handler fails).
fn run_with_a_failing_thread(failure: ThreadFailure) -> (KafkaStreams, Names, tempfile::TempDir) {
    let n = names("thread-failure");
    create_topics(&n, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&n, dir.path(), ProcessingGuarantee::ExactlyOnceV2);
    config.num_stream_threads = 2;
    config.thread_failure = failure;
    config.handlers.deserialization = ErrorAction::Fail;
    let topology = rekeying_topology(&n, FailsOnce(Arc::default()));
    let mut app = KafkaStreams::new(topology, config);
    app.start().unwrap();
    let mut records = rekeyed_records(10, 20);
    records.push((b"user-boom".to_vec(), b"boom".to_vec(), now_ms()));
    produce(&kafka_bootstrap(), &n.input, &records);
    (app, n, dir)
}

#[test]
fn a_failed_stream_thread_is_replaced_and_its_work_is_redone_exactly_once() {
    let (mut app, n, _dir) = run_with_a_failing_thread(ThreadFailure::ReplaceThread);
    let mut expected: BTreeMap<String, i64> = (0..10).map(|i| (format!("key-{i}"), 20)).collect();
    expected.insert("boom".into(), 1);
    let got = consume_until(
        &kafka_bootstrap(),
        &n.output,
        "read_committed",
        WAIT,
        |got| latest_counts(got) == expected,
    );
    assert_eq!(
        latest_counts(&got),
        expected,
        "nothing lost, nothing counted twice"
    );
    assert_eq!(app.metrics().replaced_threads.load(Ordering::Relaxed), 1);
    assert!(app.is_running());
    app.close().unwrap();
}

#[test]
fn a_failed_stream_thread_stops_the_instance_by_default() {
    let (mut app, _n, _dir) = run_with_a_failing_thread(ThreadFailure::ShutdownInstance);
    wait_for("the instance to stop", || !app.is_running());
    let error = app.close().expect_err("the thread's error");
    assert!(
        matches!(
            error,
            StreamsError::Process(ProcessError::Deserialization { .. })
        ),
        "{error:?}"
    );
    assert_eq!(app.metrics().replaced_threads.load(Ordering::Relaxed), 0);
}
