//! The price event of contract v1.2 (`contracts/event_crypto_price.schema.json`); the ids and
//! the version come from the `contract` crate, which also holds the check.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use contract::{event_id, sha256_hex, unique_key, SCHEMA_VERSION};

/// Who produced an event (`source` in the contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The live CoinGecko poller.
    Coingecko,
    /// Re-published from a recorded file.
    Replay,
    /// Generated (random walk) for demos, tests and benchmarks.
    Synthetic,
}

/// CoinGecko's `roi` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// Multiple of the initial price.
    pub times: f64,
    /// Currency of the initial offering.
    pub currency: String,
    /// Percent.
    pub percentage: f64,
}

/// One market snapshot of one coin in one quote currency. Field meanings and units are in the
/// contract; every field is always written (nullable ones as `null`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // documented field by field in the JSON Schema
pub struct PriceEvent {
    pub schema_version: String,
    pub event_id: String,
    pub source: Source,
    pub coin_id: String,
    pub symbol: String,
    pub vs_currency: String,
    pub price: f64,
    pub ts_event: String,
    pub ts_ingest: String,
    pub market_cap: Option<f64>,
    pub market_cap_rank: Option<u32>,
    pub fully_diluted_valuation: Option<f64>,
    pub total_volume: Option<f64>,
    pub high_24h: Option<f64>,
    pub low_24h: Option<f64>,
    pub price_change_24h: Option<f64>,
    pub price_change_percentage_24h: Option<f64>,
    pub market_cap_change_24h: Option<f64>,
    pub market_cap_change_percentage_24h: Option<f64>,
    pub circulating_supply: Option<f64>,
    pub total_supply: Option<f64>,
    pub max_supply: Option<f64>,
    pub ath: Option<f64>,
    pub ath_change_percentage: Option<f64>,
    pub ath_date: Option<String>,
    pub atl: Option<f64>,
    pub atl_change_percentage: Option<f64>,
    pub atl_date: Option<String>,
    pub roi: Option<Roi>,
    pub price_change_percentage_1h_in_currency: Option<f64>,
    pub price_change_percentage_24h_in_currency: Option<f64>,
    pub price_change_percentage_7d_in_currency: Option<f64>,
}

impl PriceEvent {
    /// An event with the required fields set, every nullable field `null`, and `event_id`
    /// derived from the key.
    pub fn new(
        source: Source,
        coin_id: &str,
        symbol: &str,
        vs_currency: &str,
        price: f64,
        ts_event: DateTime<Utc>,
        ts_ingest: DateTime<Utc>,
    ) -> Self {
        let ts_event = format_ts(ts_event);
        Self {
            schema_version: SCHEMA_VERSION.to_string(),
            event_id: event_id(coin_id, vs_currency, &ts_event),
            source,
            coin_id: coin_id.to_string(),
            symbol: symbol.to_string(),
            vs_currency: vs_currency.to_string(),
            price,
            ts_event,
            ts_ingest: format_ts(ts_ingest),
            market_cap: None,
            market_cap_rank: None,
            fully_diluted_valuation: None,
            total_volume: None,
            high_24h: None,
            low_24h: None,
            price_change_24h: None,
            price_change_percentage_24h: None,
            market_cap_change_24h: None,
            market_cap_change_percentage_24h: None,
            circulating_supply: None,
            total_supply: None,
            max_supply: None,
            ath: None,
            ath_change_percentage: None,
            ath_date: None,
            atl: None,
            atl_change_percentage: None,
            atl_date: None,
            roi: None,
            price_change_percentage_1h_in_currency: None,
            price_change_percentage_24h_in_currency: None,
            price_change_percentage_7d_in_currency: None,
        }
    }

    /// Event time in milliseconds since the Unix epoch (`None` if `ts_event` is not RFC 3339,
    /// which the contract rules out).
    pub fn ts_event_millis(&self) -> Option<i64> {
        parse_ts_millis(&self.ts_event)
    }

    /// The deduplication key `(coin_id, vs_currency, ts_event)` as one string.
    pub fn unique_key(&self) -> String {
        unique_key(&self.coin_id, &self.vs_currency, &self.ts_event)
    }
}

/// The contract's timestamp text: UTC, millisecond fraction, `Z`.
pub fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// [`format_ts`] of milliseconds since the Unix epoch (out-of-range values clamp to the epoch).
pub fn format_millis(millis: i64) -> String {
    format_ts(DateTime::from_timestamp_millis(millis).unwrap_or_default())
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp.
pub fn parse_ts_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|ts| ts.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_example_round_trips() {
        let text = include_str!("../../contracts/EXAMPLES/example_btc.json");
        let event: PriceEvent = serde_json::from_str(text).unwrap();
        assert_eq!(event.ts_event_millis(), Some(1_712_508_571_736));
        assert_eq!(
            event.event_id,
            event_id(&event.coin_id, "usd", &event.ts_event)
        );
        let again: PriceEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(format_millis(1_712_508_571_736), "2024-04-07T16:49:31.736Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
