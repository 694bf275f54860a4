//! A failing store is fatal, never a bad record: with every handler set to dead-letter, a
//! store that cannot read its own data stops the task with the store's error, and no dead
//! letter is written. Shown in the test driver and on the real broker (`KAFKA_BOOTSTRAP`).
//!
//! The failing store is a real one: a RocksDB store whose files hold bytes another layout
//! wrote. A first run keeps key-value store `seen` with a 2-byte value under the primary key
//! of `a`; a second run opens the same files as a TTL store, whose entries start with an
//! 8-byte expiry, so reading `a` finds them corrupt.

use std::path::Path;
use std::time::{Duration, Instant};

use streamlib::error::{StateError, StreamsError};
use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{
    consume_until, create_topic, kafka_bootstrap, produce, unique_topic, DriverConfig,
    TopologyTestDriver,
};
use streamlib::ErrorHandlers;

const STORE: &str = "seen";
/// The TTL layout's primary key of `a`: tag byte 0, then the key.
const PRIMARY_KEY_OF_A: &[u8] = b"\0a";

/// Writes two bytes under the TTL primary key of `a` in a plain key-value store.
struct WriteForeignLayout;

impl Processor<String, String, String, String> for WriteForeignLayout {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        ctx.key_value_store(STORE)?.put(PRIMARY_KEY_OF_A, b"xy")?;
        ctx.forward(record)
    }
}

/// Forwards a record unless its key was seen within the TTL.
struct Dedup;

impl Processor<String, String, String, String> for Dedup {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        let seen = ctx.ttl_store(STORE)?;
        if seen.get(record.key.as_bytes(), now)?.is_some() {
            return Ok(());
        }
        seen.put(record.key.as_bytes(), b"", now)?;
        ctx.forward(record)
    }
}

fn writer(input: &str, output: &str) -> Topology {
    let b = StreamsBuilder::new();
    let stream = b.stream(input, StringSerde, StringSerde);
    stream.with_store(StoreSpec::new(STORE, StoreKind::KeyValue));
    stream
        .process(|| WriteForeignLayout, &[STORE])
        .to(output, StringSerde, StringSerde);
    b.build()
}

fn dedup(input: &str, output: &str) -> Topology {
    let b = StreamsBuilder::new();
    let stream = b.stream(input, StringSerde, StringSerde);
    stream.with_store(StoreSpec::new(
        STORE,
        StoreKind::Ttl {
            ttl: Duration::from_secs(3600),
        },
    ));
    stream
        .process(|| Dedup, &[STORE])
        .to(output, StringSerde, StringSerde);
    b.build()
}

fn dead_lettering(dlq: &str) -> ErrorHandlers {
    ErrorHandlers {
        deserialization: ErrorAction::DeadLetter,
        processing: ErrorAction::DeadLetter,
        production: ErrorAction::DeadLetter,
        dead_letter_topic: Some(dlq.to_string()),
    }
}

fn assert_corrupt_store(error: &ProcessError) {
    match error {
        ProcessError::State(StateError::Corrupt { store, .. }) => assert_eq!(store, STORE),
        other => panic!("expected the store's corruption, got {other}"),
    }
}

#[test]
fn a_failing_store_stops_the_driver_instead_of_dead_lettering() {
    let dir = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        state_dir: Some(dir.path().to_path_buf()),
        handlers: dead_lettering("dlq"),
        ..DriverConfig::default()
    };
    let mut first = TopologyTestDriver::new(writer("in", "out"), config.clone()).unwrap();
    first
        .pipe("in", &StringSerde, &StringSerde, "a".into(), "x".into(), 0)
        .unwrap();
    first.close().unwrap();

    let mut second = TopologyTestDriver::new(dedup("in", "out"), config).unwrap();
    let error = second
        .pipe("in", &StringSerde, &StringSerde, "a".into(), "x".into(), 1)
        .unwrap_err();
    assert_corrupt_store(&error);
    assert!(second.read_raw("dlq").is_empty(), "no dead letter");
    assert!(second.read_raw("out").is_empty(), "no output");
    assert_eq!(second.metrics().dead_lettered, 0);
}

fn runtime_config(app: &str, dir: &Path, dlq: &str) -> StreamsConfig {
    let mut config = StreamsConfig::new(app, &kafka_bootstrap());
    config.state_dir = dir.to_path_buf();
    config.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
    config.commit_interval = Some(Duration::from_millis(100));
    config.handlers = dead_lettering(dlq);
    config
}

#[test]
fn a_failing_store_stops_the_runtime_instead_of_dead_lettering() {
    let app_id = unique_topic("store-failure");
    let input = unique_topic("store-failure-in");
    let output = unique_topic("store-failure-out");
    let dlq = unique_topic("store-failure-dlq");
    for topic in [&input, &output, &dlq] {
        create_topic(&kafka_bootstrap(), topic, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let record = |value: &str| (b"a".to_vec(), value.as_bytes().to_vec(), now);

    let mut first = KafkaStreams::new(
        writer(&input, &output),
        runtime_config(&app_id, dir.path(), &dlq),
    );
    first.start().unwrap();
    produce(&kafka_bootstrap(), &input, &[record("first")]);
    let out = consume_until(
        &kafka_bootstrap(),
        &output,
        "read_committed",
        Duration::from_secs(90),
        |got| !got.is_empty(),
    );
    assert_eq!(out.len(), 1, "the first run processed its record");
    first.close().unwrap();
    let output_end = end_offset(&output);

    let mut second = KafkaStreams::new(
        dedup(&input, &output),
        runtime_config(&app_id, dir.path(), &dlq),
    );
    second.start().unwrap();
    produce(&kafka_bootstrap(), &input, &[record("second")]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while second.is_running() {
        assert!(
            Instant::now() < deadline,
            "the failing store did not stop the app"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    match second.close() {
        Err(StreamsError::Process(error)) => assert_corrupt_store(&error),
        other => panic!("expected the store's error, got {other:?}"),
    }
    // Every record written, aborted ones included, takes an offset: unmoved end offsets show
    // that the second run wrote nothing, dead letters included.
    assert_eq!(end_offset(&dlq), 0, "no dead letter");
    assert_eq!(
        end_offset(&output),
        output_end,
        "no output from the second run"
    );
}

/// The end offset of partition 0 of `topic`.
fn end_offset(topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(30))
        .unwrap();
    high
}
