//! Gold on a local lake: every value of every model equals an independent computation in plain
//! Rust over the fixture; re-runs leave identical tables; the rows a foreign engine must read
//! are written next to the lake (`lake/tests/python/`).

mod silver_gold_fixture;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use lake::gold::{self, GoldConfig};
use lake::job::interval::Interval;
use lake::silver::{self, SilverConfig};
use lake::storage::Lake;
use serde_json::{json, Map, Value};
use silver_gold_fixture::{
    at, dead_letter, f64_of, i64_of, rows, str_of, temp_lake, ts_of, BronzeBuilder, Poll, DLQ, RAW,
};

/// The interval Gold runs for: three days. Bitcoin polls every 30 minutes from five days before
/// it (what the look-back must read); ethereum skips the second day (a gap) and trends down (a
/// drawdown); solana is listed at noon of the second day (mid-period).
fn interval() -> Interval {
    match Interval::parse("2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z") {
        Ok(interval) => interval,
        Err(error) => panic!("{error}"),
    }
}

/// What Silver covers: the interval and the five days before it.
fn silver_span() -> Interval {
    interval().extended_back(TimeDelta::days(5))
}

fn price_of(coin: &str, i: i64) -> f64 {
    let (base, phase, trend) = match coin {
        "bitcoin" => (60_000.0, 0.0, 0.001),
        "ethereum" => (3_000.0, 1.0, -0.002),
        _ => (150.0, 2.0, 0.0005),
    };
    let x = i as f64;
    base * (0.02 * (x * 0.37 + phase).sin() + trend * x).exp()
}

/// The distinct polls that reach Silver, and the Bronze written for them (with duplicates,
/// a corrupt record and a dead letter).
async fn fixture(lake: &Lake) -> Vec<Poll> {
    let start = interval().start();
    let mut polls = Vec::new();
    for coin in ["bitcoin", "ethereum", "solana"] {
        for i in (-5 * 48)..(3 * 48) {
            let ts = start + TimeDelta::minutes(30 * i) + TimeDelta::seconds(7);
            let day = i.div_euclid(48);
            let listed = match coin {
                "bitcoin" => true,
                "ethereum" => day >= 0,
                _ => i >= 48 + 24,
            };
            let gap = coin == "ethereum" && day == 1;
            if !listed || gap {
                continue;
            }
            let mut poll = Poll::new(coin, ts, price_of(coin, i));
            if coin == "ethereum" && i.rem_euclid(48) == 47 {
                poll.market_cap = None; // the day's last snapshot has no market cap
                poll.total_volume = None;
            }
            if coin == "bitcoin" && i == 5 {
                poll.ts_ingest = ts + TimeDelta::seconds(400); // a stale poll
            }
            polls.push(poll);
        }
    }
    let mut raw = BronzeBuilder::default();
    for (n, poll) in polls.iter().enumerate() {
        raw.poll((n % 2) as i32, poll);
        if poll.coin == "bitcoin" && n % 40 == 3 {
            let mut again = poll.clone();
            again.ts_ingest += TimeDelta::minutes(5);
            raw.poll(0, &again); // a re-poll of an unchanged snapshot
        }
    }
    raw.push(
        RAW,
        0,
        Some(at("2026-03-02T05:10:00Z")),
        Some("bitcoin"),
        Some(b"not json".to_vec()),
    );
    raw.append_to(lake, silver::BRONZE_PRICES).await;
    let mut dlq = BronzeBuilder::default();
    let mut rejected = Poll::new("ethereum", at("2026-03-01T03:00:07Z"), 1.0).event();
    rejected["price"] = json!(-1.0);
    dlq.push(
        DLQ,
        0,
        Some(at("2026-03-01T03:00:30Z")),
        Some("ethereum"),
        Some(dead_letter(
            &rejected,
            "exclusiveMinimum",
            "/price",
            9,
            at("2026-03-01T03:00:27Z"),
        )),
    );
    dlq.append_to(lake, silver::BRONZE_DEAD_LETTERS).await;
    polls
}

async fn run_jobs(lake: &Lake) {
    if let Err(error) = silver::run(lake, &silver_span(), &SilverConfig::default()).await {
        panic!("silver failed: {error:#?}");
    }
    if let Err(error) = gold::run(lake, &interval(), &GoldConfig::default()).await {
        panic!("gold failed: {error:#?}");
    }
}

// ---- the independent computation -------------------------------------------------------

fn trunc(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn by_coin(polls: &[Poll]) -> BTreeMap<&str, Vec<&Poll>> {
    let mut series: BTreeMap<&str, Vec<&Poll>> = BTreeMap::new();
    for poll in polls {
        series.entry(&poll.coin).or_default().push(poll);
    }
    for points in series.values_mut() {
        points.sort_by_key(|p| p.ts_event);
    }
    series
}

/// `(coin, bucket start)` → the candle row.
fn candles(polls: &[Poll], unit: TimeDelta) -> BTreeMap<(String, DateTime<Utc>), Value> {
    let mut out = BTreeMap::new();
    for (coin, points) in by_coin(polls) {
        let mut buckets: BTreeMap<DateTime<Utc>, Vec<&Poll>> = BTreeMap::new();
        for p in points {
            buckets.entry(trunc(p.ts_event, unit)).or_default().push(p);
        }
        for (bucket, ps) in buckets.into_iter().filter(|(b, _)| interval().contains(*b)) {
            let prices: Vec<f64> = ps.iter().map(|p| p.price).collect();
            let last = ps[ps.len() - 1];
            out.insert(
                (coin.to_owned(), bucket),
                json!({
                    "open": prices[0],
                    "high": prices.iter().cloned().fold(f64::MIN, f64::max),
                    "low": prices.iter().cloned().fold(f64::MAX, f64::min),
                    "close": last.price,
                    "polls": ps.len(),
                    "market_cap_close": last.market_cap,
                    "volume_24h_close": last.total_volume,
                }),
            );
        }
    }
    out
}

fn sample_std(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    Some(var.sqrt())
}

/// `(coin, date)` → the daily metrics row.
fn daily_metrics(polls: &[Poll]) -> BTreeMap<(String, NaiveDate), Value> {
    let mut out = BTreeMap::new();
    for (coin, points) in by_coin(polls) {
        let mut days: BTreeMap<NaiveDate, Vec<&Poll>> = BTreeMap::new();
        for p in points {
            days.entry(p.ts_event.date_naive()).or_default().push(p);
        }
        let close = |d: NaiveDate| days.get(&d).map(|ps| ps[ps.len() - 1].price);
        let log_return = |d: NaiveDate| {
            let prev = close(d - TimeDelta::days(1))?;
            Some((close(d)? / prev).ln())
        };
        let rebuilt: Vec<NaiveDate> = interval().dates().collect();
        for (day, ps) in days.iter().filter(|(d, _)| rebuilt.contains(d)) {
            let returns: Vec<f64> = ps
                .windows(2)
                .map(|w| (w[1].price / w[0].price).ln())
                .collect();
            let realized =
                (!returns.is_empty()).then(|| returns.iter().map(|r| r * r).sum::<f64>().sqrt());
            let window = |n: i64| -> Vec<f64> {
                (0..n)
                    .filter_map(|k| log_return(*day - TimeDelta::days(k)))
                    .collect()
            };
            let closes: Vec<f64> = (0..30)
                .rev()
                .filter_map(|k| close(*day - TimeDelta::days(k)))
                .collect();
            let mut drawdown: f64 = 0.0;
            for (s, cs) in closes.iter().enumerate() {
                for ct in &closes[s..] {
                    drawdown = drawdown.max(1.0 - ct / cs);
                }
            }
            let prev = close(*day - TimeDelta::days(1));
            let c = ps[ps.len() - 1].price;
            out.insert(
                (coin.to_owned(), *day),
                json!({
                    "close": c,
                    "simple_return": prev.map(|p| c / p - 1.0),
                    "log_return": prev.map(|p| (c / p).ln()),
                    "intraday_points": ps.len(),
                    "realized_vol": realized,
                    "realized_vol_annualized": realized.map(|v| v * 365f64.sqrt()),
                    "vol_7d": sample_std(&window(7)),
                    "vol_30d": sample_std(&window(30)),
                    "max_drawdown_30d": drawdown,
                }),
            );
        }
    }
    out
}

/// `(date, coin)` → the dominance row.
fn dominance(polls: &[Poll]) -> BTreeMap<(NaiveDate, String), Value> {
    let mut caps: BTreeMap<NaiveDate, BTreeMap<String, f64>> = BTreeMap::new();
    for (coin, points) in by_coin(polls) {
        for p in points {
            if let Some(cap) = p.market_cap {
                caps.entry(p.ts_event.date_naive())
                    .or_default()
                    .insert(coin.to_owned(), cap); // sorted by time: the last one stays
            }
        }
    }
    let mut out = BTreeMap::new();
    let rebuilt: Vec<NaiveDate> = interval().dates().collect();
    for (day, coins) in caps.into_iter().filter(|(d, _)| rebuilt.contains(d)) {
        let total: f64 = coins.values().sum();
        for (coin, cap) in coins {
            out.insert(
                (day, coin),
                json!({ "market_cap": cap, "total_market_cap": total, "share": cap / total }),
            );
        }
    }
    out
}

/// `(coin, hour)` → the data-quality row, for every coin and hour of the interval from the hour
/// of the coin's first poll on.
fn data_quality(
    polls: &[Poll],
    duplicates: &BTreeMap<(String, DateTime<Utc>), i64>,
) -> BTreeMap<(String, DateTime<Utc>), Value> {
    let hour = TimeDelta::hours(1);
    let mut out = BTreeMap::new();
    let series = by_coin(polls);
    for coin in series.keys() {
        let mut t = trunc(series[coin][0].ts_event, hour).max(interval().start());
        while t < interval().end() {
            let in_hour: Vec<&&Poll> = series[coin]
                .iter()
                .filter(|p| trunc(p.ts_event, hour) == t)
                .collect();
            let staleness = in_hour
                .iter()
                .map(|p| {
                    (p.ts_ingest - p.ts_event)
                        .num_microseconds()
                        .unwrap_or_default()
                })
                .max()
                .map(|us| us as f64 / 1e6);
            let quarantined = i64::from(*coin == "bitcoin" && t == at("2026-03-02T05:00:00Z"));
            let dead = i64::from(*coin == "ethereum" && t == at("2026-03-01T03:00:00Z"));
            out.insert(
                (coin.to_string(), t),
                json!({
                    "polls_expected": 12,
                    "polls_received": in_hour.len(),
                    "duplicates_removed": duplicates.get(&(coin.to_string(), t)).copied().unwrap_or(0),
                    "dead_letters": dead,
                    "quarantined": quarantined,
                    "max_staleness_seconds": staleness,
                }),
            );
            t += hour;
        }
    }
    out
}

fn duplicates_by_hour(polls: &[Poll]) -> BTreeMap<(String, DateTime<Utc>), i64> {
    let mut out = BTreeMap::new();
    for (n, poll) in polls.iter().enumerate() {
        if poll.coin == "bitcoin" && n % 40 == 3 {
            *out.entry((poll.coin.clone(), trunc(poll.ts_event, TimeDelta::hours(1))))
                .or_default() += 1;
        }
    }
    out
}

// ---- comparison --------------------------------------------------------------------------

fn close_enough(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1e-12),
        _ => false,
    }
}

/// Compares each field of `want` with `got` (numbers with a relative tolerance of 1e-9).
fn assert_row(what: &str, got: &Map<String, Value>, want: &Value) {
    let Some(want) = want.as_object() else {
        panic!("{what}: expected row is not an object");
    };
    for (field, expected) in want {
        let actual = got.get(field).cloned().unwrap_or(Value::Null);
        let same = match (expected.as_f64(), actual.as_f64()) {
            _ if expected.is_i64() => actual.as_i64() == expected.as_i64(),
            (w, g) => close_enough(g, w),
        };
        assert!(same, "{what}.{field}: got {actual}, want {expected}");
    }
}

#[tokio::test]
async fn every_gold_value_equals_an_independent_computation() {
    // A folder that outlives the test: the foreign-engine check reads this lake afterwards.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gold_foreign_engine");
    let _ = std::fs::remove_dir_all(&dir);
    let lake = match Lake::parse(&dir.join("lake").display().to_string()) {
        Ok(lake) => lake,
        Err(error) => panic!("{error}"),
    };
    let polls = fixture(&lake).await;
    run_jobs(&lake).await;

    let hour = TimeDelta::hours(1);
    for (table, unit) in [
        ("gold/candles_1h", hour),
        ("gold/candles_1d", TimeDelta::days(1)),
    ] {
        let want = candles(&polls, unit);
        let got = rows(&lake, table, &["coin_id", "bucket_start"]).await;
        let keys: Vec<(String, DateTime<Utc>)> = got
            .iter()
            .map(|r| {
                (
                    str_of(r, "coin_id").to_owned(),
                    ts_of(r, "bucket_start").unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            want.keys().cloned().collect::<Vec<_>>(),
            "{table} rows"
        );
        for (row, expected) in got.iter().zip(want.values()) {
            assert_row(table, row, expected);
            assert_eq!(str_of(row, "vs_currency"), "usd");
        }
    }

    let want = daily_metrics(&polls);
    let got = rows(&lake, "gold/daily_metrics", &["coin_id", "date"]).await;
    let keys: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                str_of(r, "coin_id").to_owned(),
                str_of(r, "date").to_owned(),
            )
        })
        .collect();
    let want_keys: Vec<(String, String)> = want
        .keys()
        .map(|(c, d)| (c.clone(), d.to_string()))
        .collect();
    assert_eq!(keys, want_keys, "daily_metrics rows");
    for (row, expected) in got.iter().zip(want.values()) {
        assert_row("daily_metrics", row, expected);
    }
    // The edge cases, spelled out: the first day and the day after a gap have no return.
    let eth_after_gap = &want[&(
        "ethereum".to_owned(),
        NaiveDate::from_ymd_opt(2026, 3, 3).unwrap_or_default(),
    )];
    assert!(eth_after_gap["simple_return"].is_null());
    let bitcoin_first_day = got
        .iter()
        .find(|r| str_of(r, "coin_id") == "bitcoin" && str_of(r, "date") == "2026-03-01");
    assert!(
        bitcoin_first_day
            .and_then(|r| f64_of(r, "log_return"))
            .is_some()
            && bitcoin_first_day
                .and_then(|r| f64_of(r, "vol_7d"))
                .is_some(),
        "the look-back reads the closes before the interval"
    );
    assert!(got
        .iter()
        .any(|r| f64_of(r, "max_drawdown_30d").is_some_and(|d| d > 0.01)));
    assert!(got
        .iter()
        .any(|r| str_of(r, "coin_id") == "solana" && f64_of(r, "log_return").is_none()));

    let want = dominance(&polls);
    let got = rows(&lake, "gold/dominance", &["date", "coin_id"]).await;
    assert_eq!(got.len(), want.len(), "dominance rows");
    for (row, ((day, coin), expected)) in got.iter().zip(&want) {
        assert_eq!(
            (str_of(row, "date"), str_of(row, "coin_id")),
            (day.to_string().as_str(), coin.as_str())
        );
        assert_row("dominance", row, expected);
    }

    let want = data_quality(&polls, &duplicates_by_hour(&polls));
    let got = rows(&lake, "gold/data_quality", &["coin_id", "hour_start"]).await;
    assert_eq!(
        got.len(),
        want.len(),
        "data_quality rows: 2 coins × 72 hours + solana's 36"
    );
    for (row, ((coin, hour_start), expected)) in got.iter().zip(&want) {
        assert_eq!(
            (str_of(row, "coin_id"), ts_of(row, "hour_start")),
            (coin.as_str(), Some(*hour_start))
        );
        assert_row("data_quality", row, expected);
    }
    assert_eq!(got.len(), 2 * 72 + 36);
    let ethereum_in_the_gap = got.iter().find(|r| {
        str_of(r, "coin_id") == "ethereum"
            && ts_of(r, "hour_start") == Some(at("2026-03-02T10:00:00Z"))
    });
    assert_eq!(
        ethereum_in_the_gap.and_then(|r| i64_of(r, "polls_received")),
        Some(0)
    );

    write_foreign_engine_expectations(&dir, &polls);
}

#[tokio::test]
async fn re_running_gold_for_an_hour_leaves_identical_tables() {
    let (_dir, lake) = temp_lake();
    fixture(&lake).await;
    run_jobs(&lake).await;
    let order: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("gold/candles_1h", vec!["coin_id", "bucket_start"]),
        ("gold/candles_1d", vec!["coin_id", "bucket_start"]),
        ("gold/daily_metrics", vec!["coin_id", "date"]),
        ("gold/dominance", vec!["date", "coin_id"]),
        ("gold/data_quality", vec!["coin_id", "hour_start"]),
    ]);
    let mut before = BTreeMap::new();
    for (table, columns) in &order {
        before.insert(*table, rows(&lake, table, columns).await);
    }
    // An hour in the middle: its hours are rebuilt, and every day it touches, from Silver.
    let hour = match Interval::parse("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z") {
        Ok(hour) => hour,
        Err(error) => panic!("{error}"),
    };
    match gold::run(&lake, &hour, &GoldConfig::default()).await {
        Ok(report) => {
            let spans: BTreeSet<(String, String)> = report
                .models
                .iter()
                .map(|m| (m.start.clone(), m.end.clone()))
                .collect();
            assert_eq!(spans.len(), 2, "an hour span and a day span: {spans:?}");
        }
        Err(error) => panic!("gold failed: {error:#?}"),
    }
    for (table, columns) in &order {
        assert_eq!(
            &rows(&lake, table, columns).await,
            &before[table],
            "{table} changed"
        );
    }
}

/// Writes the rows a foreign engine must read from the lake in `dir` to `dir/expected.json`
/// (`lake/tests/python/check_gold.py` compares them).
fn write_foreign_engine_expectations(dir: &std::path::Path, polls: &[Poll]) {
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let candles_1d: Vec<Value> = candles(polls, TimeDelta::days(1))
        .into_iter()
        .map(|((coin, bucket), mut row)| {
            row["coin_id"] = json!(coin);
            row["bucket_start_us"] = json!(micros(bucket));
            row
        })
        .collect();
    let daily: Vec<Value> = daily_metrics(polls)
        .into_iter()
        .map(|((coin, day), mut row)| {
            row["coin_id"] = json!(coin);
            row["date"] = json!(day.to_string());
            row
        })
        .collect();
    let dominance: Vec<Value> = dominance(polls)
        .into_iter()
        .map(|((day, coin), mut row)| {
            row["coin_id"] = json!(coin);
            row["date"] = json!(day.to_string());
            row
        })
        .collect();
    let expected = json!({
        "gold/candles_1d": { "key": ["coin_id", "bucket_start_us"], "rows": candles_1d },
        "gold/daily_metrics": { "key": ["coin_id", "date"], "rows": daily },
        "gold/dominance": { "key": ["coin_id", "date"], "rows": dominance },
        "gold/candles_1h": { "count": candles(polls, TimeDelta::hours(1)).len() },
        "gold/data_quality": { "count": 2 * 72 + 36 },
    });
    if let Err(error) = std::fs::write(dir.join("expected.json"), expected.to_string()) {
        panic!("writing expected.json: {error}");
    }
}
