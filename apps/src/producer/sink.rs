//! Where records go: Kafka (an idempotent producer with `acks=all`), or memory for tests.
//! Each record names its [`Destination`]: price events go to `crypto.prices.raw`, coin reference
//! rows to `crypto.coins`, through the same producer.
//!
//! A sink sends a batch and reports, per record, whether it was acknowledged; the caller
//! counts and logs every failure, so nothing is lost silently.
//!
//! ```
//! use apps::producer::sink::{Destination, EventSink, MemorySink, OutRecord};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let sink = MemorySink::default();
//! let report = sink.send_batch(vec![
//!     OutRecord { destination: Destination::Coins, key: "bitcoin".into(), value: b"{}".to_vec() },
//!     OutRecord { destination: Destination::Prices, key: "bitcoin".into(), value: b"{}".to_vec() },
//! ]).await;
//! assert_eq!((report.delivered, report.failures.len()), (2, 0));
//! assert_eq!(sink.records_to(Destination::Prices)[0].key, "bitcoin");
//! # });
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::topics::Topics;

/// The topic a record is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A price event, for `crypto.prices.raw`.
    Prices,
    /// A coin reference row, for `crypto.coins`.
    Coins,
}

impl Destination {
    /// `prices` or `coins` (a log field).
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Prices => "prices",
            Destination::Coins => "coins",
        }
    }
}

/// One record: its destination, key (`coin_id`) and value (JSON bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRecord {
    /// The topic it is for.
    pub destination: Destination,
    /// Message key.
    pub key: String,
    /// Message value.
    pub value: Vec<u8>,
}

/// A record a sink could not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undelivered {
    /// The topic it was for.
    pub destination: Destination,
    /// Its key.
    pub key: String,
    /// Why it was not delivered.
    pub error: String,
}

/// The outcome of one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Records acknowledged.
    pub delivered: usize,
    /// Every record that was not.
    pub failures: Vec<Undelivered>,
}

/// Errors of a sink as a whole (not of one record).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The client could not be created from the configuration.
    #[error("creating the Kafka producer: {0}")]
    Create(#[source] KafkaError),
    /// A property contradicts the producer's guarantees.
    #[error("property {name}={value} is not allowed: the producer is idempotent with acks=all")]
    Forbidden {
        /// Property name.
        name: String,
        /// The value given.
        value: String,
    },
    /// Records were still unacknowledged when the flush timed out.
    #[error("flushing the Kafka producer: {0}")]
    Flush(#[source] KafkaError),
}

/// A destination for records.
pub trait EventSink: Send + Sync {
    /// Sends `records` in order and waits for each one's acknowledgement or failure.
    fn send_batch(&self, records: Vec<OutRecord>) -> impl Future<Output = DeliveryReport> + Send;

    /// Waits until everything sent so far is acknowledged (before exiting).
    fn flush(&self) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Keeps records in memory, in order; clones share the records.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<OutRecord>>>,
}

impl MemorySink {
    /// Everything sent so far.
    pub fn records(&self) -> Vec<OutRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Everything sent to `destination` so far.
    pub fn records_to(&self, destination: Destination) -> Vec<OutRecord> {
        let mut records = self.records();
        records.retain(|record| record.destination == destination);
        records
    }
}

impl EventSink for MemorySink {
    async fn send_batch(&self, records: Vec<OutRecord>) -> DeliveryReport {
        let delivered = records.len();
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(records);
        DeliveryReport {
            delivered,
            failures: Vec::new(),
        }
    }

    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Properties the producer sets itself and will not let a pass-through property change.
const FIXED: [(&str, &str); 2] = [("enable.idempotence", "true"), ("acks", "all")];

/// Produces to Kafka with one idempotent producer (`enable.idempotence=true`, `acks=all`) for
/// both destinations: librdkafka retries transient errors without duplicates or reordering,
/// and what it finally cannot deliver is reported per record.
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer,
    prices: String,
    coins: String,
    flush_timeout: Duration,
}

impl KafkaSink {
    /// A sink for `topics.raw` (price events) and `topics.coins` (reference rows) on
    /// `bootstrap_servers`, with any librdkafka `properties` passed through (SASL/SSL,
    /// `linger.ms`, `compression.type`, `message.timeout.ms`, …), except values that would turn
    /// off idempotence or `acks=all`. Keys are partitioned like Kafka's Java clients and
    /// streamlib do (`partitioner=murmur2_random`) unless a property says otherwise.
    pub fn new(
        bootstrap_servers: &str,
        topics: &Topics,
        properties: &BTreeMap<String, String>,
    ) -> Result<Self, SinkError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap_servers);
        config.set("partitioner", "murmur2_random");
        for (name, value) in properties {
            let allowed = FIXED
                .iter()
                .find(|(fixed, _)| fixed == name)
                .is_none_or(|(_, required)| value == required || (name == "acks" && value == "-1"));
            if !allowed {
                return Err(SinkError::Forbidden {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
            config.set(name, value);
        }
        for (name, value) in FIXED {
            config.set(name, value);
        }
        let producer = config.create().map_err(SinkError::Create)?;
        Ok(Self {
            producer,
            prices: topics.raw.clone(),
            coins: topics.coins.clone(),
            flush_timeout: Duration::from_secs(30),
        })
    }

    fn topic(&self, destination: Destination) -> &str {
        match destination {
            Destination::Prices => &self.prices,
            Destination::Coins => &self.coins,
        }
    }
}

impl EventSink for KafkaSink {
    async fn send_batch(&self, records: Vec<OutRecord>) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let mut pending: VecDeque<(&OutRecord, DeliveryFuture)> = VecDeque::new();
        for record in &records {
            let mut message = FutureRecord::to(self.topic(record.destination))
                .key(&record.key)
                .payload(&record.value);
            loop {
                match self.producer.send_result(message) {
                    Ok(delivery) => {
                        pending.push_back((record, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for the oldest record to settle.
                        message = back;
                        match pending.pop_front() {
                            Some(oldest) => settle(oldest, &mut report).await,
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((error, _)) => {
                        report.failures.push(undelivered(record, error.to_string()));
                        break;
                    }
                }
            }
        }
        while let Some(oldest) = pending.pop_front() {
            settle(oldest, &mut report).await;
        }
        report
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let timeout = self.flush_timeout;
        match tokio::task::spawn_blocking(move || producer.flush(timeout)).await {
            Ok(result) => result.map_err(SinkError::Flush),
            Err(_) => Err(SinkError::Flush(KafkaError::Canceled)),
        }
    }
}

fn undelivered(record: &OutRecord, error: String) -> Undelivered {
    Undelivered {
        destination: record.destination,
        key: record.key.clone(),
        error,
    }
}

async fn settle((record, delivery): (&OutRecord, DeliveryFuture), report: &mut DeliveryReport) {
    match delivery.await {
        Ok(Ok(_)) => report.delivered += 1,
        Ok(Err((error, _))) => report.failures.push(undelivered(record, error.to_string())),
        Err(_) => report.failures.push(undelivered(
            record,
            "the producer was dropped before delivery".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_properties_cannot_weaken_the_guarantees() {
        for (name, value) in [("enable.idempotence", "false"), ("acks", "1")] {
            let properties = BTreeMap::from([(name.to_string(), value.to_string())]);
            let error = KafkaSink::new("127.0.0.1:9", &Topics::default(), &properties)
                .err()
                .expect("refused");
            assert!(matches!(error, SinkError::Forbidden { .. }), "{error}");
        }
        let properties = BTreeMap::from([
            ("acks".to_string(), "-1".to_string()),
            ("linger.ms".to_string(), "20".to_string()),
        ]);
        assert!(KafkaSink::new("127.0.0.1:9", &Topics::default(), &properties).is_ok());
        let bad = BTreeMap::from([("no.such.property".to_string(), "1".to_string())]);
        assert!(matches!(
            KafkaSink::new("127.0.0.1:9", &Topics::default(), &bad),
            Err(SinkError::Create(_))
        ));
    }
}
