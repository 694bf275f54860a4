//! Bronze fixtures for the Silver and Gold tests: contract-valid price events built from the
//! contract's own example, written with the Bronze sink's append, and rows read back.

#![allow(dead_code)] // each test target uses its own part of the fixture

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lake::bronze::{self, BronzeRecord};
use lake::job::query::table_rows;
use lake::storage::Lake;
use serde_json::{json, Map, Value};

/// The contract's example price event (every field present).
const EXAMPLE: &str = include_str!("../../../contracts/EXAMPLES/example_btc.json");

/// Topics as the sink names them.
pub const RAW: &str = "crypto.prices.raw";
/// Dead-letter topic.
pub const DLQ: &str = "crypto.prices.dlq";
/// Alert topic.
pub const ALERTS: &str = "crypto.alerts";

/// `text` (RFC 3339) as an instant; panics on a typo in a test.
pub fn at(text: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&Utc),
        Err(error) => panic!("bad test timestamp {text}: {error}"),
    }
}

/// A lake in a fresh temporary folder (removed when the folder guard drops).
pub fn temp_lake() -> (tempfile::TempDir, Lake) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("temp dir: {error}"),
    };
    match Lake::parse(&dir.path().display().to_string()) {
        Ok(lake) => (dir, lake),
        Err(error) => panic!("lake: {error}"),
    }
}

/// The contract's timestamp text (milliseconds, `Z`).
pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One poll of one coin.
#[derive(Clone, Debug, PartialEq)]
pub struct Poll {
    /// Coin.
    pub coin: String,
    /// Event time.
    pub ts_event: DateTime<Utc>,
    /// Poll time.
    pub ts_ingest: DateTime<Utc>,
    /// Price.
    pub price: f64,
    /// Market cap.
    pub market_cap: Option<f64>,
    /// 24 h volume.
    pub total_volume: Option<f64>,
}

impl Poll {
    /// A poll of `coin` at `ts_event`, received 20 s later.
    pub fn new(coin: &str, ts_event: DateTime<Utc>, price: f64) -> Self {
        Self {
            coin: coin.to_owned(),
            ts_event,
            ts_ingest: ts_event + TimeDelta::seconds(20),
            price,
            market_cap: Some(price * 1000.0),
            total_volume: Some(price * 10.0),
        }
    }

    /// The event as JSON (the contract example with this poll's values).
    pub fn event(&self) -> Value {
        let mut event: Value = match serde_json::from_str(EXAMPLE) {
            Ok(event) => event,
            Err(error) => panic!("the contract example is not JSON: {error}"),
        };
        let ts_event = text(self.ts_event);
        event["coin_id"] = json!(self.coin);
        event["symbol"] = json!(self.coin.chars().take(3).collect::<String>());
        event["vs_currency"] = json!("usd");
        event["price"] = json!(self.price);
        event["ts_event"] = json!(ts_event);
        event["ts_ingest"] = json!(text(self.ts_ingest));
        event["market_cap"] = json!(self.market_cap);
        event["total_volume"] = json!(self.total_volume);
        event["event_id"] = json!(contract::event_id(&self.coin, "usd", &ts_event));
        event
    }

    /// The event's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.event().to_string().into_bytes()
    }
}

/// Records of one Bronze table, offsets assigned per partition in push order.
#[derive(Default)]
pub struct BronzeBuilder {
    records: Vec<BronzeRecord>,
    next: BTreeMap<(String, i32), i64>,
}

impl BronzeBuilder {
    /// Adds a record; returns its offset.
    pub fn push(
        &mut self,
        topic: &str,
        partition: i32,
        kafka_timestamp: Option<DateTime<Utc>>,
        key: Option<&str>,
        value: Option<Vec<u8>>,
    ) -> i64 {
        let next = self.next.entry((topic.to_owned(), partition)).or_default();
        let offset = *next;
        *next += 1;
        self.records.push(BronzeRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp_ms: kafka_timestamp.map(|t| t.timestamp_millis()),
            key: key.map(|k| k.as_bytes().to_vec()),
            value,
            headers: vec![],
        });
        offset
    }

    /// Adds `poll` to partition `partition` of the raw topic, stamped by Kafka 100 ms after
    /// its poll; returns its offset.
    pub fn poll(&mut self, partition: i32, poll: &Poll) -> i64 {
        let kafka = poll.ts_ingest + TimeDelta::milliseconds(100);
        self.push(
            RAW,
            partition,
            Some(kafka),
            Some(&poll.coin),
            Some(poll.bytes()),
        )
    }

    /// Appends what was pushed since the last call to the Bronze `table` of `lake`.
    pub async fn append_to(&mut self, lake: &Lake, table: &str) {
        let created = lake
            .open_or_create(table, bronze::columns(), &[bronze::PARTITION_COLUMN])
            .await;
        let table_handle = match created {
            Ok(handle) => handle,
            Err(error) => panic!("creating {table}: {error}"),
        };
        let records = std::mem::take(&mut self.records);
        if let Err(error) = bronze::append(table_handle, table, "fixture", &records).await {
            panic!("appending to {table}: {error}");
        }
    }
}

/// A dead-letter envelope (contract `dead_letter` 1.0) for `original`, rejected for `keyword`
/// at `pointer`, read from `raw_offset` of the raw topic.
pub fn dead_letter(
    original: &Value,
    keyword: &str,
    pointer: &str,
    raw_offset: i64,
    source_timestamp: DateTime<Utc>,
) -> Vec<u8> {
    let data = original.to_string();
    json!({
        "schema_version": "1.0",
        "error_kind": "schema_violation",
        "reason": {
            "keyword": keyword,
            "instance_path": pointer,
            "schema_path": format!("/properties{pointer}/{keyword}"),
            "message": format!("{pointer} breaks {keyword}"),
        },
        "errors_total": 1,
        "source": {
            "topic": RAW,
            "partition": 0,
            "offset": raw_offset,
            "key": original["coin_id"],
            "timestamp": text(source_timestamp),
        },
        "original": { "encoding": "utf8", "size_bytes": data.len(), "data": data },
        "app": "validator",
        "ts_dead_letter": text(source_timestamp + TimeDelta::milliseconds(50)),
    })
    .to_string()
    .into_bytes()
}

/// An alert (contract `alert_event` 1.0) on `coin` at `ts_event`.
pub fn alert(coin: &str, ts_event: DateTime<Utc>, severity: &str) -> Vec<u8> {
    let ts = text(ts_event);
    let id = contract::sha256_hex(&format!("price_move|{coin}|usd|1h|{ts}"));
    json!({
        "schema_version": "1.0",
        "alert_id": id,
        "rule": "price_move",
        "severity": severity,
        "coin_id": coin,
        "vs_currency": "usd",
        "window": "1h",
        "observed": 0.07,
        "threshold": 0.05,
        "ts_event": ts,
        "ts_alert": text(ts_event + TimeDelta::seconds(1)),
        "message": format!("{coin}/usd moved 7 % in 1h"),
    })
    .to_string()
    .into_bytes()
}

/// Every row of `table`, sorted by `order_by`; panics on a read failure.
pub async fn rows(lake: &Lake, table: &str, order_by: &[&str]) -> Vec<Map<String, Value>> {
    match table_rows(lake, table, order_by).await {
        Ok(rows) => rows,
        Err(error) => panic!("reading {table}: {error}"),
    }
}

/// Field `name` of `row` as text (`""` when absent).
pub fn str_of<'a>(row: &'a Map<String, Value>, name: &str) -> &'a str {
    row.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Field `name` of `row` as an integer.
pub fn i64_of(row: &Map<String, Value>, name: &str) -> Option<i64> {
    row.get(name).and_then(Value::as_i64)
}

/// Field `name` of `row` as a number.
pub fn f64_of(row: &Map<String, Value>, name: &str) -> Option<f64> {
    row.get(name).and_then(Value::as_f64)
}

/// Field `name` of `row` as an instant (Arrow writes timestamps as RFC 3339 text).
pub fn ts_of(row: &Map<String, Value>, name: &str) -> Option<DateTime<Utc>> {
    let text = row.get(name)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}
