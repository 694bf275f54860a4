//! Silver on a local lake: exact rows and quarantine reasons for bad input, idempotent re-runs,
//! and late data picked up by re-running its interval.

mod silver_gold_fixture;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use lake::job::interval::Interval;
use lake::silver::{self, SilverConfig};
use lake::storage::Lake;
use serde_json::json;
use silver_gold_fixture::{
    alert, at, dead_letter, i64_of, rows, str_of, temp_lake, ts_of, BronzeBuilder, Poll, ALERTS,
    DLQ, RAW,
};

const COINS: [&str; 2] = ["bitcoin", "ethereum"];

fn config() -> SilverConfig {
    SilverConfig {
        coins: Some(COINS.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>()),
        ..SilverConfig::default()
    }
}

fn day() -> Interval {
    match Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z") {
        Ok(interval) => interval,
        Err(error) => panic!("{error}"),
    }
}

/// Bronze with every kind of bad input next to good events, on 2026-01-01 (and one event of the
/// next day, which this day's run must leave alone).
async fn bad_input_bronze(lake: &Lake) {
    let mut raw = BronzeBuilder::default();
    let btc_5 = Poll::new("bitcoin", at("2026-01-01T00:05:00Z"), 100.0);
    let btc_10 = Poll::new("bitcoin", at("2026-01-01T00:10:00Z"), 101.0);
    let mut btc_10_again = btc_10.clone();
    btc_10_again.ts_ingest = at("2026-01-01T00:15:20Z");
    btc_10_again.price = 999.0; // a later poll of the same snapshot: must not win
    raw.poll(0, &btc_5); // 0
    raw.poll(0, &btc_10); // 1: ingested 00:10:20
    raw.poll(0, &btc_10_again); // 2: ingested 00:15:20 → duplicate
    let kafka = Some(at("2026-01-01T00:20:00Z"));
    raw.push(
        RAW,
        0,
        kafka,
        Some("bitcoin"),
        Some(b"{\"coin_id\": \"bitcoin\", ".to_vec()),
    ); // 3
    let mut upper = Poll::new("ethereum", at("2026-01-01T00:20:00Z"), 10.0).event();
    upper["symbol"] = json!("ETH");
    raw.push(
        RAW,
        0,
        kafka,
        Some("ethereum"),
        Some(upper.to_string().into_bytes()),
    ); // 4
    let mut null_price = Poll::new("ethereum", at("2026-01-01T00:25:00Z"), 10.0).event();
    null_price["price"] = json!(null);
    raw.push(
        RAW,
        0,
        kafka,
        Some("ethereum"),
        Some(null_price.to_string().into_bytes()),
    ); // 5
    raw.poll(0, &Poll::new("shiba-inu", at("2026-01-01T00:05:00Z"), 0.01)); // 6
    raw.push(RAW, 0, kafka, Some("ethereum"), None); // 7: tombstone
    raw.poll(0, &Poll::new("ethereum", at("2026-01-01T00:05:00Z"), 10.0)); // 8
    raw.push(RAW, 0, kafka, Some("bitcoin"), Some(vec![0xff, 0xfe, 0x00])); // 9: not UTF-8
    raw.poll(0, &Poll::new("bitcoin", at("2026-01-02T00:05:00Z"), 102.0)); // 10: next day
    let mut btc_10_first = btc_10.clone();
    btc_10_first.ts_ingest = at("2026-01-01T00:10:10Z");
    btc_10_first.price = 101.5; // ingested first, on another partition: wins over offset 1
    raw.poll(1, &btc_10_first); // partition 1, offset 0
    raw.append_to(lake, silver::BRONZE_PRICES).await;

    let mut dlq = BronzeBuilder::default();
    dlq.push(
        DLQ,
        0,
        Some(at("2026-01-01T00:25:01Z")),
        Some("ethereum"),
        Some(dead_letter(
            &null_price,
            "type",
            "/price",
            5,
            at("2026-01-01T00:25:00Z"),
        )),
    ); // 0
    dlq.push(
        DLQ,
        0,
        Some(at("2026-01-01T00:26:00Z")),
        Some("ethereum"),
        Some(b"{\"schema_version\": \"1.0\"}".to_vec()),
    ); // 1: not an envelope
    dlq.append_to(lake, silver::BRONZE_DEAD_LETTERS).await;

    let mut alerts = BronzeBuilder::default();
    let moved = at("2026-01-01T00:10:00Z");
    let kafka = Some(at("2026-01-01T00:10:02Z"));
    alerts.push(
        ALERTS,
        0,
        kafka,
        Some("bitcoin"),
        Some(alert("bitcoin", moved, "warning")),
    ); // 0
    alerts.push(
        ALERTS,
        0,
        kafka,
        Some("bitcoin"),
        Some(alert("bitcoin", moved, "warning")),
    ); // 1: dup
    alerts.push(
        ALERTS,
        0,
        kafka,
        Some("bitcoin"),
        Some(alert("bitcoin", moved, "urgent")),
    ); // 2
    alerts.append_to(lake, silver::BRONZE_ALERTS).await;
}

async fn run(lake: &Lake, interval: &Interval) -> silver::SilverReport {
    match silver::run(lake, interval, &config()).await {
        Ok(report) => report,
        Err(error) => panic!("silver failed: {error:#?}"),
    }
}

#[tokio::test]
async fn bad_input_is_quarantined_with_its_reason_and_every_record_is_accounted_for() {
    let (_dir, lake) = temp_lake();
    bad_input_bronze(&lake).await;
    let report = run(&lake, &day()).await;

    let prices = rows(&lake, silver::prices::TABLE, &["coin_id", "ts_event"]).await;
    let got: Vec<(String, String, f64, i64, i64)> = prices
        .iter()
        .map(|row| {
            (
                str_of(row, "coin_id").to_owned(),
                ts_of(row, "ts_event")
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                silver_gold_fixture::f64_of(row, "price").unwrap_or_default(),
                i64_of(row, "bronze_partition").unwrap_or(-1),
                i64_of(row, "bronze_offset").unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "bitcoin".into(),
                "2026-01-01T00:05:00+00:00".into(),
                100.0,
                0,
                0
            ),
            (
                "bitcoin".into(),
                "2026-01-01T00:10:00+00:00".into(),
                101.5,
                1,
                0
            ),
            (
                "ethereum".into(),
                "2026-01-01T00:05:00+00:00".into(),
                10.0,
                0,
                8
            ),
        ]
    );
    assert!(prices
        .iter()
        .all(|row| str_of(row, "event_date") == "2026-01-01"));

    let quarantine = rows(
        &lake,
        silver::quarantine::TABLE,
        &["source_table", "partition", "offset"],
    )
    .await;
    let got: Vec<(&str, i64, &str, &str)> = quarantine
        .iter()
        .map(|row| {
            (
                str_of(row, "source_table"),
                i64_of(row, "offset").unwrap_or(-1),
                str_of(row, "rule"),
                str_of(row, "pointer"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("bronze/alerts", 1, "duplicate", ""),
            ("bronze/alerts", 2, "enum", "/severity"),
            ("bronze/dead_letters", 1, "required", ""),
            ("bronze/prices_raw", 1, "duplicate", ""),
            ("bronze/prices_raw", 2, "duplicate", ""),
            ("bronze/prices_raw", 3, "json_syntax", ""),
            ("bronze/prices_raw", 4, "pattern", "/symbol"),
            ("bronze/prices_raw", 5, "type", "/price"),
            ("bronze/prices_raw", 6, "unknown_coin", "/coin_id"),
            ("bronze/prices_raw", 7, "tombstone", ""),
            ("bronze/prices_raw", 9, "utf8", ""),
        ]
    );
    let not_utf8 = &quarantine[10];
    assert_eq!(
        (
            str_of(not_utf8, "value_text"),
            str_of(not_utf8, "value_encoding")
        ),
        ("//4A", "base64")
    );
    let corrupt = &quarantine[5];
    assert_eq!(
        str_of(corrupt, "coin_id"),
        "bitcoin",
        "recovered from the key"
    );
    assert_eq!(
        ts_of(corrupt, "event_time"),
        Some(at("2026-01-01T00:20:00Z")),
        "no readable ts_event: placed by its Kafka timestamp"
    );

    // Nothing vanished: every Bronze record of the day is a Silver row or a quarantine row.
    let day_prices = report.prices.in_interval;
    assert_eq!(
        day_prices, 11,
        "10 records of partition 0 on the day + 1 of partition 1"
    );
    assert_eq!(
        report.prices.written + report.prices.quarantined.values().sum::<u64>(),
        day_prices
    );
    assert_eq!(
        report.prices.read, 12,
        "the next day's record is read but not placed here"
    );

    let dead = rows(&lake, silver::dead_letters::TABLE, &["source_offset"]).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            str_of(&dead[0], "coin_id"),
            str_of(&dead[0], "rule"),
            str_of(&dead[0], "pointer")
        ),
        ("ethereum", "type", "/price")
    );
    assert_eq!(
        ts_of(&dead[0], "event_time"),
        Some(at("2026-01-01T00:25:00Z"))
    );

    let alerts = rows(&lake, silver::alerts::TABLE, &["alert_id"]).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        i64_of(&alerts[0], "bronze_offset"),
        Some(0),
        "the first ingest wins"
    );
    assert_eq!(report.quarantined, 11);
}

#[tokio::test]
async fn running_an_interval_twice_leaves_identical_tables() {
    let (_dir, lake) = temp_lake();
    bad_input_bronze(&lake).await;
    let tables = [
        (
            silver::prices::TABLE,
            vec!["coin_id", "vs_currency", "ts_event"],
        ),
        (
            silver::quarantine::TABLE,
            vec!["source_table", "topic", "partition", "offset"],
        ),
        (
            silver::dead_letters::TABLE,
            vec!["source_topic", "source_partition", "source_offset"],
        ),
        (silver::alerts::TABLE, vec!["alert_id"]),
    ];
    let first_report = run(&lake, &day()).await;
    let mut first = Vec::new();
    for (table, order) in &tables {
        first.push(rows(&lake, table, order).await);
    }
    let second_report = run(&lake, &day()).await;
    for ((table, order), before) in tables.iter().zip(&first) {
        assert_eq!(
            &rows(&lake, table, order).await,
            before,
            "{table} changed on a re-run"
        );
    }
    assert_eq!(first_report, second_report);
    assert!(first.iter().all(|table| !table.is_empty()));
}

#[tokio::test]
async fn a_late_record_is_picked_up_by_re_running_its_interval_without_duplicates() {
    let (_dir, lake) = temp_lake();
    let mut raw = BronzeBuilder::default();
    for minutes in [0, 5, 10] {
        let ts = at("2026-01-01T12:00:00Z") + TimeDelta::minutes(minutes);
        raw.poll(0, &Poll::new("bitcoin", ts, 100.0 + minutes as f64));
    }
    raw.append_to(&lake, silver::BRONZE_PRICES).await;
    let report = run(&lake, &day()).await;
    assert_eq!(report.prices.written, 3);

    // Three days later: a replay of a poll of 12:15 that never arrived, and a re-delivery of
    // the poll of 12:05 (a duplicate).
    let late = at("2026-01-04T09:00:00Z");
    let mut missing = Poll::new("bitcoin", at("2026-01-01T12:15:00Z"), 115.0);
    missing.ts_ingest = late;
    let mut again = Poll::new("bitcoin", at("2026-01-01T12:05:00Z"), 105.0);
    again.ts_ingest = late;
    raw.poll(0, &missing);
    raw.poll(0, &again);
    raw.append_to(&lake, silver::BRONZE_PRICES).await;
    let report = run(&lake, &day()).await;

    let prices = rows(&lake, silver::prices::TABLE, &["ts_event"]).await;
    let times: Vec<String> = prices
        .iter()
        .filter_map(|row| ts_of(row, "ts_event").map(|t| t.format("%H:%M").to_string()))
        .collect();
    assert_eq!(times, ["12:00", "12:05", "12:10", "12:15"]);
    assert_eq!(
        i64_of(&prices[1], "bronze_offset"),
        Some(1),
        "the first ingest of 12:05 stays"
    );
    assert_eq!(report.prices.quarantined.get("duplicate"), Some(&1));
    let quarantine = rows(&lake, silver::quarantine::TABLE, &["offset"]).await;
    assert_eq!(quarantine.len(), 1);
    assert_eq!(i64_of(&quarantine[0], "offset"), Some(4));
}

#[tokio::test]
async fn silver_and_gold_on_the_s3_server_give_the_tables_of_a_local_lake() {
    let (_dir, local) = temp_lake();
    let s3 = lake::testing::s3_lake("silver-gold");
    let tables = [
        (silver::prices::TABLE, vec!["coin_id", "ts_event"]),
        (
            silver::quarantine::TABLE,
            vec!["source_table", "partition", "offset"],
        ),
        ("gold/candles_1h", vec!["coin_id", "bucket_start"]),
        ("gold/data_quality", vec!["coin_id", "hour_start"]),
    ];
    let mut seen = Vec::new();
    for lake in [&local, &s3] {
        bad_input_bronze(lake).await;
        run(lake, &day()).await;
        if let Err(error) = lake::gold::run(lake, &day(), &lake::gold::GoldConfig::default()).await
        {
            panic!("gold failed on {lake:?}: {error:#?}");
        }
        let mut contents = Vec::new();
        for (table, order) in &tables {
            contents.push(rows(lake, table, order).await);
        }
        seen.push(contents);
    }
    assert!(seen[0].iter().all(|rows| !rows.is_empty()));
    assert_eq!(seen[0], seen[1]);
}
