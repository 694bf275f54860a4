//! Key-value stores: overlay semantics, RocksDB durability, restore from changelog, shared memory.

use std::path::Path;

use streamlib::state::{
    memory_store, rocksdb_store, ChangelogEntry, KeyValueStore, RestoreRecord, RocksDbShared,
    StateError,
};

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn rows(pairs: &[(&str, &str)]) -> Rows {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn shared() -> RocksDbShared {
    RocksDbShared::new(32 << 20)
}

fn open(dir: &Path, shared: &RocksDbShared, logged: bool) -> Box<dyn KeyValueStore> {
    rocksdb_store("counts", dir, shared, logged).unwrap()
}

/// Runs `check` against a memory store and a fresh RocksDB store.
fn both_backends(check: impl Fn(Box<dyn KeyValueStore>)) {
    check(memory_store("counts", false));
    let dir = tempfile::tempdir().unwrap();
    check(open(dir.path(), &shared(), false));
}

#[test]
fn reads_see_uncommitted_writes() {
    both_backends(|mut store| {
        store.put(b"a", b"1").unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        store.commit(None).unwrap();
        store.put(b"a", b"2").unwrap();
        store.put(b"b", b"3").unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(
            store.range(b"a", b"c").unwrap(),
            rows(&[("a", "2"), ("b", "3")])
        );
        assert_eq!(
            store.prefix_scan(b"").unwrap(),
            rows(&[("a", "2"), ("b", "3")])
        );
    });
}

#[test]
fn abort_discards_uncommitted_writes_only() {
    both_backends(|mut store| {
        store.put(b"kept", b"1").unwrap();
        store.commit(Some(5)).unwrap();
        store.put(b"kept", b"changed").unwrap();
        store.put(b"new", b"x").unwrap();
        store.delete(b"kept").unwrap();
        store.abort();
        assert_eq!(store.get(b"kept").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(b"new").unwrap(), None);
        assert_eq!(store.prefix_scan(b"").unwrap(), rows(&[("kept", "1")]));
        assert_eq!(store.checkpoint(), Some(5));
        // Nothing from the aborted transaction reaches committed state on the next commit.
        store.commit(Some(6)).unwrap();
        assert_eq!(store.prefix_scan(b"").unwrap(), rows(&[("kept", "1")]));
    });
}

#[test]
fn tombstones_hide_committed_rows() {
    both_backends(|mut store| {
        for key in ["k1", "k2", "k3", "x1"] {
            store.put(key.as_bytes(), b"v").unwrap();
        }
        store.commit(None).unwrap();
        store.delete(b"k2").unwrap();
        store.delete(b"x1").unwrap();
        store.delete(b"never-there").unwrap();
        assert_eq!(store.get(b"k2").unwrap(), None);
        assert_eq!(
            store.range(b"k", b"z").unwrap(),
            rows(&[("k1", "v"), ("k3", "v")])
        );
        assert_eq!(
            store.prefix_scan(b"k").unwrap(),
            rows(&[("k1", "v"), ("k3", "v")])
        );
        assert_eq!(store.prefix_scan(b"x").unwrap(), Rows::new());
        store.commit(None).unwrap();
        assert_eq!(
            store.prefix_scan(b"").unwrap(),
            rows(&[("k1", "v"), ("k3", "v")])
        );
    });
}

#[test]
fn range_bounds_are_half_open_and_prefix_scan_handles_0xff() {
    both_backends(|mut store| {
        let keys: [&[u8]; 6] = [b"", b"a", b"ab", b"b", &[0xFF], &[0xFF, 0xFF]];
        for key in keys {
            store.put(key, b"c").unwrap();
        }
        store.commit(None).unwrap();
        store.put(b"aa", b"u").unwrap(); // an overlay row between committed rows
        let got = |r: Rows| r.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            got(store.range(b"a", b"b").unwrap()),
            vec![b"a".to_vec(), b"aa".to_vec(), b"ab".to_vec()]
        );
        assert_eq!(got(store.range(b"b", b"a").unwrap()), Vec::<Vec<u8>>::new());
        assert_eq!(got(store.range(b"a", b"a").unwrap()), Vec::<Vec<u8>>::new());
        assert_eq!(
            got(store.prefix_scan(&[0xFF]).unwrap()),
            vec![vec![0xFF], vec![0xFF, 0xFF]]
        );
        assert_eq!(store.prefix_scan(b"").unwrap().len(), 7);
        assert_eq!(store.get(b"").unwrap(), Some(b"c".to_vec()));
    });
}

#[test]
fn changelog_records_every_write_in_order_and_abort_drops_pending() {
    let mut store = memory_store("counts", true);
    store.put(b"a", b"1").unwrap();
    store.put(b"a", b"2").unwrap();
    store.delete(b"a").unwrap();
    assert_eq!(
        store.take_changelog(),
        vec![
            ChangelogEntry {
                key: b"a".to_vec(),
                value: Some(b"1".to_vec())
            },
            ChangelogEntry {
                key: b"a".to_vec(),
                value: Some(b"2".to_vec())
            },
            ChangelogEntry {
                key: b"a".to_vec(),
                value: None
            },
        ]
    );
    assert!(store.take_changelog().is_empty());
    store.put(b"b", b"1").unwrap();
    store.abort();
    assert!(store.take_changelog().is_empty());

    let mut unlogged = memory_store("plain", false);
    unlogged.put(b"a", b"1").unwrap();
    assert!(unlogged.take_changelog().is_empty());
}

#[test]
fn rocksdb_reopen_keeps_committed_state_and_checkpoint_only() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared();
    {
        let mut store = open(dir.path(), &shared, false);
        assert_eq!(store.checkpoint(), None);
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        store.commit(Some(41)).unwrap();
        store.put(b"c", b"uncommitted").unwrap();
        store.delete(b"a").unwrap();
    } // dropped without commit, like a crash between Kafka commit and store commit
    let mut store = open(dir.path(), &shared, false);
    assert_eq!(store.checkpoint(), Some(41));
    assert_eq!(
        store.prefix_scan(b"").unwrap(),
        rows(&[("a", "1"), ("b", "2")])
    );

    // commit(None) keeps the checkpoint; a later offset replaces it.
    store.put(b"d", b"4").unwrap();
    store.commit(None).unwrap();
    drop(store);
    let mut store = open(dir.path(), &shared, false);
    assert_eq!(store.checkpoint(), Some(41));
    assert_eq!(store.get(b"d").unwrap(), Some(b"4".to_vec()));
    store.commit(Some(42)).unwrap();
    drop(store);
    assert_eq!(open(dir.path(), &shared, false).checkpoint(), Some(42));
}

#[test]
fn restore_from_changelog_reproduces_state() {
    let mut source = memory_store("counts", true);
    let mut changelog: Vec<RestoreRecord> = Vec::new();
    // Stands in for the runtime: produce the changelog (offsets 0..n), then commit the store.
    fn ship(store: &mut Box<dyn KeyValueStore>, log: &mut Vec<RestoreRecord>) {
        for entry in store.take_changelog() {
            let offset = log.len() as i64;
            log.push(RestoreRecord {
                offset,
                key: entry.key,
                value: entry.value,
            });
        }
        store.commit(log.last().map(|r| r.offset)).unwrap();
    }
    for round in 0..5u8 {
        for i in 0..40u8 {
            let key = [b'k', i % 13];
            match (i + round) % 4 {
                0 => source.delete(&key).unwrap(),
                _ => source.put(&key, &[round, i]).unwrap(),
            }
        }
        ship(&mut source, &mut changelog);
    }
    let expected = source.prefix_scan(b"").unwrap();
    assert!(!expected.is_empty());
    assert_eq!(source.checkpoint(), Some(199));

    let dir = tempfile::tempdir().unwrap();
    let shared = shared();
    {
        let mut restored = open(dir.path(), &shared, true);
        for batch in changelog[..100].chunks(7) {
            restored.restore(batch).unwrap();
            assert_eq!(restored.checkpoint(), Some(batch.last().unwrap().offset));
        }
        assert!(
            restored.take_changelog().is_empty(),
            "restore must not be re-logged"
        );
    }
    // Resume from the checkpoint after a restart, as the runtime does.
    let mut restored = open(dir.path(), &shared, true);
    let resume_at = restored.checkpoint().unwrap() + 1;
    for batch in changelog[resume_at as usize..].chunks(7) {
        restored.restore(batch).unwrap();
    }
    restored.restore(&[]).unwrap();
    assert_eq!(restored.prefix_scan(b"").unwrap(), expected);
    assert_eq!(restored.checkpoint(), Some(199));
}

#[test]
fn restore_refuses_to_bypass_uncommitted_writes() {
    let mut store = memory_store("counts", false);
    store.put(b"a", b"1").unwrap();
    let record = RestoreRecord {
        offset: 0,
        key: b"a".to_vec(),
        value: None,
    };
    let err = store.restore(&[record]).unwrap_err();
    assert!(
        matches!(err, StateError::RestoreWithUncommittedWrites { .. }),
        "{err}"
    );
}

#[test]
fn rocksdb_open_failure_names_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = rocksdb_store("prices", &file, &shared(), false)
        .err()
        .unwrap();
    assert!(
        matches!(&err, StateError::Io { store, .. } if store == "prices"),
        "{err}"
    );
}

#[test]
fn stores_share_one_memory_budget() {
    let budget = RocksDbShared::new(64 << 20);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = rocksdb_store("a", dir_a.path(), &budget, false).unwrap();
    let mut b = rocksdb_store("b", dir_b.path(), &budget.clone(), false).unwrap();
    let before = budget.write_buffer_usage();
    let value = vec![7u8; 1024];
    for i in 0..2_000u32 {
        a.put(&i.to_be_bytes(), &value).unwrap();
        b.put(&i.to_be_bytes(), &value).unwrap();
    }
    a.commit(Some(1)).unwrap();
    let after_a = budget.write_buffer_usage();
    b.commit(Some(2)).unwrap();
    let after_b = budget.write_buffer_usage();
    assert!(
        after_a > before,
        "store a's memtable is charged: {before} -> {after_a}"
    );
    assert!(
        after_b > after_a,
        "store b's memtable is charged to the same manager: {after_a} -> {after_b}"
    );
    assert!(
        budget.cache_usage() >= after_b,
        "memtables are reserved in the shared cache: {budget:?}"
    );
    assert_eq!(a.get(&5u32.to_be_bytes()).unwrap(), Some(value.clone()));
    assert_eq!(b.prefix_scan(b"").unwrap().len(), 2_000);
}
