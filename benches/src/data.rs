//! The synthetic price events and the two ways they reach the input topic: all at once before a
//! throughput run, or at a fixed rate during a latency ("live") run.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::producer::BaseRecord;
use serde_json::json;

use crate::kafka::{self, CountingProducer};

/// Event time between two consecutive events.
pub const EVENT_STEP_MS: i64 = 1_000;

/// One price tick of one coin.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceEvent {
    /// Record key, `coin-<n>`.
    pub coin_id: String,
    /// Price in USD: a whole number of cents, positive; `None` for an invalid event (JSON
    /// `null`, as CoinGecko sends for unknown prices).
    pub price: Option<f64>,
    /// Event time in ms; also the Kafka timestamp of the record.
    pub ts_event: i64,
}

/// SplitMix64: spreads consecutive indices over the key space deterministically.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What [`generate_with`] puts into a data set besides clean, unique events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Distinct keys (coins).
    pub keys: u64,
    /// Event time between two consecutive distinct events, ms.
    pub step_ms: i64,
    /// Per mille of events sent twice in a row (same key, price and `ts_event`), as when a poll
    /// returns an item that has not changed since the last one.
    pub duplicates_per_mille: u64,
    /// Per mille of events whose price is `null`.
    pub invalid_per_mille: u64,
}

impl Shape {
    /// Clean data: `keys` coins, one event every [`EVENT_STEP_MS`], no duplicates, no invalid
    /// prices.
    pub fn clean(keys: u64) -> Self {
        Self {
            keys,
            step_ms: EVENT_STEP_MS,
            duplicates_per_mille: 0,
            invalid_per_mille: 0,
        }
    }
}

/// `n` clean events over `keys` coins, event times [`EVENT_STEP_MS`] apart and ending at
/// `end_ms` (so they stay inside the broker's timestamp and retention limits).
pub fn generate(n: u64, keys: u64, end_ms: i64) -> Vec<PriceEvent> {
    generate_with(n, Shape::clean(keys), end_ms)
}

/// `n` events shaped by `shape`, ending at `end_ms`. Event time never decreases, so within a
/// partition (and a key) records arrive in event-time order; a duplicate directly follows its
/// original.
pub fn generate_with(n: u64, shape: Shape, end_ms: i64) -> Vec<PriceEvent> {
    let keys = shape.keys.max(1);
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let first = end_ms - (n as i64) * shape.step_ms;
    let mut events = Vec::with_capacity(n);
    let mut i: u64 = 0;
    while events.len() < n {
        let coin = mix(i) % keys;
        let cents = 100 + (coin % 5_000) * 37 + mix(i ^ 0xABCD) % 1_000;
        let valid = mix(i ^ 0x1A7A) % 1_000 >= shape.invalid_per_mille;
        let event = PriceEvent {
            coin_id: format!("coin-{coin}"),
            price: valid.then_some(cents as f64 / 100.0),
            ts_event: first + (i as i64) * shape.step_ms,
        };
        if mix(i ^ 0xD0B1E) % 1_000 < shape.duplicates_per_mille && events.len() + 1 < n {
            events.push(event.clone());
        }
        events.push(event);
        i += 1;
    }
    events
}

/// The record value: a CoinGecko-like JSON object; `sent_ms` is the wall-clock time at which the
/// harness produced it (for latency).
pub fn encode(event: &PriceEvent, sent_ms: i64) -> Vec<u8> {
    json!({
        "coin_id": event.coin_id,
        "vs_currency": "usd",
        "price": event.price,
        "market_cap": event.price.map(|p| p * 19_000_000.0),
        "volume_24h": event.price.map(|p| p * 1_234_567.0),
        "ts_event": event.ts_event,
        "sent_ms": sent_ms,
        "source": "harness",
    })
    .to_string()
    .into_bytes()
}

/// Sends one event to `topic`, keyed by coin id, with the event time as Kafka timestamp.
fn send_event(producer: &CountingProducer, topic: &str, event: &PriceEvent) -> Result<()> {
    let value = encode(event, kafka::now_ms());
    let record = BaseRecord::to(topic)
        .key(event.coin_id.as_bytes())
        .payload(value.as_slice())
        .timestamp(event.ts_event);
    kafka::send(producer, record)
}

/// Produces every event to `topic` as fast as the broker takes them; returns how long it took.
pub fn preproduce(bootstrap: &str, topic: &str, events: &[PriceEvent]) -> Result<Duration> {
    let config = kafka::producer_config(bootstrap, &[("linger.ms", "20")]);
    let (producer, deliveries) = kafka::counting_producer(&config)?;
    let started = Instant::now();
    for event in events {
        send_event(&producer, topic, event)?;
    }
    kafka::finish(&producer, &deliveries, events.len() as u64)?;
    Ok(started.elapsed())
}

/// Starts a thread that produces `events` to `topic` at `rate` records per second (on a fixed
/// schedule, so it does not drift) with `linger.ms=1`; the thread returns the records sent.
pub fn spawn_paced(
    bootstrap: &str,
    topic: &str,
    events: Vec<PriceEvent>,
    rate: u64,
) -> Result<JoinHandle<Result<u64>>> {
    let target = topic.to_string();
    kafka::spawn_paced(
        bootstrap,
        &[topic],
        events,
        rate,
        None,
        move |producer, event| send_event(producer, &target, event),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_advance_one_second_and_end_before_end_ms() {
        let events = generate(5, 3, 10_000);
        let times: Vec<i64> = events.iter().map(|e| e.ts_event).collect();
        assert_eq!(times, vec![5_000, 6_000, 7_000, 8_000, 9_000]);
        assert!(events.iter().all(|e| e.price.is_some_and(|p| p > 0.0)));
    }

    #[test]
    fn shaped_data_has_adjacent_duplicates_and_null_prices() {
        let shape = Shape {
            keys: 100,
            step_ms: 10,
            duplicates_per_mille: 100,
            invalid_per_mille: 50,
        };
        let events = generate_with(20_000, shape, 1_000_000);
        assert_eq!(events.len(), 20_000);
        assert!(events.windows(2).all(|w| w[0].ts_event <= w[1].ts_event));
        let duplicates = events.windows(2).filter(|w| w[0] == w[1]).count();
        let invalid = events.iter().filter(|e| e.price.is_none()).count();
        assert!(
            (1_400..2_200).contains(&duplicates),
            "{duplicates} duplicates"
        );
        assert!((700..1_300).contains(&invalid), "{invalid} invalid");
        let value: serde_json::Value = serde_json::from_slice(&encode(
            events.iter().find(|e| e.price.is_none()).unwrap(),
            1,
        ))
        .unwrap();
        assert!(value["price"].is_null());
    }

    #[test]
    fn encoded_value_carries_sent_ms() {
        let event = &generate(1, 1, 1_000)[0];
        let value: serde_json::Value = serde_json::from_slice(&encode(event, 42)).unwrap();
        assert_eq!(value["sent_ms"], 42);
        assert_eq!(value["coin_id"], "coin-0");
    }
}
