//! Where results go: the warehouse's `dq_check_result` table (migration 0003), one row per check
//! and subject. Recording an interval again replaces its rows, in one transaction.

use lake::job::interval::Interval;
use tokio_postgres::Client;

use super::{CheckResult, QualityError};

/// Replaces the results of `interval` with `results`.
pub async fn record(
    client: &mut Client,
    interval: &Interval,
    results: &[CheckResult],
) -> Result<(), QualityError> {
    let (start, end) = (interval.start(), interval.end());
    let failed = |what: &'static str| move |source| QualityError::Warehouse { what, source };
    let transaction = client
        .transaction()
        .await
        .map_err(failed("starting a transaction"))?;
    transaction
        .execute(
            "DELETE FROM dq_check_result WHERE interval_start = $1 AND interval_end = $2",
            &[&start, &end],
        )
        .await
        .map_err(failed("deleting the interval's earlier results"))?;
    let insert = transaction
        .prepare(
            "INSERT INTO dq_check_result (interval_start, interval_end, check_name, coin_id, vs_currency, \
                                          hour_start, status, observed, threshold, message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await
        .map_err(failed("preparing the insert"))?;
    for result in results {
        transaction
            .execute(
                &insert,
                &[
                    &start,
                    &end,
                    &result.check.as_str(),
                    &result.subject.coin_id,
                    &result.subject.vs_currency,
                    &result.subject.hour_start(),
                    &result.status.as_str(),
                    &result.observed,
                    &result.threshold,
                    &result.message,
                ],
            )
            .await
            .map_err(failed("inserting a result"))?;
    }
    transaction
        .commit()
        .await
        .map_err(failed("committing the results"))
}
