//! Windowed aggregates as a key layout over a [`KeyValueStore`].
//!
//! Two key spaces, told apart by a leading tag byte:
//!
//! * primary, key-major: `[0][u32 BE key len][key][start]` → value, so one key's windows are
//!   contiguous and ordered by start;
//! * time index: `[1][start][key]` → empty, so windows are listed by start across keys (to close
//!   them and to enforce retention).
//!
//! `start` is the 8-byte sortable encoding of an `i64`, so negative times sort first.

use super::encoding::{self, PRIMARY, TIME_INDEX};
use super::{ChangelogEntry, KeyValueStore, KvRead, RestoreRecord, StateError, StateStore};

/// A store of one value per (key, window start).
///
/// Invariant: a time index entry exists exactly when its primary entry exists (both are written
/// and removed in the same transaction), so the index lists every live window and nothing else.
///
/// ```
/// use streamlib::state::{memory_store, WindowStore};
///
/// let mut windows = WindowStore::new(memory_store("sums", false));
/// windows.put(b"btc", -60_000, b"1").unwrap();
/// windows.put(b"btc", 0, b"2").unwrap();
/// assert_eq!(windows.fetch(b"btc", -60_000, 0).unwrap().len(), 2);
/// assert_eq!(windows.windows_starting_before(0).unwrap(), vec![(-60_000, b"btc".to_vec())]);
/// ```
pub struct WindowStore {
    inner: Box<dyn KeyValueStore>,
}

impl WindowStore {
    /// Lays windows out in `inner`, which should be empty or hold only this layout.
    pub fn new(inner: Box<dyn KeyValueStore>) -> Self {
        Self { inner }
    }

    /// Sets the value of `key`'s window starting at `start`.
    pub fn put(&mut self, key: &[u8], start: i64, value: &[u8]) -> Result<(), StateError> {
        let primary = primary_key(self.name(), key, start)?;
        if self.inner.get(&primary)?.is_none() {
            self.inner.put(&index_key(key, start), &[])?;
        }
        self.inner.put(&primary, value)
    }

    /// The value of `key`'s window starting at `start`.
    pub fn get(&self, key: &[u8], start: i64) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(&primary_key(self.name(), key, start)?)
    }

    /// `key`'s windows with `from_start <= start <= to_start`, ascending by start.
    pub fn fetch(
        &self,
        key: &[u8],
        from_start: i64,
        to_start: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
        fetch(self.inner.as_ref(), self.name(), key, from_start, to_start)
    }

    /// Removes `key`'s window starting at `start`; returns whether it existed.
    pub fn remove(&mut self, key: &[u8], start: i64) -> Result<bool, StateError> {
        let primary = primary_key(self.name(), key, start)?;
        if self.inner.get(&primary)?.is_none() {
            return Ok(false);
        }
        self.inner.delete(&primary)?;
        self.inner.delete(&index_key(key, start))?;
        Ok(true)
    }

    /// Every window with `start < t` as `(start, key)`, ascending by start, then key.
    pub fn windows_starting_before(&self, t: i64) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
        self.windows_starting_between(i64::MIN, t)
    }

    /// Every window with `from <= start < to` as `(start, key)`, ascending by start, then key.
    /// Starting at `from` skips what lies before it (on RocksDB: the deletes of windows already
    /// expired, which a scan from the beginning would step over every time).
    pub fn windows_starting_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
        let bound = |t: i64| {
            let mut key = vec![TIME_INDEX];
            key.extend_from_slice(&encoding::sortable(t));
            key
        };
        self.inner
            .range(&bound(from), &bound(to))?
            .into_iter()
            .map(|(k, _)| {
                let start = encoding::read_sortable(self.name(), &k, 1)?;
                Ok((start, k[9..].to_vec()))
            })
            .collect()
    }

    /// The layout's key-value store, for reads of its own ([`fetch`], [`windows_between`]).
    pub(crate) fn inner(&self) -> &dyn KeyValueStore {
        self.inner.as_ref()
    }
}

fn primary_key(store: &str, key: &[u8], start: i64) -> Result<Vec<u8>, StateError> {
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 8);
    out.push(PRIMARY);
    encoding::push_len_key(&mut out, store, key)?;
    out.extend_from_slice(&encoding::sortable(start));
    Ok(out)
}

/// `key`'s windows with `from_start <= start <= to_start` in the window layout of `store` as
/// `reader` shows it, ascending by start.
pub(crate) fn fetch(
    reader: &dyn KvRead,
    store: &str,
    key: &[u8],
    from_start: i64,
    to_start: i64,
) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
    let from = primary_key(store, key, from_start)?;
    let to = encoding::successor(&primary_key(store, key, to_start)?);
    let start_at = from.len() - 8;
    reader
        .scan(&from, Some(&to))?
        .into_iter()
        .map(|(k, v)| Ok((encoding::read_sortable(store, &k, start_at)?, v)))
        .collect()
}

/// Windows as `(key, start, value)`.
pub(crate) type KeyedWindows = Vec<(Vec<u8>, i64, Vec<u8>)>;

/// Every key's windows with `from_start <= start <= to_start` in the window layout of `store`
/// as `reader` shows it, as `(key, start, value)`, ascending by start, then key.
pub(crate) fn windows_between(
    reader: &dyn KvRead,
    store: &str,
    from_start: i64,
    to_start: i64,
) -> Result<KeyedWindows, StateError> {
    let mut from = vec![TIME_INDEX];
    from.extend_from_slice(&encoding::sortable(from_start));
    let mut upto = vec![TIME_INDEX];
    upto.extend_from_slice(&encoding::sortable(to_start));
    // [1][sortable(t)] is never all 0xFF, so a bound always exists.
    let to = encoding::prefix_end(&upto).unwrap_or_default();
    let mut found = Vec::new();
    for (index, _) in reader.scan(&from, Some(&to))? {
        let start = encoding::read_sortable(store, &index, 1)?;
        let key = index[9..].to_vec();
        match reader.read(&primary_key(store, &key, start)?)? {
            Some(value) => found.push((key, start, value)),
            None => {
                return Err(encoding::corrupt(
                    store,
                    format!("window index entry at {start} without its window"),
                ))
            }
        }
    }
    Ok(found)
}

fn index_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + key.len());
    out.push(TIME_INDEX);
    out.extend_from_slice(&encoding::sortable(start));
    out.extend_from_slice(key);
    out
}

impl StateStore for WindowStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn commit(&mut self, changelog_offset: Option<i64>) -> Result<(), StateError> {
        self.inner.commit(changelog_offset)
    }

    fn abort(&mut self) {
        self.inner.abort()
    }

    fn checkpoint(&self) -> Option<i64> {
        self.inner.checkpoint()
    }

    fn restore(&mut self, records: &[RestoreRecord]) -> Result<(), StateError> {
        self.inner.restore(records)
    }

    fn take_changelog(&mut self) -> Vec<ChangelogEntry> {
        self.inner.take_changelog()
    }
}
