//! Testing support: running topologies without a broker, and helpers for integration tests
//! against a real one.

mod driver;
mod kafka_env;
mod kafka_io;

pub use driver::{DriverConfig, TopologyTestDriver};
pub use kafka_env::{kafka_bootstrap, unique_topic, KAFKA_BOOTSTRAP_ENV};
pub use kafka_io::{
    consume_until, create_topic, create_topic_with_configs, produce, produce_nullable,
    topic_config, wait_for, Consumed,
};
