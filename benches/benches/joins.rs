//! Throughput of joins on the TopologyTestDriver (input records/s), RocksDB stores: a windowed
//! stream–stream join, a stream–table join and a table–table join, each over 20 000 input
//! records on 2 000 keys.
//!
//! Run: `cargo bench -p benches --bench joins`

use std::time::Duration;

use benches::driver::{self, Input};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamlib::prelude::*;

const KEYS: usize = 2_000;
const RECORDS: usize = 20_000;

/// `(topic, key, value, timestamp)`: alternately left and right, one record per key every
/// ~2 s of event time per side, in time order.
fn inputs() -> Vec<Input> {
    (0..RECORDS)
        .map(|i| {
            let topic = if i % 2 == 0 { "left" } else { "right" };
            let key = format!("coin-{}", (i / 2) % KEYS).into_bytes();
            (topic, key, format!("v{i}").into_bytes(), i as i64)
        })
        .collect()
}

fn joined(l: &str, r: Option<&String>) -> String {
    format!("{l}|{}", r.map_or("", String::as_str))
}

fn stream_stream() -> Topology {
    let b = StreamsBuilder::new();
    let windows =
        JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(1));
    b.stream("left", StringSerde, StringSerde)
        .left_join(
            &b.stream("right", StringSerde, StringSerde),
            |l, r| joined(l, r),
            windows,
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("out", StringSerde, StringSerde);
    b.build()
}

fn stream_table() -> Topology {
    let b = StreamsBuilder::new();
    let table = b.table("right", StringSerde, StringSerde, "right");
    b.stream("left", StringSerde, StringSerde)
        .left_join_table(&table, StringSerde, |l, r| joined(l, r))
        .to("out", StringSerde, StringSerde);
    b.build()
}

fn table_table() -> Topology {
    let b = StreamsBuilder::new();
    let right = b.table("right", StringSerde, StringSerde, "right");
    b.table("left", StringSerde, StringSerde, "left")
        .left_join(&right, |l, r| joined(l, r))
        .to_stream()
        .to("out", StringSerde, Nullable(StringSerde));
    b.build()
}

/// A topology and the name of its benchmark.
type Named = (&'static str, fn() -> Topology);

fn bench_joins(c: &mut Criterion) {
    let data = inputs();
    let mut group = c.benchmark_group("join");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    let topologies: [Named; 3] = [
        ("stream_stream_left_5s_rocksdb", stream_stream),
        ("stream_table_left_rocksdb", stream_table),
        ("table_table_left_rocksdb", table_table),
    ];
    for (name, topology) in topologies {
        group.bench_function(name, |b| {
            b.iter_batched(
                || driver::on_disk(topology()),
                |(mut driver, _dir)| driver::pipe_all(&mut driver, &data, "out"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_joins);
criterion_main!(benches);
