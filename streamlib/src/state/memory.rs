//! Committed state kept in a `BTreeMap`: for tests, the topology test driver and small caches.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::transaction::KvBackend;
use super::{ChangelogEntry, KvEntries, KvRead, StateError};

/// An in-memory [`KvBackend`]; its state and checkpoint vanish with the process.
///
/// Invariant: `apply` is all-or-nothing trivially (it cannot fail), so data and checkpoint always
/// describe the same whole commits.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    checkpoint: Option<i64>,
}

impl MemoryBackend {
    /// Number of committed entries.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no entry is committed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl KvRead for MemoryBackend {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.data.get(key).cloned())
    }

    fn scan(&self, from: &[u8], to: Option<&[u8]>) -> Result<KvEntries, StateError> {
        if to.is_some_and(|to| from >= to) {
            return Ok(Vec::new()); // BTreeMap::range panics on inverted bounds
        }
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .data
            .range::<[u8], _>((Bound::Included(from), upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl KvBackend for MemoryBackend {
    fn apply(
        &mut self,
        entries: &[ChangelogEntry],
        checkpoint: Option<i64>,
    ) -> Result<(), StateError> {
        for entry in entries {
            match &entry.value {
                Some(value) => self.data.insert(entry.key.clone(), value.clone()),
                None => self.data.remove(&entry.key),
            };
        }
        if checkpoint.is_some() {
            self.checkpoint = checkpoint;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }
}
