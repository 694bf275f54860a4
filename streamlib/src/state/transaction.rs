//! The one place where uncommitted writes live: an overlay over committed storage.
//!
//! Like Quix Streams' `PartitionTransaction`: writes go to an in-memory overlay; reads look at the
//! overlay first and then at committed storage; [`StateStore::commit`] hands the overlay and the
//! changelog offset to the backend in one atomic write. A backend therefore only ever sees whole
//! commits, which is what lets the checkpoint be trusted after a crash.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::mem;
use std::ops::Bound;

use super::encoding::prefix_end;
use super::{
    ChangelogEntry, KeyValueStore, KvEntries, KvRead, RestoreRecord, StateError, StateStore,
};

/// Committed storage under a [`TransactionalKvStore`]; reading it ([`KvRead`]) shows committed
/// state only.
///
/// Invariant: the state visible through `read`/`scan` and the value of `checkpoint` always come
/// from the same sequence of whole `apply` calls.
pub trait KvBackend: KvRead + Send {
    /// Applies `entries` in order and, when given, sets the checkpoint, all or nothing.
    /// `None` keeps the current checkpoint.
    fn apply(
        &mut self,
        entries: &[ChangelogEntry],
        checkpoint: Option<i64>,
    ) -> Result<(), StateError>;
    /// Offset of the last changelog record reflected in committed state.
    fn checkpoint(&self) -> Option<i64>;
}

/// A [`KeyValueStore`] that buffers the writes of the current commit over a [`KvBackend`].
///
/// Invariants: the backend never holds a write of an unfinished commit; reads always see the
/// latest write of this store (committed or not); when logging is on, every `put`/`delete` since
/// the last `take_changelog` (and not aborted) is in the pending changelog, in write order.
pub struct TransactionalKvStore<B: KvBackend> {
    name: String,
    backend: B,
    /// Uncommitted writes; `None` is a delete that must hide the committed row.
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// `Some` when logging is on.
    changelog: Option<Vec<ChangelogEntry>>,
}

impl<B: KvBackend> TransactionalKvStore<B> {
    /// Wraps `backend`; with `logged`, writes are recorded for [`StateStore::take_changelog`].
    pub fn new(name: &str, backend: B, logged: bool) -> Self {
        Self {
            name: name.to_owned(),
            backend,
            overlay: BTreeMap::new(),
            changelog: logged.then(Vec::new),
        }
    }

    /// The committed storage (reads through it do not see uncommitted writes).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Number of keys written since the last commit or abort.
    pub fn uncommitted_len(&self) -> usize {
        self.overlay.len()
    }

    fn write(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        if let Some(log) = &mut self.changelog {
            log.push(ChangelogEntry {
                key: key.to_vec(),
                value: value.clone(),
            });
        }
        self.overlay.insert(key.to_vec(), value);
    }

    /// Overlay merged over backend for `from <= key < to` (`to == None`: unbounded).
    fn merged_range(&self, from: &[u8], to: Option<&[u8]>) -> Result<KvEntries, StateError> {
        if to.is_some_and(|to| from >= to) {
            return Ok(Vec::new());
        }
        let committed = self.backend.scan(from, to)?;
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let pending = self
            .overlay
            .range::<[u8], _>((Bound::Included(from), upper))
            .map(|(k, v)| (k.as_slice(), v.as_deref()));
        Ok(merge(committed.into_iter().peekable(), pending.peekable()))
    }
}

/// Merges two ascending sequences; on equal keys the overlay wins and a `None` hides the row.
fn merge<'a>(
    mut committed: Peekable<impl Iterator<Item = (Vec<u8>, Vec<u8>)>>,
    mut pending: Peekable<impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>>,
) -> KvEntries {
    let mut out = Vec::new();
    loop {
        let order = match (committed.peek(), pending.peek()) {
            (None, None) => return out,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((c, _)), Some((p, _))) => c.as_slice().cmp(p),
        };
        if order == Ordering::Equal {
            committed.next(); // shadowed by the overlay
        }
        if order == Ordering::Less {
            out.extend(committed.next());
        } else if let Some((key, Some(value))) = pending.next() {
            out.push((key.to_vec(), value.to_vec()));
        }
    }
}

impl<B: KvBackend> StateStore for TransactionalKvStore<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn commit(&mut self, changelog_offset: Option<i64>) -> Result<(), StateError> {
        if self.overlay.is_empty() && changelog_offset.is_none() {
            return Ok(());
        }
        let entries: Vec<ChangelogEntry> = mem::take(&mut self.overlay)
            .into_iter()
            .map(|(key, value)| ChangelogEntry { key, value })
            .collect();
        match self.backend.apply(&entries, changelog_offset) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Keep the writes so a retried commit (or an abort) still sees them.
                self.overlay = entries.into_iter().map(|e| (e.key, e.value)).collect();
                Err(e)
            }
        }
    }

    fn abort(&mut self) {
        self.overlay.clear();
        if let Some(log) = &mut self.changelog {
            log.clear();
        }
    }

    fn checkpoint(&self) -> Option<i64> {
        self.backend.checkpoint()
    }

    fn restore(&mut self, records: &[RestoreRecord]) -> Result<(), StateError> {
        if !self.overlay.is_empty() {
            return Err(StateError::RestoreWithUncommittedWrites {
                store: self.name.clone(),
            });
        }
        let Some(last) = records.last() else {
            return Ok(());
        };
        let entries: Vec<ChangelogEntry> = records
            .iter()
            .map(|r| ChangelogEntry {
                key: r.key.clone(),
                value: r.value.clone(),
            })
            .collect();
        self.backend.apply(&entries, Some(last.offset))
    }

    fn take_changelog(&mut self) -> Vec<ChangelogEntry> {
        self.changelog.as_mut().map(mem::take).unwrap_or_default()
    }
}

impl<B: KvBackend> KeyValueStore for TransactionalKvStore<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.overlay.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.backend.read(key),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.write(key, Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StateError> {
        self.write(key, None);
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvEntries, StateError> {
        self.merged_range(from, Some(to))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KvEntries, StateError> {
        self.merged_range(prefix, prefix_end(prefix).as_deref())
    }

    fn committed(&self) -> &dyn KvRead {
        &self.backend
    }
}

/// The store as its writer sees it: committed state with this commit's writes over it.
impl<B: KvBackend> KvRead for TransactionalKvStore<B> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.get(key)
    }

    fn scan(&self, from: &[u8], to: Option<&[u8]>) -> Result<KvEntries, StateError> {
        self.merged_range(from, to)
    }
}
