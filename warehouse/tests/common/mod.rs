//! Test support: a fresh database per test on the PostgreSQL of `scripts/postgres`, and Delta
//! fixtures of the Silver/Gold tables the warehouse loads (schemas as in LAKE-CONTRACT.md).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use deltalake::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use deltalake::kernel::{DataType, StructField};
use deltalake::protocol::SaveMode;
use lake::storage::Lake;
use tokio_postgres::Client;
use warehouse::connection::WarehouseTarget;

/// The server the tests use, from `WAREHOUSE_URL`; panics with instructions when unset.
pub fn warehouse_url() -> String {
    std::env::var("WAREHOUSE_URL").unwrap_or_else(|_| {
        panic!(
            "WAREHOUSE_URL is not set. Start a throwaway PostgreSQL with \
             `export WAREHOUSE_URL=$(scripts/postgres start | tail -n 1)` (or run scripts/test), \
             then run the tests again."
        )
    })
}

/// A database of its own for one test, dropped by [`TestDb::drop`].
pub struct TestDb {
    /// The test's database.
    pub target: WarehouseTarget,
    admin: WarehouseTarget,
    name: String,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Creates an empty database named after `label`, this process and a counter.
    pub async fn create(label: &str) -> TestDb {
        let admin = WarehouseTarget::from_url(&warehouse_url()).expect("WAREHOUSE_URL parses");
        let name = format!(
            "test_{label}_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let client = admin.connect().await.expect("connect to WAREHOUSE_URL");
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("CREATE DATABASE (the user needs CREATEDB)");
        TestDb {
            target: admin.with_database(&name),
            admin,
            name,
        }
    }

    /// A new connection to the test's database.
    pub async fn client(&self) -> Client {
        self.target
            .connect()
            .await
            .expect("connect to the test database")
    }

    /// Drops the database (connections to it must be closed).
    pub async fn drop(self) {
        let client = self
            .admin
            .connect()
            .await
            .expect("connect to WAREHOUSE_URL");
        client
            .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
            .await
            .expect("DROP DATABASE");
    }
}

/// Every row of `table` as JSON text, sorted: two dumps are equal when the tables are.
pub async fn dump(client: &Client, table: &str) -> Vec<String> {
    client
        .query(
            &format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"),
            &[],
        )
        .await
        .expect("dump a table")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Every table of the schema.
pub const TABLES: [&str; 9] = [
    "dim_coin",
    "dim_date",
    "fact_price_snapshot",
    "fact_candle_hour",
    "fact_candle_day",
    "fact_daily_metrics",
    "fact_dominance",
    "fact_alert",
    "fact_data_quality",
];

/// The dumps of every table.
pub async fn dump_all(client: &Client) -> Vec<Vec<String>> {
    let mut dumps = Vec::new();
    for table in TABLES {
        dumps.push(dump(client, table).await);
    }
    dumps
}

/// A fixture value.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    /// No value.
    Null,
    /// A string.
    S(String),
    /// An int.
    I(i32),
    /// A long.
    L(i64),
    /// A double.
    D(f64),
    /// A UTC timestamp.
    T(DateTime<Utc>),
    /// A date.
    Day(NaiveDate),
}

impl V {
    /// The number in a numeric value (0 for null).
    pub fn number(&self) -> f64 {
        match self {
            V::I(v) => f64::from(*v),
            V::L(v) => *v as f64,
            V::D(v) => *v,
            _ => 0.0,
        }
    }

    /// The instant of a timestamp or date (midnight UTC).
    pub fn instant(&self) -> DateTime<Utc> {
        match self {
            V::T(t) => *t,
            V::Day(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
            other => panic!("not a time: {other:?}"),
        }
    }
}

/// A Delta table of the fixture: its schema, partition column and rows.
#[derive(Clone, Debug)]
pub struct Table {
    /// Its name under the lake root.
    pub name: &'static str,
    /// Columns and their Delta types.
    pub schema: Vec<(&'static str, DataType)>,
    /// Partition columns.
    pub partitions: Vec<&'static str>,
    /// The column that places a row in an interval.
    pub time: &'static str,
    /// The rows, values in schema order.
    pub rows: Vec<Vec<V>>,
}

impl Table {
    /// The position of `column` in the schema.
    pub fn index_of(&self, column: &str) -> usize {
        self.schema
            .iter()
            .position(|(name, _)| *name == column)
            .unwrap_or_else(|| panic!("{} has no column {column}", self.name))
    }

    /// The value of `column` in `row`.
    pub fn value<'a>(&self, row: &'a [V], column: &str) -> &'a V {
        &row[self.index_of(column)]
    }

    /// A row from `values` (by column name); the other columns are null.
    pub fn push(&mut self, values: &[(&str, V)]) {
        let mut row = vec![V::Null; self.schema.len()];
        for (column, value) in values {
            row[self.index_of(column)] = value.clone();
        }
        self.rows.push(row);
    }

    /// The rows whose time lies in `[start, end)`.
    pub fn rows_in(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<&Vec<V>> {
        let time = self.index_of(self.time);
        self.rows
            .iter()
            .filter(|row| {
                let t = row[time].instant();
                start <= t && t < end
            })
            .collect()
    }

    /// Count of the rows in `[start, end)` and the sum of `measure` over them.
    pub fn count_and_sum(
        &self,
        measure: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> (i64, f64) {
        let rows = self.rows_in(start, end);
        let sum = rows
            .iter()
            .map(|row| self.value(row, measure).number())
            .sum();
        (rows.len() as i64, sum)
    }

    fn batch(&self) -> RecordBatch {
        let columns: Vec<(&str, ArrayRef)> = self
            .schema
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| {
                let cells = self.rows.iter().map(|row| &row[i]);
                let array: ArrayRef = if *kind == DataType::STRING {
                    Arc::new(StringArray::from_iter(cells.map(|v| match v {
                        V::S(s) => Some(s.clone()),
                        _ => None,
                    })))
                } else if *kind == DataType::INTEGER {
                    Arc::new(Int32Array::from_iter(cells.map(|v| match v {
                        V::I(x) => Some(*x),
                        _ => None,
                    })))
                } else if *kind == DataType::LONG {
                    Arc::new(Int64Array::from_iter(cells.map(|v| match v {
                        V::L(x) => Some(*x),
                        _ => None,
                    })))
                } else if *kind == DataType::DOUBLE {
                    Arc::new(Float64Array::from_iter(cells.map(|v| match v {
                        V::D(x) => Some(*x),
                        _ => None,
                    })))
                } else if *kind == DataType::TIMESTAMP {
                    Arc::new(
                        TimestampMicrosecondArray::from_iter(cells.map(|v| match v {
                            V::T(t) => Some(t.timestamp_micros()),
                            _ => None,
                        }))
                        .with_timezone("UTC"),
                    )
                } else if *kind == DataType::DATE {
                    Arc::new(Date32Array::from_iter(cells.map(|v| {
                        match v {
                            V::Day(d) => Some(
                                i32::try_from((*d - NaiveDate::default()).num_days())
                                    .expect("date in range"),
                            ),
                            _ => None,
                        }
                    })))
                } else {
                    panic!("fixture type {kind:?} not supported")
                };
                (*name, array)
            })
            .collect();
        RecordBatch::try_from_iter(columns).expect("fixture batch")
    }

    /// Writes the rows to the lake, replacing the whole table.
    pub async fn write(&self, lake: &Lake) {
        let fields = self
            .schema
            .iter()
            .map(|(name, kind)| StructField::nullable(*name, kind.clone()))
            .collect();
        let table = lake
            .open_or_create(self.name, fields, &self.partitions)
            .await
            .expect("create the fixture table");
        table
            .write(vec![self.batch()])
            .with_save_mode(SaveMode::Overwrite)
            .await
            .expect("write the fixture table");
    }
}

/// The coins of the fixture, with their symbols.
pub const COINS: [(&str, &str); 2] = [("bitcoin", "btc"), ("ethereum", "eth")];

/// Midnight UTC of 2026-01-`day`.
pub fn day(day: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 1, day)
        .expect("a January day")
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

fn s(text: &str) -> V {
    V::S(text.to_owned())
}

/// Silver and Gold of `days` days from 2026-01-01 for [`COINS`]: a price every 15 minutes,
/// hourly and daily candles, daily metrics and dominance, hourly data quality, an alert a day.
/// Values are multiples of 1/4, so sums are exact in any order.
pub fn fixture(days: u32) -> Vec<Table> {
    use DataType as T;
    let mut prices = Table {
        name: "silver/prices",
        schema: vec![
            ("event_id", T::STRING),
            ("schema_version", T::STRING),
            ("source", T::STRING),
            ("coin_id", T::STRING),
            ("symbol", T::STRING),
            ("vs_currency", T::STRING),
            ("price", T::DOUBLE),
            ("ts_event", T::TIMESTAMP),
            ("ts_ingest", T::TIMESTAMP),
            ("market_cap", T::DOUBLE),
            ("market_cap_rank", T::LONG),
            ("fully_diluted_valuation", T::DOUBLE),
            ("total_volume", T::DOUBLE),
            ("high_24h", T::DOUBLE),
            ("low_24h", T::DOUBLE),
            ("price_change_24h", T::DOUBLE),
            ("price_change_percentage_24h", T::DOUBLE),
            ("market_cap_change_24h", T::DOUBLE),
            ("market_cap_change_percentage_24h", T::DOUBLE),
            ("circulating_supply", T::DOUBLE),
            ("total_supply", T::DOUBLE),
            ("max_supply", T::DOUBLE),
            ("ath", T::DOUBLE),
            ("ath_change_percentage", T::DOUBLE),
            ("ath_date", T::TIMESTAMP),
            ("atl", T::DOUBLE),
            ("atl_change_percentage", T::DOUBLE),
            ("atl_date", T::TIMESTAMP),
            ("roi_times", T::DOUBLE),
            ("roi_currency", T::STRING),
            ("roi_percentage", T::DOUBLE),
            ("price_change_percentage_1h_in_currency", T::DOUBLE),
            ("price_change_percentage_24h_in_currency", T::DOUBLE),
            ("price_change_percentage_7d_in_currency", T::DOUBLE),
            ("bronze_partition", T::INTEGER),
            ("bronze_offset", T::LONG),
            ("kafka_timestamp", T::TIMESTAMP),
            ("event_date", T::DATE),
        ],
        partitions: vec!["event_date"],
        time: "ts_event",
        rows: Vec::new(),
    };
    let candle_schema = vec![
        ("coin_id", T::STRING),
        ("vs_currency", T::STRING),
        ("bucket_start", T::TIMESTAMP),
        ("open", T::DOUBLE),
        ("high", T::DOUBLE),
        ("low", T::DOUBLE),
        ("close", T::DOUBLE),
        ("polls", T::LONG),
        ("market_cap_close", T::DOUBLE),
        ("volume_24h_close", T::DOUBLE),
        ("bucket_date", T::DATE),
    ];
    let mut hours = Table {
        name: "gold/candles_1h",
        schema: candle_schema.clone(),
        partitions: vec!["bucket_date"],
        time: "bucket_start",
        rows: Vec::new(),
    };
    let mut daily_candles = Table {
        name: "gold/candles_1d",
        schema: candle_schema,
        partitions: vec!["bucket_date"],
        time: "bucket_start",
        rows: Vec::new(),
    };
    let mut metrics = Table {
        name: "gold/daily_metrics",
        schema: vec![
            ("coin_id", T::STRING),
            ("vs_currency", T::STRING),
            ("date", T::DATE),
            ("close", T::DOUBLE),
            ("simple_return", T::DOUBLE),
            ("log_return", T::DOUBLE),
            ("intraday_points", T::LONG),
            ("realized_vol", T::DOUBLE),
            ("realized_vol_annualized", T::DOUBLE),
            ("vol_7d", T::DOUBLE),
            ("vol_30d", T::DOUBLE),
            ("max_drawdown_30d", T::DOUBLE),
        ],
        partitions: vec![],
        time: "date",
        rows: Vec::new(),
    };
    let mut dominance = Table {
        name: "gold/dominance",
        schema: vec![
            ("date", T::DATE),
            ("coin_id", T::STRING),
            ("vs_currency", T::STRING),
            ("market_cap", T::DOUBLE),
            ("total_market_cap", T::DOUBLE),
            ("share", T::DOUBLE),
        ],
        partitions: vec![],
        time: "date",
        rows: Vec::new(),
    };
    let mut quality = Table {
        name: "gold/data_quality",
        schema: vec![
            ("coin_id", T::STRING),
            ("vs_currency", T::STRING),
            ("hour_start", T::TIMESTAMP),
            ("polls_expected", T::LONG),
            ("polls_received", T::LONG),
            ("duplicates_removed", T::LONG),
            ("dead_letters", T::LONG),
            ("quarantined", T::LONG),
            ("max_staleness_seconds", T::DOUBLE),
            ("hour_date", T::DATE),
        ],
        partitions: vec!["hour_date"],
        time: "hour_start",
        rows: Vec::new(),
    };
    let mut alerts = Table {
        name: "silver/alerts",
        schema: vec![
            ("schema_version", T::STRING),
            ("alert_id", T::STRING),
            ("rule", T::STRING),
            ("severity", T::STRING),
            ("coin_id", T::STRING),
            ("vs_currency", T::STRING),
            ("window", T::STRING),
            ("observed", T::DOUBLE),
            ("threshold", T::DOUBLE),
            ("ts_event", T::TIMESTAMP),
            ("ts_alert", T::TIMESTAMP),
            ("message", T::STRING),
            ("bronze_partition", T::INTEGER),
            ("bronze_offset", T::LONG),
            ("kafka_timestamp", T::TIMESTAMP),
            ("event_date", T::DATE),
        ],
        partitions: vec!["event_date"],
        time: "ts_event",
        rows: Vec::new(),
    };

    let usd = || s("usd");
    for (c, (coin, symbol)) in COINS.iter().enumerate() {
        let base = 1000.0 * (c as f64 + 1.0);
        for d in 0..days {
            let midnight = day(1) + TimeDelta::days(i64::from(d));
            let date = V::Day(midnight.date_naive());
            for h in 0..24 {
                let hour = midnight + TimeDelta::hours(h);
                let mut closes = Vec::new();
                for q in 0..4 {
                    let ts = hour + TimeDelta::minutes(15 * q);
                    let price = base + f64::from(d) * 10.0 + h as f64 + q as f64 * 0.25;
                    closes.push(price);
                    let offset = i64::from(d) * 96 + h * 4 + q;
                    prices.push(&[
                        ("event_id", s(&format!("{coin}-{offset}"))),
                        ("schema_version", s("1.1")),
                        ("source", s("coingecko")),
                        ("coin_id", s(coin)),
                        ("symbol", s(symbol)),
                        ("vs_currency", usd()),
                        ("price", V::D(price)),
                        ("ts_event", V::T(ts)),
                        ("ts_ingest", V::T(ts + TimeDelta::seconds(30))),
                        ("market_cap", V::D(price * 1000.0)),
                        ("market_cap_rank", V::L(c as i64 + 1)),
                        ("total_volume", V::D(price * 10.0)),
                        ("ath_date", V::T(day(1) - TimeDelta::days(400))),
                        ("roi_currency", if c == 0 { V::Null } else { usd() }),
                        ("bronze_partition", V::I(c as i32)),
                        ("bronze_offset", V::L(offset)),
                        ("kafka_timestamp", V::T(ts + TimeDelta::seconds(31))),
                        ("event_date", date.clone()),
                    ]);
                }
                let candle = |table: &mut Table, start: DateTime<Utc>, polls: i64| {
                    table.push(&[
                        ("coin_id", s(coin)),
                        ("vs_currency", usd()),
                        ("bucket_start", V::T(start)),
                        ("open", V::D(closes[0])),
                        ("high", V::D(closes[3])),
                        ("low", V::D(closes[0])),
                        ("close", V::D(closes[3])),
                        ("polls", V::L(polls)),
                        ("market_cap_close", V::D(closes[3] * 1000.0)),
                        ("bucket_date", V::Day(start.date_naive())),
                    ]);
                };
                candle(&mut hours, hour, 4);
                if h == 23 {
                    candle(&mut daily_candles, midnight, 96);
                }
                quality.push(&[
                    ("coin_id", s(coin)),
                    ("vs_currency", usd()),
                    ("hour_start", V::T(hour)),
                    ("polls_expected", V::L(12)),
                    ("polls_received", V::L(4 + (h % 3))),
                    ("duplicates_removed", V::L(h % 2)),
                    ("dead_letters", V::L(0)),
                    ("quarantined", V::L(i64::from(h == 5))),
                    ("max_staleness_seconds", V::D(900.0 + h as f64)),
                    ("hour_date", date.clone()),
                ]);
            }
            let close = base + f64::from(d) * 10.0 + 23.75;
            metrics.push(&[
                ("coin_id", s(coin)),
                ("vs_currency", usd()),
                ("date", date.clone()),
                ("close", V::D(close)),
                ("simple_return", if d == 0 { V::Null } else { V::D(0.25) }),
                ("intraday_points", V::L(96)),
                ("realized_vol", V::D(0.5)),
            ]);
            dominance.push(&[
                ("date", date.clone()),
                ("coin_id", s(coin)),
                ("vs_currency", usd()),
                ("market_cap", V::D(close * 1000.0)),
                ("share", V::D(if c == 0 { 0.25 } else { 0.75 })),
            ]);
            let alert_at = midnight + TimeDelta::hours(6);
            alerts.push(&[
                ("schema_version", s("1.0")),
                ("alert_id", s(&format!("{coin}-{d}"))),
                ("rule", s("price_move")),
                ("severity", s("warning")),
                ("coin_id", s(coin)),
                ("vs_currency", usd()),
                ("window", s("1h")),
                ("observed", V::D(0.5)),
                ("threshold", V::D(0.25)),
                ("ts_event", V::T(alert_at)),
                ("ts_alert", V::T(alert_at + TimeDelta::seconds(2))),
                ("message", s("moved")),
                ("bronze_offset", V::L(i64::from(d))),
                ("event_date", date.clone()),
            ]);
        }
    }
    vec![
        prices,
        hours,
        daily_candles,
        metrics,
        dominance,
        alerts,
        quality,
    ]
}

/// Writes every table of `tables` to `lake`.
pub async fn write_all(lake: &Lake, tables: &[Table]) {
    for table in tables {
        table.write(lake).await;
    }
}

/// The fact loaded from each source table, and a measure to sum.
pub fn fact_of(source: &str) -> (&'static str, &'static str) {
    match source {
        "silver/prices" => ("fact_price_snapshot", "price"),
        "gold/candles_1h" => ("fact_candle_hour", "close"),
        "gold/candles_1d" => ("fact_candle_day", "polls"),
        "gold/daily_metrics" => ("fact_daily_metrics", "close"),
        "gold/dominance" => ("fact_dominance", "share"),
        "silver/alerts" => ("fact_alert", "observed"),
        "gold/data_quality" => ("fact_data_quality", "polls_received"),
        other => panic!("no fact for {other}"),
    }
}

/// Count of a fact's rows on the days `[first, end)` and the sum of `measure` over them.
pub async fn fact_count_and_sum(
    client: &Client,
    fact: &str,
    measure: &str,
    first: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (i64, f64) {
    let key =
        |t: DateTime<Utc>| -> i32 { t.format("%Y%m%d").to_string().parse().expect("a date key") };
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum({measure}::double precision), 0) FROM {fact} \
                 WHERE date_key >= $1 AND date_key < $2"
            ),
            &[&key(first), &key(end)],
        )
        .await
        .expect("count and sum a fact");
    (row.get(0), row.get(1))
}
