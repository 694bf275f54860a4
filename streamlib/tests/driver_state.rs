//! The test driver over persistent RocksDB state and TTL stores.

use std::time::Duration;

use streamlib::prelude::*;
use streamlib::processor::PunctuatorId;
use streamlib::testing::{DriverConfig, TopologyTestDriver};

fn counting_topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream("in", StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .count("counts")
        .to_stream()
        .to("out", StringSerde, Nullable(I64Serde));
    b.build()
}

#[test]
fn rocksdb_state_survives_a_restart_of_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        partitions: 3,
        state_dir: Some(dir.path().to_path_buf()),
        ..DriverConfig::default()
    };
    let mut first = TopologyTestDriver::new(counting_topology(), config.clone()).unwrap();
    for key in ["a", "b", "a", "c", "a"] {
        first
            .pipe("in", &StringSerde, &StringSerde, key.into(), "x".into(), 0)
            .unwrap();
    }
    let changelog = first.read_raw("test-app-counts-changelog");
    assert_eq!(changelog.len(), 5, "one changelog record per store write");
    first.close().unwrap();
    assert!(
        dir.path().join("test-app").exists(),
        "stores live under <state.dir>/<app>/<task>/<store>"
    );

    let mut second = TopologyTestDriver::new(counting_topology(), config).unwrap();
    second
        .pipe("in", &StringSerde, &StringSerde, "a".into(), "x".into(), 1)
        .unwrap();
    let out = second.read_output("out", &StringSerde, &I64Serde).unwrap();
    assert_eq!(out[0].value, 4, "count continues from the persisted state");
    assert_eq!(
        second
            .store_get("counts", &StringSerde, &I64Serde, &"b".to_string())
            .unwrap(),
        Some(1)
    );
}

/// Forwards the first occurrence of each value within the TTL (stream time).
struct Dedup;

impl Processor<String, String, String, String> for Dedup {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<(), ProcessError> {
        ctx.schedule(1_000, PunctuationType::StreamTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        let now = ctx.stream_time();
        let seen = ctx.ttl_store("seen")?;
        if seen.get(record.value.as_bytes(), now)?.is_some() {
            ctx.record_drop();
            return Ok(());
        }
        seen.put(record.value.as_bytes(), b"", now)?;
        ctx.forward(record)
    }

    fn punctuate(
        &mut self,
        _: PunctuatorId,
        now: i64,
        ctx: &mut ProcessorContext<'_, String, String>,
    ) -> Result<(), ProcessError> {
        ctx.ttl_store("seen")?.purge_expired(now)?;
        Ok(())
    }
}

#[test]
fn ttl_store_deduplicates_within_its_horizon() {
    let b = StreamsBuilder::new();
    let s = b.stream("in", StringSerde, StringSerde);
    s.with_store(StoreSpec::new(
        "seen",
        StoreKind::Ttl {
            ttl: Duration::from_secs(10),
        },
    ));
    s.process(|| Dedup, &["seen"])
        .to("out", StringSerde, StringSerde);
    let mut d = TopologyTestDriver::new(b.build(), DriverConfig::default()).unwrap();
    for (value, ts) in [
        ("e1", 0),
        ("e1", 5_000),
        ("e2", 6_000),
        ("e1", 9_999),
        ("e1", 10_000),
    ] {
        d.pipe(
            "in",
            &StringSerde,
            &StringSerde,
            "k".into(),
            value.into(),
            ts,
        )
        .unwrap();
    }
    let out: Vec<(String, i64)> = d
        .read_output("out", &StringSerde, &StringSerde)
        .unwrap()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        vec![
            ("e1".into(), 0),
            ("e2".into(), 6_000),
            ("e1".into(), 10_000)
        ]
    );
    assert_eq!(d.metrics().dropped, 2);
}
