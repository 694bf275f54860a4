//! Benchmarks of `streamlib`: Criterion benches of the operators (`benches/windows.rs`,
//! `benches/joins.rs`; their driver runs in [`driver`]), the end-to-end harness on a real broker
//! (`src/bin/harness.rs`, see `HARNESS.md`) and the side-by-side comparison with Kafka Streams
//! and Quix Streams (`src/bin/peers.rs`, see `PEERS.md`).
//!
//! This library holds what both binaries share: the synthetic price events and how they reach
//! Kafka ([`data`]), Kafka plumbing ([`kafka`]), the output counter ([`sink`]), the raw rdkafka
//! ceiling ([`ceiling`]), the streamlib topologies under test ([`topologies`]), the stop rule of
//! a run ([`wait`]), the processing guarantees ([`Guarantee`]), the failover measurement
//! ([`failover`]) and Nexmark: its events, queries, reference model and comparison
//! ([`nexmark`], see `NEXMARK.md`).

pub mod ceiling;
pub mod data;
pub mod driver;
pub mod failover;
mod guarantee;
pub mod kafka;
pub mod nexmark;
pub mod sink;
pub mod topologies;
pub mod wait;

pub use guarantee::Guarantee;
