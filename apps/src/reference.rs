//! The coin reference row of `crypto.coins` (contract `coin_reference` 1.0,
//! `contracts/coin_reference.schema.json`): what the platform knows about a coin besides its
//! prices. The producer writes a coin's row when it changes ([`crate::producer`]); the alerts
//! app reads the topic as a global table and names the coin in its messages
//! ([`crate::alerts`]). Both read and write it through [`contract_serde`], so a row that breaks
//! the contract is neither written nor stored.
//!
//! ```
//! use apps::event::Source;
//! use apps::reference::{contract_serde, CoinReference};
//! use streamlib::serdes::Serde;
//!
//! let at = "2024-04-07T16:50:00.412Z".parse().unwrap();
//! let row = CoinReference::new("bitcoin", "btc", "Bitcoin", Some(1), at, Source::Coingecko);
//! let bytes = contract_serde().serialize("crypto.coins", &row).unwrap();
//! assert_eq!(contract_serde().deserialize("crypto.coins", &bytes).unwrap(), row);
//!
//! let unranked = CoinReference { market_cap_rank: Some(0), ..row };
//! assert!(contract_serde().serialize("crypto.coins", &unranked).is_err()); // rank ≥ 1 or null
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use streamlib::serdes::JsonSchemaSerde;

use crate::event::{format_ts, Source};

/// The contract, as bundled.
pub const SCHEMA: &str = include_str!("../../contracts/coin_reference.schema.json");

/// The contract version written.
pub const SCHEMA_VERSION: &str = "1.0";

/// A record of `crypto.coins`, keyed by `coin_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // documented field by field in the JSON Schema
pub struct CoinReference {
    pub schema_version: String,
    pub coin_id: String,
    pub symbol: String,
    pub name: String,
    pub market_cap_rank: Option<u32>,
    pub ts_event: String,
    pub source: Source,
}

impl CoinReference {
    /// The row of `coin_id` read at `ts_event` from `source`.
    pub fn new(
        coin_id: &str,
        symbol: &str,
        name: &str,
        market_cap_rank: Option<u32>,
        ts_event: DateTime<Utc>,
        source: Source,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION.to_string(),
            coin_id: coin_id.to_string(),
            symbol: symbol.to_string(),
            name: name.to_string(),
            market_cap_rank,
            ts_event: format_ts(ts_event),
            source,
        }
    }

    /// Whether `other` says the same about the same coin: everything but when and by whom it
    /// was read (`ts_event`, `source`).
    pub fn same_facts(&self, other: &Self) -> bool {
        (
            &self.coin_id,
            &self.symbol,
            &self.name,
            self.market_cap_rank,
        ) == (
            &other.coin_id,
            &other.symbol,
            &other.name,
            other.market_cap_rank,
        )
    }
}

/// JSON checked against the bundled contract, on serialize and on deserialize (formats
/// asserted, like the price contract).
///
/// # Panics
/// Never for the bundled schema (a unit test compiles it); the schema is part of the binary.
pub fn contract_serde() -> JsonSchemaSerde<CoinReference> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the bundled schema is JSON");
    JsonSchemaSerde::new(&schema).expect("the bundled schema compiles")
}

#[cfg(test)]
mod tests {
    use streamlib::serdes::Serde;

    use super::*;

    #[test]
    fn the_contract_examples_round_trip_through_the_contract_serde() {
        let serde = contract_serde();
        for text in [
            include_str!("../../contracts/EXAMPLES/example_coin_reference.json"),
            include_str!("../../contracts/EXAMPLES/example_coin_reference_unranked.json"),
        ] {
            let row = serde.deserialize("crypto.coins", text.as_bytes()).unwrap();
            let again = serde.serialize("crypto.coins", &row).unwrap();
            assert_eq!(serde.deserialize("crypto.coins", &again).unwrap(), row);
        }
    }

    #[test]
    fn rows_with_the_same_facts_differ_only_in_when_and_by_whom() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let row = |rank| {
            CoinReference::new(
                "bitcoin",
                "btc",
                "Bitcoin",
                rank,
                at("2024-04-07T16:50:00Z"),
                Source::Coingecko,
            )
        };
        let later = CoinReference {
            ts_event: format_ts(at("2024-04-08T00:00:00Z")),
            source: Source::Replay,
            ..row(Some(1))
        };
        assert!(row(Some(1)).same_facts(&later));
        assert!(!row(Some(1)).same_facts(&row(Some(2))));
        assert!(!row(Some(1)).same_facts(&row(None)));
    }
}
