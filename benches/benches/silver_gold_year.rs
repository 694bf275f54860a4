//! Silver + Gold over one year of 5-minute polls of the ten coins (~1.05 M events).
//!
//! Writes a deterministic synthetic Bronze (`bronze/prices_raw`, one commit per day) under
//! `SILVER_GOLD_BENCH_LAKE` (default: a temporary folder), then times `lake::silver::run` and
//! `lake::gold::run` over the whole year as one interval. `SILVER_GOLD_BENCH_DAYS` (default 365)
//! shortens it. Peak RSS: run it under `/usr/bin/time -v`, e.g.
//! `/usr/bin/time -v cargo bench --bench silver_gold_year` (with the project's usual cargo flags)
//! or the built bench binary directly.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lake::bronze::{self, BronzeRecord};
use lake::gold::GoldConfig;
use lake::job::interval::Interval;
use lake::silver::SilverConfig;
use lake::storage::Lake;
use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../../contracts/EXAMPLES/example_btc.json");
const COINS: [(&str, f64); 10] = [
    ("bitcoin", 60_000.0),
    ("ethereum", 3_000.0),
    ("ripple", 0.6),
    ("binancecoin", 550.0),
    ("solana", 150.0),
    ("dogecoin", 0.15),
    ("tron", 0.12),
    ("cardano", 0.45),
    ("hyperliquid", 30.0),
    ("sui", 1.5),
];
const POLLS_PER_DAY: i64 = 288;

fn main() -> Result<()> {
    let days: i64 = std::env::var("SILVER_GOLD_BENCH_DAYS")
        .ok()
        .map(|n| n.parse().context("SILVER_GOLD_BENCH_DAYS"))
        .transpose()?
        .unwrap_or(365);
    let dir = tempfile::tempdir()?;
    let root = std::env::var("SILVER_GOLD_BENCH_LAKE")
        .unwrap_or_else(|_| dir.path().display().to_string());
    let lake = Lake::parse(&root)?;
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse()?;
    let interval = Interval::new(start, start + TimeDelta::days(days))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let template: Value = serde_json::from_str(EXAMPLE)?;
    let written = Instant::now();
    let events = runtime.block_on(write_bronze(&lake, &template, start, days))?;
    eprintln!(
        "bronze: {events} events in {days} daily commits, {:.1?}",
        written.elapsed()
    );

    let silver_started = Instant::now();
    let silver = runtime.block_on(lake::silver::run(
        &lake,
        &interval,
        &SilverConfig::default(),
    ))?;
    let silver_secs = silver_started.elapsed().as_secs_f64();
    let gold_started = Instant::now();
    let gold = runtime.block_on(lake::gold::run(&lake, &interval, &GoldConfig::default()))?;
    let gold_secs = gold_started.elapsed().as_secs_f64();
    let rows: Vec<String> = gold
        .models
        .iter()
        .map(|m| format!("{} {}", m.table, m.rows))
        .collect();
    println!(
        "{}",
        json!({
            "days": days,
            "bronze_events": events,
            "silver_rows": silver.prices.written,
            "silver_quarantined": silver.quarantined,
            "silver_seconds": silver_secs,
            "silver_events_per_second": events as f64 / silver_secs,
            "gold_seconds": gold_secs,
            "gold_rows": rows,
            "total_seconds": silver_secs + gold_secs,
        })
    );
    Ok(())
}

/// One day of polls per commit; every 1000th poll is delivered twice (a duplicate).
async fn write_bronze(
    lake: &Lake,
    template: &Value,
    start: DateTime<Utc>,
    days: i64,
) -> Result<u64> {
    let mut table = lake
        .open_or_create(
            "bronze/prices_raw",
            bronze::columns(),
            &[bronze::PARTITION_COLUMN],
        )
        .await?;
    let mut offset = 0i64;
    let mut events = 0u64;
    for day in 0..days {
        let mut records = Vec::with_capacity(POLLS_PER_DAY as usize * COINS.len());
        for poll in 0..POLLS_PER_DAY {
            let i = day * POLLS_PER_DAY + poll;
            for (k, (coin, base)) in COINS.iter().enumerate() {
                let ts_event = start + TimeDelta::minutes(5 * i) + TimeDelta::seconds(k as i64);
                let ts_ingest = ts_event + TimeDelta::seconds(30);
                let x = i as f64;
                let price =
                    base * (0.05 * (x * 0.013 + k as f64).sin() + 0.002 * (x * 0.71).sin()).exp();
                let value = event(template, coin, price, ts_event, ts_ingest);
                let copies = if i % 1000 == 0 { 2 } else { 1 };
                for _ in 0..copies {
                    records.push(BronzeRecord {
                        topic: "crypto.prices.raw".to_owned(),
                        partition: 0,
                        offset,
                        timestamp_ms: Some(
                            (ts_ingest + TimeDelta::milliseconds(100)).timestamp_millis(),
                        ),
                        key: Some(coin.as_bytes().to_vec()),
                        value: Some(value.clone()),
                        headers: vec![],
                    });
                    offset += 1;
                    events += 1;
                }
            }
        }
        table = bronze::append(table, "bronze/prices_raw", "bench", &records).await?;
    }
    Ok(events)
}

fn event(
    template: &Value,
    coin: &str,
    price: f64,
    ts_event: DateTime<Utc>,
    ts_ingest: DateTime<Utc>,
) -> Vec<u8> {
    let mut event = template.clone();
    let ts = ts_event.to_rfc3339_opts(SecondsFormat::Millis, true);
    event["coin_id"] = json!(coin);
    event["symbol"] = json!(&coin[..3]);
    event["price"] = json!(price);
    event["market_cap"] = json!(price * 1.0e7);
    event["total_volume"] = json!(price * 1.0e5);
    event["ts_event"] = json!(ts);
    event["ts_ingest"] = json!(ts_ingest.to_rfc3339_opts(SecondsFormat::Millis, true));
    event["event_id"] = json!(contract::event_id(coin, "usd", &ts));
    event.to_string().into_bytes()
}
