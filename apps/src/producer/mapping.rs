//! One CoinGecko `/coins/markets` item → one contract v1.2 record (docs/DATA_SCOPE.md,
//! "From a CoinGecko item to an event").
//!
//! Lenient where CoinGecko is known to vary: `null` anywhere a field is nullable, numbers in
//! exponent notation, numeric *strings* (`"19675987"`), dates with any offset or precision
//! (rewritten with [`format_ts`]), unknown fields (ignored). Faithful everywhere else: a value
//! that cannot be normalised is neither invented nor dropped. It is written as CoinGecko sent
//! it, listed as a [`Defect`], and the validator dead-letters the record with its reason
//! (ADR-021). Only an item without a usable `id` cannot be produced, because it has no key.
//!
//! ```
//! use apps::producer::mapping::map_item;
//! use apps::event::Source;
//!
//! let item = serde_json::json!({"id": "bitcoin", "symbol": "btc", "current_price": "70187",
//!     "last_updated": "2024-04-07T16:49:31.736Z", "market_cap": 1.38e12, "brand_new": 1});
//! let mapped = map_item(&item, "usd", chrono::Utc::now(), Source::Coingecko).unwrap();
//! assert!(mapped.defects.is_empty());
//! let event = mapped.event().unwrap();
//! assert_eq!((event.price, event.market_cap), (70187.0, Some(1.38e12)));
//! assert_eq!(event.ts_event, "2024-04-07T16:49:31.736Z");
//! ```

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::event::{event_id, format_ts, PriceEvent, Roi, Source};

/// Why an item could not be produced at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("item has no usable `id` (got {0}); it cannot be keyed and is skipped")]
pub struct Unkeyed(pub String);

/// A field written as received because it could not be normalised to the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defect {
    /// Event field (contract name).
    pub field: &'static str,
    /// What is wrong, e.g. `missing`, `null`, `not positive`, `not a number`.
    pub problem: &'static str,
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

/// An item mapped to the record that goes to `crypto.prices.raw`.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedItem {
    /// The record key.
    pub coin_id: String,
    /// The record value, every contract field present, in contract order.
    pub record: Value,
    /// What keeps the record from being a valid v1.2 event; empty for a complete event.
    pub defects: Vec<Defect>,
    /// The item's `name` as received (`null` when missing): not part of the event, it goes to
    /// the coin's reference row ([`super::reference::item_row`]).
    pub name: Value,
}

impl MappedItem {
    /// The record as a typed event, when it has no defects.
    pub fn event(&self) -> Option<PriceEvent> {
        if self.defects.is_empty() {
            serde_json::from_value(self.record.clone()).ok()
        } else {
            None
        }
    }

    /// The record value as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.record.to_string().into_bytes()
    }
}

/// The mapped items of one response, and the items that could not be keyed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MappedResponse {
    /// One per keyed item, in response order.
    pub items: Vec<MappedItem>,
    /// Items without a usable `id`.
    pub unkeyed: Vec<Unkeyed>,
}

/// Maps every element of a response array.
pub fn map_response(
    items: &[Value],
    vs_currency: &str,
    ts_ingest: DateTime<Utc>,
    source: Source,
) -> MappedResponse {
    let mut mapped = MappedResponse::default();
    for item in items {
        match map_item(item, vs_currency, ts_ingest, source) {
            Ok(item) => mapped.items.push(item),
            Err(unkeyed) => mapped.unkeyed.push(unkeyed),
        }
    }
    mapped
}

/// The requested ids that were not returned, in request order.
pub fn missing_ids(requested: &[String], returned: &[String]) -> Vec<String> {
    let returned: BTreeSet<&String> = returned.iter().collect();
    requested
        .iter()
        .filter(|id| !returned.contains(id))
        .cloned()
        .collect()
}

/// The normalised contract timestamp of an RFC 3339 text (any offset, any fraction).
pub fn normalise_ts(text: &str) -> Option<String> {
    parse_ts(text).map(format_ts)
}

fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|ts| ts.with_timezone(&Utc))
}

/// Maps one item. `ts_ingest` is when its response arrived; `source` is `coingecko` for the
/// poller and `replay` for recorded responses.
pub fn map_item(
    item: &Value,
    vs_currency: &str,
    ts_ingest: DateTime<Utc>,
    source: Source,
) -> Result<MappedItem, Unkeyed> {
    let coin_id = match item.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        other => return Err(Unkeyed(other.unwrap_or(&Value::Null).to_string())),
    };
    let mut fields = Fields {
        item,
        defects: Vec::new(),
        verbatim: Map::new(),
    };

    let symbol = match item.get("symbol") {
        Some(Value::String(symbol)) => symbol.clone(),
        other => {
            fields.keep_verbatim("symbol", other);
            String::new()
        }
    };
    let price = match fields.number_as("current_price", "price") {
        Some(price) if price > 0.0 => price,
        Some(price) => {
            fields.defects.push(Defect {
                field: "price",
                problem: "not positive",
            });
            price
        }
        None => {
            if !fields.defects.iter().any(|d| d.field == "price") {
                fields.keep_verbatim("price", item.get("current_price"));
            }
            0.0
        }
    };
    let last_updated = item.get("last_updated");
    let ts_event = match last_updated.and_then(Value::as_str).and_then(parse_ts) {
        Some(ts) => ts,
        None => {
            fields.keep_verbatim("ts_event", last_updated);
            let text = last_updated.and_then(Value::as_str).unwrap_or_default();
            fields.verbatim.insert(
                "event_id".into(),
                event_id(&coin_id, vs_currency, text).into(),
            );
            DateTime::UNIX_EPOCH
        }
    };

    let mut event = PriceEvent::new(
        source,
        &coin_id,
        &symbol,
        vs_currency,
        price,
        ts_event,
        ts_ingest,
    );
    event.market_cap = fields.number("market_cap");
    event.market_cap_rank = fields.rank();
    event.fully_diluted_valuation = fields.number("fully_diluted_valuation");
    event.total_volume = fields.number("total_volume");
    event.high_24h = fields.number("high_24h");
    event.low_24h = fields.number("low_24h");
    event.price_change_24h = fields.number("price_change_24h");
    event.price_change_percentage_24h = fields.number("price_change_percentage_24h");
    event.market_cap_change_24h = fields.number("market_cap_change_24h");
    event.market_cap_change_percentage_24h = fields.number("market_cap_change_percentage_24h");
    event.circulating_supply = fields.number("circulating_supply");
    event.total_supply = fields.number("total_supply");
    event.max_supply = fields.number("max_supply");
    event.ath = fields.number("ath");
    event.ath_change_percentage = fields.number("ath_change_percentage");
    event.ath_date = fields.date("ath_date");
    event.atl = fields.number("atl");
    event.atl_change_percentage = fields.number("atl_change_percentage");
    event.atl_date = fields.date("atl_date");
    event.roi = fields.roi();
    event.price_change_percentage_1h_in_currency =
        fields.number("price_change_percentage_1h_in_currency");
    event.price_change_percentage_24h_in_currency =
        fields.number("price_change_percentage_24h_in_currency");
    event.price_change_percentage_7d_in_currency =
        fields.number("price_change_percentage_7d_in_currency");

    let mut record = serde_json::to_value(&event).unwrap_or_default();
    if let Value::Object(record) = &mut record {
        for (field, value) in fields.verbatim {
            record.insert(field, value);
        }
    }
    Ok(MappedItem {
        coin_id,
        record,
        defects: fields.defects,
        name: item.get("name").cloned().unwrap_or(Value::Null),
    })
}

/// Reads the fields of one item, collecting defects and the values to write verbatim.
struct Fields<'a> {
    item: &'a Value,
    defects: Vec<Defect>,
    verbatim: Map<String, Value>,
}

impl Fields<'_> {
    /// A required field that could not be read: written as received (`null` when missing).
    fn keep_verbatim(&mut self, field: &'static str, raw: Option<&Value>) {
        let problem = match raw {
            None => "missing",
            Some(Value::Null) => "null",
            Some(_) => "not readable",
        };
        self.defects.push(Defect { field, problem });
        self.verbatim
            .insert(field.into(), raw.cloned().unwrap_or(Value::Null));
    }

    /// A nullable number named alike in CoinGecko and the contract.
    fn number(&mut self, field: &'static str) -> Option<f64> {
        self.number_as(field, field)
    }

    /// A nullable number: JSON number or numeric string; anything else is kept verbatim.
    fn number_as(&mut self, name: &str, field: &'static str) -> Option<f64> {
        let raw = self.item.get(name)?;
        match lenient_number(raw) {
            Ok(number) => number,
            Err(()) => {
                self.defects.push(Defect {
                    field,
                    problem: "not a number",
                });
                self.verbatim.insert(field.into(), raw.clone());
                None
            }
        }
    }

    fn rank(&mut self) -> Option<u32> {
        let raw = self.item.get("market_cap_rank")?;
        match lenient_number(raw) {
            Ok(None) => None,
            Ok(Some(rank))
                if rank.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&rank) =>
            {
                Some(rank as u32)
            }
            _ => {
                self.defects.push(Defect {
                    field: "market_cap_rank",
                    problem: "not a whole number",
                });
                self.verbatim.insert("market_cap_rank".into(), raw.clone());
                None
            }
        }
    }

    fn date(&mut self, field: &'static str) -> Option<String> {
        let raw = self.item.get(field)?;
        if raw.is_null() {
            return None;
        }
        let normalised = raw.as_str().and_then(normalise_ts);
        if normalised.is_none() {
            self.defects.push(Defect {
                field,
                problem: "not an RFC 3339 date",
            });
            self.verbatim.insert(field.into(), raw.clone());
        }
        normalised
    }

    fn roi(&mut self) -> Option<Roi> {
        let raw = self.item.get("roi")?;
        if raw.is_null() {
            return None;
        }
        let number = |name| lenient_number(raw.get(name)?).ok().flatten();
        let roi = match (
            number("times"),
            raw.get("currency").and_then(Value::as_str),
            number("percentage"),
        ) {
            (Some(times), Some(currency), Some(percentage)) => Some(Roi {
                times,
                currency: currency.to_string(),
                percentage,
            }),
            _ => None,
        };
        if roi.is_none() {
            self.defects.push(Defect {
                field: "roi",
                problem: "not {times, currency, percentage}",
            });
            self.verbatim.insert("roi".into(), raw.clone());
        }
        roi
    }
}

/// `null` → `Ok(None)`; a finite JSON number or numeric string → `Ok(Some)`; else `Err`.
fn lenient_number(raw: &Value) -> Result<Option<f64>, ()> {
    let number = match raw {
        Value::Null => return Ok(None),
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    number.filter(|n| n.is_finite()).map(Some).ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingest() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-04-07T16:50:00.123Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The official example item of REFERENCE.md §A.
    fn btc() -> Value {
        json!({"id":"bitcoin","symbol":"btc","name":"Bitcoin","image":"https://x/btc.png",
        "current_price":70187,"market_cap":1381651251183_u64,"market_cap_rank":1,
        "fully_diluted_valuation":1474623675796_u64,"total_volume":20154184933_u64,
        "high_24h":70215,"low_24h":68060,"price_change_24h":2126.88,
        "price_change_percentage_24h":3.12502,"market_cap_change_24h":44287678051_u64,
        "market_cap_change_percentage_24h":3.31157,"circulating_supply":19675987,
        "total_supply":21000000,"max_supply":21000000,"ath":73738,
        "ath_change_percentage":-4.77063,"ath_date":"2024-03-14T07:10:36.635Z","atl":67.81,
        "atl_change_percentage":103455.83335,"atl_date":"2013-07-06T00:00:00.000Z","roi":null,
        "last_updated":"2024-04-07T16:49:31.736Z"})
    }

    fn map(item: &Value) -> MappedItem {
        map_item(item, "usd", ingest(), Source::Coingecko).unwrap()
    }

    #[test]
    fn the_reference_item_becomes_the_contract_example() {
        let mapped = map(&btc());
        assert_eq!(mapped.defects, vec![]);
        let event = mapped.event().unwrap();
        let example: PriceEvent =
            serde_json::from_str(include_str!("../../../contracts/EXAMPLES/example_btc.json"))
                .unwrap();
        assert_eq!(event.event_id, example.event_id);
        assert_eq!(event.market_cap, Some(1_381_651_251_183.0));
        assert_eq!(event.circulating_supply, Some(19_675_987.0));
        assert_eq!(event.ath_date.as_deref(), Some("2024-03-14T07:10:36.635Z"));
        assert_eq!(event.ts_ingest, "2024-04-07T16:50:00.123Z");
        assert_eq!(event.source, Source::Coingecko);
    }

    #[test]
    fn nulls_are_allowed_wherever_the_contract_allows_them() {
        let mut item = btc();
        for (name, value) in item.as_object_mut().unwrap() {
            if !["id", "symbol", "current_price", "last_updated"].contains(&name.as_str()) {
                *value = Value::Null;
            }
        }
        let mapped = map(&item);
        assert_eq!(mapped.defects, vec![]);
        let event = mapped.event().unwrap();
        assert_eq!(
            (event.market_cap, event.roi, event.ath_date),
            (None, None, None)
        );
        assert_eq!(event.price, 70187.0);
    }

    #[test]
    fn exponent_numbers_and_numeric_strings_become_numbers() {
        let mut item = btc();
        item["current_price"] = json!(6.88313e-7);
        item["circulating_supply"] = json!("19675987");
        item["market_cap_rank"] = json!("1");
        item["total_volume"] = json!(" 1.5e3 ");
        let event = map(&item).event().unwrap();
        assert_eq!(event.price, 6.88313e-7);
        assert_eq!(event.circulating_supply, Some(19_675_987.0));
        assert_eq!(event.market_cap_rank, Some(1));
        assert_eq!(event.total_volume, Some(1500.0));
    }

    #[test]
    fn unknown_fields_are_ignored_and_known_extras_mapped() {
        let mut item = btc();
        item["sparkline_in_7d"] = json!({"price": [1, 2]});
        item["brand_new_field"] = json!("x");
        item["price_change_percentage_1h_in_currency"] = json!(-0.25);
        item["roi"] = json!({"times": "2.5", "currency": "usd", "percentage": 250, "extra": 1});
        let event = map(&item).event().unwrap();
        assert_eq!(event.price_change_percentage_1h_in_currency, Some(-0.25));
        assert_eq!(
            event.roi,
            Some(Roi {
                times: 2.5,
                currency: "usd".into(),
                percentage: 250.0
            })
        );
    }

    #[test]
    fn timestamps_are_normalised_before_the_event_id_is_computed() {
        let mut item = btc();
        item["last_updated"] = json!("2024-04-07T18:49:31.736123+02:00");
        let event = map(&item).event().unwrap();
        assert_eq!(event.ts_event, "2024-04-07T16:49:31.736Z");
        assert_eq!(
            event.event_id,
            "963fdc654e1aa1217aa1a282c782ff8b3c605d08d6761ec2dda1394dbe7bb904"
        );
        item["last_updated"] = json!("2024-04-07T16:49:31Z");
        assert_eq!(
            map(&item).event().unwrap().ts_event,
            "2024-04-07T16:49:31.000Z"
        );
    }

    #[test]
    fn a_null_price_is_produced_as_null_and_reported() {
        let mut item = btc();
        item["current_price"] = Value::Null;
        let mapped = map(&item);
        assert_eq!(
            mapped.defects,
            vec![Defect {
                field: "price",
                problem: "null"
            }]
        );
        assert_eq!(mapped.record["price"], Value::Null);
        assert_eq!(mapped.record["market_cap"], json!(1381651251183.0));
        assert!(mapped.event().is_none());

        item.as_object_mut().unwrap().remove("current_price");
        assert_eq!(map(&item).defects[0].problem, "missing");
        item["current_price"] = json!(0);
        let mapped = map(&item);
        assert_eq!(mapped.defects[0].problem, "not positive");
        assert_eq!(mapped.record["price"], json!(0.0));
    }

    #[test]
    fn a_missing_last_updated_is_produced_as_null_with_the_id_of_an_empty_time() {
        let mut item = btc();
        item.as_object_mut().unwrap().remove("last_updated");
        let mapped = map(&item);
        assert_eq!(mapped.defects[0].field, "ts_event");
        assert_eq!(mapped.record["ts_event"], Value::Null);
        assert_eq!(
            mapped.record["event_id"],
            json!(event_id("bitcoin", "usd", ""))
        );

        item["last_updated"] = json!("yesterday");
        let mapped = map(&item);
        assert_eq!(mapped.record["ts_event"], json!("yesterday"));
        assert_eq!(
            mapped.record["event_id"],
            json!(event_id("bitcoin", "usd", "yesterday"))
        );
    }

    #[test]
    fn unreadable_values_are_kept_verbatim_not_invented() {
        let mut item = btc();
        item["market_cap"] = json!("lots");
        item["market_cap_rank"] = json!(1.5);
        item["ath_date"] = json!("March");
        item["roi"] = json!(3);
        let mapped = map(&item);
        let fields: Vec<&str> = mapped.defects.iter().map(|d| d.field).collect();
        assert_eq!(fields, ["market_cap", "market_cap_rank", "ath_date", "roi"]);
        assert_eq!(mapped.record["market_cap"], json!("lots"));
        assert_eq!(mapped.record["market_cap_rank"], json!(1.5));
        assert_eq!(mapped.record["ath_date"], json!("March"));
        assert_eq!(mapped.record["roi"], json!(3));
        assert_eq!(mapped.record.as_object().unwrap().len(), 32);
    }

    #[test]
    fn items_without_an_id_are_unkeyed_and_missing_ids_are_listed() {
        let items = [btc(), json!({"symbol": "x"}), json!({"id": 7})];
        let mapped = map_response(&items, "usd", ingest(), Source::Coingecko);
        assert_eq!(mapped.items.len(), 1);
        assert_eq!(
            mapped.unkeyed,
            vec![Unkeyed("null".into()), Unkeyed("7".into())]
        );
        let requested = vec!["bitcoin".to_string(), "renamed-coin".to_string()];
        let returned: Vec<String> = mapped.items.iter().map(|i| i.coin_id.clone()).collect();
        assert_eq!(missing_ids(&requested, &returned), ["renamed-coin"]);
    }
}
