//! The lake's side of the checks: counts per coin and hour from silver/prices, gold/data_quality,
//! gold/candles_1h and bronze/prices_raw, read with DataFusion SQL over the Delta tables (typed
//! parameters bound to `$start`, `$end`, `$first_date`, `$last_date`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};
use deltalake::datafusion::scalar::ScalarValue;
use lake::job::interval::{date_value, timestamp_value, Interval};
use lake::job::query::LakeSession;
use lake::storage::Lake;
use serde::Deserialize;

use super::facts::{Facts, Subject};
use super::QualityError;

/// The Bronze table of price events (also Silver's `source_table` for its quarantined records).
const BRONZE_PRICES: &str = "bronze/prices_raw";

/// The tables read, and their SQL names.
const TABLES: [(&str, &str); 5] = [
    ("silver/prices", "silver_prices"),
    ("silver/quarantine", "silver_quarantine"),
    ("gold/data_quality", "gold_data_quality"),
    ("gold/candles_1h", "gold_candles_1h"),
    (BRONZE_PRICES, "bronze_prices_raw"),
];

/// The interval's bounds as SQL parameters.
fn parameters(interval: &Interval) -> Vec<(&'static str, ScalarValue)> {
    vec![
        ("start", timestamp_value(interval.start())),
        ("end", timestamp_value(interval.end())),
        ("first_date", date_value(interval.first_date())),
        ("last_date", date_value(interval.last_date())),
    ]
}

/// Adds the lake's counts for `interval` to `facts`.
pub async fn read(lake: &Lake, interval: &Interval, facts: &mut Facts) -> Result<(), QualityError> {
    let session = LakeSession::new();
    let mut present = HashSet::new();
    for (table, name) in TABLES {
        if session.register(lake, table, name).await? {
            present.insert(table);
        }
    }
    if present.contains("silver/prices") {
        silver(&session, interval, facts).await?;
    }
    if present.contains("gold/data_quality") {
        data_quality(&session, interval, facts).await?;
    }
    if present.contains("gold/candles_1h") {
        candles(&session, interval, facts).await?;
    }
    if present.contains(BRONZE_PRICES) {
        let quarantined = if present.contains("silver/quarantine") {
            quarantined(&session).await?
        } else {
            HashSet::new()
        };
        bronze(&session, interval, &quarantined, facts).await?;
    }
    Ok(())
}

/// Column `index` of `batch` as `to`, whatever Arrow type the scan produced (Utf8 or Utf8View,
/// Int32 or Int64, …).
fn column_as(batch: &RecordBatch, index: usize, to: &DataType) -> Result<ArrayRef, QualityError> {
    cast(batch.column(index), to).map_err(|source| QualityError::Arrow {
        what: format!("column {index} as {to}"),
        source,
    })
}

fn strings(batch: &RecordBatch, index: usize) -> Result<Vec<Option<String>>, QualityError> {
    let array = column_as(batch, index, &DataType::Utf8)?;
    let strings = array
        .as_string_opt::<i32>()
        .ok_or_else(|| unexpected(index, "Utf8"))?;
    Ok(strings.iter().map(|s| s.map(str::to_owned)).collect())
}

fn ints(batch: &RecordBatch, index: usize) -> Result<Vec<Option<i64>>, QualityError> {
    let array = column_as(batch, index, &DataType::Int64)?;
    let ints = array
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| unexpected(index, "Int64"))?;
    Ok(ints.iter().collect())
}

fn unexpected(index: usize, wanted: &str) -> QualityError {
    QualityError::Unexpected(format!("column {index} did not cast to {wanted}"))
}

/// A subject and the counts a query gave it (`None`: SQL NULL).
type SubjectCounts = (Subject, Vec<Option<i64>>);

/// Rows of a `coin_id, vs_currency, hour, counts…` result, one subject each.
fn subjects(batches: &[RecordBatch], counts: usize) -> Result<Vec<SubjectCounts>, QualityError> {
    let mut rows = Vec::new();
    for batch in batches {
        let coins = strings(batch, 0)?;
        let quotes = strings(batch, 1)?;
        let hours = ints(batch, 2)?;
        let values = (0..counts)
            .map(|i| ints(batch, 3 + i))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let (Some(coin_id), Some(vs_currency), Some(hour)) =
                (coins[row].clone(), quotes[row].clone(), hours[row])
            else {
                continue;
            };
            let subject = Subject {
                coin_id,
                vs_currency,
                hour,
            };
            rows.push((subject, values.iter().map(|v| v[row]).collect()));
        }
    }
    Ok(rows)
}

/// Runs a per-subject count query over the interval.
async fn counts(
    session: &LakeSession,
    name: &str,
    sql: &str,
    interval: &Interval,
    counts: usize,
) -> Result<Vec<SubjectCounts>, QualityError> {
    let batches = session.run(name, sql, parameters(interval)).await?;
    subjects(&batches, counts)
}

async fn silver(
    session: &LakeSession,
    interval: &Interval,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = "SELECT coin_id, vs_currency, to_unixtime(ts_event) / 3600, COUNT(*), COUNT(DISTINCT ts_event), \
                      SUM(CASE WHEN price > 0 THEN 0 ELSE 1 END), MAX(to_unixtime(ts_event)) \
               FROM silver_prices \
               WHERE ts_event >= $start AND ts_event < $end AND event_date >= $first_date AND event_date <= $last_date \
               GROUP BY 1, 2, 3";
    for (subject, v) in counts(session, "dq silver/prices", sql, interval, 4).await? {
        let hour = facts.entry(subject).or_default();
        hour.silver_rows = v[0].unwrap_or(0);
        hour.silver_distinct = v[1].unwrap_or(0);
        hour.silver_bad_prices = v[2].unwrap_or(0);
        hour.silver_newest_second = v[3];
    }
    Ok(())
}

async fn data_quality(
    session: &LakeSession,
    interval: &Interval,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = "SELECT coin_id, vs_currency, to_unixtime(hour_start) / 3600, SUM(polls_expected), SUM(polls_received) \
               FROM gold_data_quality \
               WHERE hour_start >= $start AND hour_start < $end AND hour_date >= $first_date AND hour_date <= $last_date \
               GROUP BY 1, 2, 3";
    for (subject, v) in counts(session, "dq gold/data_quality", sql, interval, 2).await? {
        let hour = facts.entry(subject).or_default();
        hour.polls_expected = v[0];
        hour.polls_received = v[1];
    }
    Ok(())
}

async fn candles(
    session: &LakeSession,
    interval: &Interval,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = "SELECT coin_id, vs_currency, to_unixtime(bucket_start) / 3600, \
                      SUM(CASE WHEN low <= open AND open <= high AND low <= close AND close <= high THEN 0 ELSE 1 END) \
               FROM gold_candles_1h \
               WHERE bucket_start >= $start AND bucket_start < $end \
                 AND bucket_date >= $first_date AND bucket_date <= $last_date \
               GROUP BY 1, 2, 3";
    for (subject, v) in counts(session, "dq gold/candles_1h", sql, interval, 1).await? {
        facts.entry(subject).or_default().bad_candles = v[0].unwrap_or(0);
    }
    Ok(())
}

/// Bronze coordinates (topic, partition, offset) of the price records Silver quarantined
/// (contract violations and duplicates alike).
async fn quarantined(session: &LakeSession) -> Result<HashSet<(String, i64, i64)>, QualityError> {
    let sql = "SELECT topic, \"partition\", \"offset\" FROM silver_quarantine WHERE source_table = $table";
    let batches = session
        .run(
            "dq silver/quarantine",
            sql,
            vec![("table", ScalarValue::from(BRONZE_PRICES))],
        )
        .await?;
    let mut coordinates = HashSet::new();
    for batch in batches {
        let (topics, partitions, offsets) =
            (strings(&batch, 0)?, ints(&batch, 1)?, ints(&batch, 2)?);
        for row in 0..batch.num_rows() {
            if let (Some(topic), Some(partition), Some(offset)) =
                (topics[row].clone(), partitions[row], offsets[row])
            {
                coordinates.insert((topic, partition, offset));
            }
        }
    }
    Ok(coordinates)
}

/// The fields of a raw price event that place it; anything else in the record is Silver's business.
#[derive(Deserialize)]
struct Placed {
    coin_id: String,
    vs_currency: String,
    ts_event: String,
}

/// Distinct price events of Bronze per subject: every record of the interval's event time that
/// Silver did not quarantine. Bronze is partitioned by Kafka time, which is never before the
/// event's poll, so only partitions from the interval's first day on are read.
async fn bronze(
    session: &LakeSession,
    interval: &Interval,
    quarantined: &HashSet<(String, i64, i64)>,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = "SELECT topic, \"partition\", \"offset\", value FROM bronze_prices_raw WHERE ingest_date >= $first_date";
    let batches = session
        .run(
            "dq bronze/prices_raw",
            sql,
            vec![("first_date", date_value(interval.first_date()))],
        )
        .await?;
    let mut events: HashSet<(Subject, i64)> = HashSet::new();
    for batch in batches {
        let (topics, partitions, offsets) =
            (strings(&batch, 0)?, ints(&batch, 1)?, ints(&batch, 2)?);
        let values = column_as(&batch, 3, &DataType::Binary)?;
        let values = values
            .as_binary_opt::<i32>()
            .ok_or_else(|| unexpected(3, "Binary"))?;
        for row in 0..batch.num_rows() {
            let coordinates = (
                topics[row].clone().unwrap_or_default(),
                partitions[row].unwrap_or(-1),
                offsets[row].unwrap_or(-1),
            );
            if values.is_null(row) || quarantined.contains(&coordinates) {
                continue;
            }
            // A record that does not even place itself is not counted here: Silver quarantines
            // it, and gold/data_quality counts it.
            let Ok(placed) = serde_json::from_slice::<Placed>(values.value(row)) else {
                continue;
            };
            let Ok(ts_event) = DateTime::parse_from_rfc3339(&placed.ts_event) else {
                continue;
            };
            let ts_event = ts_event.with_timezone(&Utc);
            if !interval.contains(ts_event) {
                continue;
            }
            let subject = Subject {
                coin_id: placed.coin_id,
                vs_currency: placed.vs_currency,
                hour: ts_event.timestamp().div_euclid(3600),
            };
            events.insert((subject, ts_event.timestamp_micros()));
        }
    }
    for (subject, _) in events {
        facts.entry(subject).or_default().bronze_events += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{
        BinaryArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use deltalake::kernel::{DataType as DeltaType, StructField};
    use deltalake::protocol::SaveMode;

    use super::*;

    /// 2026-01-01T00:00Z in seconds, and the test's hour 04:00–05:00.
    const DAY: i64 = 1_767_225_600;
    const HOUR: i64 = DAY / 3600 + 4;
    const DAY_NUMBER: i32 = (DAY / 86_400) as i32;

    fn hour_interval() -> Interval {
        let start = DateTime::from_timestamp(HOUR * 3600, 0).expect("in range");
        Interval::new(start, start + chrono::TimeDelta::hours(1)).expect("non-empty")
    }

    fn at(minute: i64) -> i64 {
        (HOUR * 3600 + minute * 60) * 1_000_000
    }

    fn utc(micros: Vec<i64>) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"))
    }

    fn texts(values: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn days(n: usize) -> ArrayRef {
        Arc::new(Date32Array::from(vec![DAY_NUMBER; n]))
    }

    /// Creates `table` with `columns` (all nullable, partitioned by the last) and appends them.
    async fn write(lake: &Lake, table: &str, columns: Vec<(&str, DeltaType, ArrayRef)>) {
        let fields = columns
            .iter()
            .map(|(name, kind, _)| StructField::nullable(*name, kind.clone()))
            .collect();
        let partition = columns.last().map(|c| c.0).expect("a partition column");
        let batch = RecordBatch::try_from_iter(columns.iter().map(|(n, _, a)| (*n, a.clone())))
            .expect("a batch");
        lake.open_or_create(table, fields, &[partition])
            .await
            .expect("table")
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .await
            .expect("append");
    }

    fn event(coin: &str, minute: i64) -> Vec<u8> {
        let ts = DateTime::from_timestamp_micros(at(minute)).expect("in range");
        serde_json::json!({"coin_id": coin, "vs_currency": "usd", "ts_event": ts.to_rfc3339(), "price": 1.0})
            .to_string()
            .into_bytes()
    }

    #[tokio::test]
    async fn the_lake_counts_every_table_per_coin_and_hour() {
        let folder = tempfile::tempdir().expect("temp folder");
        let lake = Lake::parse(&folder.path().to_string_lossy()).expect("lake");
        // Silver: three events in the hour (one priced 0), one the hour after.
        write(
            &lake,
            "silver/prices",
            vec![
                ("coin_id", DeltaType::STRING, texts(&["bitcoin"; 4])),
                ("vs_currency", DeltaType::STRING, texts(&["usd"; 4])),
                (
                    "ts_event",
                    DeltaType::TIMESTAMP,
                    utc(vec![at(5), at(10), at(50), at(65)]),
                ),
                (
                    "price",
                    DeltaType::DOUBLE,
                    Arc::new(Float64Array::from(vec![1.0, 0.0, 1.0, 1.0])),
                ),
                ("event_date", DeltaType::DATE, days(4)),
            ],
        )
        .await;
        write(
            &lake,
            "gold/data_quality",
            vec![
                ("coin_id", DeltaType::STRING, texts(&["bitcoin"])),
                ("vs_currency", DeltaType::STRING, texts(&["usd"])),
                ("hour_start", DeltaType::TIMESTAMP, utc(vec![at(0)])),
                (
                    "polls_expected",
                    DeltaType::LONG,
                    Arc::new(Int64Array::from(vec![12])),
                ),
                (
                    "polls_received",
                    DeltaType::LONG,
                    Arc::new(Int64Array::from(vec![3])),
                ),
                ("hour_date", DeltaType::DATE, days(1)),
            ],
        )
        .await;
        // A candle whose open is above its high.
        let prices = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        write(
            &lake,
            "gold/candles_1h",
            vec![
                ("coin_id", DeltaType::STRING, texts(&["bitcoin"])),
                ("vs_currency", DeltaType::STRING, texts(&["usd"])),
                ("bucket_start", DeltaType::TIMESTAMP, utc(vec![at(0)])),
                ("open", DeltaType::DOUBLE, prices(2.0)),
                ("high", DeltaType::DOUBLE, prices(1.5)),
                ("low", DeltaType::DOUBLE, prices(1.0)),
                ("close", DeltaType::DOUBLE, prices(1.2)),
                ("bucket_date", DeltaType::DATE, days(1)),
            ],
        )
        .await;
        // Bronze: the three events, a re-sent copy, one of the next hour, one quarantined and
        // one that is not JSON.
        let values = [
            event("bitcoin", 5),
            event("bitcoin", 10),
            event("bitcoin", 50),
            event("bitcoin", 10),
            event("bitcoin", 65),
            event("bitcoin", 30),
            b"not json".to_vec(),
        ];
        write(
            &lake,
            BRONZE_PRICES,
            vec![
                ("topic", DeltaType::STRING, texts(&["raw"; 7])),
                (
                    "partition",
                    DeltaType::INTEGER,
                    Arc::new(Int32Array::from(vec![0; 7])),
                ),
                (
                    "offset",
                    DeltaType::LONG,
                    Arc::new(Int64Array::from((0..7).collect::<Vec<i64>>())),
                ),
                (
                    "value",
                    DeltaType::BINARY,
                    Arc::new(BinaryArray::from_iter_values(values.iter())),
                ),
                ("ingest_date", DeltaType::DATE, days(7)),
            ],
        )
        .await;
        write(
            &lake,
            "silver/quarantine",
            vec![
                ("source_table", DeltaType::STRING, texts(&[BRONZE_PRICES])),
                ("topic", DeltaType::STRING, texts(&["raw"])),
                (
                    "partition",
                    DeltaType::INTEGER,
                    Arc::new(Int32Array::from(vec![0])),
                ),
                (
                    "offset",
                    DeltaType::LONG,
                    Arc::new(Int64Array::from(vec![5])),
                ),
                ("event_date", DeltaType::DATE, days(1)),
            ],
        )
        .await;

        let mut facts = Facts::new();
        read(&lake, &hour_interval(), &mut facts)
            .await
            .expect("read");

        let subject = Subject {
            coin_id: "bitcoin".into(),
            vs_currency: "usd".into(),
            hour: HOUR,
        };
        assert_eq!(facts.keys().collect::<Vec<_>>(), vec![&subject]);
        let hour = &facts[&subject];
        assert_eq!(
            (
                hour.silver_rows,
                hour.silver_distinct,
                hour.silver_bad_prices
            ),
            (3, 3, 1)
        );
        assert_eq!(hour.silver_newest_second, Some(HOUR * 3600 + 50 * 60));
        assert_eq!(
            (hour.polls_expected, hour.polls_received),
            (Some(12), Some(3))
        );
        assert_eq!(hour.bad_candles, 1);
        assert_eq!(hour.bronze_events, 3);
    }

    #[tokio::test]
    async fn an_empty_lake_has_no_facts() {
        let folder = tempfile::tempdir().expect("temp folder");
        let lake = Lake::parse(&folder.path().to_string_lossy()).expect("lake");
        let mut facts = Facts::new();
        read(&lake, &hour_interval(), &mut facts)
            .await
            .expect("read");
        assert!(facts.is_empty());
    }
}
