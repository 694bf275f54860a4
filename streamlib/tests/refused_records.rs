//! Records the broker refuses for a reason of their own never stop an app, under both
//! guarantees: 1,000 inputs, one of whose outputs the broker refuses (a timestamp 3 h ahead:
//! `INVALID_TIMESTAMP`; or a value over the output topic's 1 KiB `max.message.bytes`:
//! `MESSAGE_TOO_LARGE`), give exactly 999 outputs and one dead letter in the `read_committed`
//! outputs, and the app goes on with the records after it. Needs `KAFKA_BOOTSTRAP`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use streamlib::prelude::*;
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{
    consume_until, create_topic, create_topic_with_configs, kafka_bootstrap, produce, unique_topic,
};
use streamlib::{dead_letter_headers, ErrorHandlers};

const WAIT: Duration = Duration::from_secs(120);
const INPUTS: usize = 1_000;
const AFTER: usize = 10;
/// The input whose output the broker refuses.
const REFUSED: usize = 500;
const THREE_HOURS_MS: i64 = 3 * 3600 * 1000;

/// What makes the one output unacceptable to the broker.
#[derive(Clone, Copy)]
enum Refusal {
    /// Stamped 3 h after its input: beyond `message.timestamp.after.max.ms` (1 h).
    FutureTimestamp,
    /// 10,000 bytes for an output topic that takes 1 KiB.
    TooLarge,
}

fn value(i: usize) -> String {
    format!("v{i}")
}

/// Forwards each record unchanged, except the output of input [`REFUSED`].
struct Stamper(Refusal);

impl Processor<String, String, String, String> for Stamper {
    fn process(
        &mut self,
        mut record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        if record.value == value(REFUSED) {
            match self.0 {
                Refusal::FutureTimestamp => record.timestamp += THREE_HOURS_MS,
                Refusal::TooLarge => record.value = "x".repeat(10_000),
            }
        }
        ctx.forward(record)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
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

fn config(app: &str, dir: &Path, guarantee: ProcessingGuarantee, dlq: &str) -> StreamsConfig {
    let mut config = StreamsConfig::new(app, &kafka_bootstrap());
    config.state_dir = dir.to_path_buf();
    config.processing_guarantee = guarantee;
    config.commit_interval = Some(Duration::from_millis(100));
    config.handlers = ErrorHandlers {
        deserialization: ErrorAction::Fail,
        processing: ErrorAction::Fail,
        production: ErrorAction::DeadLetter,
        dead_letter_topic: Some(dlq.to_string()),
    };
    config
}

fn header(record: &streamlib::testing::Consumed, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn one_refused_output_is_dead_lettered(guarantee: ProcessingGuarantee, refusal: Refusal) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("streamlib=info")
        .try_init();
    let app_id = unique_topic("refused");
    let input = unique_topic("refused-in");
    let output = unique_topic("refused-out");
    let dlq = unique_topic("refused-dlq");
    create_topic(&kafka_bootstrap(), &input, 2);
    match refusal {
        Refusal::FutureTimestamp => create_topic(&kafka_bootstrap(), &output, 1),
        Refusal::TooLarge => create_small_message_topic(&output),
    }
    create_topic(&kafka_bootstrap(), &dlq, 1);
    let b = StreamsBuilder::new();
    b.stream(&input, StringSerde, StringSerde)
        .process(move || Stamper(refusal), &[])
        .to(&output, StringSerde, StringSerde);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(b.build(), config(&app_id, dir.path(), guarantee, &dlq));
    app.start().unwrap();

    let base = now_ms();
    let inputs: Vec<(Vec<u8>, Vec<u8>, i64)> = (0..INPUTS)
        .map(|i| {
            let key = format!("k{}", i % 10).into_bytes();
            (key, value(i).into_bytes(), base + i as i64)
        })
        .collect();
    produce(&kafka_bootstrap(), &input, &inputs);
    let dead = consume_until(&kafka_bootstrap(), &dlq, "read_committed", WAIT, |got| {
        !got.is_empty()
    });
    // The app goes on: records produced after the refused one come out too.
    let after: Vec<(Vec<u8>, Vec<u8>, i64)> = (INPUTS..INPUTS + AFTER)
        .map(|i| (b"k0".to_vec(), value(i).into_bytes(), now_ms()))
        .collect();
    produce(&kafka_bootstrap(), &input, &after);
    let expected: BTreeSet<String> = (0..INPUTS + AFTER)
        .filter(|i| *i != REFUSED)
        .map(value)
        .collect();
    let values = |got: &[streamlib::testing::Consumed]| -> BTreeSet<String> {
        got.iter()
            .map(|c| String::from_utf8_lossy(c.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    };
    let out = consume_until(&kafka_bootstrap(), &output, "read_committed", WAIT, |got| {
        values(got).is_superset(&expected)
    });
    assert_eq!(values(&out), expected, "every output but the refused one");
    assert_eq!(out.len(), INPUTS + AFTER - 1, "each output exactly once");

    assert_eq!(dead.len(), 1, "one dead letter: {dead:?}");
    let dead = &dead[0];
    let refused_input = &inputs[REFUSED];
    assert_eq!(dead.key, refused_input.0, "the refused record's key");
    match refusal {
        Refusal::FutureTimestamp => {
            assert_eq!(dead.value.as_deref(), Some(&refused_input.1[..]))
        }
        Refusal::TooLarge => assert_eq!(dead.value, Some(vec![b'x'; 10_000])),
    }
    assert_eq!(
        header(dead, dead_letter_headers::ERROR_KIND).as_deref(),
        Some("production")
    );
    let reason = header(dead, dead_letter_headers::ERROR_MESSAGE).unwrap_or_default();
    let expected_reason = match refusal {
        Refusal::FutureTimestamp => "InvalidTimestamp",
        Refusal::TooLarge => "MessageSizeTooLarge",
    };
    assert!(
        reason.contains(expected_reason),
        "broker's reason: {reason}"
    );
    assert_eq!(
        header(dead, dead_letter_headers::OUTPUT_TOPIC),
        Some(output.clone())
    );
    assert_eq!(
        header(dead, dead_letter_headers::SOURCE_TOPIC),
        Some(input.clone())
    );
    assert!(header(dead, dead_letter_headers::SOURCE_OFFSET)
        .and_then(|o| o.parse::<i64>().ok())
        .is_some_and(|o| o >= 0));
    assert_eq!(
        header(dead, dead_letter_headers::SOURCE_TIMESTAMP),
        Some(refused_input.2.to_string())
    );
    assert_eq!(
        dead.timestamp, refused_input.2,
        "stamped with the input's timestamp, which the broker accepts"
    );

    let metrics = app.metrics();
    assert_eq!(metrics.production_dead_lettered.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.production_dropped.load(Ordering::Relaxed), 0);
    let aborts = metrics.aborted_transactions.load(Ordering::Relaxed);
    match guarantee {
        ProcessingGuarantee::AtLeastOnce => assert_eq!(aborts, 0),
        // One abort for the refused batch, one for the culprit refused alone in the redo; a
        // fresh-clone CI run saw a third (how the redone records fall into transactions
        // depends on the thread's poll and processing rounds), still far below the bound.
        ProcessingGuarantee::ExactlyOnceV2 => {
            assert!((2..=3).contains(&aborts), "{aborts} aborts")
        }
    }
    assert!(app.is_running());
    app.close().unwrap();
}

#[test]
fn a_future_timestamp_is_dead_lettered_at_least_once() {
    one_refused_output_is_dead_lettered(ProcessingGuarantee::AtLeastOnce, Refusal::FutureTimestamp);
}

#[test]
fn a_future_timestamp_is_dead_lettered_exactly_once() {
    one_refused_output_is_dead_lettered(
        ProcessingGuarantee::ExactlyOnceV2,
        Refusal::FutureTimestamp,
    );
}

#[test]
fn a_too_large_output_is_dead_lettered_at_least_once() {
    one_refused_output_is_dead_lettered(ProcessingGuarantee::AtLeastOnce, Refusal::TooLarge);
}

#[test]
fn a_too_large_output_is_dead_lettered_exactly_once() {
    one_refused_output_is_dead_lettered(ProcessingGuarantee::ExactlyOnceV2, Refusal::TooLarge);
}
