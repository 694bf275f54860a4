//! The fact tables of the star schema (migrations/0002_facts.sql): for each, its grain, the
//! Delta table it is loaded from, the time column that places a row in a data interval, and the
//! columns copied. Every fact joins `dim_coin` on `coin_id` and `dim_date` on the UTC day of its
//! time column.

use crate::interval::Grain;

/// A column's type, the same on both sides: Arrow (after a cast) and PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `text` / Utf8.
    Text,
    /// `integer` / Int32.
    Int4,
    /// `bigint` / Int64.
    Int8,
    /// `double precision` / Float64.
    Float8,
    /// `timestamptz` / Timestamp(µs, UTC).
    Timestamptz,
    /// `date` / Date32.
    Date,
}

impl Kind {
    /// The PostgreSQL type name.
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int4 => "integer",
            Kind::Int8 => "bigint",
            Kind::Float8 => "double precision",
            Kind::Timestamptz => "timestamptz",
            Kind::Date => "date",
        }
    }
}

/// A column read from the Delta source into staging and, unless it only feeds a dimension,
/// into the fact.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// Its name in the Delta table.
    pub source: &'static str,
    /// Its name in staging and in the fact.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether the fact has it (`false`: staging only, e.g. the symbol for `dim_coin`).
    pub in_fact: bool,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        source: name,
        name,
        kind,
        in_fact: true,
    }
}

const fn renamed(source: &'static str, name: &'static str, kind: Kind) -> Column {
    Column {
        source,
        name,
        kind,
        in_fact: true,
    }
}

const fn staging_only(name: &'static str, kind: Kind) -> Column {
    Column {
        source: name,
        name,
        kind,
        in_fact: false,
    }
}

/// One fact table and how it is loaded.
#[derive(Clone, Copy, Debug)]
pub struct Fact {
    /// The PostgreSQL table.
    pub table: &'static str,
    /// The Delta table under the lake root.
    pub source: &'static str,
    /// The grain of its time column, which decides how far a load's interval widens.
    pub grain: Grain,
    /// The column (staging name) that places a row in an interval; a `date` column becomes only
    /// the fact's `date_key`, a `timestamptz` column is also kept.
    pub time: &'static str,
    /// The source's partition column holding the UTC date of `time`, used to prune files.
    pub partition_date: Option<&'static str>,
    /// The staged column naming the coin's symbol, for `dim_coin`.
    pub symbol: Option<&'static str>,
    /// The columns staged, `coin_id` among them.
    pub columns: &'static [Column],
}

impl Fact {
    /// The kind of the time column.
    pub fn time_kind(&self) -> Kind {
        self.columns
            .iter()
            .find(|c| c.name == self.time)
            .map_or(Kind::Timestamptz, |c| c.kind)
    }

    /// The staged columns the fact keeps, besides `coin_key` and `date_key`.
    pub fn fact_columns(&self) -> impl Iterator<Item = &Column> {
        let date_time = self.time_kind() == Kind::Date;
        self.columns.iter().filter(move |c| {
            c.in_fact && c.name != "coin_id" && !(date_time && c.name == self.time)
        })
    }
}

use Kind::{Date, Float8, Int4, Int8, Text, Timestamptz};

const CANDLE_COLUMNS: &[Column] = &[
    col("coin_id", Text),
    col("vs_currency", Text),
    col("bucket_start", Timestamptz),
    col("open", Float8),
    col("high", Float8),
    col("low", Float8),
    col("close", Float8),
    col("polls", Int8),
    col("market_cap_close", Float8),
    col("volume_24h_close", Float8),
];

/// Every fact of the schema, in load order.
pub const FACTS: &[Fact] = &[
    Fact {
        table: "fact_price_snapshot",
        source: "silver/prices",
        grain: Grain::Event,
        time: "ts_event",
        partition_date: Some("event_date"),
        symbol: Some("symbol"),
        columns: &[
            col("coin_id", Text),
            staging_only("symbol", Text),
            col("vs_currency", Text),
            col("ts_event", Timestamptz),
            col("event_id", Text),
            col("schema_version", Text),
            col("source", Text),
            col("price", Float8),
            col("ts_ingest", Timestamptz),
            col("market_cap", Float8),
            col("market_cap_rank", Int8),
            col("fully_diluted_valuation", Float8),
            col("total_volume", Float8),
            col("high_24h", Float8),
            col("low_24h", Float8),
            col("price_change_24h", Float8),
            col("price_change_percentage_24h", Float8),
            col("market_cap_change_24h", Float8),
            col("market_cap_change_percentage_24h", Float8),
            col("circulating_supply", Float8),
            col("total_supply", Float8),
            col("max_supply", Float8),
            col("ath", Float8),
            col("ath_change_percentage", Float8),
            col("ath_date", Timestamptz),
            col("atl", Float8),
            col("atl_change_percentage", Float8),
            col("atl_date", Timestamptz),
            col("roi_times", Float8),
            col("roi_currency", Text),
            col("roi_percentage", Float8),
            col("price_change_percentage_1h_in_currency", Float8),
            col("price_change_percentage_24h_in_currency", Float8),
            col("price_change_percentage_7d_in_currency", Float8),
            col("bronze_partition", Int4),
            col("bronze_offset", Int8),
            col("kafka_timestamp", Timestamptz),
        ],
    },
    Fact {
        table: "fact_candle_hour",
        source: "gold/candles_1h",
        grain: Grain::Hour,
        time: "bucket_start",
        partition_date: Some("bucket_date"),
        symbol: None,
        columns: CANDLE_COLUMNS,
    },
    Fact {
        table: "fact_candle_day",
        source: "gold/candles_1d",
        grain: Grain::Day,
        time: "bucket_start",
        partition_date: Some("bucket_date"),
        symbol: None,
        columns: CANDLE_COLUMNS,
    },
    Fact {
        table: "fact_daily_metrics",
        source: "gold/daily_metrics",
        grain: Grain::Day,
        time: "date",
        partition_date: None,
        symbol: None,
        columns: &[
            col("coin_id", Text),
            col("vs_currency", Text),
            col("date", Date),
            col("close", Float8),
            col("simple_return", Float8),
            col("log_return", Float8),
            col("intraday_points", Int8),
            col("realized_vol", Float8),
            col("realized_vol_annualized", Float8),
            col("vol_7d", Float8),
            col("vol_30d", Float8),
            col("max_drawdown_30d", Float8),
        ],
    },
    Fact {
        table: "fact_dominance",
        source: "gold/dominance",
        grain: Grain::Day,
        time: "date",
        partition_date: None,
        symbol: None,
        columns: &[
            col("coin_id", Text),
            col("vs_currency", Text),
            col("date", Date),
            col("market_cap", Float8),
            col("total_market_cap", Float8),
            col("share", Float8),
        ],
    },
    Fact {
        table: "fact_alert",
        source: "silver/alerts",
        grain: Grain::Event,
        time: "ts_event",
        partition_date: Some("event_date"),
        symbol: None,
        columns: &[
            col("alert_id", Text),
            col("coin_id", Text),
            col("vs_currency", Text),
            col("ts_event", Timestamptz),
            col("schema_version", Text),
            col("rule", Text),
            col("severity", Text),
            renamed("window", "alert_window", Text),
            col("observed", Float8),
            col("threshold", Float8),
            col("ts_alert", Timestamptz),
            col("message", Text),
            col("bronze_partition", Int4),
            col("bronze_offset", Int8),
            col("kafka_timestamp", Timestamptz),
        ],
    },
    Fact {
        table: "fact_data_quality",
        source: "gold/data_quality",
        grain: Grain::Hour,
        time: "hour_start",
        partition_date: Some("hour_date"),
        symbol: None,
        columns: &[
            col("coin_id", Text),
            col("vs_currency", Text),
            col("hour_start", Timestamptz),
            col("polls_expected", Int8),
            col("polls_received", Int8),
            col("duplicates_removed", Int8),
            col("dead_letters", Int8),
            col("quarantined", Int8),
            col("max_staleness_seconds", Float8),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_stages_its_coin_and_time_and_keeps_date_times_as_keys_only() {
        for fact in FACTS {
            let names: Vec<&str> = fact.columns.iter().map(|c| c.name).collect();
            assert!(names.contains(&"coin_id"), "{}", fact.table);
            assert!(names.contains(&fact.time), "{}", fact.table);
            let kept: Vec<&str> = fact.fact_columns().map(|c| c.name).collect();
            assert!(!kept.contains(&"coin_id"));
            assert_eq!(
                kept.contains(&fact.time),
                fact.time_kind() == Kind::Timestamptz,
                "{}",
                fact.table
            );
        }
        let prices = &FACTS[0];
        assert!(!prices.fact_columns().any(|c| c.name == "symbol"));
    }
}
