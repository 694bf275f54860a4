//! The lake's side of the checks: counts per coin and hour from silver/prices, gold/data_quality,
//! gold/candles_1h and bronze/prices_raw, read with DataFusion SQL over the Delta tables.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};
use deltalake::datafusion::prelude::SessionContext;
use lake::storage::Lake;
use serde::Deserialize;

use super::facts::{Facts, Subject};
use super::QualityError;

/// The Bronze table of price events and the topic-independent name Silver quarantines it under.
const BRONZE_PRICES: &str = "bronze/prices_raw";

/// The checked interval, as the SQL predicates need it.
struct Window {
    start_second: i64,
    end_second: i64,
    first_date: NaiveDate,
    last_date: NaiveDate,
}

impl Window {
    fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Window {
        // The last instant inside [start, end) is on the day of end − 1 µs.
        let last = end - chrono::TimeDelta::microseconds(1);
        Window {
            start_second: start.timestamp(),
            end_second: end.timestamp(),
            first_date: start.date_naive(),
            last_date: last.date_naive(),
        }
    }

    /// `column` (a timestamp) in [start, end), and `date_column` (its partition) on the days of
    /// the interval so Delta prunes the other partitions. `to_unixtime` truncates to whole
    /// seconds, which keeps every instant on the same side of whole-second bounds.
    fn predicate(&self, column: &str, date_column: &str) -> String {
        format!(
            "{date_column} BETWEEN DATE '{}' AND DATE '{}' AND to_unixtime({column}) >= {} AND to_unixtime({column}) < {}",
            self.first_date, self.last_date, self.start_second, self.end_second
        )
    }
}

/// Adds the lake's counts for [start, end) to `facts`.
pub async fn read(
    lake: &Lake,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let window = Window::new(start, end);
    let ctx = SessionContext::new();
    let mut present = HashSet::new();
    for table in [
        "silver/prices",
        "silver/quarantine",
        "gold/data_quality",
        "gold/candles_1h",
        BRONZE_PRICES,
    ] {
        if register(lake, &ctx, table).await? {
            present.insert(table);
        }
    }
    if present.contains("silver/prices") {
        silver(&ctx, &window, facts).await?;
    }
    if present.contains("gold/data_quality") {
        data_quality(&ctx, &window, facts).await?;
    }
    if present.contains("gold/candles_1h") {
        candles(&ctx, &window, facts).await?;
    }
    if present.contains(BRONZE_PRICES) {
        let quarantined = if present.contains("silver/quarantine") {
            quarantined(&ctx).await?
        } else {
            HashSet::new()
        };
        bronze(&ctx, &window, &quarantined, facts).await?;
    }
    Ok(())
}

/// The SQL name of a lake table: `silver/prices` → `silver_prices`.
fn sql_name(table: &str) -> String {
    table.replace('/', "_")
}

/// Registers `table` with the session; `false` when it does not exist yet (nothing to count).
async fn register(lake: &Lake, ctx: &SessionContext, table: &str) -> Result<bool, QualityError> {
    let Some(delta) = lake.open(table).await? else {
        return Ok(false);
    };
    let query_error = |source| QualityError::Query {
        what: format!("registering {table}"),
        source,
    };
    delta
        .update_datafusion_session(&ctx.state())
        .map_err(|source| QualityError::Delta {
            table: table.to_owned(),
            source,
        })?;
    let provider = delta.table_provider().await.map_err(query_error)?;
    ctx.register_table(sql_name(table), provider)
        .map_err(query_error)?;
    Ok(true)
}

async fn query(
    ctx: &SessionContext,
    what: &str,
    sql: String,
) -> Result<Vec<RecordBatch>, QualityError> {
    let query_error = |source| QualityError::Query {
        what: what.to_owned(),
        source,
    };
    ctx.sql(&sql)
        .await
        .map_err(query_error)?
        .collect()
        .await
        .map_err(query_error)
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

/// Rows of a `coin_id, vs_currency, hour, counts…` result, one subject each.
fn subjects(
    batches: &[RecordBatch],
    counts: usize,
) -> Result<Vec<(Subject, Vec<Option<i64>>)>, QualityError> {
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

async fn silver(
    ctx: &SessionContext,
    window: &Window,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = format!(
        "SELECT coin_id, vs_currency, to_unixtime(ts_event) / 3600, COUNT(*), COUNT(DISTINCT ts_event), \
                SUM(CASE WHEN price > 0 THEN 0 ELSE 1 END), MAX(to_unixtime(ts_event)) \
         FROM silver_prices WHERE {} GROUP BY 1, 2, 3",
        window.predicate("ts_event", "event_date")
    );
    for (subject, v) in subjects(&query(ctx, "silver/prices counts", sql).await?, 4)? {
        let hour = facts.entry(subject).or_default();
        hour.silver_rows = v[0].unwrap_or(0);
        hour.silver_distinct = v[1].unwrap_or(0);
        hour.silver_bad_prices = v[2].unwrap_or(0);
        hour.silver_newest_second = v[3];
    }
    Ok(())
}

async fn data_quality(
    ctx: &SessionContext,
    window: &Window,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = format!(
        "SELECT coin_id, vs_currency, to_unixtime(hour_start) / 3600, SUM(polls_expected), SUM(polls_received) \
         FROM gold_data_quality WHERE {} GROUP BY 1, 2, 3",
        window.predicate("hour_start", "hour_date")
    );
    for (subject, v) in subjects(&query(ctx, "gold/data_quality", sql).await?, 2)? {
        let hour = facts.entry(subject).or_default();
        hour.polls_expected = v[0];
        hour.polls_received = v[1];
    }
    Ok(())
}

async fn candles(
    ctx: &SessionContext,
    window: &Window,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = format!(
        "SELECT coin_id, vs_currency, to_unixtime(bucket_start) / 3600, \
                SUM(CASE WHEN low <= open AND open <= high AND low <= close AND close <= high THEN 0 ELSE 1 END) \
         FROM gold_candles_1h WHERE {} GROUP BY 1, 2, 3",
        window.predicate("bucket_start", "bucket_date")
    );
    for (subject, v) in subjects(&query(ctx, "gold/candles_1h", sql).await?, 1)? {
        facts.entry(subject).or_default().bad_candles = v[0].unwrap_or(0);
    }
    Ok(())
}

/// Bronze coordinates (topic, partition, offset) of the records Silver quarantined.
async fn quarantined(ctx: &SessionContext) -> Result<HashSet<(String, i64, i64)>, QualityError> {
    let sql = format!(
        "SELECT topic, \"partition\", \"offset\" FROM silver_quarantine WHERE source_table = '{BRONZE_PRICES}'"
    );
    let mut coordinates = HashSet::new();
    for batch in query(ctx, "silver/quarantine", sql).await? {
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
    ctx: &SessionContext,
    window: &Window,
    quarantined: &HashSet<(String, i64, i64)>,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let sql = format!(
        "SELECT topic, \"partition\", \"offset\", value FROM {} WHERE ingest_date >= DATE '{}'",
        sql_name(BRONZE_PRICES),
        window.first_date
    );
    let mut events: HashSet<(Subject, String)> = HashSet::new();
    for batch in query(ctx, "bronze/prices_raw", sql).await? {
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
            // it, and its own counters report it.
            let Ok(placed) = serde_json::from_slice::<Placed>(values.value(row)) else {
                continue;
            };
            let Ok(ts_event) = DateTime::parse_from_rfc3339(&placed.ts_event) else {
                continue;
            };
            let second = ts_event.timestamp();
            if second < window.start_second || second >= window.end_second {
                continue;
            }
            let subject = Subject {
                coin_id: placed.coin_id,
                vs_currency: placed.vs_currency,
                hour: second.div_euclid(3600),
            };
            events.insert((subject, ts_event.with_timezone(&Utc).to_rfc3339()));
        }
    }
    for (subject, _) in events {
        facts.entry(subject).or_default().bronze_events += 1;
    }
    Ok(())
}
