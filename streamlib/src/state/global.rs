//! Global stores: a full copy of a topic in every instance, shared by all its tasks (the stores
//! behind `GlobalKTable`s).
//!
//! Each is one key-value store (RocksDB under `<state dir>/<application.id>/global/<store>`, or
//! in memory) with two key spaces: `[0][key]` → `[timestamp][value]` (the rows, as
//! [`StoreKind::TimestampedKeyValue`](crate::topology::StoreKind) lays them out) and
//! `[1][partition: i32 BE]` → the next offset to read of that partition of the topic. Rows and
//! offsets are committed together, so a restart resumes exactly where the store left off. The
//! topic is the store's changelog: no other topic is written.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::serdes::SerdeError;

use super::encoding::timestamped;
use super::{memory_store, rocksdb_store, KeyValueStore, RocksDbShared, StateError};

const ROWS: u8 = 0;
const OFFSETS: u8 = 1;

/// Checks a record of a global topic before it is stored: `Err` for a key or value its serdes
/// do not read (the record is skipped and counted, never stored).
pub(crate) type Validator =
    Arc<dyn Fn(&str, Option<&[u8]>, Option<&[u8]>) -> Result<(), SerdeError> + Send + Sync>;

/// What the host needs to open one global store.
#[derive(Clone)]
pub(crate) struct GlobalStoreSpec {
    pub(crate) store: String,
    pub(crate) topic: String,
    pub(crate) in_memory: bool,
    pub(crate) validate: Validator,
}

/// What became of one record of a global topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Written or deleted.
    Stored,
    /// Skipped: a null key, or bytes its serdes do not read.
    Skipped(String),
}

struct GlobalStore {
    store: Box<dyn KeyValueStore>,
    topic: String,
    validate: Validator,
}

/// The global stores of one instance (or driver), by store name; clones share them.
#[derive(Clone, Default)]
pub(crate) struct GlobalStores {
    stores: Arc<HashMap<String, Mutex<GlobalStore>>>,
    by_topic: Arc<HashMap<String, String>>,
}

impl GlobalStores {
    /// Opens the stores of `specs`, persistent under `dir` when given.
    pub(crate) fn open(
        specs: &[GlobalStoreSpec],
        dir: Option<&Path>,
        shared: &RocksDbShared,
    ) -> Result<Self, StateError> {
        let mut stores = HashMap::new();
        let mut by_topic = HashMap::new();
        for spec in specs {
            let store = match (dir, spec.in_memory) {
                (Some(dir), false) => {
                    rocksdb_store(&spec.store, &dir.join(&spec.store), shared, false)?
                }
                _ => memory_store(&spec.store, false),
            };
            by_topic.insert(spec.topic.clone(), spec.store.clone());
            stores.insert(
                spec.store.clone(),
                Mutex::new(GlobalStore {
                    store,
                    topic: spec.topic.clone(),
                    validate: spec.validate.clone(),
                }),
            );
        }
        Ok(Self {
            stores: Arc::new(stores),
            by_topic: Arc::new(by_topic),
        })
    }

    fn lock(&self, store: &str) -> Option<MutexGuard<'_, GlobalStore>> {
        // A poisoned lock means a panic while writing: the instance is going down anyway.
        self.stores
            .get(store)
            .map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The topics to read, with the store each one feeds.
    pub(crate) fn topics(&self) -> impl Iterator<Item = (&String, &String)> {
        self.by_topic.iter()
    }

    /// Whether `topic` feeds a global store.
    pub(crate) fn reads(&self, topic: &str) -> bool {
        self.by_topic.contains_key(topic)
    }

    /// The stored row (`[timestamp][value]`) of `key` in `store`; `None` for an unknown store.
    pub(crate) fn get(
        &self,
        store: &str,
        key: &[u8],
    ) -> Option<Result<Option<Vec<u8>>, StateError>> {
        let guard = self.lock(store)?;
        Some(guard.store.get(&row_key(key)))
    }

    /// Applies the record at `offset` of `partition` of `topic` to the store it feeds.
    pub(crate) fn apply(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        record: (Option<&[u8]>, Option<&[u8]>, i64),
    ) -> Result<Applied, StateError> {
        let Some(mut guard) = self.by_topic.get(topic).and_then(|s| self.lock(s)) else {
            return Ok(Applied::Skipped(format!("{topic} feeds no global store")));
        };
        let (key, value, timestamp) = record;
        let global = &mut *guard;
        global
            .store
            .put(&offset_key(partition), &(offset + 1).to_be_bytes())?;
        let Some(key) = key else {
            return Ok(Applied::Skipped("null key".into()));
        };
        if let Err(error) = (global.validate)(&global.topic, Some(key), value) {
            return Ok(Applied::Skipped(error.to_string()));
        }
        match value {
            Some(value) => global
                .store
                .put(&row_key(key), &timestamped(timestamp, value))?,
            None => global.store.delete(&row_key(key))?,
        }
        Ok(Applied::Stored)
    }

    /// Commits every store: rows and offsets applied so far become durable together.
    pub(crate) fn commit(&self) -> Result<(), StateError> {
        for name in self.stores.keys() {
            if let Some(mut guard) = self.lock(name) {
                guard.store.commit(None)?;
            }
        }
        Ok(())
    }

    /// The next offset to read of each partition of the topic feeding `store`, as committed.
    pub(crate) fn offsets(&self, store: &str) -> Result<BTreeMap<i32, i64>, StateError> {
        let Some(guard) = self.lock(store) else {
            return Ok(BTreeMap::new());
        };
        let mut offsets = BTreeMap::new();
        for (key, value) in guard.store.prefix_scan(&[OFFSETS])? {
            let corrupt = || StateError::Corrupt {
                store: store.to_owned(),
                reason: "a stored offset is not 4 + 8 bytes".into(),
            };
            let partition: [u8; 4] = key[1..].try_into().map_err(|_| corrupt())?;
            let offset: [u8; 8] = value.as_slice().try_into().map_err(|_| corrupt())?;
            offsets.insert(i32::from_be_bytes(partition), i64::from_be_bytes(offset));
        }
        Ok(offsets)
    }
}

fn row_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(ROWS);
    out.extend_from_slice(key);
    out
}

fn offset_key(partition: i32) -> Vec<u8> {
    let mut out = vec![OFFSETS];
    out.extend_from_slice(&partition.to_be_bytes());
    out
}
