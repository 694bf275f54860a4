//! The coin reference rows the producer writes to `crypto.coins` beside the price events
//! (contract `coin_reference` 1.0, [`crate::reference`]): from the same `/coins/markets` item
//! as the event ([`item_row`]; live polls and JSON-lines replays) or from the coin's static
//! profile ([`profile_row`]; synthetic ticks and CSV bars, which have no item).
//!
//! A coin's row is sent only when it says something else than the last row sent for the coin
//! since the producer started ([`SentRows`]): compaction keeps the latest row anyway, and a
//! poll then writes at most one row per coin it follows, usually none. A row the contract
//! refuses is not sent; it is logged and counted by the field it breaks, each time.
//!
//! ```
//! use apps::event::Source;
//! use apps::producer::reference::{profile_row, SentRows};
//!
//! let at = "2025-07-25T12:00:00Z".parse().unwrap();
//! let mut sent = SentRows::default();
//! let (changed, refused) = sent.changed(vec![profile_row("bitcoin", "btc", at, Source::Synthetic)]);
//! assert!(refused.is_empty());
//! assert_eq!((changed[0].name.as_str(), changed[0].market_cap_rank), ("Bitcoin", Some(1)));
//! sent.remember(changed[0].clone());
//! let later = at + chrono::TimeDelta::minutes(5);
//! assert!(sent.changed(vec![profile_row("bitcoin", "btc", later, Source::Synthetic)]).0.is_empty());
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use streamlib::serdes::{JsonSchemaSerde, SerdeError};

use super::coins::profile;
use super::mapping::MappedItem;
use crate::event::{format_ts, Source};
use crate::reference::{contract_serde, CoinReference, SCHEMA_VERSION};

/// The row of a mapped `/coins/markets` item, for the contract to check: its id, its symbol
/// and market-cap rank as its price event has them (normalised alike, or as received when they
/// could not be), its `name` as received (`null` when missing), and the event's `ts_ingest`
/// (when the answer arrived) and `source`.
pub fn item_row(mapped: &MappedItem) -> Value {
    let field = |name: &str| mapped.record.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "schema_version": SCHEMA_VERSION,
        "coin_id": mapped.coin_id,
        "symbol": field("symbol"),
        "name": mapped.name,
        "market_cap_rank": field("market_cap_rank"),
        "ts_event": field("ts_ingest"),
        "source": field("source"),
    })
}

/// The row of a coin without a CoinGecko item, read at `read_at` from `source`: `symbol` as
/// its events carry it, name and rank from its static profile ([`profile`]).
pub fn profile_row(coin_id: &str, symbol: &str, read_at: DateTime<Utc>, source: Source) -> Value {
    let coin = profile(coin_id);
    json!({
        "schema_version": SCHEMA_VERSION,
        "coin_id": coin_id,
        "symbol": symbol,
        "name": coin.name,
        "market_cap_rank": coin.market_cap_rank,
        "ts_event": format_ts(read_at),
        "source": source,
    })
}

/// A row the contract refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The coin.
    pub coin_id: String,
    /// The field it breaks (`name`, `market_cap_rank`, …; the keyword, e.g. `required`, when
    /// the row as a whole breaks it).
    pub field: String,
    /// The contract's description of what is wrong.
    pub reason: String,
}

/// The last row sent for each coin since the producer started, and the contract's check.
#[derive(Clone, Debug)]
pub struct SentRows {
    contract: JsonSchemaSerde<CoinReference>,
    last: HashMap<String, CoinReference>,
}

impl Default for SentRows {
    fn default() -> Self {
        Self {
            contract: contract_serde(),
            last: HashMap::new(),
        }
    }
}

impl SentRows {
    /// Checks `rows` against the contract and keeps the valid ones that differ from the last
    /// row sent for their coin: at most one per coin (the last one given), in coin order.
    pub fn changed(&self, rows: Vec<Value>) -> (Vec<CoinReference>, Vec<Refused>) {
        let mut latest = BTreeMap::new();
        let mut refused = Vec::new();
        for value in rows {
            match self.check(value) {
                Ok(row) => {
                    latest.insert(row.coin_id.clone(), row);
                }
                Err(refusal) => refused.push(refusal),
            }
        }
        let changed = latest
            .into_values()
            .filter(|row| {
                self.last
                    .get(&row.coin_id)
                    .is_none_or(|last| !last.same_facts(row))
            })
            .collect();
        (changed, refused)
    }

    /// Remembers `row` as sent (delivered).
    pub fn remember(&mut self, row: CoinReference) {
        self.last.insert(row.coin_id.clone(), row);
    }

    fn check(&self, value: Value) -> Result<CoinReference, Refused> {
        let coin_id = value["coin_id"].as_str().unwrap_or_default().to_string();
        self.contract.validate(&value).map_err(|error| {
            let field = match &error {
                SerdeError::Schema(violation) => {
                    match violation.instance_pointer.trim_start_matches('/') {
                        "" => violation.rule.clone(),
                        field => field.to_string(),
                    }
                }
                _ => "row".to_string(),
            };
            Refused {
                coin_id: coin_id.clone(),
                field,
                reason: error.to_string(),
            }
        })?;
        serde_json::from_value(value).map_err(|error| Refused {
            coin_id,
            field: "row".to_string(),
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::producer::mapping::map_item;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn item(rank: Value, name: Value) -> Value {
        json!({"id": "bitcoin", "symbol": "btc", "name": name, "current_price": 70187,
            "market_cap_rank": rank, "last_updated": "2024-04-07T16:49:31.736Z"})
    }

    fn mapped_row(item: &Value) -> Value {
        let read_at = at("2024-04-07T16:50:00.412Z");
        let mapped = map_item(item, "usd", read_at, Source::Coingecko).unwrap();
        item_row(&mapped)
    }

    #[test]
    fn an_item_maps_to_the_row_of_the_contract_example() {
        let row = mapped_row(&item(json!(1), json!("Bitcoin")));
        let example: Value = serde_json::from_str(include_str!(
            "../../../contracts/EXAMPLES/example_coin_reference.json"
        ))
        .unwrap();
        assert_eq!(row, example);
        // A numeric-string rank is read like the price event's; null stays null.
        let (changed, _) = SentRows::default().changed(vec![
            mapped_row(&item(json!("2"), json!("Bitcoin"))),
            mapped_row(&item(Value::Null, json!("Bitcoin"))),
        ]);
        assert_eq!(changed.len(), 1, "one row per coin: the last given");
        assert_eq!(changed[0].market_cap_rank, None);
    }

    #[test]
    fn rows_the_contract_refuses_name_the_field_and_are_not_sent() {
        let rows = vec![
            mapped_row(&item(json!(0), json!("Bitcoin"))),
            mapped_row(&item(json!(1.5), json!("Bitcoin"))),
            mapped_row(&item(json!(1), Value::Null)),
            mapped_row(
                &json!({"id": "bitcoin", "symbol": "btc", "current_price": 1,
                "last_updated": "2024-04-07T16:49:31.736Z"}),
            ),
        ];
        let (changed, refused) = SentRows::default().changed(rows);
        assert!(changed.is_empty(), "{changed:?}");
        let fields: Vec<&str> = refused.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            ["market_cap_rank", "market_cap_rank", "name", "name"]
        );
        assert!(refused.iter().all(|r| r.coin_id == "bitcoin"));
    }

    #[test]
    fn a_coin_is_sent_again_only_when_its_facts_change() {
        let mut sent = SentRows::default();
        let poll = |rank: u32, minute: u32| {
            let read_at = at("2025-07-25T12:00:00Z") + chrono::TimeDelta::minutes(minute.into());
            let ethereum = profile_row("ethereum", "eth", read_at, Source::Synthetic);
            let mut bitcoin = profile_row("bitcoin", "btc", read_at, Source::Synthetic);
            bitcoin["market_cap_rank"] = rank.into();
            vec![bitcoin, ethereum]
        };
        let (first, _) = sent.changed(poll(1, 0));
        assert_eq!(first.len(), 2);
        // Not delivered (e.g. refused by the broker): still to be sent.
        sent.remember(first[0].clone());
        let (second, _) = sent.changed(poll(1, 5));
        let ids: Vec<&str> = second.iter().map(|r| r.coin_id.as_str()).collect();
        assert_eq!(ids, ["ethereum"]);
        sent.remember(second[0].clone());
        assert!(sent.changed(poll(1, 10)).0.is_empty(), "nothing changed");
        let (third, _) = sent.changed(poll(2, 15));
        assert_eq!(
            (third.len(), third[0].market_cap_rank),
            (1, Some(2)),
            "bitcoin's rank changed"
        );
    }

    #[test]
    fn every_followed_coin_has_a_valid_profile_row() {
        let rows: Vec<Value> = crate::topics::DEFAULT_COINS
            .iter()
            .map(|id| profile_row(id, &profile(id).symbol, Utc::now(), Source::Synthetic))
            .collect();
        let (changed, refused) = SentRows::default().changed(rows);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(changed.len(), 10);
    }
}
