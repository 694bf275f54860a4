//! Committed state in RocksDB: one database per store, with a process-wide memory budget.
//!
//! Data lives in the `default` column family, the changelog checkpoint in `__streamlib_meta`.
//! Each commit is one `WriteBatch` holding both, written through the WAL, so after any crash
//! RocksDB recovers either the whole commit (data and checkpoint) or none of it.

use std::fmt;
use std::path::{Path, PathBuf};

use ::rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteBufferManager, WriteOptions, DB,
};

use super::transaction::KvBackend;
use super::{ChangelogEntry, KvEntries, KvRead, StateError};

const DATA_CF: &str = "default";
const META_CF: &str = "__streamlib_meta";
const CHECKPOINT_KEY: &[u8] = b"changelog_offset";

/// The memory all RocksDB stores of a process share: one LRU block cache and one write-buffer
/// manager whose memtable memory is charged to that cache.
///
/// Invariant: block cache plus memtables of every store opened with (a clone of) this value stay
/// near `total_bytes`, however many stores are open. Cloning shares, it does not add budget.
///
/// ```
/// let shared = streamlib::state::RocksDbShared::new(64 << 20);
/// assert_eq!(shared.total_bytes(), 64 << 20);
/// ```
#[derive(Clone)]
pub struct RocksDbShared {
    cache: Cache,
    write_buffers: WriteBufferManager,
    total_bytes: usize,
}

impl RocksDbShared {
    /// A budget of `total_bytes`, a quarter of which may be memtables.
    pub fn new(total_bytes: usize) -> Self {
        Self::with_write_buffer_bytes(total_bytes, total_bytes / 4)
    }

    /// A budget of `total_bytes`, of which at most `write_buffer_bytes` may be memtables.
    pub fn with_write_buffer_bytes(total_bytes: usize, write_buffer_bytes: usize) -> Self {
        let cache = Cache::new_lru_cache(total_bytes);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            write_buffer_bytes.min(total_bytes),
            false,
            cache.clone(),
        );
        Self {
            cache,
            write_buffers,
            total_bytes,
        }
    }

    /// The configured budget in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Bytes currently held in the shared cache: cached blocks plus memtable reservations.
    pub fn cache_usage(&self) -> usize {
        self.cache.get_usage()
    }

    /// Bytes of memtables currently allocated by all stores sharing this budget.
    pub fn write_buffer_usage(&self) -> usize {
        self.write_buffers.get_usage()
    }

    /// Options for one store's column families, all drawing on this budget.
    fn options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        table.set_bloom_filter(10.0, false);
        // Index and filter blocks count against the budget too, instead of growing outside it.
        table.set_cache_index_and_filter_blocks(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        table.set_pin_top_level_index_and_filter(true);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_manager(&self.write_buffers);
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_write_buffer_number(3);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        opts.set_atomic_flush(true);
        opts.set_keep_log_file_num(5);
        opts
    }
}

impl fmt::Debug for RocksDbShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbShared")
            .field("total_bytes", &self.total_bytes)
            .field("cache_usage", &self.cache_usage())
            .field("write_buffer_usage", &self.write_buffer_usage())
            .finish()
    }
}

/// A [`KvBackend`] backed by one RocksDB database directory.
///
/// Invariant: the checkpoint in `__streamlib_meta` was written in the same `WriteBatch` as the
/// data of the commit it names, so reopening the directory yields matching data and checkpoint.
pub struct RocksDbBackend {
    name: String,
    path: PathBuf,
    db: DB,
    /// Cached copy of the stored checkpoint, updated only after a successful write.
    checkpoint: Option<i64>,
    write_opts: WriteOptions,
}

impl RocksDbBackend {
    /// Opens (creating if missing) the database of store `name` at `path`.
    pub fn open(name: &str, path: &Path, shared: &RocksDbShared) -> Result<Self, StateError> {
        std::fs::create_dir_all(path).map_err(|source| StateError::Io {
            store: name.to_owned(),
            path: path.display().to_string(),
            source,
        })?;
        let opts = shared.options();
        let families = [DATA_CF, META_CF].map(|cf| ColumnFamilyDescriptor::new(cf, opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, families).map_err(|source| {
            StateError::RocksDb {
                store: name.to_owned(),
                source,
            }
        })?;
        let mut write_opts = WriteOptions::default();
        // The WAL makes a written batch survive a process crash; fsync per commit is not needed
        // because the changelog can replay whatever a machine crash loses after the checkpoint.
        write_opts.set_sync(false);
        let mut backend = Self {
            name: name.to_owned(),
            path: path.to_owned(),
            db,
            checkpoint: None,
            write_opts,
        };
        backend.checkpoint = backend.read_checkpoint()?;
        tracing::debug!(store = name, path = %path.display(), checkpoint = ?backend.checkpoint, "opened RocksDB store");
        Ok(backend)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_checkpoint(&self) -> Result<Option<i64>, StateError> {
        let raw = self
            .db
            .get_pinned_cf(self.cf(META_CF)?, CHECKPOINT_KEY)
            .map_err(|e| self.rocks(e))?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let bytes: [u8; 8] = raw.as_ref().try_into().map_err(|_| StateError::Corrupt {
            store: self.name.clone(),
            reason: format!("checkpoint has {} bytes, expected 8", raw.len()),
        })?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db.cf_handle(name).ok_or_else(|| StateError::Corrupt {
            store: self.name.clone(),
            reason: format!("column family `{name}` is missing"),
        })
    }

    fn rocks(&self, source: ::rocksdb::Error) -> StateError {
        StateError::RocksDb {
            store: self.name.clone(),
            source,
        }
    }
}

impl KvRead for RocksDbBackend {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let value = self
            .db
            .get_pinned_cf(self.cf(DATA_CF)?, key)
            .map_err(|e| self.rocks(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(&self, from: &[u8], to: Option<&[u8]>) -> Result<KvEntries, StateError> {
        if to.is_some_and(|to| from >= to) {
            return Ok(Vec::new());
        }
        let mut read_opts = ReadOptions::default();
        if let Some(to) = to {
            read_opts.set_iterate_upper_bound(to);
        }
        let iter = self.db.iterator_cf_opt(
            self.cf(DATA_CF)?,
            read_opts,
            IteratorMode::From(from, Direction::Forward),
        );
        iter.map(|item| {
            item.map(|(k, v)| (k.into_vec(), v.into_vec()))
                .map_err(|e| self.rocks(e))
        })
        .collect()
    }
}

impl KvBackend for RocksDbBackend {
    fn apply(
        &mut self,
        entries: &[ChangelogEntry],
        checkpoint: Option<i64>,
    ) -> Result<(), StateError> {
        let data = self.cf(DATA_CF)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            match &entry.value {
                Some(value) => batch.put_cf(data, &entry.key, value),
                None => batch.delete_cf(data, &entry.key),
            }
        }
        if let Some(offset) = checkpoint {
            batch.put_cf(self.cf(META_CF)?, CHECKPOINT_KEY, offset.to_be_bytes());
        }
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|e| self.rocks(e))?;
        if checkpoint.is_some() {
            self.checkpoint = checkpoint;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }
}
