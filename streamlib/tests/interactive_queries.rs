//! Interactive queries on the real broker: two instances answer every key from the instance
//! that owns it (and name that owner from either side), position bounds are honoured, window
//! stores answer key and range queries, queries during rebalances never return wrong data,
//! and the HTTP layer answers any key and any range on either instance.
//! Needs `KAFKA_BOOTSTRAP` (see `scripts/test`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use streamlib::prelude::*;
use streamlib::query::{
    KeyQuery, Position, PositionBound, QueryFailure, StateQueryRequest, WindowKeyQuery,
    WindowRangeQuery,
};
use streamlib::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streamlib::testing::{create_topic, kafka_bootstrap, produce, unique_topic, wait_for};

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 4;
const KEYS: usize = 60;
const PER_KEY: usize = 3;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn key(i: usize) -> String {
    format!("coin-{i}")
}

/// `PER_KEY` records of every key, one second apart per key.
fn records(base: i64) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    (0..KEYS * PER_KEY)
        .map(|i| {
            let ts = base + (i / KEYS) as i64 * 1_000;
            (key(i % KEYS).into_bytes(), b"x".to_vec(), ts)
        })
        .collect()
}

struct App {
    app: String,
    input: String,
}

impl App {
    fn new(prefix: &str) -> Self {
        let app = Self {
            app: unique_topic(prefix),
            input: unique_topic(&format!("{prefix}-in")),
        };
        create_topic(&kafka_bootstrap(), &app.input, PARTITIONS);
        app
    }

    /// Counts per key in `counts`, and per key and minute in the window store `per-minute`.
    fn topology(&self) -> Topology {
        let b = StreamsBuilder::new();
        let grouped = b
            .stream(&self.input, StringSerde, StringSerde)
            .group_by_key(StringSerde, StringSerde);
        grouped.count("counts");
        grouped
            .windowed_by(TimeWindows::of(Duration::from_secs(60)))
            .count("per-minute");
        b.build()
    }

    fn instance(
        &self,
        state_dir: &Path,
        server: &str,
        guarantee: ProcessingGuarantee,
    ) -> KafkaStreams {
        let mut config = StreamsConfig::new(&self.app, &kafka_bootstrap());
        config.state_dir = state_dir.to_path_buf();
        config.processing_guarantee = guarantee;
        config.commit_interval = Some(Duration::from_millis(100));
        config.application_server = Some(server.to_owned());
        let mut app = KafkaStreams::new(self.topology(), config);
        app.start().expect("start");
        app
    }
}

fn count_of(app: &KafkaStreams, k: &str) -> Result<Option<i64>, QueryFailure> {
    let query = KeyQuery::with_key(k.to_owned(), StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("counts").with_query(query);
    let result = app.query(&request).expect("query");
    result
        .only_partition_result()
        .expect("a key query asks one partition")
        .map(|answer| answer.value)
}

/// Waits until every key is answered with `expected` by one of `apps` (and so every task has
/// processed all input); returns the index of the app that answered each key.
fn await_all(apps: &[&KafkaStreams], expected: i64) -> BTreeMap<String, usize> {
    let owners = std::sync::Mutex::new(BTreeMap::new());
    wait_for("every key counted", WAIT, || {
        let mut found = BTreeMap::new();
        for i in 0..KEYS {
            let k = key(i);
            match apps
                .iter()
                .position(|app| count_of(app, &k) == Ok(Some(expected)))
            {
                Some(owner) => found.insert(k, owner),
                None => return false,
            };
        }
        *owners.lock().unwrap() = found;
        true
    });
    owners.into_inner().unwrap()
}

#[test]
fn two_instances_answer_every_key_and_name_its_owner() {
    let app = App::new("iq-two");
    produce(&kafka_bootstrap(), &app.input, &records(now_ms()));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (server_a, server_b) = ("instance-a:9", "instance-b:9");
    let a = app.instance(dir_a.path(), server_a, ProcessingGuarantee::AtLeastOnce);
    let b = app.instance(dir_b.path(), server_b, ProcessingGuarantee::AtLeastOnce);
    wait_for("both instances hold tasks", WAIT, || {
        !a.assigned_partitions().is_empty() && !b.assigned_partitions().is_empty()
    });
    let owners = await_all(&[&a, &b], PER_KEY as i64);
    let servers = [server_a, server_b];
    for (k, owner) in &owners {
        let other = [&a, &b][1 - owner];
        assert_eq!(
            count_of(other, k),
            Err(QueryFailure::NotPresent),
            "{k} on the instance that does not own it"
        );
        for app in [&a, &b] {
            let metadata = app
                .query_metadata_for_key("counts", k, &StringSerde)
                .expect("metadata");
            assert_eq!(
                metadata.active_host.as_deref(),
                Some(servers[*owner]),
                "{k}"
            );
        }
    }
    // A store the topology does not have.
    let query = KeyQuery::with_key(key(0), StringSerde, I64Serde);
    let result = a
        .query(&StateQueryRequest::in_store("nope").with_query(query))
        .unwrap();
    assert_eq!(
        result.only_partition_result().unwrap().unwrap_err(),
        QueryFailure::UnknownStore("nope".into())
    );
}

/// Produces one record and returns the partition and offset the broker gave it.
fn produce_one(topic: &str, k: &str) -> (i32, i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let record = FutureRecord::to(topic)
        .key(k)
        .payload("x")
        .timestamp(now_ms());
    let delivery = runtime
        .block_on(producer.send(record, Duration::from_secs(30)))
        .expect("delivered");
    (delivery.partition, delivery.offset)
}

#[test]
fn a_position_bound_is_honoured() {
    let app = App::new("iq-bound");
    produce(&kafka_bootstrap(), &app.input, &records(now_ms()));
    let dir = tempfile::tempdir().unwrap();
    let one = app.instance(
        dir.path(),
        "instance-c:9",
        ProcessingGuarantee::ExactlyOnceV2,
    );
    await_all(&[&one], PER_KEY as i64);

    let k = key(7);
    let (partition, offset) = produce_one(&app.input, &k);
    let ask = |bound: Position| {
        let query = KeyQuery::with_key(k.clone(), StringSerde, I64Serde);
        let request = StateQueryRequest::in_store("counts")
            .with_query(query)
            .with_position_bound(PositionBound::at_least(bound));
        one.query(&request)
            .unwrap()
            .only_partition_result()
            .unwrap()
    };
    // Until the store has read the new record, a bound on it is refused; once it has, the
    // answer includes it. Never the old count under that bound.
    let bound = Position::default().with(&app.input, partition, offset);
    wait_for("the bound is reached", WAIT, || match ask(bound.clone()) {
        Ok(answer) => {
            assert_eq!(
                answer.value,
                Some(PER_KEY as i64 + 1),
                "answer under the bound"
            );
            assert!(answer.position.dominates(&bound));
            true
        }
        Err(QueryFailure::NotUpToBound { .. }) => false,
        Err(other) => panic!("unexpected failure {other}"),
    });
    let beyond = Position::default().with(&app.input, partition, offset + 1_000);
    assert!(matches!(
        ask(beyond),
        Err(QueryFailure::NotUpToBound { .. })
    ));
}

#[test]
fn window_stores_answer_key_and_range_queries() {
    let app = App::new("iq-windows");
    let base = (now_ms() / 60_000) * 60_000; // the records fall into one minute
    produce(&kafka_bootstrap(), &app.input, &records(base));
    let dir = tempfile::tempdir().unwrap();
    let one = app.instance(dir.path(), "instance-d:9", ProcessingGuarantee::AtLeastOnce);
    await_all(&[&one], PER_KEY as i64);

    let k = key(3);
    let query = WindowKeyQuery::with_key_and_window_starts(
        k.clone(),
        base - 60_000,
        base + 60_000,
        StringSerde,
        I64Serde,
    );
    let request = StateQueryRequest::in_store("per-minute").with_query(query);
    let result = one
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap();
    assert_eq!(result.unwrap().value, vec![(base, PER_KEY as i64)]);

    let query = WindowRangeQuery::with_window_starts(base, base, StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("per-minute").with_query(query);
    let answers = one
        .query(&request)
        .unwrap()
        .all_answers()
        .expect("all partitions");
    let mut windows: Vec<(String, i64, i64)> = answers
        .into_iter()
        .flat_map(|answer| answer.value)
        .collect();
    windows.sort();
    let mut expected: Vec<(String, i64, i64)> =
        (0..KEYS).map(|i| (key(i), base, PER_KEY as i64)).collect();
    expected.sort();
    assert_eq!(windows, expected);

    // A key-value query on a window store is refused with the reason.
    let query = KeyQuery::with_key(k, StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("per-minute").with_query(query);
    let failure = one
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(failure, QueryFailure::UnknownQueryType { .. }),
        "{failure}"
    );
}

#[test]
fn queries_during_rebalances_never_return_wrong_data() {
    let app = App::new("iq-rebalance");
    produce(&kafka_bootstrap(), &app.input, &records(now_ms()));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let guarantee = ProcessingGuarantee::ExactlyOnceV2;
    let a = Arc::new(app.instance(dirs[0].path(), "instance-e:9", guarantee));
    let b = app.instance(dirs[1].path(), "instance-f:9", guarantee);
    await_all(&[&a, &b], PER_KEY as i64);

    // One thread asks every key of instance `a` again and again while instances join and leave.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let asker = {
        let (a, stop) = (a.clone(), stop.clone());
        let (answered, refused) = (answered.clone(), refused.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for i in 0..KEYS {
                    match count_of(&a, &key(i)) {
                        Ok(value) => {
                            assert_eq!(
                                value,
                                Some(PER_KEY as i64),
                                "{} during a rebalance",
                                key(i)
                            );
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(
                            QueryFailure::NotPresent
                            | QueryFailure::NotActive
                            | QueryFailure::Restoring,
                        ) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("unexpected failure {other}"),
                    }
                }
            }
        })
    };
    let c = app.instance(dirs[2].path(), "instance-g:9", guarantee);
    wait_for("the third instance holds tasks", WAIT, || {
        !c.assigned_partitions().is_empty()
    });
    drop(b); // closes: its tasks move to `a` and `c`
    await_all(&[&a, &c], PER_KEY as i64);
    stop.store(true, Ordering::SeqCst);
    asker.join().expect("no wrong answer");
    assert!(answered.load(Ordering::Relaxed) > 0);
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "a has keys it does not own"
    );
    drop(c);
}

#[test]
fn a_restoring_partition_says_so_and_then_answers_the_restored_value() {
    let app = App::new("iq-restore");
    // A changelog of 300 000 writes to restore before the task may answer: 1 000 keys, each
    // last set to its own number. A count's row is `[timestamp][count]`, both 8 bytes big-endian
    // (`StoreKind::TimestampedKeyValue`).
    let changelog = streamlib::topology::changelog_topic(&app.app, "counts");
    create_topic(&kafka_bootstrap(), &changelog, PARTITIONS);
    let writes: Vec<(Vec<u8>, Vec<u8>, i64)> = (0..300_000i64)
        .map(|i| {
            let k = i % 1_000;
            let value = if i >= 299_000 { k } else { -1 };
            let row = [now_ms().to_be_bytes(), value.to_be_bytes()].concat();
            (key(k as usize).into_bytes(), row, now_ms())
        })
        .collect();
    produce(&kafka_bootstrap(), &changelog, &writes);

    let dir = tempfile::tempdir().unwrap();
    let one = app.instance(dir.path(), "instance-h:9", ProcessingGuarantee::AtLeastOnce);
    let k = key(7);
    let saw_restoring = AtomicBool::new(false);
    wait_for("the restored value", WAIT, || match count_of(&one, &k) {
        Err(QueryFailure::Restoring) => {
            saw_restoring.store(true, Ordering::SeqCst);
            false
        }
        Err(QueryFailure::NotPresent) => false, // not assigned yet
        Ok(value) => {
            assert_eq!(
                value,
                Some(7),
                "never a value from before the restore ended"
            );
            true
        }
        Err(other) => panic!("unexpected failure {other}"),
    });
    assert!(
        saw_restoring.load(Ordering::SeqCst),
        "a query during the restore said Restoring"
    );
}

/// The HTTP layer: either instance answers every key (forwarding to the owner) and the whole
/// range (fanning out), equal to the stores' content.
#[cfg(feature = "http")]
mod http {
    use super::*;
    use serde_json::Value;
    use streamlib::query::http::{router, QueryService, SerdeCodec};

    fn get(runtime: &tokio::runtime::Runtime, url: &str) -> (u16, Value) {
        runtime.block_on(async {
            let response = reqwest::get(url).await.expect("request");
            let status = response.status().as_u16();
            (status, response.json().await.expect("JSON body"))
        })
    }

    /// Binds two listeners first, so each instance can publish its real address.
    fn listeners(runtime: &tokio::runtime::Runtime) -> Vec<tokio::net::TcpListener> {
        (0..2)
            .map(|_| {
                runtime
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn either_instance_answers_every_key_and_the_whole_range() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let app = App::new("iq-http");
        produce(&kafka_bootstrap(), &app.input, &records(now_ms()));
        let listeners = listeners(&runtime);
        let addrs: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let instances: Vec<KafkaStreams> = (0..2)
            .map(|i| app.instance(dirs[i].path(), &addrs[i], ProcessingGuarantee::AtLeastOnce))
            .collect();
        for (listener, instance) in listeners.into_iter().zip(&instances) {
            let service = QueryService::new(instance.queryable().unwrap())
                .with_store("counts", SerdeCodec::new(StringSerde, I64Serde));
            runtime.spawn(async move { axum::serve(listener, router(service)).await });
        }
        wait_for("both instances hold tasks", WAIT, || {
            instances
                .iter()
                .all(|i| !i.assigned_partitions().is_empty())
        });
        await_all(&[&instances[0], &instances[1]], PER_KEY as i64);

        for addr in &addrs {
            for i in 0..KEYS {
                let (status, body) = get(
                    &runtime,
                    &format!("http://{addr}/state/keyvalue/counts/{}", key(i)),
                );
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["value"], PER_KEY as i64, "{} from {addr}", key(i));
            }
            let (status, body) = get(
                &runtime,
                &format!("http://{addr}/state/keyvalues/counts/all"),
            );
            assert_eq!(status, 200, "{body}");
            let mut keys: Vec<String> = body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    assert_eq!(e["value"], PER_KEY as i64);
                    e["key"].as_str().unwrap().to_owned()
                })
                .collect();
            keys.sort();
            let mut expected: Vec<String> = (0..KEYS).map(key).collect();
            expected.sort();
            assert_eq!(keys, expected, "the whole range from {addr}");

            let (status, body) = get(
                &runtime,
                &format!("http://{addr}/state/keyvalue/counts/absent"),
            );
            assert_eq!((status, &body["value"]), (404, &Value::Null));
            let (status, _) = get(&runtime, &format!("http://{addr}/state/keyvalue/nope/x"));
            assert_eq!(status, 404);
        }
        let (status, body) = get(&runtime, &format!("http://{}/state/instances", addrs[0]));
        assert_eq!(status, 200);
        assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    }
}
