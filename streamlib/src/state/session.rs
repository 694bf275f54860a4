//! Session aggregates as a key layout over a [`KeyValueStore`].
//!
//! Two key spaces, told apart by a leading tag byte:
//!
//! * primary, key-major: `[0][u32 BE key len][key][end][start]` → value, so one key's sessions
//!   are contiguous and ordered by end;
//! * time index: `[1][end][start][key]` → empty, so sessions are listed by end across keys (to
//!   close them and to enforce retention).
//!
//! Times are the 8-byte sortable encoding of an `i64`, so negative times sort first.

use super::encoding::{self, PRIMARY, TIME_INDEX};
use super::{ChangelogEntry, KeyValueStore, KvRead, RestoreRecord, StateError, StateStore};

/// A store of one value per (key, session start, session end), with `start <= end`.
///
/// Invariant: a time index entry exists exactly when its primary entry exists (both are written
/// and removed in the same transaction).
///
/// ```
/// use streamlib::state::{memory_store, SessionStore};
///
/// let mut sessions = SessionStore::new(memory_store("clicks", false));
/// sessions.put(b"alice", 0, 10, b"3").unwrap();
/// // A record at 15 with a 5 ms gap merges with sessions ending at >= 10 and starting at <= 20.
/// assert_eq!(sessions.find_sessions(b"alice", 10, 20).unwrap(), vec![(0, 10, b"3".to_vec())]);
/// ```
pub struct SessionStore {
    inner: Box<dyn KeyValueStore>,
}

impl SessionStore {
    /// Lays sessions out in `inner`, which should be empty or hold only this layout.
    pub fn new(inner: Box<dyn KeyValueStore>) -> Self {
        Self { inner }
    }

    /// Sets the value of `key`'s session `[start, end]`; fails when `start > end`.
    pub fn put(
        &mut self,
        key: &[u8],
        start: i64,
        end: i64,
        value: &[u8],
    ) -> Result<(), StateError> {
        if start > end {
            return Err(StateError::InvalidArgument {
                store: self.name().to_owned(),
                reason: format!("session start {start} is after its end {end}"),
            });
        }
        let primary = primary_key(self.name(), key, start, end)?;
        if self.inner.get(&primary)?.is_none() {
            self.inner.put(&index_key(key, start, end), &[])?;
        }
        self.inner.put(&primary, value)
    }

    /// The value of `key`'s session `[start, end]`.
    pub fn get(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(&primary_key(self.name(), key, start, end)?)
    }

    /// Removes `key`'s session `[start, end]`; returns whether it existed.
    pub fn remove(&mut self, key: &[u8], start: i64, end: i64) -> Result<bool, StateError> {
        let primary = primary_key(self.name(), key, start, end)?;
        if self.inner.get(&primary)?.is_none() {
            return Ok(false);
        }
        self.inner.delete(&primary)?;
        self.inner.delete(&index_key(key, start, end))?;
        Ok(true)
    }

    /// `key`'s sessions with `end >= earliest_end` and `start <= latest_start`, as
    /// `(start, end, value)`, ascending by end, then start.
    pub fn find_sessions(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(i64, i64, Vec<u8>)>, StateError> {
        find_sessions(
            self.inner.as_ref(),
            self.name(),
            key,
            earliest_end,
            latest_start,
        )
    }

    /// Every session with `end < t` as `(key, start, end)`, ascending by end, then start, then key.
    pub fn sessions_ending_before(&self, t: i64) -> Result<Vec<(Vec<u8>, i64, i64)>, StateError> {
        let mut to = vec![TIME_INDEX];
        to.extend_from_slice(&encoding::sortable(t));
        self.inner
            .range(&[TIME_INDEX], &to)?
            .into_iter()
            .map(|(k, _)| {
                let end = encoding::read_sortable(self.name(), &k, 1)?;
                let start = encoding::read_sortable(self.name(), &k, 9)?;
                Ok((k[17..].to_vec(), start, end))
            })
            .collect()
    }

    /// The layout's key-value store, for reads of its own ([`find_sessions`]).
    pub(crate) fn inner(&self) -> &dyn KeyValueStore {
        self.inner.as_ref()
    }
}

fn primary_key(store: &str, key: &[u8], start: i64, end: i64) -> Result<Vec<u8>, StateError> {
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 16);
    out.push(PRIMARY);
    encoding::push_len_key(&mut out, store, key)?;
    out.extend_from_slice(&encoding::sortable(end));
    out.extend_from_slice(&encoding::sortable(start));
    Ok(out)
}

/// `key`'s sessions with `end >= earliest_end` and `start <= latest_start` in the session
/// layout of `store` as `reader` shows it, as `(start, end, value)`, ascending by end, then start.
pub(crate) fn find_sessions(
    reader: &dyn KvRead,
    store: &str,
    key: &[u8],
    earliest_end: i64,
    latest_start: i64,
) -> Result<Vec<(i64, i64, Vec<u8>)>, StateError> {
    let mut prefix = vec![PRIMARY];
    encoding::push_len_key(&mut prefix, store, key)?;
    let end_at = prefix.len();
    // The prefix starts with tag 0, so it always has an upper bound.
    let to = encoding::prefix_end(&prefix).unwrap_or_default();
    prefix.extend_from_slice(&encoding::sortable(earliest_end));
    let mut found = Vec::new();
    for (k, value) in reader.scan(&prefix, Some(&to))? {
        let end = encoding::read_sortable(store, &k, end_at)?;
        let start = encoding::read_sortable(store, &k, end_at + 8)?;
        if start <= latest_start {
            found.push((start, end, value));
        }
    }
    Ok(found)
}

fn index_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 + key.len());
    out.push(TIME_INDEX);
    out.extend_from_slice(&encoding::sortable(end));
    out.extend_from_slice(&encoding::sortable(start));
    out.extend_from_slice(key);
    out
}

impl StateStore for SessionStore {
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
