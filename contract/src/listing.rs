//! When each followed coin began to exist: the lower bound of a plausible `ts_event`.
//!
//! The dates are conservative — on or before the coin's launch, mostly the first day of its launch
//! month — because an event wrongly called too old is lost data, while one a few weeks too early
//! still cannot be a real market snapshot. Coins not listed get [`GENESIS`], the day the first
//! coin (bitcoin) began.

use chrono::{DateTime, NaiveDate, Utc};

/// 2009-01-03, the bitcoin genesis block: no crypto market existed before.
pub const GENESIS: (i32, u32, u32) = (2009, 1, 3);

/// `(coin_id, (year, month, day))` of the ten coins the platform follows (DESIGN.md §4).
pub const FIRST_DAYS: [(&str, (i32, u32, u32)); 10] = [
    ("bitcoin", GENESIS),
    ("ethereum", (2015, 7, 1)),     // mainnet 2015-07-30
    ("ripple", (2012, 6, 1)),       // XRP Ledger, June 2012
    ("binancecoin", (2017, 6, 1)),  // ICO June–July 2017
    ("solana", (2020, 3, 1)),       // mainnet beta 2020-03-16
    ("dogecoin", (2013, 12, 1)),    // launched 2013-12-06
    ("tron", (2017, 8, 1)),         // ICO 2017-08-31
    ("cardano", (2017, 9, 1)),      // mainnet 2017-09-29
    ("hyperliquid", (2024, 11, 1)), // HYPE token 2024-11-29
    ("sui", (2023, 5, 1)),          // mainnet 2023-05-03
];

/// Midnight UTC of the first day `coin_id` can have an event ([`GENESIS`] for unknown coins).
pub fn first_day(coin_id: &str) -> DateTime<Utc> {
    let (year, month, day) = FIRST_DAYS
        .iter()
        .find(|(id, _)| *id == coin_id)
        .map_or(GENESIS, |(_, date)| *date);
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_date_is_a_real_day_not_before_genesis() {
        let genesis = first_day("no-such-coin");
        assert_eq!(genesis.to_rfc3339(), "2009-01-03T00:00:00+00:00");
        for (coin, (year, month, day)) in FIRST_DAYS {
            assert!(
                NaiveDate::from_ymd_opt(year, month, day).is_some(),
                "{coin}"
            );
            assert!(first_day(coin) >= genesis, "{coin}");
        }
        assert_eq!(first_day("sui").to_rfc3339(), "2023-05-01T00:00:00+00:00");
    }
}
