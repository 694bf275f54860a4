//! `silver/prices`: one typed row per `(coin_id, vs_currency, ts_event)`, from the records of
//! `bronze/prices_raw` that pass the price contract (`contract` crate: the validator's rules).
//!
//! Unknown coins — valid events for a coin not in the configured list — are quarantined with the
//! rule `unknown_coin`, not kept: Gold's dominance is the share of the followed coins, and a coin
//! added to the producer later is picked up by adding it to the list and re-running its
//! intervals (quarantine and Silver are replaced together, so nothing doubles).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use contract::PriceContract;
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use super::quarantine::Rejection;
use super::refine::{Origin, Refined};
use super::source::BronzeRow;
use super::timestamps::{event_date, micros, micros_opt};
use crate::job::replace::{timestamp_type, TableSpec};

/// The table's name under the lake root.
pub const TABLE: &str = "silver/prices";

/// The rule of a valid event for a coin Silver does not follow.
pub const UNKNOWN_COIN: &str = "unknown_coin";

/// The rule of a contract-valid event Silver could not type (e.g. a rank of `1.0`).
pub const TYPING: &str = "typing";

/// One Silver price row: the contract's fields, typed, and where the row came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceRow {
    /// Contract version the event declared.
    pub schema_version: String,
    /// SHA-256 of the unique key.
    pub event_id: String,
    /// `coingecko`, `replay` or `synthetic`.
    pub source: String,
    /// CoinGecko id.
    pub coin_id: String,
    /// Ticker.
    pub symbol: String,
    /// Quote currency.
    pub vs_currency: String,
    /// Price in `vs_currency`.
    pub price: f64,
    /// Event time (CoinGecko `last_updated`).
    #[serde(with = "micros")]
    pub ts_event: DateTime<Utc>,
    /// Poll time.
    #[serde(with = "micros")]
    pub ts_ingest: DateTime<Utc>,
    /// Market cap.
    pub market_cap: Option<f64>,
    /// Market-cap rank (1 = largest).
    pub market_cap_rank: Option<i64>,
    /// Fully diluted valuation.
    pub fully_diluted_valuation: Option<f64>,
    /// 24 h volume.
    pub total_volume: Option<f64>,
    /// 24 h high.
    pub high_24h: Option<f64>,
    /// 24 h low.
    pub low_24h: Option<f64>,
    /// 24 h price change.
    pub price_change_24h: Option<f64>,
    /// 24 h price change, percent.
    pub price_change_percentage_24h: Option<f64>,
    /// 24 h market-cap change.
    pub market_cap_change_24h: Option<f64>,
    /// 24 h market-cap change, percent.
    pub market_cap_change_percentage_24h: Option<f64>,
    /// Circulating supply.
    pub circulating_supply: Option<f64>,
    /// Total supply.
    pub total_supply: Option<f64>,
    /// Maximum supply.
    pub max_supply: Option<f64>,
    /// All-time high.
    pub ath: Option<f64>,
    /// Percent from the all-time high.
    pub ath_change_percentage: Option<f64>,
    /// When the all-time high was reached.
    #[serde(with = "micros_opt")]
    pub ath_date: Option<DateTime<Utc>>,
    /// All-time low.
    pub atl: Option<f64>,
    /// Percent from the all-time low.
    pub atl_change_percentage: Option<f64>,
    /// When the all-time low was reached.
    #[serde(with = "micros_opt")]
    pub atl_date: Option<DateTime<Utc>>,
    /// The contract's nested `roi`, flattened into the three `roi_*` columns.
    #[serde(skip_serializing)]
    pub roi: Option<Roi>,
    /// `roi.times`.
    #[serde(skip_deserializing)]
    pub roi_times: Option<f64>,
    /// `roi.currency`.
    #[serde(skip_deserializing)]
    pub roi_currency: Option<String>,
    /// `roi.percentage`.
    #[serde(skip_deserializing)]
    pub roi_percentage: Option<f64>,
    /// 1 h change in `vs_currency`, percent.
    pub price_change_percentage_1h_in_currency: Option<f64>,
    /// 24 h change in `vs_currency`, percent.
    pub price_change_percentage_24h_in_currency: Option<f64>,
    /// 7 d change in `vs_currency`, percent.
    pub price_change_percentage_7d_in_currency: Option<f64>,
    /// Kafka partition of the Bronze record.
    #[serde(skip_deserializing)]
    pub bronze_partition: i32,
    /// Kafka offset of the Bronze record.
    #[serde(skip_deserializing)]
    pub bronze_offset: i64,
    /// Kafka timestamp of the Bronze record.
    #[serde(skip_deserializing, with = "micros_opt")]
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// UTC date of `ts_event` (partition).
    #[serde(skip_deserializing)]
    pub event_date: i32,
    /// Where the row came from (not a column: its coordinates are the lineage columns above).
    #[serde(skip)]
    pub origin: Origin,
}

/// The contract's `roi` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// Return as a multiple.
    pub times: f64,
    /// Currency of the return.
    pub currency: String,
    /// Return in percent.
    pub percentage: f64,
}

impl Refined for PriceRow {
    type Key = (String, String, i64);

    fn key(&self) -> Self::Key {
        (
            self.coin_id.clone(),
            self.vs_currency.clone(),
            self.ts_event.timestamp_micros(),
        )
    }

    fn event_time(&self) -> DateTime<Utc> {
        self.ts_event
    }

    fn received(&self) -> DateTime<Utc> {
        self.ts_ingest
    }

    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn coin_id(&self) -> Option<&str> {
        Some(&self.coin_id)
    }
}

/// Parses one `bronze/prices_raw` record: the contract check, then typing, then the coin list
/// (`None` = every coin is followed).
pub fn parse(
    contract: &PriceContract,
    coins: Option<&BTreeSet<String>>,
    record: &BronzeRow,
) -> Result<PriceRow, Rejection> {
    let timestamp_ms = record.kafka_timestamp.map(|t| t.timestamp_millis());
    let checked = contract
        .check(record.key.as_deref(), record.value.as_deref(), timestamp_ms)
        .map_err(|violation| Rejection {
            rule: violation.rule,
            pointer: violation.pointer,
            message: violation.message,
            ts_event: record.readable_ts_event(),
            coin_id: record.readable_coin_id(),
        })?;
    let mut row: PriceRow = serde_json::from_value(checked.event).map_err(|error| Rejection {
        rule: TYPING.to_owned(),
        pointer: String::new(),
        message: format!("a contract-valid event Silver cannot type: {error}"),
        ts_event: record.readable_ts_event(),
        coin_id: record.readable_coin_id(),
    })?;
    if coins.is_some_and(|coins| !coins.contains(&row.coin_id)) {
        return Err(Rejection {
            rule: UNKNOWN_COIN.to_owned(),
            pointer: "/coin_id".to_owned(),
            message: format!("coin {} is not in the followed coins", row.coin_id),
            ts_event: Some(row.ts_event),
            coin_id: Some(row.coin_id),
        });
    }
    if let Some(roi) = row.roi.take() {
        row.roi_times = Some(roi.times);
        row.roi_currency = Some(roi.currency);
        row.roi_percentage = Some(roi.percentage);
    }
    row.bronze_partition = record.partition;
    row.bronze_offset = record.offset;
    row.kafka_timestamp = record.kafka_timestamp;
    row.event_date = event_date(row.ts_event);
    row.origin = Origin::of(record);
    Ok(row)
}

/// The table: its columns and partitioning.
pub fn spec() -> TableSpec {
    let money = |name: &str| Field::new(name, DataType::Float64, true);
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Schema::new(vec![
        text("event_id"),
        text("schema_version"),
        text("source"),
        text("coin_id"),
        text("symbol"),
        text("vs_currency"),
        Field::new("price", DataType::Float64, false),
        Field::new("ts_event", timestamp_type(), false),
        Field::new("ts_ingest", timestamp_type(), false),
        money("market_cap"),
        Field::new("market_cap_rank", DataType::Int64, true),
        money("fully_diluted_valuation"),
        money("total_volume"),
        money("high_24h"),
        money("low_24h"),
        money("price_change_24h"),
        money("price_change_percentage_24h"),
        money("market_cap_change_24h"),
        money("market_cap_change_percentage_24h"),
        money("circulating_supply"),
        money("total_supply"),
        money("max_supply"),
        money("ath"),
        money("ath_change_percentage"),
        Field::new("ath_date", timestamp_type(), true),
        money("atl"),
        money("atl_change_percentage"),
        Field::new("atl_date", timestamp_type(), true),
        money("roi_times"),
        Field::new("roi_currency", DataType::Utf8, true),
        money("roi_percentage"),
        money("price_change_percentage_1h_in_currency"),
        money("price_change_percentage_24h_in_currency"),
        money("price_change_percentage_7d_in_currency"),
        Field::new("bronze_partition", DataType::Int32, false),
        Field::new("bronze_offset", DataType::Int64, false),
        Field::new("kafka_timestamp", timestamp_type(), true),
        Field::new("event_date", DataType::Date32, false),
    ]);
    TableSpec {
        name: TABLE,
        schema: Arc::new(schema),
        partition_columns: &["event_date"],
    }
}
