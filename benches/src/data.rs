//! The synthetic price events and the two ways they reach the input topic: all at once before a
//! throughput run, or at a fixed rate during a latency ("live") run.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::json;

use crate::kafka::{self, CountingProducer, Deliveries};

/// Event time between two consecutive events.
pub const EVENT_STEP_MS: i64 = 1_000;

/// One price tick of one coin.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceEvent {
    /// Record key, `coin-<n>`.
    pub coin_id: String,
    /// Price in USD, always positive.
    pub price: f64,
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

/// `n` events over `keys` coins, event times [`EVENT_STEP_MS`] apart and ending at `end_ms`
/// (so they stay inside the broker's timestamp and retention limits).
pub fn generate(n: u64, keys: u64, end_ms: i64) -> Vec<PriceEvent> {
    let keys = keys.max(1);
    let first = end_ms - (n as i64) * EVENT_STEP_MS;
    (0..n)
        .map(|i| {
            let coin = mix(i) % keys;
            PriceEvent {
                coin_id: format!("coin-{coin}"),
                price: 1.0 + (coin % 5_000) as f64 * 0.37 + (mix(i ^ 0xABCD) % 1_000) as f64 * 0.01,
                ts_event: first + (i as i64) * EVENT_STEP_MS,
            }
        })
        .collect()
}

/// The record value: a CoinGecko-like JSON object; `sent_ms` is the wall-clock time at which the
/// harness produced it (for latency).
pub fn encode(event: &PriceEvent, sent_ms: i64) -> Vec<u8> {
    json!({
        "coin_id": event.coin_id,
        "vs_currency": "usd",
        "price": event.price,
        "market_cap": event.price * 19_000_000.0,
        "volume_24h": event.price * 1_234_567.0,
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

/// Waits until every record sent through `producer` is acknowledged and checks that none failed.
fn finish(producer: &CountingProducer, deliveries: &Deliveries, sent: u64) -> Result<()> {
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the producer")?;
    deliveries.check()?;
    anyhow::ensure!(
        deliveries.acked() == sent,
        "{} of {sent} records acknowledged",
        deliveries.acked()
    );
    Ok(())
}

/// Produces every event to `topic` as fast as the broker takes them; returns how long it took.
pub fn preproduce(bootstrap: &str, topic: &str, events: &[PriceEvent]) -> Result<Duration> {
    let config = kafka::producer_config(bootstrap, &[("linger.ms", "20")]);
    let (producer, deliveries) = kafka::counting_producer(&config)?;
    let started = Instant::now();
    for event in events {
        send_event(&producer, topic, event)?;
    }
    finish(&producer, &deliveries, events.len() as u64)?;
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
    let config = kafka::producer_config(bootstrap, &[("linger.ms", "1")]);
    let (producer, deliveries) = kafka::counting_producer(&config)?;
    // Connect and learn the topic's leaders before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), kafka::TIMEOUT)
        .context("fetching input metadata")?;
    let topic = topic.to_string();
    let rate = rate.max(1) as f64;
    std::thread::Builder::new()
        .name("harness-live-producer".into())
        .spawn(move || {
            let started = Instant::now();
            for (i, event) in events.iter().enumerate() {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                send_event(&producer, &topic, event)?;
            }
            finish(&producer, &deliveries, events.len() as u64)?;
            Ok(events.len() as u64)
        })
        .context("spawning the live producer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_advance_one_second_and_end_before_end_ms() {
        let events = generate(5, 3, 10_000);
        let times: Vec<i64> = events.iter().map(|e| e.ts_event).collect();
        assert_eq!(times, vec![5_000, 6_000, 7_000, 8_000, 9_000]);
        assert!(events.iter().all(|e| e.price > 0.0));
    }

    #[test]
    fn encoded_value_carries_sent_ms() {
        let event = &generate(1, 1, 1_000)[0];
        let value: serde_json::Value = serde_json::from_slice(&encode(event, 42)).unwrap();
        assert_eq!(value["sent_ms"], 42);
        assert_eq!(value["coin_id"], "coin-0");
    }
}
