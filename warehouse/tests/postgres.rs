//! The warehouse on a real PostgreSQL (`scripts/postgres`; `WAREHOUSE_URL`), each test in a fresh
//! database, loading Delta fixtures of Silver/Gold from a temporary lake folder.

mod common;

use common::{day, dump, dump_all, fact_count_and_sum, fact_of, fixture, write_all, TestDb, V};
use lake::storage::Lake;
use warehouse::interval::Interval;
use warehouse::load::{self, LoadError, Outcome};
use warehouse::migrations::{self, MigrationError, MIGRATIONS};

fn lake_in(dir: &tempfile::TempDir) -> Lake {
    Lake::parse(&dir.path().display().to_string()).expect("a lake folder")
}

fn days(first: u32, end: u32) -> Interval {
    Interval::new(day(first), day(end)).expect("an interval")
}

#[tokio::test]
async fn migrations_apply_once_are_recorded_and_guard_their_checksums() {
    let db = TestDb::create("migrate").await;
    let mut client = db.client().await;
    let mut other = db.client().await;
    // Two migrators at once: each migration is applied by exactly one of them.
    let (first, second) = tokio::join!(
        migrations::migrate(&mut client),
        migrations::migrate(&mut other)
    );
    let (first, second) = (first.expect("migrate"), second.expect("migrate"));
    assert_eq!(first.applied.len() + second.applied.len(), MIGRATIONS.len());
    assert_eq!(
        first.up_to_date + second.up_to_date,
        MIGRATIONS.len(),
        "{first:?} {second:?}"
    );

    let again = migrations::migrate(&mut client).await.expect("migrate");
    assert!(again.applied.is_empty());
    assert_eq!(again.up_to_date, MIGRATIONS.len());
    let recorded = client
        .query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read schema_migrations");
    assert_eq!(recorded.len(), MIGRATIONS.len());
    for (row, migration) in recorded.iter().zip(MIGRATIONS) {
        assert_eq!(row.get::<_, i32>(0), migration.version);
        assert_eq!(row.get::<_, String>(1), migration.name);
        assert_eq!(row.get::<_, String>(2), migration.checksum());
    }
    for table in common::TABLES {
        let comment: Option<String> = client
            .query_one(&format!("SELECT obj_description('{table}'::regclass)"), &[])
            .await
            .expect("the table exists")
            .get(0);
        assert!(
            comment.is_some_and(|c| c.starts_with("Grain:")),
            "{table} states its grain"
        );
    }

    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1",
            &[],
        )
        .await
        .expect("tamper");
    let changed = migrations::migrate(&mut client).await;
    assert!(
        matches!(changed, Err(MigrationError::Changed { version: 1, .. })),
        "{changed:?}"
    );
    client
        .execute(
            "UPDATE schema_migrations SET checksum = $1 WHERE version = 1",
            &[&MIGRATIONS[0].checksum()],
        )
        .await
        .expect("restore");
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')",
            &[],
        )
        .await
        .expect("a newer build's migration");
    let unknown = migrations::migrate(&mut client).await;
    assert!(
        matches!(unknown, Err(MigrationError::Unknown { version: 99, .. })),
        "{unknown:?}"
    );
    drop((client, other));
    db.drop().await;
}

#[tokio::test]
async fn a_load_makes_the_facts_equal_to_the_interval_of_their_sources() {
    let db = TestDb::create("equal").await;
    let dir = tempfile::tempdir().expect("a temp folder");
    let lake = lake_in(&dir);
    let tables = fixture(2);
    write_all(&lake, &tables).await;

    let report = load::load(&lake, &db.target, days(1, 2))
        .await
        .expect("load day 1");
    assert_eq!(report.migrations.applied.len(), MIGRATIONS.len());
    assert_eq!(report.dates_added, 1);
    assert_eq!(report.coins_added, 2);
    assert!(
        report
            .facts
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Replaced { .. })),
        "{report}"
    );

    let client = db.client().await;
    for table in &tables {
        let (fact, measure) = fact_of(table.name);
        let (count, sum) = table.count_and_sum(measure, day(1), day(2));
        let actual = fact_count_and_sum(&client, fact, measure, day(1), day(3)).await;
        assert_eq!(
            actual,
            (count, sum),
            "{fact} equals {} on day 1",
            table.name
        );
        assert!(count > 0, "{fact} has rows");
    }
    let coins = dump(&client, "dim_coin").await;
    assert_eq!(coins.len(), 2);
    assert!(coins[0].contains("\"symbol\": \"btc\""), "{coins:?}");
    let date = client
        .query_one(
            "SELECT date_key, year, quarter, month, day, iso_year, iso_week, iso_weekday, is_weekend FROM dim_date",
            &[],
        )
        .await
        .expect("one day");
    // 2026-01-01 is a Thursday of ISO week 1 of 2026.
    assert_eq!(date.get::<_, i32>(0), 20_260_101);
    let parts: Vec<i16> = (1..8).map(|i| date.get(i)).collect();
    assert_eq!(parts, vec![2026, 1, 1, 1, 2026, 1, 4]);
    assert!(!date.get::<_, bool>(8));
    let nulls: i64 = client
        .query_one(
            "SELECT count(*) FROM fact_daily_metrics WHERE simple_return IS NULL",
            &[],
        )
        .await
        .expect("count nulls")
        .get(0);
    assert_eq!(nulls, 2, "the first day's returns stay undefined");
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn loading_twice_gives_identical_tables() {
    let db = TestDb::create("twice").await;
    let dir = tempfile::tempdir().expect("a temp folder");
    let lake = lake_in(&dir);
    write_all(&lake, &fixture(2)).await;
    let interval =
        Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z").expect("interval");

    load::load(&lake, &db.target, interval)
        .await
        .expect("first load");
    let client = db.client().await;
    let first = dump_all(&client).await;
    let again = load::load(&lake, &db.target, interval)
        .await
        .expect("second load");
    assert_eq!(dump_all(&client).await, first);
    assert_eq!((again.dates_added, again.coins_added), (0, 0));
    for fact in &again.facts {
        let Outcome::Replaced {
            deleted, inserted, ..
        } = fact.outcome
        else {
            panic!("{} not loaded", fact.table);
        };
        assert_eq!(deleted, inserted, "{} replaced its own rows", fact.table);
    }
    // Half of day 2 for the event and hour facts, the whole of day 2 for the day facts.
    let hours: i64 = client
        .query_one("SELECT count(*) FROM fact_candle_hour", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(hours, 2 * 36);
    let candle_days: i64 = client
        .query_one("SELECT count(*) FROM fact_candle_day", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(candle_days, 2 * 2);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn a_reload_after_a_gold_change_replaces_the_interval_and_leaves_the_others() {
    let db = TestDb::create("reload").await;
    let dir = tempfile::tempdir().expect("a temp folder");
    let lake = lake_in(&dir);
    let mut tables = fixture(3);
    write_all(&lake, &tables).await;
    load::load(&lake, &db.target, days(1, 2))
        .await
        .expect("load day 1");
    load::load(&lake, &db.target, days(2, 3))
        .await
        .expect("load day 2");
    let client = db.client().await;
    let day_one = |client| fact_count_and_sum(client, "fact_candle_hour", "close", day(1), day(2));
    let before_day_one = day_one(&client).await;
    assert_eq!(before_day_one.0, 48);

    // Gold re-run for day 2: ethereum's candles gone, bitcoin's closes doubled.
    let hours = tables
        .iter_mut()
        .find(|t| t.name == "gold/candles_1h")
        .expect("hourly candles");
    let (coin, close, start) = (
        hours.index_of("coin_id"),
        hours.index_of("close"),
        hours.index_of("bucket_start"),
    );
    hours.rows.retain(|row| {
        let on_day_two = (day(2)..day(3)).contains(&row[start].instant());
        !(on_day_two && row[coin] == V::S("ethereum".to_owned()))
    });
    for row in &mut hours.rows {
        if (day(2)..day(3)).contains(&row[start].instant()) {
            row[close] = V::D(row[close].number() * 2.0);
        }
    }
    hours.write(&lake).await;
    let expected = hours.count_and_sum("close", day(2), day(3));

    let report = load::load(&lake, &db.target, days(2, 3))
        .await
        .expect("reload day 2");
    let candles = report
        .facts
        .iter()
        .find(|f| f.table == "fact_candle_hour")
        .expect("candles in the report");
    assert!(
        matches!(
            candles.outcome,
            Outcome::Replaced {
                staged: 24,
                deleted: 48,
                inserted: 24,
                ..
            }
        ),
        "{report}"
    );
    assert_eq!(
        fact_count_and_sum(&client, "fact_candle_hour", "close", day(2), day(3)).await,
        expected
    );
    assert_eq!(day_one(&client).await, before_day_one, "day 1 untouched");
    let never_loaded =
        fact_count_and_sum(&client, "fact_candle_hour", "close", day(3), day(4)).await;
    assert_eq!(never_loaded.0, 0, "day 3 was never loaded");
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn missing_sources_are_left_alone_and_a_lake_without_any_is_an_error() {
    let db = TestDb::create("missing").await;
    let dir = tempfile::tempdir().expect("a temp folder");
    let lake = lake_in(&dir);
    let empty = load::load(&lake, &db.target, days(1, 2)).await;
    assert!(
        matches!(empty, Err(LoadError::NoSources { .. })),
        "{empty:?}"
    );

    let tables = fixture(1);
    let candles: Vec<_> = tables
        .iter()
        .filter(|t| t.name == "gold/candles_1h")
        .cloned()
        .collect();
    write_all(&lake, &candles).await;
    let report = load::load(&lake, &db.target, days(1, 2))
        .await
        .expect("load");
    for fact in &report.facts {
        let missing = fact.outcome == Outcome::SourceMissing;
        assert_eq!(missing, fact.table != "fact_candle_hour", "{report}");
    }
    let client = db.client().await;
    let (count, _) = fact_count_and_sum(&client, "fact_candle_hour", "close", day(1), day(2)).await;
    assert_eq!(count, 48);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn a_repeated_key_in_gold_fails_the_load_and_changes_nothing() {
    let db = TestDb::create("repeat").await;
    let dir = tempfile::tempdir().expect("a temp folder");
    let lake = lake_in(&dir);
    let mut tables = fixture(1);
    write_all(&lake, &tables).await;
    load::load(&lake, &db.target, days(1, 2))
        .await
        .expect("load day 1");
    let client = db.client().await;
    let before = dump_all(&client).await;

    // A Gold bug: one hourly candle twice, and the day's prices changed.
    let prices = tables
        .iter_mut()
        .find(|t| t.name == "silver/prices")
        .expect("prices");
    let price = prices.index_of("price");
    for row in &mut prices.rows {
        row[price] = V::D(row[price].number() + 1.0);
    }
    prices.write(&lake).await;
    let hours = tables
        .iter_mut()
        .find(|t| t.name == "gold/candles_1h")
        .expect("hourly candles");
    let repeated = hours.rows[0].clone();
    hours.rows.push(repeated);
    hours.write(&lake).await;

    let failed = load::load(&lake, &db.target, days(1, 2)).await;
    let message = failed.as_ref().map_err(|e| error_chain(e));
    assert!(
        matches!(message, Err(ref m) if m.contains("fact_candle_hour")),
        "{message:?}"
    );
    assert_eq!(
        dump_all(&client).await,
        before,
        "the failed load changed nothing"
    );
    drop(client);
    db.drop().await;
}

/// The error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
