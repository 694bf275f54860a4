//! The README's main command: `pipeline` with no broker runs everything on the in-process
//! mock cluster. A bounded synthetic run must reach the view: every coin with a price, and
//! the producer's count — also when run again with the same state folder (the new in-process
//! cluster is empty, so state of the earlier run must not leak into it).

use std::process::Command;

#[test]
fn the_pipeline_runs_end_to_end_on_the_in_process_cluster_twice() {
    let state = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        run_bounded(state.path());
    }
    let left: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "embedded state is removed: {left:?}");
}

fn run_bounded(state: &std::path::Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args([
            "--no-view",
            "--until-drained",
            "--history-ticks",
            "20",
            "--max-batches",
            "20",
        ])
        .args(["--speedup", "0", "--state-dir"])
        .arg(state)
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("APP_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for coin in apps::topics::DEFAULT_COINS {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(coin))
            .unwrap_or_else(|| panic!("no row for {coin}:\n{stdout}"));
        assert!(
            !row.contains(" – "),
            "{coin} has a price and returns: {row}"
        );
    }
    assert!(stdout.contains("crypto.prices.dedup 200 ·"), "{stdout}");
    assert!(
        stdout.contains("the producer produced 200 events"),
        "{stdout}"
    );
}
