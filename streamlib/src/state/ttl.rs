//! Key-value entries that expire a fixed time after their last write (e.g. for deduplication).
//!
//! Two key spaces over a [`KeyValueStore`], told apart by a leading tag byte:
//!
//! * primary: `[0][key]` → `[expiry][value]`;
//! * expiry index: `[1][expiry][key]` → empty, so purging reads only what has expired.
//!
//! `expiry` is the 8-byte sortable encoding of an `i64` in milliseconds. Time is whatever the
//! caller passes (stream time), never the wall clock.

use std::time::Duration;

use super::encoding::{self, corrupt, PRIMARY, TIME_INDEX};
use super::{ChangelogEntry, KeyValueStore, KvRead, RestoreRecord, StateError, StateStore};

/// A key-value store whose entries expire `ttl` after their last `put`.
///
/// An entry written at `now` is visible while `time < now + ttl` and expired from `now + ttl` on.
/// Invariant: every live entry has exactly one index entry, at its current expiry.
///
/// ```
/// use std::time::Duration;
/// use streamlib::state::{memory_store, TtlKeyValueStore};
///
/// let mut seen = TtlKeyValueStore::new(memory_store("dedup", false), Duration::from_millis(100));
/// seen.put(b"btc@1000", b"", 1_000).unwrap();
/// assert!(seen.get(b"btc@1000", 1_099).unwrap().is_some());
/// assert!(seen.get(b"btc@1000", 1_100).unwrap().is_none());
/// assert_eq!(seen.purge_expired(1_100).unwrap(), 1);
/// ```
pub struct TtlKeyValueStore {
    inner: Box<dyn KeyValueStore>,
    ttl_ms: i64,
}

impl TtlKeyValueStore {
    /// Stores entries in `inner` (empty, or holding only this layout) that live for `ttl`.
    pub fn new(inner: Box<dyn KeyValueStore>, ttl: Duration) -> Self {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Self { inner, ttl_ms }
    }

    /// How long an entry lives after its last write, in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Sets `key` to `value`, expiring at `now_ms + ttl`.
    pub fn put(&mut self, key: &[u8], value: &[u8], now_ms: i64) -> Result<(), StateError> {
        let expiry = now_ms.saturating_add(self.ttl_ms);
        let primary = primary_key(key);
        let previous = self.read(&primary)?.map(|(expiry, _)| expiry);
        if previous != Some(expiry) {
            if let Some(old) = previous {
                self.inner.delete(&index_key(key, old))?;
            }
            self.inner.put(&index_key(key, expiry), &[])?;
        }
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&encoding::sortable(expiry));
        stored.extend_from_slice(value);
        self.inner.put(&primary, &stored)
    }

    /// The value of `key` unless it expired at or before `now_ms`.
    pub fn get(&self, key: &[u8], now_ms: i64) -> Result<Option<Vec<u8>>, StateError> {
        get(self.inner.as_ref(), self.name(), key, now_ms)
    }

    /// Deletes `key` (expired or not); returns whether it was stored.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, StateError> {
        let primary = primary_key(key);
        let Some((expiry, _)) = self.read(&primary)? else {
            return Ok(false);
        };
        self.inner.delete(&primary)?;
        self.inner.delete(&index_key(key, expiry))?;
        Ok(true)
    }

    /// Deletes every entry with `expiry <= now_ms`; returns how many. Reads only expired index
    /// entries, so the cost is proportional to what expires.
    pub fn purge_expired(&mut self, now_ms: i64) -> Result<usize, StateError> {
        let mut upto = vec![TIME_INDEX];
        upto.extend_from_slice(&encoding::sortable(now_ms));
        // [1][sortable(now)] is never all 0xFF, so a bound always exists.
        let to = encoding::prefix_end(&upto).unwrap_or_default();
        let expired = self.inner.range(&[TIME_INDEX], &to)?;
        for (index, _) in &expired {
            let key = index.get(9..).ok_or_else(|| {
                corrupt(
                    self.name(),
                    format!("expiry index key of {} bytes", index.len()),
                )
            })?;
            self.inner.delete(&primary_key(key))?;
            self.inner.delete(index)?;
        }
        Ok(expired.len())
    }

    /// The stored `(expiry, value)` of a primary key, expired or not.
    fn read(&self, primary: &[u8]) -> Result<Option<(i64, Vec<u8>)>, StateError> {
        read(self.inner.as_ref(), self.name(), primary)
    }

    /// The layout's key-value store, for reads of its own ([`get`]).
    pub(crate) fn inner(&self) -> &dyn KeyValueStore {
        self.inner.as_ref()
    }
}

/// The value of `key` in the TTL layout of `store` as `reader` shows it, unless it expired at
/// or before `now_ms`.
pub(crate) fn get(
    reader: &dyn KvRead,
    store: &str,
    key: &[u8],
    now_ms: i64,
) -> Result<Option<Vec<u8>>, StateError> {
    Ok(read(reader, store, &primary_key(key))?
        .filter(|(expiry, _)| *expiry > now_ms)
        .map(|(_, value)| value))
}

fn read(
    reader: &dyn KvRead,
    store: &str,
    primary: &[u8],
) -> Result<Option<(i64, Vec<u8>)>, StateError> {
    let Some(mut stored) = reader.read(primary)? else {
        return Ok(None);
    };
    let expiry = encoding::read_sortable(store, &stored, 0)?;
    stored.drain(..8);
    Ok(Some((expiry, stored)))
}

fn primary_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(PRIMARY);
    out.extend_from_slice(key);
    out
}

fn index_key(key: &[u8], expiry: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + key.len());
    out.push(TIME_INDEX);
    out.extend_from_slice(&encoding::sortable(expiry));
    out.extend_from_slice(key);
    out
}

impl StateStore for TtlKeyValueStore {
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
