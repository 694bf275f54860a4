//! The idempotent load of one data interval: apply pending migrations, then in ONE transaction
//! stage every fact's source rows for the interval (binary COPY), add the days and coins they
//! name to the dimensions, and replace each fact's interval (delete, then insert from staging).
//!
//! Invariants: after a load of `[start, end)`, each fact's rows in that interval (widened to the
//! fact's grain) are exactly its source's rows there, so loading twice changes nothing and a
//! re-load after a Silver/Gold re-run replaces the interval; rows outside it are untouched; a
//! failure leaves the warehouse as it was. A fact whose source table does not exist yet is left
//! untouched (and reported); when no source exists at all the load fails, since the lake is
//! probably not the right one. Concurrent loads serialise on an advisory lock.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use lake::storage::Lake;
use tokio_postgres::{Client, Transaction};

use crate::connection::{ConnectionError, WarehouseTarget};
use crate::facts::{Fact, Kind, FACTS};
use crate::interval::Interval;
use crate::migrations::{self, MigrationError, MigrationReport};
use crate::source::{self, SourceError};
use crate::staging::{self, StagingError};

/// The advisory-lock key every load takes (ASCII "wareload").
const LOAD_LOCK: i64 = 0x7761_7265_6c6f_6164;

/// Why a load failed; the warehouse is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The warehouse could not be reached.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migration(#[from] MigrationError),
    /// A source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A source could not be staged.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// A statement of the load failed.
    #[error("load {interval}: {context}")]
    Postgres {
        /// The interval being loaded.
        interval: Interval,
        /// What was being done.
        context: String,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Not one source table exists under the lake root.
    #[error("no source table of the warehouse exists in the lake at {lake}: nothing to load (is the lake URL right?)")]
    NoSources {
        /// The lake's root URL.
        lake: String,
    },
}

/// What happened to one fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The source table does not exist; the fact was left as it was.
    SourceMissing,
    /// The fact's interval was replaced.
    Replaced {
        /// The interval replaced (the load's, widened to the fact's grain).
        interval: Interval,
        /// Rows read from the source.
        staged: u64,
        /// Rows of the interval deleted from the fact.
        deleted: u64,
        /// Rows inserted (as many as staged).
        inserted: u64,
    },
}

/// One fact's part of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactLoad {
    /// The fact table.
    pub table: &'static str,
    /// Its Delta source.
    pub source: &'static str,
    /// What happened.
    pub outcome: Outcome,
}

/// What a load did, per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The interval loaded.
    pub interval: Interval,
    /// The migrations applied first.
    pub migrations: MigrationReport,
    /// Days added to `dim_date`.
    pub dates_added: u64,
    /// Coins added to `dim_coin`.
    pub coins_added: u64,
    /// Every fact, in load order.
    pub facts: Vec<FactLoad>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "load {}", self.interval)?;
        writeln!(
            f,
            "  dim_date: {} added; dim_coin: {} added",
            self.dates_added, self.coins_added
        )?;
        for fact in &self.facts {
            match &fact.outcome {
                Outcome::SourceMissing => writeln!(
                    f,
                    "  {}: skipped, {} does not exist",
                    fact.table, fact.source
                )?,
                Outcome::Replaced {
                    interval,
                    staged,
                    deleted,
                    inserted,
                } => writeln!(
                    f,
                    "  {}: {inserted} rows for {interval} ({staged} read from {}, {deleted} replaced)",
                    fact.table, fact.source
                )?,
            }
        }
        Ok(())
    }
}

/// Connects to `target` and loads `interval` from `lake` (see the module's invariants).
pub async fn load(
    lake: &Lake,
    target: &WarehouseTarget,
    interval: Interval,
) -> Result<LoadReport, LoadError> {
    let mut client = target.connect().await?;
    load_with(&mut client, lake, interval).await
}

/// Loads `interval` from `lake` over an open connection.
pub async fn load_with(
    client: &mut Client,
    lake: &Lake,
    interval: Interval,
) -> Result<LoadReport, LoadError> {
    let migrations = migrations::migrate(client).await?;
    let pg = |context: &str| {
        let context = context.to_owned();
        move |source: tokio_postgres::Error| LoadError::Postgres {
            interval,
            context,
            source,
        }
    };
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin the transaction"))?;
    tx.batch_execute("SET LOCAL TIME ZONE 'UTC'")
        .await
        .map_err(pg("set the time zone"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOAD_LOCK])
        .await
        .map_err(pg("take the load lock"))?;

    let mut staged = Vec::new();
    let mut facts = Vec::new();
    for fact in FACTS {
        match source::read_interval(lake, fact, interval).await? {
            None => {
                tracing::warn!(
                    table = fact.table,
                    source = fact.source,
                    "source table does not exist; fact left as it is"
                );
                facts.push(FactLoad {
                    table: fact.table,
                    source: fact.source,
                    outcome: Outcome::SourceMissing,
                });
            }
            Some(stream) => {
                staging::create(&tx, fact).await?;
                staged.push((fact, staging::copy(&tx, fact, stream).await?));
            }
        }
    }
    if staged.is_empty() {
        return Err(LoadError::NoSources {
            lake: lake.root().to_string(),
        });
    }

    let (first_day, end_day) = interval.days();
    let dates_added = tx
        .execute(DIM_DATE_UPSERT, &[&first_day, &end_day])
        .await
        .map_err(pg("add days to dim_date"))?;
    let loaded: Vec<&Fact> = staged.iter().map(|(fact, _)| *fact).collect();
    let count_coins = "SELECT count(*) FROM dim_coin";
    let coins_before: i64 = tx
        .query_one(count_coins, &[])
        .await
        .map_err(pg("count dim_coin"))?
        .get(0);
    tx.execute(&dim_coin_upsert(&loaded), &[])
        .await
        .map_err(pg("add coins to dim_coin"))?;
    let coins_after: i64 = tx
        .query_one(count_coins, &[])
        .await
        .map_err(pg("count dim_coin"))?
        .get(0);
    let coins_added = u64::try_from(coins_after - coins_before).unwrap_or(0);

    let mut replaced = Vec::new();
    for (fact, rows) in staged {
        let (deleted, inserted, fact_interval) = replace(&tx, fact, interval).await?;
        tracing::info!(table = fact.table, interval = %fact_interval, staged = rows, deleted, inserted, "fact replaced");
        replaced.push(FactLoad {
            table: fact.table,
            source: fact.source,
            outcome: Outcome::Replaced {
                interval: fact_interval,
                staged: rows,
                deleted,
                inserted,
            },
        });
    }
    tx.commit().await.map_err(pg("commit"))?;
    facts.extend(replaced);
    facts.sort_by_key(|f| FACTS.iter().position(|fact| fact.table == f.table));
    Ok(LoadReport {
        interval,
        migrations,
        dates_added,
        coins_added,
        facts,
    })
}

/// Deletes `fact`'s rows of `interval` (widened to its grain) and inserts the staged ones.
async fn replace(
    tx: &Transaction<'_>,
    fact: &Fact,
    interval: Interval,
) -> Result<(u64, u64, Interval), LoadError> {
    let widened = interval.widened(fact.grain);
    let pg = |context: String| {
        move |source: tokio_postgres::Error| LoadError::Postgres {
            interval,
            context,
            source,
        }
    };
    let deleted = match fact.time_kind() {
        Kind::Date => {
            let (first, end) = widened.days();
            tx.execute(
                &format!(
                    "DELETE FROM {} WHERE date_key >= $1 AND date_key < $2",
                    fact.table
                ),
                &[&date_key(first), &date_key(end)],
            )
            .await
        }
        _ => {
            tx.execute(
                &format!(
                    "DELETE FROM {} WHERE \"{}\" >= $1 AND \"{}\" < $2",
                    fact.table, fact.time, fact.time
                ),
                &[&widened.start(), &widened.end()],
            )
            .await
        }
    }
    .map_err(pg(format!("delete the interval of {}", fact.table)))?;
    let inserted = tx
        .execute(&insert_sql(fact), &[])
        .await
        .map_err(pg(format!("insert into {}", fact.table)))?;
    Ok((deleted, inserted, widened))
}

/// `yyyymmdd`, the key of `dim_date`.
pub fn date_key(date: NaiveDate) -> i32 {
    date.year() * 10_000 + i32::try_from(date.month() * 100 + date.day()).unwrap_or(0)
}

/// Adds every day of `[$1, $2)` to `dim_date`.
const DIM_DATE_UPSERT: &str = "
INSERT INTO dim_date (date_key, date, year, quarter, month, day, iso_year, iso_week, iso_weekday, is_weekend)
SELECT to_char(d, 'YYYYMMDD')::integer, d,
       extract(year FROM d), extract(quarter FROM d), extract(month FROM d), extract(day FROM d),
       extract(isoyear FROM d), extract(week FROM d), extract(isodow FROM d), extract(isodow FROM d) >= 6
FROM (SELECT generate_series($1::date::timestamp, ($2::date - 1)::timestamp, interval '1 day')::date AS d) days
ON CONFLICT (date_key) DO NOTHING";

/// The expression of a staged row's time as `timestamptz` (a date is its midnight, UTC).
fn seen(fact: &Fact) -> String {
    match fact.time_kind() {
        Kind::Date => format!("(s.\"{}\"::timestamp AT TIME ZONE 'UTC')", fact.time),
        _ => format!("s.\"{}\"", fact.time),
    }
}

/// Adds the coins of every staged fact to `dim_coin` and widens first/last seen; the symbol is
/// the latest snapshot's unless an earlier interval is being (re)loaded.
fn dim_coin_upsert(facts: &[&Fact]) -> String {
    let parts: Vec<String> = facts
        .iter()
        .map(|fact| {
            let symbol = fact
                .symbol
                .map_or_else(|| "NULL::text".to_owned(), |s| format!("s.\"{s}\""));
            format!(
                "SELECT s.coin_id, {symbol} AS symbol, {} AS seen FROM {} s",
                seen(fact),
                staging::staging_table(fact)
            )
        })
        .collect();
    format!(
        "INSERT INTO dim_coin (coin_id, symbol, first_seen, last_seen)
         SELECT coin_id,
                (array_agg(symbol ORDER BY seen DESC, symbol) FILTER (WHERE symbol IS NOT NULL))[1],
                min(seen), max(seen)
         FROM ({}) coins
         WHERE coin_id IS NOT NULL AND seen IS NOT NULL
         GROUP BY coin_id
         ON CONFLICT (coin_id) DO UPDATE SET
             symbol = CASE WHEN EXCLUDED.symbol IS NOT NULL
                            AND (dim_coin.symbol IS NULL OR EXCLUDED.last_seen >= dim_coin.last_seen)
                           THEN EXCLUDED.symbol ELSE dim_coin.symbol END,
             first_seen = LEAST(dim_coin.first_seen, EXCLUDED.first_seen),
             last_seen = GREATEST(dim_coin.last_seen, EXCLUDED.last_seen)",
        parts.join(" UNION ALL ")
    )
}

/// Inserts the staged rows of `fact` with their surrogate and date keys. A LEFT JOIN, so a row
/// without a coin fails the load on `coin_key NOT NULL` instead of vanishing.
fn insert_sql(fact: &Fact) -> String {
    let columns: Vec<String> = fact
        .fact_columns()
        .map(|c| format!("\"{}\"", c.name))
        .collect();
    let values: Vec<String> = fact
        .fact_columns()
        .map(|c| format!("s.\"{}\"", c.name))
        .collect();
    format!(
        "INSERT INTO {table} (coin_key, date_key, {columns})
         SELECT c.coin_key, to_char(s.\"{time}\", 'YYYYMMDD')::integer, {values}
         FROM {stage} s LEFT JOIN dim_coin c ON c.coin_id = s.coin_id",
        table = fact.table,
        columns = columns.join(", "),
        time = fact.time,
        values = values.join(", "),
        stage = staging::staging_table(fact),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_keys_are_yyyymmdd() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9);
        assert_eq!(day.map(date_key), Some(20_260_309));
    }
}
