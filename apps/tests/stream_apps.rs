//! The stream apps on the TopologyTestDriver: routing, dead-letter envelopes, deduplication,
//! metric values, alert rules and the coin names alerts take from the reference table. Every
//! output is checked against its contract.

use std::time::Duration;

use apps::alerts::{self, RulesConfig};
use apps::counters::Counters;
use apps::event::{PriceEvent, Source};
use apps::metrics::{self, Emit, MetricsEvent};
use apps::reference::CoinReference;
use apps::topics::Topics;
use apps::{dedup, validator};
use chrono::DateTime;
use serde_json::Value;
use streamlib::prelude::*;
use streamlib::query::{KeyQuery, RangeQuery, StateQueryRequest};
use streamlib::testing::{DriverConfig, TopologyTestDriver};

const MIN5: i64 = 300_000;
/// 2026-11-23T00:00:00Z: hour-aligned.
const BASE: i64 = 1_795_392_000_000;

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!(
        "{}/../contracts/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value}: {errors:?}");
}

fn event(coin: &str, price: f64, ts: i64) -> PriceEvent {
    let at = DateTime::from_timestamp_millis(ts).unwrap();
    let mut event = PriceEvent::new(Source::Synthetic, coin, "sym", "usd", price, at, at);
    event.total_volume = Some(1_000_000.0);
    event
}

fn driver(topology: Topology) -> TopologyTestDriver {
    TopologyTestDriver::new(topology, DriverConfig::default()).unwrap()
}

fn pipe_event(driver: &mut TopologyTestDriver, topic: &str, event: &PriceEvent) {
    let bytes = serde_json::to_vec(event).unwrap();
    driver
        .pipe_raw(
            topic,
            Some(event.coin_id.clone().into_bytes()),
            Some(bytes),
            BASE,
        )
        .unwrap();
}

#[test]
fn the_validator_passes_valid_bytes_unchanged_and_dead_letters_the_rest_with_the_reason() {
    let topics = Topics::default();
    let counters = Counters::default();
    let mut d = driver(validator::topology(
        &topics,
        contract::CheckConfig::default(),
        &counters,
    ));
    let valid = serde_json::to_vec(&event("bitcoin", 70_000.0, BASE)).unwrap();
    let mut wrong_version: Value = serde_json::from_slice(&valid).unwrap();
    wrong_version["schema_version"] = "2.0".into();
    let mut missing: Value = serde_json::from_slice(&valid).unwrap();
    missing.as_object_mut().unwrap().remove("price");
    let mut wrong_type: Value = serde_json::from_slice(&valid).unwrap();
    wrong_type["price"] = "abc".into();
    let mut negative: Value = serde_json::from_slice(&valid).unwrap();
    negative["price"] = (-1.0).into();
    let mut foreign_id: Value = serde_json::from_slice(&valid).unwrap();
    foreign_id["event_id"] =
        apps::event::event_id("bitcoin", "eur", &event("bitcoin", 1.0, BASE).ts_event).into();
    let mut nul_symbol: Value = serde_json::from_slice(&valid).unwrap();
    nul_symbol["symbol"] = "bt\u{0}c".into();
    // 3 h ahead of its own ingest time (a CoinGecko clock skew).
    let mut future = event("bitcoin", 70_000.0, BASE + 3 * 3_600_000);
    future.ts_ingest = apps::event::format_millis(BASE);
    let mut ancient = event("bitcoin", 70_000.0, BASE);
    ancient.ts_event = "2008-12-31T00:00:00.000Z".into();
    ancient.event_id = apps::event::event_id("bitcoin", "usd", &ancient.ts_event);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"{not json".to_vec(), "json_syntax", ""),
        (vec![0xff, 0xfe, 0x00], "utf8", ""),
        (Vec::new(), "tombstone", ""),
        (
            serde_json::to_vec(&wrong_version).unwrap(),
            "const",
            "/schema_version",
        ),
        (serde_json::to_vec(&missing).unwrap(), "required", ""),
        (serde_json::to_vec(&wrong_type).unwrap(), "type", "/price"),
        (
            serde_json::to_vec(&negative).unwrap(),
            "exclusiveMinimum",
            "/price",
        ),
        (
            serde_json::to_vec(&foreign_id).unwrap(),
            "event_id_mismatch",
            "/event_id",
        ),
        (
            serde_json::to_vec(&nul_symbol).unwrap(),
            "pattern",
            "/symbol",
        ),
        (
            serde_json::to_vec(&future).unwrap(),
            "ts_event_after_ts_ingest",
            "/ts_event",
        ),
        (
            serde_json::to_vec(&ancient).unwrap(),
            "ts_event_too_old",
            "/ts_event",
        ),
    ];
    for bytes in std::iter::once(&valid).chain(cases.iter().map(|(bytes, _, _)| bytes)) {
        d.pipe_raw(
            &topics.raw,
            Some(b"bitcoin".to_vec()),
            Some(bytes.clone()),
            BASE,
        )
        .unwrap();
    }
    let passed = d.read_raw(&topics.valid);
    assert_eq!(passed.len(), 1);
    assert_eq!(
        passed[0].value.as_deref(),
        Some(&valid[..]),
        "bytes unchanged"
    );
    let dead = d.read_raw(&topics.dlq);
    assert_eq!(dead.len(), cases.len());
    let dead_letter = schema("dead_letter");
    for (i, (record, (bytes, keyword, pointer))) in dead.iter().zip(&cases).enumerate() {
        let envelope: Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        assert_valid(&dead_letter, &envelope);
        assert_eq!(envelope["reason"]["keyword"], *keyword, "{envelope}");
        assert_eq!(envelope["reason"]["instance_path"], *pointer, "{envelope}");
        assert_eq!(envelope["source"]["offset"], i as i64 + 1);
        assert_eq!(envelope["source"]["key"], "bitcoin");
        assert_eq!(envelope["original"]["size_bytes"], bytes.len());
        assert_eq!(
            record.key.as_deref(),
            Some(&b"bitcoin"[..]),
            "original key kept"
        );
    }
    let envelope: Value = serde_json::from_slice(dead[1].value.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["original"]["encoding"], "base64");
    assert_eq!(envelope["original"]["data"], "//4A");
    assert_eq!(
        counters.total("validator_dead_lettered_total"),
        cases.len() as u64
    );
    assert_eq!(counters.get("validator_valid_total", &[]), 1);
}

#[test]
fn the_validator_rekeys_valid_events_by_coin_id_and_dead_letters_tombstones() {
    let topics = Topics::default();
    let counters = Counters::default();
    let mut d = driver(validator::topology(
        &topics,
        contract::CheckConfig::default(),
        &counters,
    ));
    let valid = serde_json::to_vec(&event("solana", 150.0, BASE)).unwrap();
    for key in [None, Some(b"bitcoin".to_vec()), Some(b"solana".to_vec())] {
        d.pipe_raw(&topics.raw, key, Some(valid.clone()), BASE)
            .unwrap();
    }
    d.pipe_raw(&topics.raw, Some(b"solana".to_vec()), None, BASE)
        .unwrap();
    let passed = d.read_raw(&topics.valid);
    assert_eq!(passed.len(), 3);
    for record in &passed {
        assert_eq!(record.key.as_deref(), Some(&b"solana"[..]));
        assert_eq!(record.value.as_deref(), Some(&valid[..]), "bytes unchanged");
    }
    let rekeyed = |reason| counters.get("validator_rekeyed_total", &[("reason", reason)]);
    assert_eq!((rekeyed("missing_key"), rekeyed("key_not_coin_id")), (1, 1));
    let dead = d.read_raw(&topics.dlq);
    assert_eq!(dead.len(), 1);
    let envelope: Value = serde_json::from_slice(dead[0].value.as_deref().unwrap()).unwrap();
    assert_valid(&schema("dead_letter"), &envelope);
    assert_eq!(
        (
            &envelope["error_kind"],
            &envelope["reason"]["keyword"],
            &envelope["original"]["size_bytes"]
        ),
        (
            &Value::from("deserialization"),
            &Value::from("tombstone"),
            &Value::from(0)
        )
    );
    assert_eq!(
        counters.get("validator_dead_lettered_total", &[("keyword", "tombstone")]),
        1
    );
}

#[test]
fn dedup_forwards_first_occurrences_within_the_horizon_and_counts_duplicates() {
    let topics = Topics::default();
    let counters = Counters::default();
    let mut d = driver(dedup::topology(
        &topics,
        Duration::from_secs(3600),
        &counters,
    ));
    let first = event("bitcoin", 1.0, BASE);
    let same_key_other_price = event("bitcoin", 2.0, BASE);
    let other_currency = PriceEvent {
        vs_currency: "eur".into(),
        ..first.clone()
    };
    let later = event("bitcoin", 3.0, BASE + 2 * 3_600_000);
    for e in [
        &first,
        &first,
        &same_key_other_price,
        &other_currency,
        &later,
        &first,
    ] {
        pipe_event(&mut d, &topics.valid, e);
    }
    let out = d.read_raw(&topics.dedup);
    let prices: Vec<(String, f64)> = out
        .iter()
        .map(|r| {
            let e: PriceEvent = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            (e.vs_currency, e.price)
        })
        .collect();
    // The last `first` comes after its key expired (1 h horizon, stream time 2 h later).
    assert_eq!(
        prices,
        [
            ("usd".into(), 1.0),
            ("eur".into(), 1.0),
            ("usd".into(), 3.0),
            ("usd".into(), 1.0)
        ]
    );
    assert_eq!(counters.get("dedup_duplicates_total", &[]), 2);
}

fn metrics_for(prices: &[f64]) -> Vec<MetricsEvent> {
    let topics = Topics::default();
    let mut d = driver(metrics::topology(&topics, &Counters::default()));
    for (i, price) in prices.iter().enumerate() {
        pipe_event(
            &mut d,
            &topics.dedup,
            &event("bitcoin", *price, BASE + i as i64 * MIN5),
        );
    }
    read_checked(&mut d, &topics.metrics, "metrics_event")
}

/// The values written to `topic`, each checked against `contracts/<contract>.schema.json`.
fn read_checked<T>(d: &mut TopologyTestDriver, topic: &str, contract: &str) -> Vec<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let contract = schema(contract);
    d.read_output(topic, &StringSerde, &JsonSerde::<T>::new())
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_valid(&contract, &serde_json::to_value(&r.value).unwrap());
            r.value
        })
        .collect()
}

#[test]
fn metrics_report_returns_against_the_reference_price_and_sample_volatility() {
    let out = metrics_for(&[100.0, 101.0, 99.0, 102.0]);
    let last_update = |horizon: &str| {
        out.iter()
            .rev()
            .find(|m| m.emit == Emit::Update && m.horizon.label() == horizon)
            .unwrap()
            .clone()
    };
    // 5 minutes: the reference is the previous poll, exactly 5 minutes earlier.
    let m5 = last_update("5m");
    assert_eq!(
        (m5.n_points, m5.price_first, m5.price_last),
        (2, 99.0, 102.0)
    );
    assert!((m5.simple_return.unwrap() - (102.0 / 99.0 - 1.0)).abs() < 1e-12);
    assert_eq!(m5.realized_vol, None, "no volatility over 5 minutes");
    assert_eq!(m5.window_end, "2026-11-23T00:15:00.001Z");
    assert_eq!(m5.window_start, "2026-11-23T00:10:00.001Z");
    // 1 hour: no price before the window, so p1 is the first price in it.
    let h1 = last_update("1h");
    assert_eq!((h1.n_points, h1.price_first), (4, 100.0));
    assert!((h1.log_return.unwrap() - (1.02f64).ln()).abs() < 1e-12);
    let r = [
        (1.01f64).ln(),
        (99.0f64 / 101.0).ln(),
        (102.0f64 / 99.0).ln(),
    ];
    let mean = r.iter().sum::<f64>() / 3.0;
    let vol = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((h1.realized_vol.unwrap() - vol).abs() < 1e-12);
    // The first event has a single point: no return.
    assert_eq!(out[0].n_points, 1);
    assert_eq!(out[0].simple_return, None);
}

#[test]
fn metrics_emit_final_values_when_an_aligned_window_closes() {
    let prices: Vec<f64> = (0..14).map(|i| 100.0 + i as f64).collect();
    let out = metrics_for(&prices);
    let finals: Vec<&MetricsEvent> = out.iter().filter(|m| m.emit == Emit::Final).collect();
    // 13 five-minute windows closed; the 12th event (00:60) closed the first hour.
    assert_eq!(
        finals.iter().filter(|m| m.horizon.label() == "5m").count(),
        13
    );
    let hour: Vec<&&MetricsEvent> = finals
        .iter()
        .filter(|m| m.horizon.label() == "1h")
        .collect();
    assert_eq!(hour.len(), 1);
    let hour = hour[0];
    assert_eq!(hour.window_start, "2026-11-23T00:00:00.000Z");
    assert_eq!(hour.window_end, "2026-11-23T01:00:00.000Z");
    assert_eq!(
        (hour.n_points, hour.price_first, hour.price_last),
        (12, 100.0, 111.0)
    );
    assert_eq!(hour.ts_event, "2026-11-23T00:55:00.000Z");
    assert_eq!(
        out.iter().filter(|m| m.emit == Emit::Update).count(),
        14 * 4
    );
}

fn alert_run(
    prices: &[(f64, f64)],
    config: RulesConfig,
) -> (Vec<alerts::AlertEvent>, TopologyTestDriver, Topics) {
    let topics = Topics::default();
    let mut d = driver(alerts::topology(&topics, config, &Counters::default()));
    for (i, (price, volume)) in prices.iter().enumerate() {
        let mut e = event("bitcoin", *price, BASE + i as i64 * MIN5);
        e.total_volume = Some(*volume);
        pipe_event(&mut d, &topics.dedup, &e);
    }
    let out = read_alerts(&mut d, &topics);
    (out, d, topics)
}

fn read_alerts(d: &mut TopologyTestDriver, topics: &Topics) -> Vec<alerts::AlertEvent> {
    read_checked(d, &topics.alerts, "alert_event")
}

/// A calm walk: ±0.1 % alternating moves.
fn calm(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            (
                100.0 * if i % 2 == 0 { 1.0 } else { 1.001 },
                1_000.0 + (i % 3) as f64,
            )
        })
        .collect()
}

#[test]
fn a_calm_market_raises_nothing_and_a_crash_raises_price_move_and_zscore_once() {
    let (quiet, ..) = alert_run(&calm(40), RulesConfig::default());
    assert!(quiet.is_empty(), "{quiet:?}");

    let mut prices = calm(40);
    prices.push((92.0, 1_000.0)); // −8 % in one poll
    prices.push((91.0, 1_000.0)); // still down: the cooldown keeps it quiet
    let (alerts, ..) = alert_run(&prices, RulesConfig::default());
    let rules: Vec<(String, Option<&str>)> = alerts
        .iter()
        .map(|a| (format!("{:?}", a.rule), a.window.map(|w| w.label())))
        .collect();
    assert_eq!(
        rules,
        [
            ("PriceMove".into(), Some("1h")),
            ("Zscore".into(), Some("24h"))
        ],
        "{alerts:?}"
    );
    let price_move = &alerts[0];
    // The reference is the poll exactly one hour earlier (index 28, price 100).
    assert!(
        (price_move.observed - (1.0 - 92.0 / 100.0)).abs() < 1e-9,
        "{price_move:?}"
    );
    assert_eq!(price_move.threshold, 0.05);
    assert_eq!(format!("{:?}", price_move.severity), "Warning");
    assert_eq!(price_move.ts_event, "2026-11-23T03:20:00.000Z");
}

#[test]
fn volume_spikes_and_per_coin_overrides() {
    let mut prices = calm(20);
    prices.push((100.0, 5_000.0));
    let (alerts, ..) = alert_run(&prices, RulesConfig::default());
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(format!("{:?}", alerts[0].rule), "VolumeSpike");
    assert!((alerts[0].observed - 5.0).abs() < 0.01);
    assert_eq!(format!("{:?}", alerts[0].severity), "Warning");

    let config: RulesConfig = serde_json::from_str(
        r#"{"coins": {"bitcoin": {"volume_spike": {"window": "24h", "threshold": 2.0}}}}"#,
    )
    .unwrap();
    let (alerts, ..) = alert_run(&prices, config.clone());
    assert_eq!(
        format!("{:?}", alerts[0].severity),
        "Critical",
        "5x is twice the 2x threshold"
    );
    assert_eq!(
        config.rules_for("ethereum").volume_spike.unwrap().threshold,
        3.0
    );
}

#[test]
fn a_coin_without_events_for_the_stale_limit_raises_one_stale_feed_alert() {
    let (alerts, mut d, topics) = alert_run(&calm(3), RulesConfig::default());
    assert!(alerts.is_empty());
    d.advance_wall_clock(Duration::from_secs(14 * 60)).unwrap();
    assert!(read_alerts(&mut d, &topics).is_empty(), "not stale yet");
    d.advance_wall_clock(Duration::from_secs(2 * 60)).unwrap();
    let stale = read_alerts(&mut d, &topics);
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].window, None);
    assert_eq!(stale[0].ts_event, "2026-11-23T00:10:00.000Z");
    assert!(stale[0].observed >= 900.0, "{:?}", stale[0]);
    d.advance_wall_clock(Duration::from_secs(10 * 60)).unwrap();
    assert!(read_alerts(&mut d, &topics).is_empty(), "cooldown");
}

/// Every value of `store` (a key-value store of JSON values keyed by strings), in key order.
fn store_values<V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static>(
    d: &TopologyTestDriver,
    store: &str,
) -> Vec<(String, V)> {
    let request = StateQueryRequest::in_store(store).with_query(RangeQuery::with_no_bounds(
        StringSerde,
        JsonSerde::<V>::new(),
    ));
    d.query(&request)
        .unwrap()
        .all_answers()
        .unwrap()
        .into_iter()
        .flat_map(|answer| answer.value)
        .collect()
}

#[test]
fn the_metrics_app_keeps_the_latest_update_per_coin_and_horizon_for_queries() {
    let topics = Topics::default();
    let mut d = driver(metrics::topology(&topics, &Counters::default()));
    for (i, price) in [100.0, 101.0, 99.0, 102.0].iter().enumerate() {
        for coin in ["bitcoin", "ethereum"] {
            pipe_event(
                &mut d,
                &topics.dedup,
                &event(coin, *price, BASE + i as i64 * MIN5),
            );
        }
    }
    let out: Vec<MetricsEvent> = read_checked(&mut d, &topics.metrics, "metrics_event");
    let latest: Vec<(String, MetricsEvent)> = store_values(&d, metrics::LATEST_STORE);
    assert_eq!(latest.len(), 2 * 4, "two coins × four horizons");
    for (key, value) in &latest {
        let last_update = out
            .iter()
            .rev()
            .find(|m| {
                m.emit == Emit::Update
                    && metrics::latest_key(&m.coin_id, &m.vs_currency, m.horizon) == *key
            })
            .unwrap();
        assert_eq!(value, last_update, "{key}");
    }
    let one = StateQueryRequest::in_store(metrics::LATEST_STORE).with_query(KeyQuery::with_key(
        "bitcoin|usd|1h".to_string(),
        StringSerde,
        JsonSerde::<MetricsEvent>::new(),
    ));
    let answer = d
        .query(&one)
        .unwrap()
        .only_partition_result()
        .unwrap()
        .unwrap();
    assert_eq!(answer.value.unwrap().price_last, 102.0);
}

/// A calm market of 40 polls from `start`, then a −8 % crash: a 1h price move and a z-score.
fn pipe_crash(d: &mut TopologyTestDriver, topics: &Topics, start: i64) {
    let mut prices = calm(40);
    prices.push((92.0, 1_000.0));
    for (i, (price, volume)) in prices.iter().enumerate() {
        let mut e = event("bitcoin", *price, start + i as i64 * MIN5);
        e.total_volume = Some(*volume);
        pipe_event(d, &topics.dedup, &e);
    }
}

#[test]
fn recent_alerts_are_queryable_for_a_week_of_event_time() {
    let topics = Topics::default();
    let mut d = driver(alerts::topology(
        &topics,
        RulesConfig::default(),
        &Counters::default(),
    ));
    // The store orders a series' alerts by event time, then id.
    let by_id = |mut alerts: Vec<alerts::AlertEvent>| {
        alerts.sort_by(|a, b| (&a.ts_event, &a.alert_id).cmp(&(&b.ts_event, &b.alert_id)));
        alerts
    };
    pipe_crash(&mut d, &topics, BASE);
    let first = by_id(read_alerts(&mut d, &topics));
    assert_eq!(first.len(), 2, "{first:?}");
    let stored: Vec<(String, alerts::AlertEvent)> = store_values(&d, alerts::RECENT_STORE);
    assert!(stored[0].0.starts_with("bitcoin|usd|"), "{}", stored[0].0);
    let values: Vec<alerts::AlertEvent> = stored.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, first);
    // Eight days of event time later, a new crash: the first alerts are forgotten.
    pipe_crash(&mut d, &topics, BASE + 8 * 24 * 3_600_000);
    let second = by_id(read_alerts(&mut d, &topics));
    assert!(!second.is_empty());
    assert_eq!(recent_alerts(&d), second);
}

/// Every alert in the recent-alerts store, in key order.
fn recent_alerts(d: &TopologyTestDriver) -> Vec<alerts::AlertEvent> {
    store_values::<alerts::AlertEvent>(d, alerts::RECENT_STORE)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// The alerts app with its counters.
fn alerts_app() -> (TopologyTestDriver, Topics, Counters) {
    let topics = Topics::default();
    let counters = Counters::default();
    let d = driver(alerts::topology(&topics, RulesConfig::default(), &counters));
    (d, topics, counters)
}

/// The reference row of bitcoin with `rank`, as the producer writes it.
fn bitcoin_row(rank: Option<u32>) -> CoinReference {
    let at = DateTime::from_timestamp_millis(BASE).unwrap();
    CoinReference::new("bitcoin", "btc", "Bitcoin", rank, at, Source::Coingecko)
}

fn pipe_row(d: &mut TopologyTestDriver, topics: &Topics, key: &str, value: Vec<u8>) {
    d.pipe_raw(&topics.coins, Some(key.into()), Some(value), BASE)
        .unwrap();
}

fn pipe_coin(d: &mut TopologyTestDriver, topics: &Topics, row: &CoinReference) {
    pipe_row(d, topics, &row.coin_id, serde_json::to_vec(row).unwrap());
}

fn messages(alerts: &[alerts::AlertEvent]) -> Vec<&str> {
    alerts.iter().map(|a| a.message.as_str()).collect()
}

#[test]
fn an_alert_names_its_coin_from_the_reference_table() {
    let (mut d, topics, _) = alerts_app();
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(1)));
    pipe_crash(&mut d, &topics, BASE);
    let alerts = read_alerts(&mut d, &topics);
    assert_eq!(
        messages(&alerts),
        [
            "bitcoin (Bitcoin, BTC, rank 1) moved 8.00 % within 1h",
            "bitcoin (Bitcoin, BTC, rank 1): latest 5-minute return is 83.4 standard deviations \
             from the 24h mean"
        ]
    );
    // The join changes nothing else: the alert without a row, renamed, is the same alert.
    let (mut plain, plain_topics, _) = alerts_app();
    pipe_crash(&mut plain, &plain_topics, BASE);
    let unnamed = read_alerts(&mut plain, &plain_topics);
    for (named, unnamed) in alerts.iter().zip(&unnamed) {
        let renamed = alerts::AlertEvent {
            message: unnamed.message.clone(),
            ts_alert: unnamed.ts_alert.clone(),
            ..named.clone()
        };
        assert_eq!(&renamed, unnamed);
    }
}

#[test]
fn an_alert_without_a_reference_row_keeps_the_plain_message() {
    let (mut d, topics, _) = alerts_app();
    // Another coin's row, and a row of bitcoin deleted again (a tombstone).
    let mut ethereum = bitcoin_row(Some(2));
    ethereum.coin_id = "ethereum".into();
    pipe_coin(&mut d, &topics, &ethereum);
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(1)));
    d.pipe_raw(&topics.coins, Some(b"bitcoin".to_vec()), None, BASE)
        .unwrap();
    pipe_crash(&mut d, &topics, BASE);
    let alerts = read_alerts(&mut d, &topics);
    assert_eq!(
        messages(&alerts),
        [
            "bitcoin moved 8.00 % within 1h",
            "bitcoin: latest 5-minute return is 83.4 standard deviations from the 24h mean"
        ]
    );
}

#[test]
fn an_updated_reference_row_names_the_coin_in_the_next_alert() {
    let (mut d, topics, _) = alerts_app();
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(1)));
    pipe_crash(&mut d, &topics, BASE);
    let first = read_alerts(&mut d, &topics);
    assert!(first[0]
        .message
        .starts_with("bitcoin (Bitcoin, BTC, rank 1) "));
    // The coin drops to rank 2 (the producer writes the changed row) and, a day later,
    // crashes again; an unranked coin has no rank in its name.
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(2)));
    pipe_crash(&mut d, &topics, BASE + 24 * 3_600_000);
    let second = read_alerts(&mut d, &topics);
    assert!(
        second[0]
            .message
            .starts_with("bitcoin (Bitcoin, BTC, rank 2) moved"),
        "{second:?}"
    );
    pipe_coin(&mut d, &topics, &bitcoin_row(None));
    pipe_crash(&mut d, &topics, BASE + 48 * 3_600_000);
    let third = read_alerts(&mut d, &topics);
    assert!(
        third[0].message.starts_with("bitcoin (Bitcoin, BTC) moved"),
        "{third:?}"
    );
}

#[test]
fn an_invalid_reference_row_is_skipped_and_counted() {
    let (mut d, topics, counters) = alerts_app();
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(1)));
    // Rank 0 breaks the contract (minimum 1); so do bytes that are not JSON.
    let mut bad = serde_json::to_value(bitcoin_row(Some(1))).unwrap();
    bad["market_cap_rank"] = 0.into();
    pipe_row(
        &mut d,
        &topics,
        "bitcoin",
        serde_json::to_vec(&bad).unwrap(),
    );
    pipe_row(&mut d, &topics, "bitcoin", b"{not json".to_vec());
    let skipped = |keyword| {
        counters.get(
            "alerts_reference_rows_skipped_total",
            &[("keyword", keyword)],
        )
    };
    assert_eq!((skipped("minimum"), skipped("json_syntax")), (1, 1));
    // The row stored before them still names the coin.
    pipe_crash(&mut d, &topics, BASE);
    let alerts = read_alerts(&mut d, &topics);
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts
            .iter()
            .all(|a| a.message.starts_with("bitcoin (Bitcoin, BTC, rank 1)")),
        "{alerts:?}"
    );
}

#[test]
fn the_recent_store_holds_the_alerts_as_they_go_to_the_topic() {
    let (mut d, topics, _) = alerts_app();
    pipe_coin(&mut d, &topics, &bitcoin_row(Some(1)));
    pipe_crash(&mut d, &topics, BASE);
    let mut out = read_alerts(&mut d, &topics);
    assert!(out
        .iter()
        .all(|a| a.message.contains("(Bitcoin, BTC, rank 1)")));
    // Stale-feed alerts come from the punctuator: they are joined and stored alike.
    d.advance_wall_clock(Duration::from_secs(16 * 60)).unwrap();
    let stale = read_alerts(&mut d, &topics);
    assert_eq!(
        messages(&stale),
        ["bitcoin (Bitcoin, BTC, rank 1): no price event for 960 s"]
    );
    out.extend(stale);
    out.sort_by(|a, b| (&a.ts_event, &a.alert_id).cmp(&(&b.ts_event, &b.alert_id)));
    assert_eq!(recent_alerts(&d), out);
}
