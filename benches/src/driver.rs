//! The driver runs of the Criterion benches (`benches/windows.rs`, `benches/joins.rs`): a
//! topology on the `TopologyTestDriver`, its RocksDB stores in a temporary folder, and every
//! input piped through it with its output read after each record.

use streamlib::prelude::Topology;
use streamlib::testing::{DriverConfig, TopologyTestDriver};
use tempfile::TempDir;

/// One input record: `(topic, key, value, timestamp)`.
pub type Input = (&'static str, Vec<u8>, Vec<u8>, i64);

/// A driver of `topology` whose stores live in a fresh temporary folder (removed when the
/// returned [`TempDir`] drops).
///
/// # Panics
/// When the folder or the driver cannot be created.
pub fn on_disk(topology: Topology) -> (TopologyTestDriver, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary state folder");
    let config = DriverConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..DriverConfig::default()
    };
    let driver = TopologyTestDriver::new(topology, config).expect("the driver starts");
    (driver, dir)
}

/// Pipes every record of `inputs` and reads `output` after each, as an app would drain it.
///
/// # Panics
/// When the topology fails on a record.
pub fn pipe_all(driver: &mut TopologyTestDriver, inputs: &[Input], output: &str) {
    for (topic, key, value, timestamp) in inputs {
        driver
            .pipe_raw(topic, Some(key.clone()), Some(value.clone()), *timestamp)
            .expect("the record is processed");
        driver.read_raw(output);
    }
}
