//! The README's main command: `pipeline` with no broker runs everything on the in-process
//! mock cluster. A bounded synthetic run must reach the view: every coin with a price, and
//! the producer's count — also when run again with the same state folder (the new in-process
//! cluster is empty, so state of the earlier run must not leak into it). Both runs write the
//! same lake folder: Bronze keeps every record of both (every alert too: the apps' last
//! transactions commit before the sink reads to the end), Silver every distinct event once, and
//! Gold is built from it.

use std::process::Command;

#[test]
fn the_pipeline_runs_end_to_end_on_the_in_process_cluster_twice() {
    let state = tempfile::tempdir().unwrap();
    let lake_dir = tempfile::tempdir().unwrap();
    let mut alerts = 0;
    for run in 1..=2 {
        alerts += run_bounded(state.path(), lake_dir.path());
        check_lake(lake_dir.path(), run, alerts);
    }
    let left: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "embedded state is removed: {left:?}");
}

/// Bronze holds the 200 raw events of each run so far and the `alerts` they raised; Silver and
/// the Gold candles have rows.
fn check_lake(dir: &std::path::Path, runs: usize, alerts: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake = lake::storage::Lake::parse(dir.to_str().unwrap()).unwrap();
    let rows = |table: &str, order_by: &[&str]| {
        runtime
            .block_on(lake::job::query::table_rows(&lake, table, order_by))
            .unwrap()
    };
    let bronze = rows(
        lake::silver::BRONZE_PRICES,
        &["topic", "partition", "offset"],
    );
    assert_eq!(
        bronze.len(),
        200 * runs,
        "bronze/prices_raw after run {runs}"
    );
    assert_eq!(
        rows(
            lake::silver::BRONZE_ALERTS,
            &["topic", "partition", "offset"]
        )
        .len(),
        alerts,
        "bronze/alerts after run {runs}"
    );
    let silver = rows("silver/prices", &["event_id"]);
    let distinct: std::collections::BTreeSet<String> = silver
        .iter()
        .map(|row| row["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        distinct.len(),
        silver.len(),
        "silver/prices has each event once"
    );
    assert!(
        silver.len() >= 200,
        "silver/prices holds this run's events: {}",
        silver.len()
    );
    assert!(
        !rows("gold/candles_1h", &["coin_id", "bucket_start"]).is_empty(),
        "gold/candles_1h has rows"
    );
}

/// Runs the pipeline once; returns the alerts its apps raised.
fn run_bounded(state: &std::path::Path, lake: &std::path::Path) -> usize {
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
        .arg("--lake")
        .arg(lake)
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
    let summary = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                "pipeline stopped; the producer produced 200 events; the apps raised ",
            )
        })
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    summary
        .strip_suffix(" alerts")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("alerts in {summary:?}"))
}
