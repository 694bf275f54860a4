//! What the checks look at: per coin, quote currency and UTC hour, the counts read from the lake
//! and the warehouse. Filled by [`super::lake_facts`] and [`super::warehouse_facts`], judged by
//! [`super::checks`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A coin, its quote currency and one UTC hour: what every check result is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject {
    /// CoinGecko id, e.g. `bitcoin`.
    pub coin_id: String,
    /// Quote currency, e.g. `usd`.
    pub vs_currency: String,
    /// The hour, as whole hours since the Unix epoch.
    pub hour: i64,
}

impl Subject {
    /// The start of the subject's hour.
    pub fn hour_start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.hour * 3600, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// `bitcoin 2026-01-01T04:00Z` (the quote currency is added when it is not `usd`).
    pub fn label(&self) -> String {
        let hour = self.hour_start().format("%Y-%m-%dT%H:%MZ");
        if self.vs_currency == "usd" {
            format!("{} {hour}", self.coin_id)
        } else {
            format!("{}/{} {hour}", self.coin_id, self.vs_currency)
        }
    }
}

/// The counts of one [`Subject`]; a source that has nothing for it leaves zeros / `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HourFacts {
    /// gold/data_quality: polls expected in the hour (`None`: no row).
    pub polls_expected: Option<i64>,
    /// gold/data_quality: polls received in the hour (`None`: no row).
    pub polls_received: Option<i64>,
    /// silver/prices rows.
    pub silver_rows: i64,
    /// silver/prices distinct `ts_event`s.
    pub silver_distinct: i64,
    /// silver/prices rows whose price is not > 0.
    pub silver_bad_prices: i64,
    /// silver/prices: the newest `ts_event`, in seconds since the epoch.
    pub silver_newest_second: Option<i64>,
    /// gold/candles_1h rows breaking `low ≤ open, close ≤ high`.
    pub bad_candles: i64,
    /// bronze/prices_raw: distinct price events (coin, quote, ts_event) not quarantined by Silver.
    pub bronze_events: i64,
    /// The warehouse's fact_price_snapshot rows.
    pub warehouse_rows: i64,
    /// The warehouse's fact_price_snapshot distinct `ts_event`s.
    pub warehouse_distinct: i64,
}

/// Every subject of a checked interval and its counts, in subject order.
pub type Facts = BTreeMap<Subject, HourFacts>;

/// Adds an empty entry for every hour of `hours` of every coin that appears in `facts` or in
/// `expected` (coin id, quote currency), so an hour without any data is checked too.
pub fn complete_grid(
    facts: &mut Facts,
    expected: &[(String, String)],
    hours: std::ops::Range<i64>,
) {
    let mut coins: Vec<(String, String)> = facts
        .keys()
        .map(|s| (s.coin_id.clone(), s.vs_currency.clone()))
        .chain(expected.iter().cloned())
        .collect();
    coins.sort_unstable();
    coins.dedup();
    for (coin_id, vs_currency) in coins {
        for hour in hours.clone() {
            facts
                .entry(Subject {
                    coin_id: coin_id.clone(),
                    vs_currency: vs_currency.clone(),
                    hour,
                })
                .or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(coin: &str, hour: i64) -> Subject {
        Subject {
            coin_id: coin.to_owned(),
            vs_currency: "usd".to_owned(),
            hour,
        }
    }

    #[test]
    fn the_grid_has_every_hour_of_every_coin_seen_or_expected() {
        let mut facts = Facts::new();
        facts.insert(subject("bitcoin", 11), HourFacts::default());
        complete_grid(
            &mut facts,
            &[("solana".to_owned(), "usd".to_owned())],
            10..12,
        );
        let keys: Vec<_> = facts.keys().cloned().collect();
        assert_eq!(
            keys,
            vec![
                subject("bitcoin", 10),
                subject("bitcoin", 11),
                subject("solana", 10),
                subject("solana", 11)
            ]
        );
    }

    #[test]
    fn a_label_names_the_coin_and_the_hour() {
        // 2026-01-01T00:00Z is 1 767 225 600 s after the epoch.
        assert_eq!(
            subject("bitcoin", 1_767_225_600 / 3600 + 4).label(),
            "bitcoin 2026-01-01T04:00Z"
        );
    }
}
