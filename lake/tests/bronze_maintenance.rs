//! Compaction and vacuum of a Bronze table with many small commits: the rows stay the same, the
//! small files go, and a second run does nothing.

use lake::bronze::{self, BronzeRecord};
use lake::maintenance::{compact, tables, vacuum};
use lake::storage::Lake;
use lake::testing::read_bronze;

const TABLE: &str = "bronze/prices_raw";

fn record(offset: i64) -> BronzeRecord {
    BronzeRecord {
        topic: "crypto.prices.raw".into(),
        partition: 0,
        offset,
        timestamp_ms: Some(1_796_083_200_000 + offset),
        key: Some(b"bitcoin".to_vec()),
        value: Some(format!("{{\"seq\":{offset}}}").into_bytes()),
        headers: Vec::new(),
    }
}

#[test]
fn compact_and_vacuum_keep_the_rows_and_are_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::parse(&dir.path().display().to_string()).expect("lake");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut table = lake
            .open_or_create(TABLE, bronze::columns(), &[bronze::PARTITION_COLUMN])
            .await
            .expect("create");
        for commit in 0..6 {
            let batch: Vec<BronzeRecord> = (commit * 10..commit * 10 + 10).map(record).collect();
            table = bronze::append(table, TABLE, "m", &batch)
                .await
                .expect("append");
        }
        assert_eq!(tables(&lake).await.expect("list"), vec![TABLE.to_owned()]);
        let before = read_bronze(&lake, TABLE).await.expect("read");
        assert_eq!(before.len(), 60);

        let first = compact(&lake, TABLE)
            .await
            .expect("compact")
            .expect("table exists");
        assert_eq!(
            (first.files_removed, first.files_added),
            (6, 1),
            "{first:?}"
        );
        let second = compact(&lake, TABLE)
            .await
            .expect("compact again")
            .expect("table exists");
        assert_eq!(
            (second.files_removed, second.files_added),
            (0, 0),
            "{second:?}"
        );
        assert_eq!(read_bronze(&lake, TABLE).await.expect("read"), before);

        let swept = vacuum(&lake, TABLE, chrono::Duration::zero())
            .await
            .expect("vacuum")
            .expect("table exists");
        assert_eq!(swept.files_deleted, 6, "{swept:?}");
        let again = vacuum(&lake, TABLE, chrono::Duration::zero())
            .await
            .expect("vacuum again")
            .expect("table exists");
        // delta-rs lists the tombstoned paths again (already gone); the data is untouched.
        assert!(again.files_deleted <= 6, "{again:?}");
        assert_eq!(read_bronze(&lake, TABLE).await.expect("read"), before);
        let progress = bronze::committed_offsets(
            &lake.open(TABLE).await.expect("open").expect("exists"),
            TABLE,
            "m",
            "crypto.prices.raw",
            [0],
        )
        .await
        .expect("txn");
        assert_eq!(
            progress.get(&0),
            Some(&60),
            "maintenance keeps the sink's progress"
        );

        assert_eq!(compact(&lake, "bronze/absent").await.expect("absent"), None);
    });
}
