//! Reading one data interval of a fact's Delta source with DataFusion SQL: the rows whose time
//! column lies in the interval widened to the fact's grain, with the fact's columns only (and
//! the partition column bounded too, so files of other days are pruned).

use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::SendableRecordBatchStream;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::DeltaTableError;
use lake::storage::Lake;
use lake::LakeError;

use crate::facts::{Fact, Kind};
use crate::interval::Interval;

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The lake could not open the table.
    #[error("opening lake table {table}")]
    Open {
        /// The Delta table.
        table: &'static str,
        /// The lake's error.
        #[source]
        source: LakeError,
    },
    /// The table could not be prepared for DataFusion.
    #[error("preparing lake table {table} for SQL")]
    Prepare {
        /// The Delta table.
        table: &'static str,
        /// Delta's error.
        #[source]
        source: DeltaTableError,
    },
    /// The query failed (a missing column is reported here).
    #[error("querying lake table {table}")]
    Query {
        /// The Delta table.
        table: &'static str,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
}

/// The name the source is registered under in its DataFusion session.
const SOURCE: &str = "source";

/// The SQL that selects `fact`'s columns for `interval` (already widened to the fact's grain).
pub fn select_sql(fact: &Fact, interval: Interval) -> String {
    let columns: Vec<String> = fact
        .columns
        .iter()
        .map(|c| format!("\"{}\" AS \"{}\"", c.source, c.name))
        .collect();
    let (first_day, end_day) = interval.days();
    let time_source = fact
        .columns
        .iter()
        .find(|c| c.name == fact.time)
        .map_or(fact.time, |c| c.source);
    let mut filter = match fact.time_kind() {
        Kind::Date => format!(
            "\"{time_source}\" >= DATE '{first_day}' AND \"{time_source}\" < DATE '{end_day}'"
        ),
        _ => format!(
            "\"{time_source}\" >= TIMESTAMP '{}' AND \"{time_source}\" < TIMESTAMP '{}'",
            interval.start().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            interval.end().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        ),
    };
    if let Some(partition) = fact.partition_date {
        filter.push_str(&format!(
            " AND \"{partition}\" >= DATE '{first_day}' AND \"{partition}\" < DATE '{end_day}'"
        ));
    }
    format!(
        "SELECT {} FROM \"{SOURCE}\" WHERE {filter}",
        columns.join(", ")
    )
}

/// The rows of `fact`'s source in `interval` widened to the fact's grain, as a stream of Arrow
/// batches; `None` when the source table does not exist (yet).
pub async fn read_interval(
    lake: &Lake,
    fact: &Fact,
    interval: Interval,
) -> Result<Option<SendableRecordBatchStream>, SourceError> {
    let table = fact.source;
    let Some(delta) = lake
        .open(table)
        .await
        .map_err(|source| SourceError::Open { table, source })?
    else {
        return Ok(None);
    };
    let query = |source| SourceError::Query { table, source };
    let ctx = SessionContext::new();
    delta
        .update_datafusion_session(&ctx.state())
        .map_err(|source| SourceError::Prepare { table, source })?;
    let provider = delta.table_provider().await.map_err(query)?;
    ctx.register_table(SOURCE, provider).map_err(query)?;
    let sql = select_sql(fact, interval.widened(fact.grain));
    tracing::debug!(%table, %sql, "reading");
    let frame = ctx.sql(&sql).await.map_err(query)?;
    Ok(Some(frame.execute_stream().await.map_err(query)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FACTS;

    fn fact(table: &str) -> &'static Fact {
        FACTS
            .iter()
            .find(|f| f.table == table)
            .unwrap_or_else(|| panic!("no fact {table}"))
    }

    #[test]
    fn timestamps_bound_the_time_column_and_days_bound_the_partition(
    ) -> Result<(), crate::interval::IntervalError> {
        let interval = Interval::parse("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")?;
        let sql = select_sql(fact("fact_candle_hour"), interval);
        assert!(sql.contains("\"bucket_start\" >= TIMESTAMP '2026-01-01T10:00:00.000000Z'"));
        assert!(sql.contains("\"bucket_start\" < TIMESTAMP '2026-01-01T11:00:00.000000Z'"));
        assert!(sql.contains(
            "\"bucket_date\" >= DATE '2026-01-01' AND \"bucket_date\" < DATE '2026-01-02'"
        ));
        let alerts = select_sql(fact("fact_alert"), interval);
        assert!(alerts.contains("\"window\" AS \"alert_window\""));
        Ok(())
    }

    #[test]
    fn date_facts_bound_whole_days() -> Result<(), crate::interval::IntervalError> {
        let interval = Interval::parse("2026-01-01T10:00:00Z", "2026-01-03T00:00:00Z")?;
        let sql = select_sql(
            fact("fact_daily_metrics"),
            interval.widened(crate::interval::Grain::Day),
        );
        assert!(
            sql.ends_with("WHERE \"date\" >= DATE '2026-01-01' AND \"date\" < DATE '2026-01-03'")
        );
        Ok(())
    }
}
