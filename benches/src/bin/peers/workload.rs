//! The workloads every peer implements (`benches/PEERS.md`), the reference model of what each
//! must output for given events, and the order-independent digest the outputs are compared by.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use benches::data::PriceEvent;
use benches::topologies::{hopping_windows, PriceStats, Tick};
use clap::ValueEnum;
use serde_json::Value;

/// What a system under test does with the price events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Workload {
    /// Parse, drop invalid prices, map to `{coin_id, price, ts_event, sent_ms}`.
    Stateless,
    /// Hopping 1 h / 5 min windows per key: count, sum, min, max of the price, every update.
    Hopping,
    /// The first event of each `(key, ts_event)` within 7 days, unchanged.
    Dedup,
    /// Copy every record unchanged (what the raw rdkafka ceiling does; no peer runs it).
    Copy,
}

impl Workload {
    /// Name in tables, JSON, topic names and the peers' `--workload` flag.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stateless => "stateless",
            Self::Hopping => "hopping",
            Self::Dedup => "dedup",
            Self::Copy => "copy",
        }
    }

    /// The digest of what a correct implementation outputs for `events`, taken in input order
    /// (the order within each key, which is all that matters).
    pub fn reference(self, events: &[PriceEvent]) -> Digest {
        let mut digest = Digest::default();
        match self {
            Self::Copy => {
                for e in events {
                    digest.add(&event_form(&e.coin_id, &e.coin_id, e.ts_event, e.price));
                }
            }
            Self::Stateless => {
                for e in events.iter().filter(|e| e.price.is_some()) {
                    digest.add(&event_form(&e.coin_id, &e.coin_id, e.ts_event, e.price));
                }
            }
            Self::Dedup => {
                let mut seen = HashSet::new();
                for e in events {
                    if seen.insert((e.coin_id.as_str(), e.ts_event)) {
                        digest.add(&event_form(&e.coin_id, &e.coin_id, e.ts_event, e.price));
                    }
                }
            }
            Self::Hopping => hopping_reference(events, &mut digest),
        }
        digest
    }

    /// The canonical form of one output record of this workload, or why it is malformed.
    pub fn canonical(self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<String, String> {
        let key = std::str::from_utf8(key.ok_or("no key")?).map_err(|e| e.to_string())?;
        let value: Value =
            serde_json::from_slice(value.ok_or("no value")?).map_err(|e| e.to_string())?;
        let int = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("{field} is not an integer in {value}"))
        };
        let float = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("{field} is not a number in {value}"))
        };
        let coin = value
            .get("coin_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("coin_id is not a string in {value}"))?;
        Ok(match self {
            Self::Copy | Self::Stateless | Self::Dedup => {
                let price = match value.get("price") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(float("price")?),
                };
                event_form(key, coin, int("ts_event")?, price)
            }
            Self::Hopping => window_form(
                key,
                coin,
                (int("window_start")?, int("window_end")?),
                &PriceStats {
                    count: int("count")? as u64,
                    sum: float("sum")?,
                    min: float("min")?,
                    max: float("max")?,
                    last_sent_ms: 0,
                },
            ),
        })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every window update of the hopping workload: per key, the open windows in start order; a
/// window is dropped once an event of its key lies past its end (event time never decreases
/// within a key).
fn hopping_reference(events: &[PriceEvent], digest: &mut Digest) {
    let windows = hopping_windows();
    let size = windows.size_ms();
    let mut open: HashMap<&str, VecDeque<(i64, PriceStats)>> = HashMap::new();
    for e in events {
        let Some(price) = e.price else { continue };
        let key = open.entry(e.coin_id.as_str()).or_default();
        while key
            .front()
            .is_some_and(|(start, _)| start + size <= e.ts_event)
        {
            key.pop_front();
        }
        let tick = Tick { price, sent_ms: 0 };
        for start in windows.window_starts_for(e.ts_event) {
            let at = match key.binary_search_by_key(&start, |(s, _)| *s) {
                Ok(at) => at,
                Err(at) => {
                    key.insert(at, (start, PriceStats::empty()));
                    at
                }
            };
            let stats = key[at].1.with_tick(&tick);
            key[at].1 = stats;
            digest.add(&window_form(
                &e.coin_id,
                &e.coin_id,
                (start, start + size),
                &stats,
            ));
        }
    }
}

/// Prices compare in whole cents: every generated price is one, and parsers in different
/// languages may round the last binary digit differently.
fn cents(price: f64) -> i64 {
    (price * 100.0).round() as i64
}

/// The canonical form of an event-shaped output (copy, stateless, dedup).
fn event_form(key: &str, coin: &str, ts_event: i64, price: Option<f64>) -> String {
    match price {
        Some(price) => format!("{key}|{coin}|{ts_event}|{}", cents(price)),
        None => format!("{key}|{coin}|{ts_event}|null"),
    }
}

/// The canonical form of one hopping window update (`sent_ms` is left out: it is when the
/// harness produced the input, not a result).
fn window_form(key: &str, coin: &str, (start, end): (i64, i64), stats: &PriceStats) -> String {
    format!(
        "{key}|{coin}|{start}|{end}|{}|{}|{}|{}",
        stats.count,
        cents(stats.sum),
        cents(stats.min),
        cents(stats.max)
    )
}

/// An order-independent digest of a multiset of output records: how many, and the wrapping sum
/// of a 64-bit hash of each one's canonical form. A missing, extra, duplicated or different
/// record changes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    /// Records.
    pub count: u64,
    /// Wrapping sum of the records' hashes.
    pub sum: u64,
}

impl Digest {
    /// Adds one record, given in canonical form.
    pub fn add(&mut self, canonical: &str) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(hash(canonical.as_bytes()));
    }

    /// The sum as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.sum)
    }
}

/// FNV-1a, then the SplitMix64 finalizer to spread it over all 64 bits.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use benches::data::{encode, generate_with, Shape};
    use benches::topologies::expected_hopping_outputs;

    fn events() -> Vec<PriceEvent> {
        let shape = Shape {
            keys: 20,
            step_ms: 60_000,
            duplicates_per_mille: 100,
            invalid_per_mille: 100,
        };
        generate_with(2_000, shape, 1_800_000_000_000)
    }

    #[test]
    fn digest_ignores_order_but_not_content() {
        let mut a = Digest::default();
        let mut b = Digest::default();
        for s in ["x", "y", "y"] {
            a.add(s);
        }
        for s in ["y", "x", "y"] {
            b.add(s);
        }
        assert_eq!(a, b);
        b.add("x");
        assert_ne!(a.sum, Digest { count: 4, ..b }.sum);
    }

    #[test]
    fn reference_counts_follow_the_rules() {
        let events = events();
        let valid = events.iter().filter(|e| e.price.is_some()).count() as u64;
        let distinct = events
            .iter()
            .map(|e| (&e.coin_id, e.ts_event))
            .collect::<HashSet<_>>()
            .len() as u64;
        assert_eq!(Workload::Copy.reference(&events).count, 2_000);
        assert_eq!(Workload::Stateless.reference(&events).count, valid);
        assert_eq!(Workload::Dedup.reference(&events).count, distinct);
        assert!(distinct < 2_000 && valid < 2_000);
        assert_eq!(
            Workload::Hopping.reference(&events).count,
            expected_hopping_outputs(&events)
        );
    }

    #[test]
    fn an_unchanged_copy_matches_the_copy_reference() {
        let events = events();
        let mut digest = Digest::default();
        for e in &events {
            let value = encode(e, 7);
            let form = Workload::Copy
                .canonical(Some(e.coin_id.as_bytes()), Some(&value))
                .unwrap();
            digest.add(&form);
        }
        assert_eq!(digest, Workload::Copy.reference(&events));
    }

    #[test]
    fn window_outputs_parse_to_the_reference_form() {
        let value = br#"{"coin_id":"coin-1","window_start":0,"window_end":3600000,"count":2,"sum":3.3000000000000003,"min":1.1,"max":2.2,"sent_ms":5}"#;
        let form = Workload::Hopping
            .canonical(Some(b"coin-1"), Some(value))
            .unwrap();
        assert_eq!(form, "coin-1|coin-1|0|3600000|2|330|110|220");
    }
}
