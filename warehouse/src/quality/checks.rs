//! The checks themselves: pure functions from [`Facts`] and [`Rules`] to one result per check
//! and subject.

use super::facts::{Facts, HourFacts, Subject};
use super::rules::{CheckName, Rules, Severity};
use super::{CheckResult, Status};

/// Judges every subject of `facts` with every check.
pub fn evaluate(facts: &Facts, rules: &Rules) -> Vec<CheckResult> {
    let mut results = Vec::with_capacity(facts.len() * CheckName::ALL.len());
    for check in CheckName::ALL {
        let rule = rules.rule(check);
        for (subject, hour) in facts {
            let (observed, breached, detail) = measure(check, rule.threshold, subject, hour);
            let status = match (breached, rule.severity) {
                (false, _) => Status::Pass,
                (true, Severity::Warn) => Status::Warn,
                (true, Severity::Fail) => Status::Fail,
            };
            results.push(CheckResult {
                check,
                subject: subject.clone(),
                status,
                observed,
                threshold: rule.threshold,
                message: format!("{}: {} {detail}", check.as_str(), subject.label()),
            });
        }
    }
    results
}

/// The observed value, whether it breaks the threshold, and the message's detail.
fn measure(
    check: CheckName,
    threshold: f64,
    subject: &Subject,
    hour: &HourFacts,
) -> (f64, bool, String) {
    let over = |count: i64, what: &str| {
        let breached = count as f64 > threshold;
        (
            count as f64,
            breached,
            format!("{count} {what} (allowed ≤ {threshold})"),
        )
    };
    match check {
        CheckName::Completeness => {
            let received = hour.polls_received.unwrap_or(0);
            let expected = hour.polls_expected.unwrap_or(super::rules::POLLS_PER_HOUR);
            let detail = format!("received {received} of {expected} polls (KPI ≥ {threshold})");
            (received as f64, (received as f64) < threshold, detail)
        }
        CheckName::Freshness => {
            let hour_end = (subject.hour + 1) * 3600;
            match hour.silver_newest_second {
                Some(newest) => {
                    let age = hour_end - newest;
                    let detail =
                        format!("newest price {age} s before the hour's end (KPI ≤ {threshold} s)");
                    (age as f64, age as f64 > threshold, detail)
                }
                None => (
                    3600.0,
                    true,
                    format!("no price in the hour (KPI ≤ {threshold} s)"),
                ),
            }
        }
        CheckName::UniquenessSilver => over(
            hour.silver_rows - hour.silver_distinct,
            "repeated (coin_id, vs_currency, ts_event) in silver/prices",
        ),
        CheckName::UniquenessWarehouse => over(
            hour.warehouse_rows - hour.warehouse_distinct,
            "repeated (coin, vs_currency, ts_event) in fact_price_snapshot",
        ),
        CheckName::PricePositive => over(hour.silver_bad_prices, "Silver prices not > 0"),
        CheckName::CandleBounds => over(
            hour.bad_candles,
            "hourly candles breaking low ≤ open, close ≤ high",
        ),
        CheckName::Reconciliation => {
            let worst = (hour.bronze_events - hour.silver_rows)
                .abs()
                .max((hour.silver_rows - hour.warehouse_rows).abs());
            let detail = format!(
                "Bronze {} events, Silver {} rows, warehouse {} rows (allowed difference ≤ {threshold})",
                hour.bronze_events, hour.silver_rows, hour.warehouse_rows
            );
            (worst as f64, worst as f64 > threshold, detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::rules::CheckRule;

    /// 2026-01-01T04:00Z.
    const HOUR: i64 = 1_767_225_600 / 3600 + 4;

    fn subject() -> Subject {
        Subject {
            coin_id: "bitcoin".to_owned(),
            vs_currency: "usd".to_owned(),
            hour: HOUR,
        }
    }

    fn healthy() -> HourFacts {
        HourFacts {
            polls_expected: Some(12),
            polls_received: Some(12),
            silver_rows: 12,
            silver_distinct: 12,
            silver_bad_prices: 0,
            silver_newest_second: Some((HOUR + 1) * 3600 - 30),
            bad_candles: 0,
            bronze_events: 12,
            warehouse_rows: 12,
            warehouse_distinct: 12,
        }
    }

    fn judge(hour: HourFacts, rules: &Rules) -> Vec<CheckResult> {
        evaluate(&Facts::from([(subject(), hour)]), rules)
    }

    fn result(results: &[CheckResult], check: CheckName) -> &CheckResult {
        results
            .iter()
            .find(|r| r.check == check)
            .expect("every check reports")
    }

    #[test]
    fn a_healthy_hour_passes_every_check() {
        let results = judge(healthy(), &Rules::default());
        assert_eq!(results.len(), CheckName::ALL.len());
        assert!(
            results.iter().all(|r| r.status == Status::Pass),
            "{results:#?}"
        );
    }

    #[test]
    fn a_gap_of_polls_fails_completeness_naming_coin_hour_and_kpi() {
        let results = judge(
            HourFacts {
                polls_received: Some(7),
                ..healthy()
            },
            &Rules::default(),
        );
        let completeness = result(&results, CheckName::Completeness);
        assert_eq!(completeness.status, Status::Fail);
        assert_eq!(
            completeness.message,
            "completeness: bitcoin 2026-01-01T04:00Z received 7 of 12 polls (KPI ≥ 11)"
        );
        assert_eq!((completeness.observed, completeness.threshold), (7.0, 11.0));
    }

    #[test]
    fn a_warn_rule_records_the_breach_without_failing() {
        let mut rules = Rules::default();
        rules.checks.insert(
            CheckName::Freshness,
            CheckRule {
                severity: Severity::Warn,
                threshold: 600.0,
            },
        );
        let stale = HourFacts {
            silver_newest_second: Some(HOUR * 3600 + 1200),
            ..healthy()
        };
        let results = judge(stale, &rules);
        let freshness = result(&results, CheckName::Freshness);
        assert_eq!(freshness.status, Status::Warn);
        assert_eq!(freshness.observed, 2400.0);
    }

    #[test]
    fn an_hour_without_data_fails_completeness_freshness_but_reconciles() {
        let results = judge(HourFacts::default(), &Rules::default());
        assert_eq!(
            result(&results, CheckName::Completeness).status,
            Status::Fail
        );
        assert_eq!(result(&results, CheckName::Freshness).status, Status::Fail);
        assert_eq!(
            result(&results, CheckName::Reconciliation).status,
            Status::Pass
        );
    }

    #[test]
    fn duplicates_bad_prices_bad_candles_and_lost_rows_fail() {
        let broken = HourFacts {
            silver_rows: 13,
            silver_bad_prices: 1,
            bad_candles: 1,
            warehouse_rows: 12,
            warehouse_distinct: 11,
            ..healthy()
        };
        let results = judge(broken, &Rules::default());
        for check in [
            CheckName::UniquenessSilver,
            CheckName::UniquenessWarehouse,
            CheckName::PricePositive,
            CheckName::CandleBounds,
            CheckName::Reconciliation,
        ] {
            assert_eq!(
                result(&results, check).status,
                Status::Fail,
                "{}",
                check.as_str()
            );
        }
        assert_eq!(
            result(&results, CheckName::Completeness).status,
            Status::Pass
        );
    }
}
