//! End to end on the real broker: a recorded file (`data/markets_replay.jsonl`, see its
//! generator `data/make_replay.py`) is replayed by the producer through validator, dedup,
//! metrics and alerts under exactly-once. Checked: the valid/DLQ split, the dedup count, every
//! metric value against an independent computation written here, and alerts on the planted
//! crash and none on the calm part, naming the coin from the reference rows the producer wrote
//! to `crypto.coins`. Needs `KAFKA_BOOTSTRAP` (see `scripts/test`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apps::alerts::{AlertEvent, RulesConfig};
use apps::cli::{KafkaOptions, StreamOptions};
use apps::metrics::{Emit, MetricsEvent};
use apps::pipeline::{AppsSettings, Cluster, StreamApps};
use apps::producer::metrics::ProducerMetrics;
use apps::producer::sink::{EventSink, KafkaSink};
use apps::producer::{Mode, ProducerConfig, ReplayConfig};
use apps::topics::Topics;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::Value;
use streamlib::runtime::ProcessingGuarantee;
use streamlib::testing::{consume_until, kafka_bootstrap, produce, unique_topic, Consumed};

const WAIT: Duration = Duration::from_secs(120);
const RECORDING: &str = include_str!("data/markets_replay.jsonl");
/// Where the recording starts, and the poll at which solana crashes (make_replay.py).
const RECORDED_START: &str = "2025-07-25T12:00:00Z";
const CRASH_POLL: i64 = 45;

/// The recording with every `last_updated` moved so it ends about 6 hours ago (Kafka's
/// 7-day retention would delete records stamped in 2025 while the test runs), by a whole
/// number of days so window alignment is unchanged. Returns the file and the shift.
fn shifted_recording(dir: &std::path::Path) -> (std::path::PathBuf, Span) {
    let start: DateTime<Utc> = RECORDED_START.parse().unwrap();
    let days = (Utc::now() - start - Span::hours(12)).num_days();
    let shift = Span::days(days);
    let mut out = String::new();
    for line in RECORDING.lines() {
        let mut items: Value = serde_json::from_str(line).unwrap();
        for item in items.as_array_mut().unwrap() {
            let ts: DateTime<Utc> = item["last_updated"].as_str().unwrap().parse().unwrap();
            item["last_updated"] = apps::event::format_ts(ts + shift).into();
        }
        out.push_str(&items.to_string());
        out.push('\n');
    }
    let path = dir.join("recording.jsonl");
    std::fs::write(&path, out).unwrap();
    (path, shift)
}

/// `(ts, price)` of every valid, first-seen event per coin, from the recording itself.
fn expected_series(shift: Span) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for ((coin, ts), (price, _)) in expected_events(shift) {
        series.entry(coin).or_default().push((ts, price));
    }
    series
}

/// docs/METRICS.md, computed directly: the last price at or before `t − h` (looking back at
/// most one day more) followed by the prices in `(t − h, t]`.
fn expected_window(points: &[(i64, f64)], t: i64, h: i64) -> Vec<f64> {
    let reference = points
        .iter()
        .rfind(|(ts, _)| *ts <= t - h && *ts >= t - h - 86_400_000);
    reference
        .into_iter()
        .chain(points.iter().filter(|(ts, _)| *ts > t - h && *ts <= t))
        .map(|(_, p)| *p)
        .collect()
}

fn values<T: serde::de::DeserializeOwned>(records: &[Consumed]) -> Vec<T> {
    records
        .iter()
        .map(|c| serde_json::from_slice(c.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// Waits until consumer group `group` has committed at least `offsets` on `topic`.
fn wait_for_committed(bootstrap: &str, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in offsets.keys() {
        list.add_partition(topic, *partition);
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let committed = consumer
            .committed_offsets(list.clone(), Duration::from_secs(10))
            .unwrap();
        let done = committed.elements().iter().all(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o >= offsets[&e.partition()],
            _ => false,
        });
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{group} did not commit {offsets:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every alert the apps raise for the input behind `dedup`: waits until the alerts app has
/// committed past the last deduplicated event (so each alert it will ever raise for this input
/// is visible to a read_committed reader), then reads as many as its counter says it raised.
fn every_alert(
    bootstrap: &str,
    prefix: &str,
    topics: &Topics,
    dedup: &[Consumed],
    apps: &StreamApps,
) -> Vec<Consumed> {
    let mut last_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for c in dedup {
        let next = last_offsets.entry(c.partition).or_default();
        *next = (*next).max(c.offset + 1);
    }
    wait_for_committed(
        bootstrap,
        &format!("{prefix}crypto-alerts"),
        &topics.dedup,
        &last_offsets,
    );
    let raised = apps.counters.total("alerts_raised_total") as usize;
    let alerts = consume_until(bootstrap, &topics.alerts, "read_committed", WAIT, |got| {
        got.len() >= raised
    });
    assert_eq!(alerts.len(), raised, "alerts raised and committed");
    alerts
}

/// The exactly-once apps (three threads) on the test broker, on platform topics under a fresh
/// prefix made of `label`, with `adjust` applied to their settings: `(bootstrap, folder for
/// state and files, prefix, topics, apps)`.
fn platform(
    label: &str,
    adjust: impl FnOnce(&mut AppsSettings),
) -> (String, tempfile::TempDir, String, Topics, StreamApps) {
    let bootstrap = kafka_bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}.", unique_topic(label));
    let mut settings = settings(&bootstrap, &prefix, dir.path());
    adjust(&mut settings);
    let cluster = Cluster::connect_or_embed(Some(&bootstrap)).unwrap();
    let apps = StreamApps::start(&cluster, &settings, 3).unwrap();
    (
        bootstrap,
        dir,
        prefix.clone(),
        Topics::prefixed(&prefix),
        apps,
    )
}

/// Exactly-once apps on `bootstrap` with the platform topics under `prefix`.
fn settings(bootstrap: &str, prefix: &str, dir: &std::path::Path) -> AppsSettings {
    AppsSettings {
        stream: StreamOptions {
            kafka: KafkaOptions {
                bootstrap_servers: Some(bootstrap.to_string()),
                kafka_properties: Vec::new(),
                config: None,
            },
            application_id: None,
            processing_guarantee: ProcessingGuarantee::ExactlyOnceV2,
            commit_interval_ms: Some(100),
            state_dir: dir.join("state"),
            metrics_addr: None,
            instance_id: None,
            replication_factor: -1,
            topic_prefix: prefix.to_string(),
        },
        check: contract::CheckConfig::default(),
        dedup_horizon: Duration::from_secs(7 * 86_400),
        rules: RulesConfig::default(),
        producer_metrics: None,
        keep_records: false,
    }
}

/// Replays `file` (JSON lines of `/coins/markets` responses) into `topics.raw` (and the coins'
/// reference rows into `topics.coins`) as fast as it can; returns how many events it produced.
fn replay(bootstrap: &str, topics: &Topics, file: std::path::PathBuf) -> u64 {
    let sink = KafkaSink::new(bootstrap, topics, &BTreeMap::new()).unwrap();
    let config = ProducerConfig::new(Mode::Replay(ReplayConfig {
        path: file,
        format: None,
        speedup: 0.0,
        max_batches: None,
    }));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (_keep, shutdown) = tokio::sync::watch::channel(false);
        let stats = apps::producer::run(
            config,
            &sink,
            Arc::new(ProducerMetrics::default()),
            shutdown,
        )
        .await
        .unwrap();
        sink.flush().await.unwrap();
        stats.produced
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn a_recorded_file_flows_through_every_app_with_exact_results() {
    let (bootstrap, dir, prefix, topics, apps) = platform("e2e", |_| {});

    // Two records no producer of ours would write.
    let now = Utc::now().timestamp_millis();
    produce(
        &bootstrap,
        &topics.raw,
        &[
            (b"bitcoin".to_vec(), b"{not json".to_vec(), now),
            (b"bitcoin".to_vec(), vec![0xff, 0xfe], now),
        ],
    );
    let (file, shift) = shifted_recording(dir.path());
    assert_eq!(
        replay(&bootstrap, &topics, file),
        61 * 3,
        "61 responses of 3 coins"
    );

    // Valid/DLQ split: 183 events, one with a null price; plus the two broken records.
    let valid = consume_until(&bootstrap, &topics.valid, "read_committed", WAIT, |got| {
        got.len() >= 182
    });
    assert_eq!(valid.len(), 182);
    let dlq = consume_until(&bootstrap, &topics.dlq, "read_committed", WAIT, |got| {
        got.len() >= 3
    });
    let envelopes: Vec<Value> = values(&dlq);
    let mut reasons: Vec<(String, String)> = envelopes
        .iter()
        .map(|e| {
            (
                e["reason"]["keyword"].as_str().unwrap().into(),
                e["reason"]["instance_path"].as_str().unwrap().into(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("json_syntax".into(), "".into()),
            ("type".into(), "/price".into()),
            ("utf8".into(), "".into())
        ]
    );

    // Dedup: the repeated poll is dropped.
    let series = expected_series(shift);
    let unique: usize = series.values().map(Vec::len).sum();
    assert_eq!(unique, 179);
    let dedup = consume_until(&bootstrap, &topics.dedup, "read_committed", WAIT, |got| {
        got.len() >= unique
    });
    assert_eq!(dedup.len(), unique, "stopped apps: {:?}", apps.stopped());

    // Metrics: four updates per event; the latest per coin and horizon equals the direct
    // computation.
    let metrics_records =
        consume_until(&bootstrap, &topics.metrics, "read_committed", WAIT, |got| {
            values::<MetricsEvent>(got)
                .iter()
                .filter(|m| m.emit == Emit::Update)
                .count()
                >= 4 * unique
        });
    let metrics: Vec<MetricsEvent> = values(&metrics_records);
    let updates: Vec<&MetricsEvent> = metrics.iter().filter(|m| m.emit == Emit::Update).collect();
    assert_eq!(updates.len(), 4 * unique);
    for m in &updates {
        let points = &series[&m.coin_id];
        let t = apps::event::parse_ts_millis(&m.ts_event).unwrap();
        let prices = expected_window(points, t, m.horizon.millis());
        let (first, last) = (prices[0], *prices.last().unwrap());
        assert_eq!(m.n_points, prices.len(), "{m:?}");
        assert!(
            close(m.price_first, first) && close(m.price_last, last),
            "{m:?}"
        );
        match m.simple_return {
            Some(r) => assert!(close(r, last / first - 1.0), "{m:?}"),
            None => assert_eq!(prices.len(), 1),
        }
        let returns: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let vol = (returns.len() >= 2 && m.horizon.label() != "5m").then(|| {
            let mean = returns.iter().sum::<f64>() / returns.len() as f64;
            (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (returns.len() - 1) as f64)
                .sqrt()
        });
        match (m.realized_vol, vol) {
            (Some(a), Some(b)) => assert!(close(a, b), "{m:?}: expected {b}"),
            (a, b) => assert_eq!(a, b, "{m:?}"),
        }
    }

    // Alerts: only solana, only from the crash on, and at the crash exactly these three.
    let alert_records = every_alert(&bootstrap, &prefix, &topics, &dedup, &apps);
    let alerts: Vec<AlertEvent> = values(&alert_records);
    let crash_ts = series["solana"][CRASH_POLL as usize].0;
    assert!(alerts.iter().all(|a| a.coin_id == "solana"), "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| apps::event::parse_ts_millis(&a.ts_event).unwrap() >= crash_ts),
        "{alerts:?}"
    );
    let mut at_crash: Vec<String> = alerts
        .iter()
        .filter(|a| apps::event::parse_ts_millis(&a.ts_event).unwrap() == crash_ts)
        .map(|a| {
            format!(
                "{}/{}",
                serde_json::to_value(a.rule).unwrap().as_str().unwrap(),
                a.window.map(|w| w.label()).unwrap_or("-")
            )
        })
        .collect();
    at_crash.sort();
    assert_eq!(
        at_crash,
        ["price_move/1h", "price_move/24h", "zscore/24h"],
        "{alerts:?}"
    );
    // The producer wrote each coin's reference row once (the recording never changes them),
    // before the events; the alerts app, reading them as a global table, names the coin.
    let rows = consume_until(&bootstrap, &topics.coins, "read_committed", WAIT, |got| {
        got.len() >= 3
    });
    assert_eq!(rows.len(), 3);
    assert!(
        alerts
            .iter()
            .any(|a| a.message.starts_with("solana (Solana, SOL, rank 3) ")),
        "{alerts:?}"
    );
    assert_eq!(
        apps.counters.total("alerts_reference_rows_skipped_total"),
        0
    );
    assert_eq!(apps.counters.get("dedup_duplicates_total", &[]), 3);
    apps.close().unwrap();
}

/// Three polls of three coins, five minutes apart and ending now, in which bitcoin's
/// `last_updated` of the second poll is 3 h ahead: replayed into `topics.raw`.
fn replay_with_a_future_dated_event(bootstrap: &str, topics: &Topics, dir: &std::path::Path) {
    let template: Vec<Value> = serde_json::from_str(RECORDING.lines().next().unwrap()).unwrap();
    let now = Utc::now();
    let mut lines = String::new();
    for poll in 0..3 {
        let at = now - Span::minutes(10 - 5 * poll);
        let mut items = template.clone();
        for item in &mut items {
            let skew = if poll == 1 && item["id"] == "bitcoin" {
                Span::hours(3)
            } else {
                Span::zero()
            };
            item["last_updated"] = apps::event::format_ts(at + skew).into();
        }
        lines.push_str(&Value::from(items).to_string());
        lines.push('\n');
    }
    let file = dir.join("skewed.jsonl");
    std::fs::write(&file, lines).unwrap();
    assert_eq!(replay(bootstrap, topics, file), 9);
}

/// Waits until the eight events other than the future-dated one, the third bitcoin poll
/// (behind it in its partition) included, have reached dedup and metrics; checks that no more
/// did.
fn assert_the_other_eight_flow(bootstrap: &str, topics: &Topics) {
    let dedup = consume_until(bootstrap, &topics.dedup, "read_committed", WAIT, |got| {
        got.len() >= 8
    });
    let bitcoin = dedup.iter().filter(|c| c.key == b"bitcoin").count();
    assert_eq!((dedup.len(), bitcoin), (8, 2));
    let metrics = consume_until(bootstrap, &topics.metrics, "read_committed", WAIT, |got| {
        values::<MetricsEvent>(got)
            .iter()
            .filter(|m| m.emit == Emit::Update)
            .count()
            >= 4 * 8
    });
    let updates = values::<MetricsEvent>(&metrics)
        .into_iter()
        .filter(|m| m.emit == Emit::Update)
        .count();
    assert_eq!(updates, 4 * 8);
}

/// Issue 10: one CoinGecko item 3 h ahead of its poll used to pass the validator and stop dedup
/// (the broker refuses a record stamped more than an hour ahead). Now the validator
/// dead-letters it with its rule, and every event behind it, in the same partition, flows.
#[test]
fn a_future_dated_event_is_dead_lettered_and_the_events_behind_it_flow() {
    let (bootstrap, dir, _, topics, apps) = platform("future", |_| {});
    replay_with_a_future_dated_event(&bootstrap, &topics, dir.path());

    let dlq = consume_until(&bootstrap, &topics.dlq, "read_committed", WAIT, |got| {
        !got.is_empty()
    });
    let envelope: Value = serde_json::from_slice(dlq[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(
        (
            &envelope["reason"]["keyword"],
            &envelope["reason"]["instance_path"],
            &envelope["source"]["key"]
        ),
        (
            &Value::from("ts_event_after_ts_ingest"),
            &Value::from("/ts_event"),
            &Value::from("bitcoin")
        ),
        "{envelope}"
    );
    assert_the_other_eight_flow(&bootstrap, &topics);
    assert_eq!(apps.stopped(), None, "every app still runs");
    assert_eq!(
        apps.counters.get(
            "validator_dead_lettered_total",
            &[("keyword", "ts_event_after_ts_ingest")]
        ),
        1
    );
    assert_eq!(
        (
            apps.counters.total("validator_dead_lettered_total"),
            apps.counters.get("validator_valid_total", &[])
        ),
        (1, 8)
    );
    apps.close().unwrap();
}

/// Issue 10, the broker's side: with the validator's future tolerance (4 h) above the
/// broker's `message.timestamp.after.max.ms` (1 h), the 3-h-ahead event passes the validator,
/// and the broker refuses dedup's output, stamped with the event time. Under exactly-once the
/// refused record is dead-lettered with the broker's reason, the other eight flow, and every
/// app keeps running.
#[test]
fn a_future_dated_event_the_broker_refuses_is_dead_lettered_and_the_apps_go_on() {
    let (bootstrap, dir, _, topics, apps) = platform("refused", |settings| {
        settings.check.future_tolerance = Duration::from_secs(4 * 3600);
    });
    replay_with_a_future_dated_event(&bootstrap, &topics, dir.path());

    let dlq = consume_until(&bootstrap, &topics.dlq, "read_committed", WAIT, |got| {
        !got.is_empty()
    });
    assert_the_other_eight_flow(&bootstrap, &topics);
    assert_eq!(dlq.len(), 1, "one dead letter");
    let header = |name: &str| {
        dlq[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    use streamlib::dead_letter_headers as h;
    assert_eq!(header(h::ERROR_KIND).as_deref(), Some("production"));
    assert_eq!(header(h::OUTPUT_TOPIC), Some(topics.dedup.clone()));
    let reason = header(h::ERROR_MESSAGE).unwrap_or_default();
    assert!(
        reason.contains("InvalidTimestamp"),
        "broker's reason: {reason}"
    );
    assert_eq!(dlq[0].key, b"bitcoin");
    assert_eq!(apps.stopped(), None, "every app still runs");
    assert_eq!(
        (
            apps.counters.total("validator_dead_lettered_total"),
            apps.counters.get("validator_valid_total", &[])
        ),
        (0, 9)
    );
    apps.close().unwrap();
}

/// `(price, market_cap)` of every valid, first-seen event, by coin and event time (ms), from the
/// recording itself.
fn expected_events(shift: Span) -> BTreeMap<(String, i64), (f64, Option<f64>)> {
    let mut events = BTreeMap::new();
    for line in RECORDING.lines() {
        let items: Value = serde_json::from_str(line).unwrap();
        for item in items.as_array().unwrap() {
            let Some(price) = item["current_price"].as_f64() else {
                continue; // dead-lettered
            };
            let ts: DateTime<Utc> = item["last_updated"].as_str().unwrap().parse().unwrap();
            let key = (
                item["id"].as_str().unwrap().to_string(),
                (ts + shift).timestamp_millis(),
            );
            events
                .entry(key)
                .or_insert((price, item["market_cap"].as_f64()));
        }
    }
    events
}

/// OHLC and poll count of `points` (in time order), as the candle models define them.
fn candle(points: &[(i64, f64)]) -> (f64, f64, f64, f64, i64) {
    let prices: Vec<f64> = points.iter().map(|(_, p)| *p).collect();
    let high = prices.iter().copied().fold(f64::MIN, f64::max);
    let low = prices.iter().copied().fold(f64::MAX, f64::min);
    (
        prices[0],
        high,
        low,
        *prices.last().unwrap(),
        prices.len() as i64,
    )
}

/// Issue 11: the recording replayed on the real broker through the apps and the embedded batch
/// half (exactly-once Bronze sink → Silver → Gold on the S3 server → warehouse load): Bronze holds
/// each topic's records, Silver the deduplicated valid events, every Gold value equals the
/// computation below, and the warehouse's facts equal Gold (counts and sums).
#[test]
fn a_recorded_file_reaches_the_lake_and_the_warehouse_with_exact_tables() {
    use apps::batch::{BatchSettings, EmbeddedBatch};
    use lake::testing::{f64_of, i64_of, rows, str_of, ts_of};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(warehouse::testing::TestDb::create("e2e"));
    let lake = lake::testing::s3_lake("e2e");
    let (bootstrap, dir, prefix, topics, apps) = platform("lakehouse", |_| {});
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (_span, span) = tokio::sync::watch::channel(None);
    let batch_settings = BatchSettings {
        lake: lake.clone(),
        warehouse: Some(db.target.clone()),
        // Only the final run of `finish` (the test checks one interval's tables).
        every: Duration::from_secs(3600),
        sink_id: format!("{prefix}sink"),
    };
    let batch = EmbeddedBatch::start(&bootstrap, &topics, &batch_settings, stopped, span).unwrap();

    let (file, shift) = shifted_recording(dir.path());
    assert_eq!(replay(&bootstrap, &topics, file), 61 * 3);
    let events = expected_events(shift);
    assert_eq!(events.len(), 179, "deduplicated valid events");
    let raw = consume_until(&bootstrap, &topics.raw, "read_committed", WAIT, |got| {
        got.len() >= 183
    });
    let dlq = consume_until(&bootstrap, &topics.dlq, "read_committed", WAIT, |got| {
        !got.is_empty()
    });
    let dedup = consume_until(&bootstrap, &topics.dedup, "read_committed", WAIT, |got| {
        got.len() >= events.len()
    });
    let alerts = every_alert(&bootstrap, &prefix, &topics, &dedup, &apps);

    // The sink has committed every partition up to its end, then the last batch run.
    let routes = [
        (&topics.raw, lake::silver::BRONZE_PRICES),
        (&topics.dlq, lake::silver::BRONZE_DEAD_LETTERS),
        (&topics.alerts, lake::silver::BRONZE_ALERTS),
    ]
    .map(|(topic, table)| lake::bronze::sink::Route {
        topic: topic.clone(),
        table: table.to_string(),
    });
    let deadline = std::time::Instant::now() + WAIT;
    while !runtime
        .block_on(lake::bronze::progress::bronze_progress(
            &lake,
            &bootstrap,
            &BTreeMap::new(),
            &routes,
            &batch_settings.sink_id,
            Utc::now() + Span::days(1),
        ))
        .unwrap()
        .complete()
    {
        assert!(std::time::Instant::now() < deadline, "Bronze caught up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let times: Vec<i64> = events.keys().map(|(_, ts)| *ts).collect();
    let span_of = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
    let first = span_of(*times.iter().min().unwrap());
    let last = span_of(*times.iter().max().unwrap());
    stop.send(true).unwrap();
    let status = batch.finish(Some((first, last))).unwrap();
    assert_eq!((status.last_error, status.loaded), (None, true));
    assert_eq!(apps.stopped(), None, "every app still runs");
    apps.close().unwrap();

    let read = |table: &str, order_by: &[&str]| runtime.block_on(rows(&lake, table, order_by));
    // Bronze: each record of each topic once, by its coordinates.
    for (records, table) in [
        (&raw, lake::silver::BRONZE_PRICES),
        (&dlq, lake::silver::BRONZE_DEAD_LETTERS),
        (&alerts, lake::silver::BRONZE_ALERTS),
    ] {
        let mut expected: Vec<(i32, i64)> =
            records.iter().map(|c| (c.partition, c.offset)).collect();
        expected.sort();
        let got: Vec<(i32, i64)> = read(table, &["partition", "offset"])
            .iter()
            .map(|r| {
                (
                    i64_of(r, "partition").unwrap() as i32,
                    i64_of(r, "offset").unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{table}");
    }

    // Silver: exactly the deduplicated valid events.
    let silver: BTreeMap<(String, i64), (f64, Option<f64>)> = read("silver/prices", &["event_id"])
        .iter()
        .map(|r| {
            (
                (
                    str_of(r, "coin_id").to_string(),
                    ts_of(r, "ts_event").unwrap().timestamp_millis(),
                ),
                (f64_of(r, "price").unwrap(), f64_of(r, "market_cap")),
            )
        })
        .collect();
    assert_eq!(silver, events);
    let quarantined: Vec<String> = read("silver/quarantine", &["rule"])
        .iter()
        .map(|r| str_of(r, "rule").to_string())
        .collect();
    assert_eq!(
        quarantined.iter().filter(|r| *r == "duplicate").count(),
        3,
        "the repeated poll: {quarantined:?}"
    );

    // Gold candles, hourly and daily, computed here from the events.
    for (table, bucket_ms) in [
        ("gold/candles_1h", 3_600_000),
        ("gold/candles_1d", 86_400_000),
    ] {
        let mut buckets: BTreeMap<(String, i64), Vec<(i64, f64)>> = BTreeMap::new();
        for ((coin, ts), (price, _)) in &events {
            buckets
                .entry((coin.clone(), ts - ts.rem_euclid(bucket_ms)))
                .or_default()
                .push((*ts, *price));
        }
        let got = read(table, &["coin_id", "bucket_start"]);
        assert_eq!(got.len(), buckets.len(), "{table}");
        for row in &got {
            let key = (
                str_of(row, "coin_id").to_string(),
                ts_of(row, "bucket_start").unwrap().timestamp_millis(),
            );
            let (open, high, low, close_, polls) = candle(&buckets[&key]);
            let actual = ["open", "high", "low", "close"].map(|c| f64_of(row, c).unwrap());
            assert!(
                actual
                    .iter()
                    .zip([open, high, low, close_])
                    .all(|(a, b)| close(*a, b)),
                "{table} {key:?}: {row:?}"
            );
            assert_eq!(i64_of(row, "polls"), Some(polls), "{table} {key:?}");
        }
    }

    // Daily metrics and dominance: one day, so no daily return yet; the day's close, the
    // realized volatility of its intraday log returns, and each coin's share of the market cap.
    let mut by_coin: BTreeMap<&str, Vec<(f64, Option<f64>)>> = BTreeMap::new();
    for ((coin, _), value) in &events {
        by_coin.entry(coin).or_default().push(*value);
    }
    let daily = read("gold/daily_metrics", &["coin_id", "date"]);
    assert_eq!(daily.len(), by_coin.len(), "one day per coin: {daily:?}");
    for row in &daily {
        let points = &by_coin[str_of(row, "coin_id")];
        let squares: f64 = points
            .windows(2)
            .map(|w| (w[1].0 / w[0].0).ln().powi(2))
            .sum();
        assert!(
            close(f64_of(row, "close").unwrap(), points.last().unwrap().0),
            "{row:?}"
        );
        assert!(
            close(f64_of(row, "realized_vol").unwrap(), squares.sqrt()),
            "{row:?}"
        );
        assert_eq!(i64_of(row, "intraday_points"), Some(points.len() as i64));
        assert_eq!(
            f64_of(row, "simple_return"),
            None,
            "no previous day: {row:?}"
        );
    }
    let caps: BTreeMap<&str, f64> = by_coin
        .iter()
        .map(|(coin, points)| {
            (
                *coin,
                points.iter().rev().find_map(|(_, cap)| *cap).unwrap(),
            )
        })
        .collect();
    let total: f64 = caps.values().sum();
    let dominance = read("gold/dominance", &["coin_id"]);
    assert_eq!(dominance.len(), caps.len());
    for row in &dominance {
        let share = caps[str_of(row, "coin_id")] / total;
        assert!(close(f64_of(row, "share").unwrap(), share), "{row:?}");
    }
    // Data quality: the polls received per coin and hour are the hourly candles' polls.
    let quality = read("gold/data_quality", &["coin_id", "hour_start"]);
    let received: i64 = quality
        .iter()
        .filter_map(|r| i64_of(r, "polls_received"))
        .sum();
    let removed: i64 = quality
        .iter()
        .filter_map(|r| i64_of(r, "duplicates_removed"))
        .sum();
    assert_eq!((received, removed), (events.len() as i64, 3));

    // The warehouse: every fact has its lake table's rows, by count and by sum of a measure.
    let client = runtime.block_on(db.client());
    let (day, end) = (
        first.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc(),
        last.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc() + Span::days(1),
    );
    for source in [
        "silver/prices",
        "silver/alerts",
        "gold/candles_1h",
        "gold/candles_1d",
        "gold/daily_metrics",
        "gold/dominance",
        "gold/data_quality",
    ] {
        let (fact, measure) = warehouse::testing::fact_of(source);
        let lake_rows = read(source, &[]);
        let lake_sum: f64 = lake_rows.iter().filter_map(|r| f64_of(r, measure)).sum();
        let (count, sum) = runtime.block_on(warehouse::testing::fact_count_and_sum(
            &client, fact, measure, day, end,
        ));
        assert_eq!(count, lake_rows.len() as i64, "{fact} rows");
        assert!(
            close(sum, lake_sum),
            "{fact}: sum of {measure} {sum} vs {lake_sum}"
        );
    }
    assert!(
        !read("silver/alerts", &[]).is_empty(),
        "the crash raised alerts"
    );
    drop(client);
    runtime.block_on(db.drop());
}
