//! Throughput of windowed aggregations on the TopologyTestDriver (records/s), and raw RocksDB
//! write-batch puts as the ceiling.
//!
//! Run: `cargo bench -p benches --bench windows`

use std::time::Duration;

use benches::driver::{self, Input};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamlib::prelude::*;
use streamlib::state::{rocksdb_store, RocksDbShared};

const KEYS: usize = 10_000;
const RECORDS: usize = 20_000;

fn inputs() -> Vec<Input> {
    // 10k keys, one record per key every ~30 s of event time, in time order.
    (0..RECORDS)
        .map(|i| {
            let key = format!("coin-{}", i % KEYS).into_bytes();
            let price = (100.0 + (i % 97) as f64).to_be_bytes().to_vec();
            ("prices", key, price, (i as i64) * 3)
        })
        .collect()
}

fn hopping_topology(in_memory: bool) -> Topology {
    let b = StreamsBuilder::new();
    let store = Materialized::as_store("hop");
    let store = if in_memory { store.in_memory() } else { store };
    b.stream("prices", StringSerde, F64Serde)
        .group_by_key(StringSerde, F64Serde)
        .windowed_by(
            TimeWindows::of(Duration::from_secs(3600)).advance_by(Duration::from_secs(300)),
        )
        .aggregate(|| 0.0, |_, v, sum| sum + v, |a, b| a + b, F64Serde, store)
        .to_stream()
        .to("out", WindowedSerde::new(StringSerde), Nullable(F64Serde));
    b.build()
}

fn tumbling_topology() -> Topology {
    let b = StreamsBuilder::new();
    b.stream("prices", StringSerde, F64Serde)
        .group_by_key(StringSerde, F64Serde)
        .windowed_by(TimeWindows::of(Duration::from_secs(300)))
        .count(Materialized::as_store("tumble").in_memory())
        .to_stream()
        .to("out", WindowedSerde::new(StringSerde), Nullable(I64Serde));
    b.build()
}

fn bench_windows(c: &mut Criterion) {
    let data = inputs();
    let mut group = c.benchmark_group("windowed_aggregate");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    for (name, in_memory) in [
        ("hopping_1h_5m_memory", true),
        ("hopping_1h_5m_rocksdb", false),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || driver::on_disk(hopping_topology(in_memory)),
                |(mut driver, _dir)| driver::pipe_all(&mut driver, &data, "out"),
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("tumbling_count_5m_memory", |b| {
        b.iter_batched(
            || driver::on_disk(tumbling_topology()),
            |(mut driver, _dir)| driver::pipe_all(&mut driver, &data, "out"),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("rocksdb_ceiling");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.bench_function("write_batch_put_commit_per_1000", |b| {
        let shared = RocksDbShared::new(64 << 20);
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let mut store = rocksdb_store("ceiling", dir.path(), &shared, false).expect("open");
                for (i, (_, k, v, _)) in data.iter().enumerate() {
                    store.put(k, v).expect("put");
                    if i % 1000 == 999 {
                        store.commit(Some(i as i64)).expect("commit");
                    }
                }
                store.commit(Some(RECORDS as i64)).expect("commit");
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_windows);
criterion_main!(benches);
