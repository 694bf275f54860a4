//! The Bronze sink on the real broker: every record exactly once, to a local folder and to the
//! real S3 server, as received (tombstones, no key, raw bytes, headers), with two instances
//! sharing the partitions; and Delta's conflict check against a stale writer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lake::bronze::commit::{append_exactly_once, RetryPolicy};
use lake::bronze::metrics::SinkMetrics;
use lake::bronze::sink::{BronzeSink, Route, SinkConfig};
use lake::bronze::{self, BronzeRecord};
use lake::storage::Lake;
use lake::testing::{read_bronze, s3_lake, BronzeRow};
use lake::LakeError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, produce, unique_topic};
use tokio::runtime::Runtime;
use tokio::sync::watch;

const TABLE: &str = "bronze/prices_raw";
const DEADLINE: Duration = Duration::from_secs(120);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct RunningSink {
    stop: watch::Sender<bool>,
    thread: JoinHandle<Result<(), LakeError>>,
    metrics: Arc<SinkMetrics>,
}

impl RunningSink {
    fn start(runtime: &Runtime, lake: &Lake, config: SinkConfig) -> RunningSink {
        let sink = BronzeSink::new(lake.clone(), config).expect("sink config");
        let metrics = sink.metrics();
        let (stop, stopped) = watch::channel(false);
        let io = runtime.handle().clone();
        let thread = std::thread::spawn(move || sink.run(&io, stopped));
        RunningSink {
            stop,
            thread,
            metrics,
        }
    }

    fn stop(self) -> Arc<SinkMetrics> {
        self.stop.send_replace(true);
        self.thread
            .join()
            .expect("sink thread")
            .expect("sink ends without error");
        self.metrics
    }
}

fn config(bootstrap: &str, topic: &str, sink_id: &str) -> SinkConfig {
    let mut config = SinkConfig::new(
        bootstrap,
        vec![Route {
            topic: topic.to_owned(),
            table: TABLE.to_owned(),
        }],
    );
    config.sink_id = sink_id.to_owned();
    config.flush_records = 400;
    config.flush_interval = Duration::from_millis(200);
    config
}

fn end_offsets(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(30))
                .expect("watermarks");
            (p.id(), high)
        })
        .collect()
}

fn committed(runtime: &Runtime, lake: &Lake, sink_id: &str, topic: &str) -> BTreeMap<i32, i64> {
    runtime.block_on(async {
        match lake.open(TABLE).await.expect("open") {
            None => BTreeMap::new(),
            Some(table) => bronze::committed_offsets(&table, TABLE, sink_id, topic, 0..16)
                .await
                .expect("txn versions"),
        }
    })
}

/// Polls until the table's log records `want` for every partition.
fn await_progress(
    runtime: &Runtime,
    lake: &Lake,
    sink_id: &str,
    topic: &str,
    want: &BTreeMap<i32, i64>,
) {
    // An empty partition has nothing to commit, so no progress entry.
    let want: BTreeMap<i32, i64> = want
        .iter()
        .filter(|(_, end)| **end > 0)
        .map(|(p, e)| (*p, *e))
        .collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = committed(runtime, lake, sink_id, topic);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not reach {want:?}; the log holds {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (partition, offset, value) of every record of `topic`, read `read_committed`.
fn topic_contents(
    bootstrap: &str,
    topic: &str,
    count: usize,
) -> BTreeSet<(i32, i64, Option<Vec<u8>>)> {
    consume_until(bootstrap, topic, "read_committed", DEADLINE, |r| {
        r.len() >= count
    })
    .into_iter()
    .map(|r| (r.partition, r.offset, r.value))
    .collect()
}

fn assert_exactly_once(rows: &[BronzeRow], expected: &BTreeSet<(i32, i64, Option<Vec<u8>>)>) {
    let stored: BTreeSet<(i32, i64, Option<Vec<u8>>)> = rows
        .iter()
        .map(|r| (r.partition, r.offset, r.value.clone()))
        .collect();
    assert_eq!(stored.len(), rows.len(), "Bronze holds a record twice");
    assert_eq!(&stored, expected, "Bronze differs from the topic");
}

fn records(n: usize) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    (0..n)
        .map(|i| {
            let key = format!("coin-{}", i % 17).into_bytes();
            let value = format!("{{\"seq\":{i}}}").into_bytes();
            (key, value, 1_796_083_200_000 + i as i64 * 1_000)
        })
        .collect()
}

fn ingests_every_record_once(lake: Lake) {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("bronze-ingest");
    create_topic(&bootstrap, &topic, 3);
    produce(&bootstrap, &topic, &records(3_000));
    let runtime = runtime();
    let sink = RunningSink::start(&runtime, &lake, config(&bootstrap, &topic, "ingest"));
    let ends = end_offsets(&bootstrap, &topic);
    await_progress(&runtime, &lake, "ingest", &topic, &ends);
    let metrics = sink.stop().snapshot();
    assert_eq!(metrics.records_written, 3_000);
    let rows = runtime
        .block_on(read_bronze(&lake, TABLE))
        .expect("read bronze");
    assert_exactly_once(&rows, &topic_contents(&bootstrap, &topic, 3_000));
    assert!(rows
        .iter()
        .all(|r| r.topic == topic && r.ingest_date == 20_788));
}

#[test]
fn ingests_every_record_once_to_a_local_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    ingests_every_record_once(Lake::parse(&dir.path().display().to_string()).expect("lake"));
}

#[test]
fn ingests_every_record_once_to_s3() {
    ingests_every_record_once(s3_lake("bronze-ingest"));
}

#[test]
fn keeps_tombstones_missing_keys_raw_bytes_and_headers_as_received() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("bronze-raw");
    create_topic(&bootstrap, &topic, 1);
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let raw = [0xffu8, 0x00, 0xc3, 0x28];
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "source",
            value: Some("test"),
        })
        .insert(Header {
            key: "bytes",
            value: Some(&[0xffu8, 0xfe][..]),
        })
        .insert(Header::<&str> {
            key: "empty",
            value: None,
        });
    let sends = [
        BaseRecord::<[u8], [u8]>::to(&topic)
            .key(&b"bitcoin"[..])
            .timestamp(1_000),
        BaseRecord::to(&topic)
            .payload(&b"no key"[..])
            .timestamp(2_000),
        BaseRecord::to(&topic)
            .key(&b"k"[..])
            .payload(&raw[..])
            .headers(headers),
    ];
    for record in sends {
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::parse(&dir.path().display().to_string()).expect("lake");
    let runtime = runtime();
    let sink = RunningSink::start(&runtime, &lake, config(&bootstrap, &topic, "raw"));
    await_progress(&runtime, &lake, "raw", &topic, &BTreeMap::from([(0, 3)]));
    sink.stop();
    let rows = runtime
        .block_on(read_bronze(&lake, TABLE))
        .expect("read bronze");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].key.as_deref(), Some(&b"bitcoin"[..]));
    assert_eq!(rows[0].value, None, "a tombstone stays a tombstone");
    assert_eq!(rows[0].kafka_timestamp_us, Some(1_000_000));
    assert_eq!(rows[0].headers, None);
    assert_eq!(rows[1].key, None, "a record without a key keeps no key");
    assert_eq!(rows[1].value.as_deref(), Some(&b"no key"[..]));
    assert_eq!(
        rows[2].value.as_deref(),
        Some(&raw[..]),
        "bytes kept as they are"
    );
    let headers: serde_json::Value =
        serde_json::from_str(rows[2].headers.as_deref().expect("headers kept")).expect("json");
    assert_eq!(
        headers,
        serde_json::json!({"source": "test", "bytes": {"base64": "//4="}, "empty": null})
    );
}

#[test]
fn two_instances_share_the_partitions_exactly_once() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("bronze-pair");
    create_topic(&bootstrap, &topic, 6);
    let all = records(8_000);
    produce(&bootstrap, &topic, &all[..4_000]);
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::parse(&dir.path().display().to_string()).expect("lake");
    let runtime = runtime();
    let mut first_config = config(&bootstrap, &topic, "pair");
    first_config
        .client_properties
        .insert("session.timeout.ms".into(), "6000".into());
    let second_config = first_config.clone();
    let first = RunningSink::start(&runtime, &lake, first_config);
    let deadline = Instant::now() + DEADLINE;
    while first.metrics.snapshot().commits == 0 {
        assert!(
            Instant::now() < deadline,
            "the first instance never committed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = RunningSink::start(&runtime, &lake, second_config);
    while second.metrics.snapshot().rebalances == 0 {
        assert!(
            Instant::now() < deadline,
            "the second instance never got an assignment"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    produce(&bootstrap, &topic, &all[4_000..]);
    await_progress(
        &runtime,
        &lake,
        "pair",
        &topic,
        &end_offsets(&bootstrap, &topic),
    );
    let (a, b) = (first.stop().snapshot(), second.stop().snapshot());
    assert!(
        a.records_written > 0 && b.records_written > 0,
        "{a:?} {b:?}"
    );
    let rows = runtime
        .block_on(read_bronze(&lake, TABLE))
        .expect("read bronze");
    assert_exactly_once(&rows, &topic_contents(&bootstrap, &topic, 8_000));
}

fn record(partition: i32, offset: i64) -> BronzeRecord {
    BronzeRecord {
        topic: "t".into(),
        partition,
        offset,
        timestamp_ms: Some(offset),
        key: None,
        value: Some(offset.to_le_bytes().to_vec()),
        headers: Vec::new(),
    }
}

#[test]
fn a_stale_writer_conflicts_and_then_writes_only_what_is_not_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::parse(&dir.path().display().to_string()).expect("lake");
    let runtime = runtime();
    runtime.block_on(async {
        let created = lake
            .open_or_create(TABLE, bronze::columns(), &[bronze::PARTITION_COLUMN])
            .await
            .expect("create");
        let mut stale = created.clone();
        let first: Vec<BronzeRecord> = (0..10).map(|o| record(0, o)).collect();
        bronze::append(created, TABLE, "s", &first)
            .await
            .expect("first writer");

        let overlapping: Vec<BronzeRecord> = (0..15).map(|o| record(0, o)).collect();
        let lost = bronze::append(stale.clone(), TABLE, "s", &overlapping).await;
        assert!(
            matches!(lost, Err(LakeError::CommitConflict { .. })),
            "a stale commit of the same partition must be rejected: {lost:?}"
        );

        let metrics = SinkMetrics::default();
        let progress = append_exactly_once(
            &mut stale,
            TABLE,
            "s",
            overlapping,
            Default::default(),
            &RetryPolicy::default(),
            &metrics,
        )
        .await
        .expect("exactly-once append");
        assert_eq!(progress.get(&("t".to_owned(), 0)), Some(&15));
        assert_eq!(metrics.snapshot().already_committed, 10);
        assert_eq!(metrics.snapshot().records_written, 5);
    });
    let rows = runtime.block_on(read_bronze(&lake, TABLE)).expect("read");
    let offsets: Vec<i64> = rows.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..15).collect::<Vec<_>>());
}

/// Produces `committed` records in a committed transaction and `aborted` in an aborted one.
fn produce_transactionally(bootstrap: &str, topic: &str, committed: usize, aborted: usize) {
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", unique_topic("bronze-txn-producer"))
        .create()
        .expect("transactional producer");
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init transactions");
    for (count, commit) in [(committed, true), (aborted, false)] {
        producer.begin_transaction().expect("begin");
        for i in 0..count {
            let value = format!("{{\"seq\":{i},\"committed\":{commit}}}");
            producer
                .send(BaseRecord::<str, str>::to(topic).key("k").payload(&value))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        if commit {
            producer.commit_transaction(timeout).expect("commit");
        } else {
            producer.flush(timeout).expect("flush");
            producer.abort_transaction(timeout).expect("abort");
        }
    }
}

#[test]
fn transaction_markers_and_aborted_records_do_not_hold_back_progress() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("bronze-txn");
    create_topic(&bootstrap, &topic, 1);
    produce_transactionally(&bootstrap, &topic, 10, 5);
    let ends = end_offsets(&bootstrap, &topic);
    assert!(
        ends[&0] > 10,
        "markers and aborted records take offsets: {ends:?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::parse(&dir.path().display().to_string()).expect("lake");
    let runtime = runtime();
    let routes = vec![Route {
        topic: topic.clone(),
        table: TABLE.to_owned(),
    }];
    let far = chrono::DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z")
        .expect("a date")
        .to_utc();
    let check = || {
        runtime
            .block_on(bronze::progress::bronze_progress(
                &lake,
                &bootstrap,
                &BTreeMap::new(),
                &routes,
                "txn",
                far,
            ))
            .expect("progress")
    };
    assert!(!check().complete(), "nothing is sunk yet");
    let sink = RunningSink::start(&runtime, &lake, config(&bootstrap, &topic, "txn"));
    await_progress(&runtime, &lake, "txn", &topic, &ends);
    sink.stop();
    let progress = check();
    assert!(progress.complete(), "{progress:?}");
    let rows = runtime
        .block_on(read_bronze(&lake, TABLE))
        .expect("read bronze");
    assert_eq!(rows.len(), 10, "only the committed transaction's records");
}
