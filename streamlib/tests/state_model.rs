//! Model test: a RocksDB store and a memory store given the same random operations agree on
//! every read, and after reopening the RocksDB store agrees with the memory store's committed state.

use proptest::prelude::*;
use streamlib::state::{memory_store, rocksdb_store, KeyValueStore, RocksDbShared};

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Commit(Option<i64>),
    Abort,
    /// Drop and reopen the RocksDB store: like a crash, it loses exactly the uncommitted writes.
    Reopen,
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
    PrefixScan(Vec<u8>),
}

/// Short keys over a tiny alphabet, so operations collide and 0x00/0xFF edges come up.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0x00u8, 0x01, 0x7F, 0xFF]), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        1 => proptest::option::of(0i64..1_000).prop_map(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Reopen),
        2 => key().prop_map(Op::Get),
        2 => (key(), key()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => key().prop_map(Op::PrefixScan),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rocksdb_store_behaves_like_memory_store(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let shared = RocksDbShared::new(8 << 20);
        let open = || rocksdb_store("model", dir.path(), &shared, false).unwrap();
        let mut model: Box<dyn KeyValueStore> = memory_store("model", false);
        let mut rocks = open();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    model.put(&k, &v).unwrap();
                    rocks.put(&k, &v).unwrap();
                }
                Op::Delete(k) => {
                    model.delete(&k).unwrap();
                    rocks.delete(&k).unwrap();
                }
                Op::Commit(offset) => {
                    model.commit(offset).unwrap();
                    rocks.commit(offset).unwrap();
                }
                Op::Abort => {
                    model.abort();
                    rocks.abort();
                }
                Op::Reopen => {
                    model.abort();
                    drop(rocks);
                    rocks = open();
                }
                Op::Get(k) => prop_assert_eq!(model.get(&k).unwrap(), rocks.get(&k).unwrap()),
                Op::Range(a, b) => {
                    prop_assert_eq!(model.range(&a, &b).unwrap(), rocks.range(&a, &b).unwrap())
                }
                Op::PrefixScan(p) => {
                    prop_assert_eq!(model.prefix_scan(&p).unwrap(), rocks.prefix_scan(&p).unwrap())
                }
            }
            prop_assert_eq!(model.checkpoint(), rocks.checkpoint());
        }
        prop_assert_eq!(model.prefix_scan(&[]).unwrap(), rocks.prefix_scan(&[]).unwrap());

        model.abort();
        drop(rocks);
        let reopened = open();
        prop_assert_eq!(model.prefix_scan(&[]).unwrap(), reopened.prefix_scan(&[]).unwrap());
        prop_assert_eq!(model.checkpoint(), reopened.checkpoint());
    }
}
