//! State stores: durable local state with changelog records, restore and a shared memory budget.
//!
//! Every store is a byte-level key-value store made of two parts:
//!
//! * a [`KvBackend`] holding *committed* state (in memory, or one RocksDB instance per store), and
//! * a [`TransactionalKvStore`] on top that buffers the writes of the current commit in an
//!   overlay, records them as [`ChangelogEntry`]s when logging is on, and on
//!   [`StateStore::commit`] applies them together with the changelog offset in one atomic write.
//!
//! So committed state never contains writes of an unfinished commit (not even after `kill -9`),
//! and the stored checkpoint always describes exactly the data stored next to it.
//! [`WindowStore`], [`SessionStore`] and [`TtlKeyValueStore`] are key layouts on top of a
//! [`KeyValueStore`], so they get commit, changelog and restore for free.
//!
//! ```
//! use streamlib::state::{memory_store, KeyValueStore, StateStore};
//!
//! let mut store = memory_store("counts", true);
//! store.put(b"btc", b"1").unwrap();
//! assert_eq!(store.get(b"btc").unwrap(), Some(b"1".to_vec())); // read-your-writes
//! let changelog = store.take_changelog(); // the runtime produces these to Kafka ...
//! assert_eq!(changelog.len(), 1);
//! store.commit(Some(0)).unwrap(); // ... then commits with the offset it got back
//! assert_eq!(store.checkpoint(), Some(0));
//!
//! store.put(b"eth", b"2").unwrap();
//! store.abort(); // an aborted transaction leaves committed state untouched
//! assert_eq!(store.get(b"eth").unwrap(), None);
//! ```

pub(crate) mod encoding;
pub(crate) mod global;
mod memory;
mod rocksdb;
pub(crate) mod session;
mod transaction;
pub(crate) mod ttl;
pub(crate) mod window;

use std::path::Path;

pub use self::memory::MemoryBackend;
pub use self::rocksdb::{RocksDbBackend, RocksDbShared};
pub use self::session::SessionStore;
pub use self::transaction::{KvBackend, TransactionalKvStore};
pub use self::ttl::TtlKeyValueStore;
pub use self::window::WindowStore;

/// Key-value pairs in ascending key order, as returned by range and prefix scans.
pub type KvEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a state store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB reported an error while opening, reading or writing a store.
    #[error("RocksDB error in state store `{store}`: {source}")]
    RocksDb {
        /// Name of the store.
        store: String,
        /// The error RocksDB returned.
        #[source]
        source: ::rocksdb::Error,
    },
    /// A file-system operation on a store's directory failed.
    #[error("I/O error in state store `{store}` at {path}: {source}")]
    Io {
        /// Name of the store.
        store: String,
        /// The path the operation was about.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes do not have the layout this store writes (wrong file, or a bug).
    #[error("state store `{store}` is corrupt: {reason}")]
    Corrupt {
        /// Name of the store.
        store: String,
        /// What was malformed.
        reason: String,
    },
    /// `restore` was called while the store held uncommitted writes, which restore would bypass.
    #[error("state store `{store}` cannot restore while it holds uncommitted writes")]
    RestoreWithUncommittedWrites {
        /// Name of the store.
        store: String,
    },
    /// The caller passed arguments that break the store's invariants (e.g. a session ending before it starts).
    #[error("invalid argument for state store `{store}`: {reason}")]
    InvalidArgument {
        /// Name of the store.
        store: String,
        /// What was wrong.
        reason: String,
    },
}

/// One write to a store, as produced to its changelog topic: `value == None` is a tombstone (delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// The store key (for window, session and TTL stores: the encoded composite key).
    pub key: Vec<u8>,
    /// The new value, or `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
}

/// One changelog record read back from Kafka during restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRecord {
    /// Offset of the record in the changelog partition.
    pub offset: i64,
    /// The store key.
    pub key: Vec<u8>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// What every state store offers the runtime: commit, abort, checkpoint, restore and changelog.
pub trait StateStore: Send {
    /// The store's name (also the stem of its changelog topic).
    fn name(&self) -> &str;
    /// Atomically persists every write since the last commit together with the changelog offset.
    ///
    /// `None` leaves the stored checkpoint as it is (a store without changelog has none).
    fn commit(&mut self, changelog_offset: Option<i64>) -> Result<(), StateError>;
    /// Drops writes not yet committed (used when an exactly-once transaction aborts), and the
    /// changelog entries of those writes not yet taken.
    fn abort(&mut self);
    /// Offset of the last changelog record reflected in committed state.
    fn checkpoint(&self) -> Option<i64>;
    /// Applies changelog records read during restore directly to committed state, with their last
    /// offset as checkpoint, atomically per call.
    fn restore(&mut self, records: &[RestoreRecord]) -> Result<(), StateError>;
    /// Drains changelog entries produced since the last call (empty when logging is off).
    fn take_changelog(&mut self) -> Vec<ChangelogEntry>;
}

/// Reads of a byte-level key space: a store's committed state ([`KeyValueStore::committed`]), or
/// the store as its writer sees it (every [`KeyValueStore`] is one). Interactive queries and the
/// window, session and TTL layouts read through it.
pub trait KvRead {
    /// The value of `key`.
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Entries with `from <= key` and `key < to` (no upper bound when `to` is `None`), ascending.
    fn scan(&self, from: &[u8], to: Option<&[u8]>) -> Result<KvEntries, StateError>;
}

/// A byte-level key-value store whose reads see the writes of the current (uncommitted) transaction.
pub trait KeyValueStore: StateStore + KvRead {
    /// The value of `key`, including uncommitted writes.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Sets `key` to `value` in the current transaction.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError>;
    /// Deletes `key` in the current transaction (a no-op on committed state until commit).
    fn delete(&mut self, key: &[u8]) -> Result<(), StateError>;
    /// Entries with from <= key < to, ascending.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvEntries, StateError>;
    /// Entries whose key starts with `prefix`, ascending (`&[]` returns every entry).
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KvEntries, StateError>;
    /// The committed state alone, without the writes of the current transaction.
    fn committed(&self) -> &dyn KvRead;
}

/// A key-value store kept in memory: committed state is lost when the process exits.
///
/// With `logged`, every write is recorded for [`StateStore::take_changelog`].
pub fn memory_store(name: &str, logged: bool) -> Box<dyn KeyValueStore> {
    Box::new(TransactionalKvStore::new(
        name,
        MemoryBackend::default(),
        logged,
    ))
}

/// A key-value store persisted in the RocksDB instance at `path` (created if missing), drawing its
/// block cache and write buffers from `shared`.
///
/// With `logged`, every write is recorded for [`StateStore::take_changelog`].
pub fn rocksdb_store(
    name: &str,
    path: &Path,
    shared: &RocksDbShared,
    logged: bool,
) -> Result<Box<dyn KeyValueStore>, StateError> {
    let backend = RocksDbBackend::open(name, path, shared)?;
    Ok(Box::new(TransactionalKvStore::new(name, backend, logged)))
}
