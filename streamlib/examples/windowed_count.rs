//! A windowed count run on the TopologyTestDriver: clicks per user per minute, emitted once per
//! window when it closes.
//!
//! Run: `cargo run --release -p streamlib --example windowed_count`

use std::time::Duration;

use streamlib::prelude::*;
use streamlib::testing::{DriverConfig, TopologyTestDriver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .windowed_by(TimeWindows::of(Duration::from_secs(60)).grace(Duration::from_secs(10)))
        .emit(EmitStrategy::OnWindowClose)
        .late_records_to("late-clicks")
        .count(Materialized::as_store("clicks-per-minute").in_memory())
        .to_stream()
        .to(
            "clicks-per-minute",
            WindowedSerde::new(StringSerde),
            I64Serde,
        );
    let topology = builder.build();
    println!("{}", topology.describe());

    let config = DriverConfig {
        partitions: 3,
        ..DriverConfig::default()
    };
    let mut driver = TopologyTestDriver::new(topology, config)?;
    let clicks = [
        ("alice", 1_000),
        ("bob", 5_000),
        ("alice", 59_000),
        ("alice", 61_000),
        ("bob", 65_000),
        ("alice", 30_000), // arrives at stream time 65 s: within grace, counted in [0, 60 s)
        ("carol", 140_000),
        ("bob", 20_000), // stream time 140 s: window [0, 60 s) closed at 70 s, late
    ];
    for (user, ts) in clicks {
        driver.pipe(
            "clicks",
            &StringSerde,
            &StringSerde,
            user.to_string(),
            "/".to_string(),
            ts,
        )?;
    }
    for record in driver.read_output(
        "clicks-per-minute",
        &WindowedSerde::new(StringSerde),
        &I64Serde,
    )? {
        println!(
            "{:>6} [{:>6} ms, {:>6} ms) → {} clicks",
            record.key.key, record.key.window.start, record.key.window.end, record.value
        );
    }
    println!("late records dropped: {}", driver.metrics().late_dropped);
    Ok(())
}
