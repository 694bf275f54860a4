//! Helpers for tests that need a warehouse: a fresh database per test on the PostgreSQL of
//! `scripts/postgres` (from `WAREHOUSE_URL`), and the count and sum of a fact over some days,
//! to compare with the lake table it was loaded from.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::connection::WarehouseTarget;

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
