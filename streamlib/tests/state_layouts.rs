//! Window, session and TTL stores against hand-computed expectations.

use std::time::Duration;

use streamlib::state::{
    memory_store, rocksdb_store, KeyValueStore, RestoreRecord, RocksDbShared, SessionStore,
    StateError, StateStore, TtlKeyValueStore, WindowStore,
};

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn window_fetch_is_inclusive_ordered_and_per_key() {
    let mut w = WindowStore::new(memory_store("w", false));
    for start in [100, -100, 0, -5, 200] {
        w.put(b"k", start, start.to_string().as_bytes()).unwrap();
    }
    w.put(b"k2", 0, b"other key").unwrap(); // shares the prefix "k" but is another key
    w.put(b"", 0, b"empty key").unwrap();
    assert_eq!(
        w.fetch(b"k", -100, 100).unwrap(),
        vec![
            (-100, v("-100")),
            (-5, v("-5")),
            (0, v("0")),
            (100, v("100"))
        ]
    );
    assert_eq!(w.fetch(b"k", -4, 99).unwrap(), vec![(0, v("0"))]);
    assert_eq!(w.fetch(b"k", 1, 0).unwrap(), vec![]);
    assert_eq!(
        w.fetch(b"k2", i64::MIN, i64::MAX).unwrap(),
        vec![(0, v("other key"))]
    );
    assert_eq!(
        w.fetch(b"", i64::MIN, i64::MAX).unwrap(),
        vec![(0, v("empty key"))]
    );
    assert_eq!(w.get(b"k", -5).unwrap(), Some(v("-5")));
    assert_eq!(w.get(b"k", -6).unwrap(), None);
}

#[test]
fn window_index_lists_starts_before_t_and_follows_removals() {
    let mut w = WindowStore::new(memory_store("w", false));
    w.put(b"b", -10, b"1").unwrap();
    w.put(b"a", -10, b"2").unwrap();
    w.put(b"a", 5, b"3").unwrap();
    w.put(b"a", 5, b"updated").unwrap(); // no second index entry
    w.put(b"c", i64::MIN, b"4").unwrap();
    assert_eq!(
        w.windows_starting_before(5).unwrap(),
        vec![(i64::MIN, v("c")), (-10, v("a")), (-10, v("b"))]
    );
    assert_eq!(w.windows_starting_before(6).unwrap().len(), 4);
    assert!(w.remove(b"a", -10).unwrap());
    assert!(!w.remove(b"a", -10).unwrap());
    assert_eq!(
        w.windows_starting_before(0).unwrap(),
        vec![(i64::MIN, v("c")), (-10, v("b"))]
    );
    assert_eq!(w.get(b"a", -10).unwrap(), None);
    assert_eq!(w.get(b"a", 5).unwrap(), Some(v("updated")));
}

#[test]
fn window_store_commits_restores_and_aborts_through_inner_store() {
    let mut w = WindowStore::new(memory_store("w", true));
    w.put(b"k", 0, b"1").unwrap();
    w.commit(Some(0)).unwrap();
    w.put(b"k", 10, b"2").unwrap();
    w.abort();
    assert_eq!(w.fetch(b"k", 0, 10).unwrap(), vec![(0, v("1"))]);
    assert_eq!(w.windows_starting_before(100).unwrap(), vec![(0, v("k"))]);
    assert_eq!(w.checkpoint(), Some(0));

    // Replaying the (index + primary) changelog into a fresh store rebuilds both key spaces.
    let mut w = WindowStore::new(memory_store("w", true));
    w.put(b"k", 0, b"1").unwrap();
    w.put(b"j", -3, b"2").unwrap();
    let records: Vec<RestoreRecord> = w
        .take_changelog()
        .into_iter()
        .enumerate()
        .map(|(i, e)| RestoreRecord {
            offset: i as i64,
            key: e.key,
            value: e.value,
        })
        .collect();
    assert_eq!(
        records.len(),
        4,
        "two windows, each a primary and an index entry"
    );
    let mut restored = WindowStore::new(memory_store("w", false));
    restored.restore(&records).unwrap();
    assert_eq!(restored.fetch(b"j", -3, -3).unwrap(), vec![(-3, v("2"))]);
    assert_eq!(
        restored.windows_starting_before(1).unwrap(),
        vec![(-3, v("j")), (0, v("k"))]
    );
    assert_eq!(restored.checkpoint(), Some(3));
}

#[test]
fn session_find_matches_overlap_bounds() {
    let mut s = SessionStore::new(memory_store("s", false));
    s.put(b"k", -30, -20, b"a").unwrap();
    s.put(b"k", 0, 10, b"b").unwrap();
    s.put(b"k", 15, 15, b"c").unwrap();
    s.put(b"k", 40, 50, b"d").unwrap();
    s.put(b"k2", 0, 10, b"other").unwrap();
    // end >= 10 && start <= 15
    assert_eq!(
        s.find_sessions(b"k", 10, 15).unwrap(),
        vec![(0, 10, v("b")), (15, 15, v("c"))]
    );
    // boundaries are inclusive on both sides
    assert_eq!(
        s.find_sessions(b"k", -20, -30).unwrap(),
        vec![(-30, -20, v("a"))]
    );
    assert_eq!(
        s.find_sessions(b"k", -19, 39).unwrap(),
        vec![(0, 10, v("b")), (15, 15, v("c"))]
    );
    assert_eq!(s.find_sessions(b"k", 51, i64::MAX).unwrap(), vec![]);
    assert_eq!(
        s.find_sessions(b"k2", i64::MIN, i64::MAX).unwrap(),
        vec![(0, 10, v("other"))]
    );
    assert_eq!(s.get(b"k", 15, 15).unwrap(), Some(v("c")));
}

#[test]
fn session_index_and_removal() {
    let mut s = SessionStore::new(memory_store("s", false));
    s.put(b"b", 0, 10, b"1").unwrap();
    s.put(b"a", 5, 10, b"2").unwrap();
    s.put(b"a", -50, -40, b"3").unwrap();
    s.put(b"a", -50, -40, b"3'").unwrap();
    assert_eq!(
        s.sessions_ending_before(10).unwrap(),
        vec![(v("a"), -50, -40)],
        "end < t is strict"
    );
    assert_eq!(
        s.sessions_ending_before(11).unwrap(),
        vec![(v("a"), -50, -40), (v("b"), 0, 10), (v("a"), 5, 10)]
    );
    assert!(s.remove(b"b", 0, 10).unwrap());
    assert!(!s.remove(b"b", 0, 11).unwrap());
    assert_eq!(
        s.sessions_ending_before(11).unwrap(),
        vec![(v("a"), -50, -40), (v("a"), 5, 10)]
    );
    assert_eq!(s.find_sessions(b"b", i64::MIN, i64::MAX).unwrap(), vec![]);
    let err = s.put(b"a", 2, 1, b"x").unwrap_err();
    assert!(matches!(err, StateError::InvalidArgument { .. }), "{err}");
}

#[test]
fn ttl_entries_expire_exactly_at_ttl() {
    let mut t = TtlKeyValueStore::new(memory_store("t", false), Duration::from_millis(50));
    t.put(b"a", b"1", 100).unwrap();
    assert_eq!(t.get(b"a", 100).unwrap(), Some(v("1")));
    assert_eq!(t.get(b"a", 149).unwrap(), Some(v("1")));
    assert_eq!(t.get(b"a", 150).unwrap(), None);
    // Expired but not yet purged: a fresh put revives it with a new expiry.
    t.put(b"a", b"2", 160).unwrap();
    assert_eq!(t.get(b"a", 209).unwrap(), Some(v("2")));
    assert_eq!(t.get(b"a", 210).unwrap(), None);
}

#[test]
fn ttl_purge_removes_only_expired_and_follows_rewrites() {
    let mut t = TtlKeyValueStore::new(memory_store("t", false), Duration::from_millis(10));
    t.put(b"old", b"", -100).unwrap(); // expires at -90
    t.put(b"edge", b"", 0).unwrap(); // expires at 10
    t.put(b"moved", b"", 0).unwrap(); // expires at 10 ...
    t.put(b"moved", b"", 5).unwrap(); // ... now at 15
    t.put(b"young", b"", 20).unwrap(); // expires at 30
    assert_eq!(t.purge_expired(-91).unwrap(), 0);
    assert_eq!(t.purge_expired(10).unwrap(), 2, "old and edge");
    assert_eq!(t.purge_expired(10).unwrap(), 0);
    assert_eq!(t.get(b"moved", 14).unwrap(), Some(v("")));
    assert_eq!(
        t.purge_expired(15).unwrap(),
        1,
        "moved, through its latest index entry only"
    );
    assert!(t.delete(b"young").unwrap());
    assert!(!t.delete(b"young").unwrap());
    assert_eq!(t.purge_expired(i64::MAX).unwrap(), 0);
}

#[test]
fn ttl_purge_is_committed_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let shared = RocksDbShared::new(16 << 20);
    let open = || -> Box<dyn KeyValueStore> {
        rocksdb_store("dedup", dir.path(), &shared, false).unwrap()
    };
    let mut t = TtlKeyValueStore::new(open(), Duration::from_secs(1));
    t.put(b"x", b"1", 0).unwrap();
    t.put(b"y", b"2", 500).unwrap();
    t.commit(Some(1)).unwrap();
    assert_eq!(t.purge_expired(1_000).unwrap(), 1);
    t.commit(Some(2)).unwrap();
    drop(t);
    let t = TtlKeyValueStore::new(open(), Duration::from_secs(1));
    assert_eq!(
        t.get(b"x", 0).unwrap(),
        None,
        "purged, even when asked at an earlier time"
    );
    assert_eq!(t.get(b"y", 1_499).unwrap(), Some(v("2")));
    assert_eq!(t.checkpoint(), Some(2));
}
