//! Standby replicas on the real broker (ADR-043). Two streamlib instances (`peers
//! failover-app`, child processes) run an exactly-once count over two partitions and 200 000
//! distinct keys, so each holds a store of about 100 000 entries; one is killed with SIGKILL and
//! the survivor takes over its task ([`benches::failover`]). With `num_standby_replicas = 1` it
//! restores at most the records written since its standby last applied the changelog (the hot
//! keys' second round of the moved task); without standbys it restores the whole changelog (the
//! control, so the assertion can fail). In both runs every count stays exactly once.
//!
//! Needs `KAFKA_BOOTSTRAP`. `STANDBY_TEST_KEYS` (default 200000) sizes the store; `peers
//! failover` measures the same at 1 M keys next to Kafka Streams.

use std::process::Command;
use std::time::Duration;

use benches::failover::{self, Instance, Setup};
use streamlib::testing::kafka_bootstrap;

const HOT_KEYS: usize = 1_000;

fn main() {
    let keys: usize = std::env::var("STANDBY_TEST_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let launch = |instance: &Instance| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_peers"));
        command.arg("failover-app").args(instance.to_args());
        command
    };
    for standbys in [1, 0] {
        let setup = Setup {
            bootstrap: kafka_bootstrap(),
            keys,
            hot_keys: HOT_KEYS,
            standbys,
            timeout: Duration::from_secs(300),
        };
        let f = failover::run(&setup, &launch).unwrap_or_else(|e| panic!("failover: {e:#}"));
        println!(
            "standby_failover: num_standby_replicas={standbys}: the moved task's changelog holds {} records; the survivor restored {}; its first output of the moved task came {:.1} s and every key was answered {:.1} s after the SIGKILL",
            f.changelog,
            f.restored,
            f.first_output.as_secs_f64(),
            f.all_answered.as_secs_f64()
        );
        if standbys > 0 {
            // At most the hot keys' second-round updates of the moved partition.
            assert!(
                f.restored <= HOT_KEYS as u64,
                "with a standby only the tail is restored: {} of {}",
                f.restored,
                f.changelog
            );
        } else {
            assert!(
                f.restored >= f.changelog,
                "without a standby the whole changelog is restored: {} of {}",
                f.restored,
                f.changelog
            );
        }
    }
    println!("standby_failover: passed");
}
