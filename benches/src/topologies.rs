//! The streamlib topologies under test and their compact value serdes.

use std::time::Duration;

use serde_json::{json, Value};
use streamlib::prelude::*;
use streamlib::processor::PunctuatorId;
use streamlib::serdes::{JsonValueSerde, SerdeError};

use crate::data::PriceEvent;

/// Name of the hopping aggregation's RocksDB store (its changelog is
/// `<application.id>-hop-stats-changelog`).
pub const STATS_STORE: &str = "hop-stats";

/// 1 h windows starting every 5 min: each record updates 12 windows.
pub fn hopping_windows() -> TimeWindows {
    TimeWindows::of(Duration::from_secs(3600)).advance_by(Duration::from_secs(300))
}

/// The price of an input value when it is a finite, positive number.
fn valid_price(value: &Value) -> Option<f64> {
    value
        .get("price")
        .and_then(Value::as_f64)
        .filter(|p| p.is_finite() && *p > 0.0)
}

/// `stream(input) → filter(valid price) → map_values(smaller JSON) → to(output)`; JSON parsed
/// and written with `serde_json::Value`.
pub fn passthrough(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, StringSerde, JsonValueSerde)
        .filter(|_, value| valid_price(value).is_some())
        .map_values(|value| {
            json!({
                "coin_id": value["coin_id"],
                "price": value["price"],
                "ts_event": value["ts_event"],
                "sent_ms": value["sent_ms"],
            })
        })
        .to(output, StringSerde, JsonValueSerde);
    builder.build()
}

/// `stream(input) → filter → map_values(Tick) → group_by_key → windowed_by(1 h / 5 min) →
/// aggregate(PriceStats) on RocksDB, emit-on-update → to_stream → to(output)`, the output
/// value a 40-byte [`PriceStatsSerde`].
pub fn hopping(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    hopping_stats(&builder, input).to_stream().to(
        output,
        WindowedSerde::new(StringSerde),
        Nullable(PriceStatsSerde),
    );
    builder.build()
}

/// [`hopping`] with a JSON output as the peer comparison defines it (`benches/PEERS.md`):
/// key `coin_id`, value `{coin_id, window_start, window_end, count, sum, min, max, sent_ms}`.
pub fn hopping_json(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    hopping_stats(&builder, input)
        .to_stream()
        // A windowed aggregate never deletes: every update has a value.
        .flat_map(|window: Windowed<String>, stats: Option<PriceStats>| {
            let stats = stats?;
            let value = json!({
                "coin_id": window.key,
                "window_start": window.window.start,
                "window_end": window.window.end,
                "count": stats.count,
                "sum": stats.sum,
                "min": stats.min,
                "max": stats.max,
                "sent_ms": stats.last_sent_ms,
            });
            Some((window.key, value))
        })
        .to(output, StringSerde, JsonValueSerde);
    builder.build()
}

/// The windowed aggregate both hopping topologies share: valid prices of `input`, per key, in
/// 1 h windows every 5 min, on the RocksDB store [`STATS_STORE`].
fn hopping_stats(builder: &StreamsBuilder, input: &str) -> KTable<Windowed<String>, PriceStats> {
    builder
        .stream(input, StringSerde, JsonValueSerde)
        .filter(|_, value| valid_price(value).is_some())
        .map_values(|value| Tick {
            price: valid_price(&value).unwrap_or_default(),
            sent_ms: value["sent_ms"].as_i64().unwrap_or_default(),
        })
        .group_by_key(StringSerde, TickSerde)
        .windowed_by(hopping_windows())
        .aggregate(
            PriceStats::empty,
            |_, tick, stats| stats.with_tick(tick),
            PriceStats::merge,
            PriceStatsSerde,
            Materialized::as_store(STATS_STORE),
        )
}

/// Name of the dedup workload's TTL store.
pub const SEEN_STORE: &str = "dedup-seen";

/// How long the dedup workload remembers an event (stream time).
pub const DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// `stream(input) → process(Dedup) → to(output)`: forwards the first event of each
/// `(key, ts_event)` seen within [`DEDUP_TTL`], unchanged.
pub fn dedup(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    let events = builder.stream(input, StringSerde, JsonValueSerde);
    events.with_store(StoreSpec::new(
        SEEN_STORE,
        StoreKind::Ttl { ttl: DEDUP_TTL },
    ));
    events
        .process(|| Dedup, &[SEEN_STORE])
        .to(output, StringSerde, JsonValueSerde);
    builder.build()
}

/// Keeps the first event of each `(key, ts_event)` in the TTL store [`SEEN_STORE`] and purges
/// expired entries once an hour of stream time.
struct Dedup;

impl Dedup {
    /// Stream time between two purges of expired entries.
    const PURGE_EVERY_MS: i64 = 3_600_000;
}

impl Processor<String, Value, String, Value> for Dedup {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, Value>) -> Result<(), ProcessError> {
        ctx.schedule(Self::PURGE_EVERY_MS, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, Value>,
        ctx: &mut ProcessorContext<'_, String, Value>,
    ) -> Result<(), ProcessError> {
        let Some(ts_event) = record.value.get("ts_event").and_then(Value::as_i64) else {
            ctx.record_drop();
            return Ok(());
        };
        let mut key = Vec::with_capacity(record.key.len() + 9);
        key.extend_from_slice(record.key.as_bytes());
        key.push(0);
        key.extend_from_slice(&ts_event.to_be_bytes());
        let now = ctx.stream_time();
        let seen = ctx.ttl_store(SEEN_STORE)?;
        if seen.get(&key, now)?.is_some() {
            ctx.record_drop();
            return Ok(());
        }
        seen.put(&key, &[], now)?;
        ctx.forward(record)
    }

    fn punctuate(
        &mut self,
        _: PunctuatorId,
        now: i64,
        ctx: &mut ProcessorContext<'_, String, Value>,
    ) -> Result<(), ProcessError> {
        ctx.ttl_store(SEEN_STORE)?.purge_expired(now)?;
        Ok(())
    }
}

/// Outputs the hopping topology emits for `events` (emit-on-update, no late records: one per
/// window containing each event with a valid price).
pub fn expected_hopping_outputs(events: &[PriceEvent]) -> u64 {
    let windows = hopping_windows();
    events
        .iter()
        .filter(|e| e.price.is_some())
        .map(|e| windows.window_starts_for(e.ts_event).count() as u64)
        .sum()
}

/// What the hopping aggregation needs of an input: its price and when it was produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// Price.
    pub price: f64,
    /// Produce wall-clock time of the input (ms), carried through for latency.
    pub sent_ms: i64,
}

/// Reads 8 big-endian bytes at `at`.
fn word(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    word
}

/// Fails unless `bytes` has exactly `expected` bytes.
fn check_len(bytes: &[u8], expected: usize) -> Result<(), SerdeError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(SerdeError::Length {
            expected,
            actual: bytes.len(),
        })
    }
}

/// [`Tick`] as 16 bytes: price (f64) and sent_ms (i64), big-endian.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickSerde;

impl Serde<Tick> for TickSerde {
    fn serialize(&self, _topic: &str, tick: &Tick) -> Result<Vec<u8>, SerdeError> {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&tick.price.to_be_bytes());
        bytes.extend_from_slice(&tick.sent_ms.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<Tick, SerdeError> {
        check_len(bytes, 16)?;
        Ok(Tick {
            price: f64::from_be_bytes(word(bytes, 0)),
            sent_ms: i64::from_be_bytes(word(bytes, 8)),
        })
    }
}

/// Count, sum, min and max of the prices in one window, and the latest produce time of its
/// inputs (which, for an emit-on-update output, is the produce time of the input that caused it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriceStats {
    /// Number of prices.
    pub count: u64,
    /// Sum of prices.
    pub sum: f64,
    /// Smallest price (`+inf` when empty).
    pub min: f64,
    /// Largest price (`-inf` when empty).
    pub max: f64,
    /// Largest `sent_ms` of the inputs (`i64::MIN` when empty).
    pub last_sent_ms: i64,
}

impl PriceStats {
    /// The identity of [`PriceStats::merge`].
    pub fn empty() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last_sent_ms: i64::MIN,
        }
    }

    /// Folds one tick in.
    pub fn with_tick(self, tick: &Tick) -> Self {
        Self {
            count: self.count + 1,
            sum: self.sum + tick.price,
            min: self.min.min(tick.price),
            max: self.max.max(tick.price),
            last_sent_ms: self.last_sent_ms.max(tick.sent_ms),
        }
    }

    /// Combines two partial aggregates (panes of one window).
    pub fn merge(a: Self, b: Self) -> Self {
        Self {
            count: a.count + b.count,
            sum: a.sum + b.sum,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
            last_sent_ms: a.last_sent_ms.max(b.last_sent_ms),
        }
    }
}

/// Bytes of an encoded [`PriceStats`].
const STATS_LEN: usize = 40;

/// [`PriceStats`] as 40 bytes: count (u64), sum, min, max (f64), last_sent_ms (i64), big-endian.
#[derive(Clone, Copy, Debug, Default)]
pub struct PriceStatsSerde;

impl Serde<PriceStats> for PriceStatsSerde {
    fn serialize(&self, _topic: &str, stats: &PriceStats) -> Result<Vec<u8>, SerdeError> {
        let mut bytes = Vec::with_capacity(STATS_LEN);
        bytes.extend_from_slice(&stats.count.to_be_bytes());
        bytes.extend_from_slice(&stats.sum.to_be_bytes());
        bytes.extend_from_slice(&stats.min.to_be_bytes());
        bytes.extend_from_slice(&stats.max.to_be_bytes());
        bytes.extend_from_slice(&stats.last_sent_ms.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<PriceStats, SerdeError> {
        check_len(bytes, STATS_LEN)?;
        Ok(PriceStats {
            count: u64::from_be_bytes(word(bytes, 0)),
            sum: f64::from_be_bytes(word(bytes, 8)),
            min: f64::from_be_bytes(word(bytes, 16)),
            max: f64::from_be_bytes(word(bytes, 24)),
            last_sent_ms: i64::from_be_bytes(word(bytes, 32)),
        })
    }
}

/// `last_sent_ms` of an encoded [`PriceStats`], without decoding the rest.
pub fn stats_sent_ms(bytes: &[u8]) -> Option<i64> {
    (bytes.len() == STATS_LEN).then(|| i64::from_be_bytes(word(bytes, 32)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate;

    #[test]
    fn stats_round_trip_and_expose_sent_ms() {
        let stats = PriceStats::empty()
            .with_tick(&Tick {
                price: 2.0,
                sent_ms: 7,
            })
            .with_tick(&Tick {
                price: 1.0,
                sent_ms: 9,
            });
        let bytes = PriceStatsSerde.serialize("t", &stats).unwrap();
        assert_eq!(PriceStatsSerde.deserialize("t", &bytes).unwrap(), stats);
        assert_eq!(stats_sent_ms(&bytes), Some(9));
        assert_eq!((stats.count, stats.min, stats.max), (2, 1.0, 2.0));
    }

    #[test]
    fn merge_has_empty_as_identity() {
        let one = PriceStats::empty().with_tick(&Tick {
            price: 3.0,
            sent_ms: 1,
        });
        assert_eq!(PriceStats::merge(PriceStats::empty(), one), one);
    }

    #[test]
    fn every_event_far_from_the_epoch_opens_twelve_windows() {
        let events = generate(10, 5, 100_000_000);
        assert_eq!(expected_hopping_outputs(&events), 120);
    }
}
