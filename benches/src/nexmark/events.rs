//! The Nexmark events (`nexmark` crate 0.2.0) and how they reach the three input topics: each
//! event is a record keyed by a UTF-8 decimal id (a person's or auction's `id`, a bid's
//! `auction`), valued by the crate's serde fields as JSON, timestamped by its `date_time`, and
//! partitioned by Kafka's murmur2 partitioner, so that a bid and its auction share a partition
//! number.
//!
//! The generator is deterministic: the same number of events over the same base time (and
//! rate) gives the same bytes, so the events are generated again wherever they are needed
//! (producing, the reference model) instead of being held in memory.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use nexmark::EventGenerator;
use rdkafka::producer::BaseRecord;

use super::{Query, Topics};
use crate::kafka::{self, CountingProducer};

/// The pinned base time of the throughput runs: 2026-01-01T00:00:00Z, a multiple of 10 s.
pub const BASE_TIME_MS: u64 = 1_767_225_600_000;

/// The kind of an event, which names its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A person joining.
    Person,
    /// An auction opening.
    Auction,
    /// A bid.
    Bid,
}

impl Kind {
    /// The kind of `event`.
    pub fn of(event: &Event) -> Self {
        match event {
            Event::Person(_) => Self::Person,
            Event::Auction(_) => Self::Auction,
            Event::Bid(_) => Self::Bid,
        }
    }

    /// Index into [`Counts`].
    fn index(self) -> usize {
        match self {
            Self::Person => 0,
            Self::Auction => 1,
            Self::Bid => 2,
        }
    }
}

/// The generator's configuration: its defaults (10 000 events per second of event time) with
/// `base_time`, or `rate` events per second when given.
pub fn config(base_time: u64, rate: Option<u64>) -> NexmarkConfig {
    let mut config = NexmarkConfig {
        base_time,
        ..Default::default()
    };
    if let Some(rate) = rate {
        let rate = usize::try_from(rate.max(1)).unwrap_or(usize::MAX);
        config.first_rate = rate;
        config.next_rate = rate;
    }
    config
}

/// The first `n` events from `base_time`, at the default rate.
pub fn generate(n: u64, base_time: u64) -> impl Iterator<Item = Event> {
    generate_with(n, config(base_time, None))
}

/// The first `n` events of `config`.
pub fn generate_with(n: u64, config: NexmarkConfig) -> impl Iterator<Item = Event> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    EventGenerator::new(config).take(n)
}

/// One event as a Kafka record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Which topic it goes to.
    pub kind: Kind,
    /// The id, in decimal.
    pub key: String,
    /// The crate's serde fields as JSON.
    pub value: Vec<u8>,
    /// `date_time`, ms since the epoch.
    pub timestamp: i64,
}

/// `event` as NEXMARK.md's "Input" table says.
pub fn encode(event: &Event) -> Result<Encoded> {
    let (key, value) = match event {
        Event::Person(p) => (p.id, serde_json::to_vec(p)),
        Event::Auction(a) => (a.id, serde_json::to_vec(a)),
        Event::Bid(b) => (b.auction, serde_json::to_vec(b)),
    };
    Ok(Encoded {
        kind: Kind::of(event),
        key: key.to_string(),
        value: value.context("encoding a Nexmark event")?,
        timestamp: i64::try_from(event.timestamp()).context("date_time beyond i64")?,
    })
}

/// How many events of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([u64; 3]);

impl Counts {
    /// Counts one event of `kind`.
    pub fn add(&mut self, kind: Kind) {
        self.0[kind.index()] += 1;
    }

    /// Events of `kind`.
    pub fn of(&self, kind: Kind) -> u64 {
        self.0[kind.index()]
    }

    /// Events `query` reads.
    pub fn read_by(&self, query: Query) -> u64 {
        query.reads().iter().map(|kind| self.of(*kind)).sum()
    }

    /// Events of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Sends one encoded event to its topic.
fn send(producer: &CountingProducer, topics: &Topics, event: &Encoded) -> Result<()> {
    let record = BaseRecord::to(topics.of(event.kind))
        .key(event.key.as_bytes())
        .payload(event.value.as_slice())
        .timestamp(event.timestamp);
    kafka::send(producer, record)
}

/// Produces `events` to their topics as fast as the broker takes them; returns how long it
/// took and how many events of each kind it sent.
pub fn preproduce(
    bootstrap: &str,
    topics: &Topics,
    events: impl IntoIterator<Item = Event>,
) -> Result<(Duration, Counts)> {
    let config = kafka::producer_config(bootstrap, &[("linger.ms", "20")]);
    let (producer, deliveries) = kafka::counting_producer(&config)?;
    let started = Instant::now();
    let mut counts = Counts::default();
    for event in events {
        let encoded = encode(&event)?;
        send(&producer, topics, &encoded)?;
        counts.add(encoded.kind);
    }
    kafka::finish(&producer, &deliveries, counts.total())?;
    Ok((started.elapsed(), counts))
}

/// Starts a thread that produces `events` to their topics at `rate` per second from wall-clock
/// time `start_at_ms` (see [`kafka::spawn_paced`]): with events generated at the same rate from
/// `base_time = start_at_ms`, each is produced when its timestamp says.
pub fn spawn_paced(
    bootstrap: &str,
    topics: &Topics,
    events: Vec<Encoded>,
    rate: u64,
    start_at_ms: i64,
) -> Result<JoinHandle<Result<u64>>> {
    let targets = topics.clone();
    kafka::spawn_paced(
        bootstrap,
        &topics.all(),
        events,
        rate,
        Some(start_at_ms),
        move |producer, event| send(producer, &targets, event),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(n: u64, base_time: u64) -> Vec<Encoded> {
        generate(n, base_time)
            .map(|e| encode(&e).unwrap())
            .collect()
    }

    #[test]
    fn the_first_event_is_the_crates_first_person_as_json() {
        let first = &encoded(1, BASE_TIME_MS)[0];
        assert_eq!(first.kind, Kind::Person);
        assert_eq!(first.key, "1000");
        assert_eq!(first.timestamp, BASE_TIME_MS as i64);
        let text = String::from_utf8(first.value.clone()).unwrap();
        assert!(
            text.starts_with(
                "{\"id\":1000,\"name\":\"vicky noris\",\"email_address\":\"yplkvgz@qbxfg.com\",\
                 \"credit_card\":\"7878 5821 1864 2539\",\"city\":\"cheyenne\",\"state\":\"az\",\
                 \"date_time\":1767225600000,\"extra\":\""
            ),
            "{text}"
        );
    }

    #[test]
    fn keys_fields_and_timestamps_follow_the_layout() {
        let mut kinds = Counts::default();
        for event in generate(500, BASE_TIME_MS) {
            let record = encode(&event).unwrap();
            kinds.add(record.kind);
            let value: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
            let fields: Vec<&str> = value
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let (key_field, mut expected) = match record.kind {
                Kind::Person => (
                    "id",
                    vec![
                        "id",
                        "name",
                        "email_address",
                        "credit_card",
                        "city",
                        "state",
                        "date_time",
                        "extra",
                    ],
                ),
                Kind::Auction => (
                    "id",
                    vec![
                        "id",
                        "item_name",
                        "description",
                        "initial_bid",
                        "reserve",
                        "date_time",
                        "expires",
                        "seller",
                        "category",
                        "extra",
                    ],
                ),
                Kind::Bid => (
                    "auction",
                    vec![
                        "auction",
                        "bidder",
                        "price",
                        "channel",
                        "url",
                        "date_time",
                        "extra",
                    ],
                ),
            };
            // serde_json's map sorts its keys: compare as sets.
            expected.sort_unstable();
            assert_eq!(fields, expected);
            assert_eq!(record.key, value[key_field].to_string());
            assert_eq!(Some(record.timestamp), value["date_time"].as_i64());
            assert!(value["date_time"].as_u64().unwrap() >= BASE_TIME_MS);
        }
        // 1 person, 3 auctions and 46 bids in every 50 events.
        assert_eq!(
            (
                kinds.of(Kind::Person),
                kinds.of(Kind::Auction),
                kinds.of(Kind::Bid)
            ),
            (10, 30, 460)
        );
        assert_eq!(kinds.read_by(Query::Q4), 490);
    }

    #[test]
    fn the_same_count_and_base_time_give_the_same_bytes() {
        assert_eq!(encoded(300, BASE_TIME_MS), encoded(300, BASE_TIME_MS));
        let later = encoded(300, BASE_TIME_MS + 1_000);
        assert_eq!(later[0].timestamp, BASE_TIME_MS as i64 + 1_000);
        assert_ne!(later, encoded(300, BASE_TIME_MS));
    }

    #[test]
    fn the_default_rate_is_ten_events_per_millisecond_and_a_set_rate_paces_time() {
        let last = generate(10_001, BASE_TIME_MS).last().unwrap();
        assert_eq!(last.timestamp(), BASE_TIME_MS + 1_000);
        let paced = generate_with(101, config(BASE_TIME_MS, Some(100)))
            .last()
            .unwrap();
        assert_eq!(paced.timestamp(), BASE_TIME_MS + 1_000);
    }
}
