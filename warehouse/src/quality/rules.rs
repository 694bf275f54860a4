//! Which checks fail a run and which only warn, and their thresholds: a small JSON file, with
//! the defaults of `default_rules.json` built in.
//!
//! ```
//! use warehouse::quality::rules::{CheckName, Rules, Severity};
//!
//! let rules = Rules::from_json(r#"{"checks": {"freshness": {"severity": "warn", "threshold": 900}}}"#)?;
//! assert_eq!(rules.rule(CheckName::Freshness).severity, Severity::Warn);
//! assert_eq!(rules.rule(CheckName::Completeness).threshold, 11.0); // the default
//! # Ok::<(), warehouse::quality::QualityError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::QualityError;

/// Polls the producer makes in an hour: one every 5 minutes (docs/DATA_SCOPE.md).
pub const POLLS_PER_HOUR: i64 = 12;

/// The checks `warehouse check` runs, each per coin, quote currency and UTC hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Polls received (gold/data_quality) ≥ threshold: the poll-success KPI of docs/KPI_SLO_SLA.md.
    Completeness,
    /// The hour's newest price is at most threshold seconds older than the hour's end (the
    /// freshness KPI: 10 minutes).
    Freshness,
    /// No repeated (coin_id, vs_currency, ts_event) in silver/prices.
    UniquenessSilver,
    /// No repeated (coin, vs_currency, ts_event) in the warehouse's fact_price_snapshot.
    UniquenessWarehouse,
    /// Every Silver price is > 0.
    PricePositive,
    /// Every hourly candle has `low ≤ open, close ≤ high`.
    CandleBounds,
    /// The distinct price events of Bronze (less the quarantined ones) = Silver rows = warehouse rows.
    Reconciliation,
}

impl CheckName {
    /// Every check, in the order they are reported.
    pub const ALL: [CheckName; 7] = [
        CheckName::Completeness,
        CheckName::Freshness,
        CheckName::UniquenessSilver,
        CheckName::UniquenessWarehouse,
        CheckName::PricePositive,
        CheckName::CandleBounds,
        CheckName::Reconciliation,
    ];

    /// The name in rules files, results and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Completeness => "completeness",
            CheckName::Freshness => "freshness",
            CheckName::UniquenessSilver => "uniqueness_silver",
            CheckName::UniquenessWarehouse => "uniqueness_warehouse",
            CheckName::PricePositive => "price_positive",
            CheckName::CandleBounds => "candle_bounds",
            CheckName::Reconciliation => "reconciliation",
        }
    }

    /// The rule a check has when the rules file does not name it.
    pub fn default_rule(self) -> CheckRule {
        let threshold = match self {
            // The KPI allows one missed poll of the hour's 12 (the brief's "KPI ≥ 11").
            CheckName::Completeness => (POLLS_PER_HOUR - 1) as f64,
            CheckName::Freshness => 600.0,
            _ => 0.0,
        };
        CheckRule {
            severity: Severity::Fail,
            threshold,
        }
    }
}

/// What a breach of a check does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Recorded as `warn`; the run still succeeds.
    Warn,
    /// Recorded as `fail`; `warehouse check` exits non-zero.
    Fail,
}

/// One check's severity and threshold (its unit is the check's: polls, seconds, or rows allowed
/// to break the rule).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRule {
    /// What a breach does.
    pub severity: Severity,
    /// The limit.
    pub threshold: f64,
}

/// The rules of a run: every check's [`CheckRule`] and the coins every hour must have.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Coins expected in every hour even when no data of theirs arrived (quoted in
    /// `vs_currency`). Empty: the coins seen anywhere in the interval.
    #[serde(default)]
    pub coins: Vec<String>,
    /// Quote currency of `coins` (default `usd`).
    #[serde(default)]
    pub vs_currency: Option<String>,
    /// Rules that differ from [`CheckName::default_rule`].
    #[serde(default)]
    pub checks: BTreeMap<CheckName, CheckRule>,
}

impl Rules {
    /// Rules from JSON text (unknown keys are an error, so a typo cannot silently disable a check).
    pub fn from_json(text: &str) -> Result<Rules, QualityError> {
        serde_json::from_str(text).map_err(|source| QualityError::Rules {
            path: None,
            source: Box::new(source),
        })
    }

    /// Rules from a JSON file.
    pub fn from_file(path: &Path) -> Result<Rules, QualityError> {
        let rules_error = |source: Box<dyn std::error::Error + Send + Sync>| QualityError::Rules {
            path: Some(path.to_owned()),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| rules_error(Box::new(e)))?;
        serde_json::from_str(&text).map_err(|e| rules_error(Box::new(e)))
    }

    /// The rule of `check`: the file's, else the default.
    pub fn rule(&self, check: CheckName) -> CheckRule {
        self.checks
            .get(&check)
            .copied()
            .unwrap_or_else(|| check.default_rule())
    }

    /// The quote currency of [`Rules::coins`].
    pub fn vs_currency(&self) -> &str {
        self.vs_currency.as_deref().unwrap_or("usd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_file_spells_out_the_built_in_defaults() {
        let file = Rules::from_json(include_str!("default_rules.json")).expect("valid JSON");
        for check in CheckName::ALL {
            assert_eq!(
                file.checks.get(&check),
                Some(&check.default_rule()),
                "{}",
                check.as_str()
            );
        }
        assert_eq!(file.vs_currency(), Rules::default().vs_currency());
        assert!(file.coins.is_empty());
    }

    #[test]
    fn a_misspelt_check_is_an_error() {
        let error =
            Rules::from_json(r#"{"checks": {"freshnes": {"severity": "warn", "threshold": 1}}}"#)
                .expect_err("unknown check");
        assert!(matches!(error, QualityError::Rules { .. }));
    }
}
