//! Testing support: running topologies without a broker, and finding the broker for
//! integration tests.

mod driver;
mod kafka_env;

pub use driver::{DriverConfig, TopologyTestDriver};
pub use kafka_env::{kafka_bootstrap, unique_topic, KAFKA_BOOTSTRAP_ENV};
