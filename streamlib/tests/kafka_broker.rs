//! Talks to the real Apache Kafka broker through `rdkafka`: the foundation every runtime test
//! stands on. Needs `KAFKA_BOOTSTRAP` (see `scripts/test`).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, unique_topic};

const PARTITIONS: i32 = 3;
const WAIT: Duration = Duration::from_secs(60);

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> ThreadedProducer<DefaultProducerContext> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

/// Reads until `expected` records arrived or the deadline passes; returns what arrived.
fn consume(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    expected: usize,
) -> Vec<(i32, String, String)> {
    consume_until(bootstrap, topic, isolation, WAIT, |got| {
        got.len() >= expected
    })
    .into_iter()
    .map(|c| {
        let key = String::from_utf8(c.key).expect("utf8 key");
        let value = String::from_utf8(c.value.expect("value")).expect("utf8 value");
        (c.partition, key, value)
    })
    .collect()
}

#[test]
fn produced_records_are_consumed_in_partition_order() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("roundtrip");
    create_topic(&bootstrap, &topic, PARTITIONS);

    let producer = producer(&bootstrap, &[]);
    let n = 300;
    for i in 0..n {
        let key = format!("coin-{}", i % 10);
        let value = format!("{i}");
        producer
            .send(BaseRecord::to(&topic).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let got = consume(&bootstrap, &topic, "read_uncommitted", n);
    assert_eq!(got.len(), n, "every produced record is consumed once");

    // Same key ⇒ same partition, and per key the values arrive in production order.
    let mut per_key: BTreeMap<String, (i32, Vec<u32>)> = BTreeMap::new();
    for (partition, key, value) in got {
        let entry = per_key
            .entry(key.clone())
            .or_insert((partition, Vec::new()));
        assert_eq!(entry.0, partition, "key {key} seen on two partitions");
        entry.1.push(value.parse().expect("number"));
    }
    assert_eq!(per_key.len(), 10);
    for (key, (_, values)) in per_key {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(values, sorted, "values of {key} out of order");
        assert_eq!(values.len(), n / 10);
    }
}

#[test]
fn read_committed_hides_aborted_transactions() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("transactions");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let txn_id = unique_topic("txn");
    let producer = producer(&bootstrap, &[("transactional.id", &txn_id)]);
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");

    let send_batch = |label: &str| {
        for i in 0..20 {
            let key = format!("k{i}");
            let value = format!("{label}-{i}");
            producer
                .send(BaseRecord::to(&topic).key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
    };
    producer.begin_transaction().expect("begin");
    send_batch("aborted");
    producer.flush(timeout).expect("flush");
    producer.abort_transaction(timeout).expect("abort");

    producer.begin_transaction().expect("begin");
    send_batch("committed");
    producer.commit_transaction(timeout).expect("commit");

    let committed = consume(&bootstrap, &topic, "read_committed", 20);
    assert_eq!(committed.len(), 20);
    assert!(committed
        .iter()
        .all(|(_, _, v)| v.starts_with("committed-")));

    // An uncommitted reader sees the aborted records too: the broker really ran a transaction.
    let everything = consume(&bootstrap, &topic, "read_uncommitted", 40);
    assert_eq!(everything.len(), 40);
}
