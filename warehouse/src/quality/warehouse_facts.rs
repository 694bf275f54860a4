//! The warehouse's side of the checks: fact_price_snapshot rows per coin and hour.

use lake::job::interval::Interval;
use tokio_postgres::Client;

use super::facts::{Facts, Subject};
use super::QualityError;

/// Adds the warehouse's counts for `interval` to `facts`. Hours are counted in UTC whatever
/// the session's time zone: the epoch does not depend on it.
pub async fn read(
    client: &Client,
    interval: &Interval,
    facts: &mut Facts,
) -> Result<(), QualityError> {
    let rows = client
        .query(
            "SELECT c.coin_id, f.vs_currency, floor(extract(epoch FROM f.ts_event) / 3600)::bigint AS hour, \
                    count(*) AS row_count, count(DISTINCT f.ts_event) AS distinct_events \
             FROM fact_price_snapshot f JOIN dim_coin c USING (coin_key) \
             WHERE f.ts_event >= $1 AND f.ts_event < $2 \
             GROUP BY 1, 2, 3",
            &[&interval.start(), &interval.end()],
        )
        .await
        .map_err(|source| QualityError::Warehouse {
            what: "counting fact_price_snapshot",
            source,
        })?;
    for row in rows {
        let subject = Subject {
            coin_id: row.get(0),
            vs_currency: row.get(1),
            hour: row.get(2),
        };
        let hour = facts.entry(subject).or_default();
        hour.warehouse_rows = row.get(3);
        hour.warehouse_distinct = row.get(4);
    }
    Ok(())
}
