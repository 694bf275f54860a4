//! A windowed count on the TopologyTestDriver: clicks per user per minute over three
//! partitions, emitted once per window when it closes, with a grace period, a late-records
//! topic, and wall-clock closing so that idle partitions still emit their final counts.
//!
//! Run: `cargo run --release -p streamlib --example windowed_count`

use std::time::Duration;

use streamlib::prelude::*;
use streamlib::testing::{DriverConfig, TopologyTestDriver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = StreamsBuilder::new();
    builder.advance_stream_time_with_wall_clock(Duration::from_secs(30));
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
            Nullable(I64Serde),
        );
    let topology = builder.build();
    println!("{}", topology.describe());

    let config = DriverConfig {
        partitions: 3,
        ..DriverConfig::default()
    };
    let mut driver = TopologyTestDriver::new(topology, config)?;
    let mut click = |user: &str, seconds: i64| {
        driver.pipe(
            "clicks",
            &StringSerde,
            &StringSerde,
            user.to_string(),
            "/".to_string(),
            seconds * 1_000,
        )
    };
    for (user, seconds) in [
        ("alice", 1),
        ("bob", 5),
        ("alice", 59),
        ("alice", 61),
        ("bob", 65),
        ("carol", 140),
    ] {
        click(user, seconds)?;
    }
    // Out of order but within alice's grace period: counted in [0 s, 60 s).
    click("alice", 30)?;

    // No more data. Each partition has its own stream time, so windows would stay open;
    // wall-clock closing moves every task's stream time to wall clock − 30 s.
    driver.advance_wall_clock(Duration::from_secs(200))?;
    print_counts(&mut driver)?;

    // Stream time is now 170 s everywhere: a click at 20 s is late, routed to late-clicks.
    driver.pipe(
        "clicks",
        &StringSerde,
        &StringSerde,
        "bob".to_string(),
        "/".to_string(),
        20_000,
    )?;
    println!(
        "late clicks: {} dropped, {} routed to late-clicks",
        driver.metrics().late_dropped,
        driver.read_raw("late-clicks").len()
    );
    Ok(())
}

fn print_counts(driver: &mut TopologyTestDriver) -> Result<(), Box<dyn std::error::Error>> {
    for record in driver.read_output(
        "clicks-per-minute",
        &WindowedSerde::new(StringSerde),
        &I64Serde,
    )? {
        println!(
            "{:>6}  [{:>4} s, {:>4} s)  {} clicks",
            record.key.key,
            record.key.window.start / 1_000,
            record.key.window.end / 1_000,
            record.value
        );
    }
    Ok(())
}
