//! Small, blocking helpers for integration tests against a real broker: create topics,
//! produce, consume until a condition holds.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::unique_topic;

/// A record read back from Kafka.
#[derive(Clone, Debug, PartialEq)]
pub struct Consumed {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key bytes (empty for a null key).
    pub key: Vec<u8>,
    /// Value bytes (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
    /// Kafka timestamp.
    pub timestamp: i64,
    /// Headers as `(name, value)`.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Creates `topic` with `partitions` partitions (replication factor: broker default).
///
/// # Panics
/// Panics when the broker refuses; tests should fail loudly.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic_with_configs(bootstrap, topic, partitions, &[]);
}

/// Creates `topic` like [`create_topic`], with topic configs (e.g. `max.message.bytes`).
///
/// # Panics
/// Panics when the broker refuses; tests should fail loudly.
pub fn create_topic_with_configs(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let (admin, runtime) = admin(bootstrap);
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for (name, value) in configs {
        new = new.set(name, value);
    }
    let results = runtime
        .block_on(admin.create_topics(
            &[new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create_topics request");
    for result in results {
        result.expect("topic created");
    }
}

/// The value of config `name` of `topic`, read with the admin client's `describe_configs`.
///
/// # Panics
/// Panics when the broker cannot describe the topic.
pub fn topic_config(bootstrap: &str, topic: &str, name: &str) -> Option<String> {
    let (admin, runtime) = admin(bootstrap);
    let results = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()))
        .expect("describe_configs request");
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("topic described");
    resource.get(name).and_then(|entry| entry.value.clone())
}

fn admin(bootstrap: &str) -> (AdminClient<DefaultClientContext>, tokio::runtime::Runtime) {
    let admin = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    (admin, runtime)
}

/// Produces `(key, value, timestamp)` records with Kafka's default (murmur2) partitioner and
/// waits until all are acknowledged.
///
/// # Panics
/// Panics when a record cannot be produced.
pub fn produce(bootstrap: &str, topic: &str, records: &[(Vec<u8>, Vec<u8>, i64)]) {
    let records: Vec<_> = records
        .iter()
        .map(|(key, value, ts)| (key.clone(), Some(value.clone()), *ts))
        .collect();
    produce_nullable(bootstrap, topic, &records);
}

/// A record to produce: key, value (`None`: a tombstone), timestamp.
pub type NullableRecord = (Vec<u8>, Option<Vec<u8>>, i64);

/// [`produce`] of records whose value may be null (tombstones).
///
/// # Panics
/// Panics when a record cannot be produced.
pub fn produce_nullable(bootstrap: &str, topic: &str, records: &[NullableRecord]) {
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    for (key, value, ts) in records {
        let mut record = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic)
            .key(key)
            .timestamp(*ts);
        record.payload = value.as_ref();
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.flush(Duration::from_millis(100)).ok();
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Reads `topic` from the beginning with a fresh group until `done(records so far)` holds or
/// `timeout` passes; returns what was read. `done` is evaluated whenever the reader is caught
/// up and every 1 000 records, so it may scan everything it is given.
pub fn consume_until(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    timeout: Duration,
    done: impl Fn(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut unchecked = 0;
    let mut check = true;
    while Instant::now() < deadline {
        if check && done(&out) {
            break;
        }
        match consumer.poll(Duration::from_millis(200)) {
            // A topic created a moment ago may not be known to every broker yet.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ))) => check = true,
            Some(message) => {
                let message = message.expect("consume");
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Consumed {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().unwrap_or_default().to_vec(),
                    value: message.payload().map(<[u8]>::to_vec),
                    timestamp: message.timestamp().to_millis().unwrap_or_default(),
                    headers,
                });
                unchecked += 1;
                check = unchecked >= 1_000;
            }
            None => check = true,
        }
        if check {
            unchecked = 0;
        }
    }
    out
}

/// Waits until `condition` holds, checking every 50 ms; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
