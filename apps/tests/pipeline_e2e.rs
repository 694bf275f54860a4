//! End to end on the real broker: a recorded file (`data/markets_replay.jsonl`, see its
//! generator `data/make_replay.py`) is replayed by the producer through validator, dedup,
//! metrics and alerts under exactly-once. Checked: the valid/DLQ split, the dedup count, every
//! metric value against an independent computation written here, and alerts on the planted
//! crash and none on the calm part. Needs `KAFKA_BOOTSTRAP` (see `scripts/test`).

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
    let mut series: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for line in RECORDING.lines() {
        let items: Value = serde_json::from_str(line).unwrap();
        for item in items.as_array().unwrap() {
            let Some(price) = item["current_price"].as_f64() else {
                continue; // dead-lettered
            };
            let ts: DateTime<Utc> = item["last_updated"].as_str().unwrap().parse().unwrap();
            series
                .entry(item["id"].as_str().unwrap().to_string())
                .or_default()
                .insert((ts + shift).timestamp_millis(), price);
        }
    }
    series
        .into_iter()
        .map(|(coin, points)| (coin, points.into_iter().collect()))
        .collect()
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
    }
}

/// Replays `file` (JSON lines of `/coins/markets` responses) into `topics.raw` as fast as it
/// can; returns how many events it produced.
fn replay(bootstrap: &str, topics: &Topics, file: std::path::PathBuf) -> u64 {
    let sink = KafkaSink::new(bootstrap, &topics.raw, &BTreeMap::new()).unwrap();
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
    let bootstrap = kafka_bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}.", unique_topic("e2e"));
    let topics = Topics::prefixed(&prefix);
    let settings = settings(&bootstrap, &prefix, dir.path());
    let cluster = Cluster::connect_or_embed(Some(&bootstrap)).unwrap();
    let apps = StreamApps::start(&cluster, &settings, 3).unwrap();

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
    assert_eq!(dedup.len(), unique);

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
    // First wait until the alerts app committed past the last deduplicated event, so every
    // alert it will ever raise for this input is visible to a read_committed reader.
    let mut last_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for c in &dedup {
        let next = last_offsets.entry(c.partition).or_default();
        *next = (*next).max(c.offset + 1);
    }
    wait_for_committed(
        &bootstrap,
        &format!("{prefix}crypto-alerts"),
        &topics.dedup,
        &last_offsets,
    );
    // Everything the app raised for this input (its counter) is committed: read that many.
    let raised = apps.counters.total("alerts_raised_total") as usize;
    let alert_records = consume_until(&bootstrap, &topics.alerts, "read_committed", WAIT, |got| {
        got.len() >= raised
    });
    assert_eq!(alert_records.len(), raised);
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
    let bootstrap = kafka_bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}.", unique_topic("future"));
    let topics = Topics::prefixed(&prefix);
    let apps = StreamApps::start(
        &Cluster::connect_or_embed(Some(&bootstrap)).unwrap(),
        &settings(&bootstrap, &prefix, dir.path()),
        3,
    )
    .unwrap();
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
    let bootstrap = kafka_bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}.", unique_topic("refused"));
    let topics = Topics::prefixed(&prefix);
    let mut settings = settings(&bootstrap, &prefix, dir.path());
    settings.check.future_tolerance = Duration::from_secs(4 * 3600);
    let apps = StreamApps::start(
        &Cluster::connect_or_embed(Some(&bootstrap)).unwrap(),
        &settings,
        3,
    )
    .unwrap();
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
