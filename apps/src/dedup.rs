//! **dedup**: `crypto.prices.valid` → `crypto.prices.dedup`, the first occurrence of each
//! `(coin_id, vs_currency, ts_event)` within a horizon (default 7 days), kept in a TTL store
//! whose changelog makes it survive restarts. Duplicates are counted and dropped.

use std::time::Duration;

use serde::Deserialize;
use streamlib::error::ProcessError;
use streamlib::prelude::*;
use streamlib::serdes::BytesSerde;

use crate::counters::Counters;
use crate::event::{parse_ts_millis, unique_key};
use crate::topics::Topics;

/// Name of the TTL store of seen keys.
pub const STORE: &str = "dedup-seen";
/// Default horizon: how long a key is remembered, in event time.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often (stream time) expired keys are purged.
const PURGE_EVERY_MS: i64 = 60_000;

/// The fields of an event the key is made of.
#[derive(Deserialize)]
struct KeyFields {
    coin_id: String,
    vs_currency: String,
    ts_event: String,
}

/// `(key text, event time)` of an event, or why it has none.
fn key_of(bytes: &[u8]) -> Result<(String, i64), String> {
    let fields: KeyFields =
        serde_json::from_slice(bytes).map_err(|e| format!("not a price event: {e}"))?;
    let ts = parse_ts_millis(&fields.ts_event)
        .ok_or_else(|| format!("ts_event {:?} is not RFC 3339", fields.ts_event))?;
    Ok((
        unique_key(&fields.coin_id, &fields.vs_currency, &fields.ts_event),
        ts,
    ))
}

struct Dedup {
    counters: Counters,
}

impl Processor<Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>> for Dedup {
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, Vec<u8>, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        ctx.schedule(PURGE_EVERY_MS, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<Vec<u8>, Vec<u8>>,
        ctx: &mut ProcessorContext<'_, Vec<u8>, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let (key, ts) = key_of(&record.value).map_err(ProcessError::User)?;
        // Event time is the store's clock: a key lives `horizon` after its own ts_event, so a
        // replay of old data deduplicates exactly like the live feed did.
        let now = ts.max(ctx.stream_time());
        if ctx.ttl_store(STORE)?.get(key.as_bytes(), now)?.is_some() {
            self.counters.inc("dedup_duplicates_total", &[]);
            return Ok(());
        }
        ctx.ttl_store(STORE)?.put(key.as_bytes(), b"", ts)?;
        self.counters.inc("dedup_unique_total", &[]);
        ctx.forward(record)
    }

    fn punctuate(
        &mut self,
        _: streamlib::processor::PunctuatorId,
        timestamp: i64,
        ctx: &mut ProcessorContext<'_, Vec<u8>, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let purged = ctx.ttl_store(STORE)?.purge_expired(timestamp)?;
        self.counters
            .add("dedup_expired_keys_total", &[], purged as u64);
        Ok(())
    }
}

/// The dedup topology remembering keys for `horizon`, counting into `counters`.
pub fn topology(topics: &Topics, horizon: Duration, counters: &Counters) -> Topology {
    let builder = StreamsBuilder::new();
    counters.describe(
        "dedup_duplicates_total",
        "Events dropped because their key was seen within the horizon",
    );
    // Listed at 0 from the start: "no duplicates yet" is a value (the dashboard shows it).
    counters.add("dedup_duplicates_total", &[], 0);
    counters.describe("dedup_unique_total", "Events forwarded as first seen");
    counters.describe(
        "dedup_expired_keys_total",
        "Keys purged from the store once past the horizon",
    );
    let counters = counters.clone();
    let stream = builder.stream_with_timestamps(
        &topics.valid,
        BytesSerde,
        BytesSerde,
        |_, value: &Vec<u8>, kafka_ts| key_of(value).map(|(_, ts)| ts).unwrap_or(kafka_ts),
    );
    stream.with_store(StoreSpec::new(STORE, StoreKind::Ttl { ttl: horizon }));
    stream
        .process(
            move || Dedup {
                counters: counters.clone(),
            },
            &[STORE],
        )
        .to(&topics.dedup, BytesSerde, BytesSerde);
    builder.build()
}
