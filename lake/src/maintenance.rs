//! Table maintenance: compact small files (Delta `optimize`) and vacuum unreferenced files.
//! Both are idempotent: a second run on an unchanged table changes nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::LakeError> {
//! let lake = lake::storage::Lake::parse("./lake")?;
//! for table in lake::maintenance::tables(&lake).await? {
//!     let compacted = lake::maintenance::compact(&lake, &table).await?;
//!     let vacuumed = lake::maintenance::vacuum(&lake, &table, chrono::Duration::hours(168)).await?;
//!     println!("{compacted:?} {vacuumed:?}");
//! }
//! # Ok(()) }
//! ```

use deltalake::{ObjectStore, Path};
use serde::Serialize;

use crate::storage::Lake;
use crate::LakeError;

/// What [`compact`] did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// The table under the lake root.
    pub table: String,
    /// Small files replaced.
    pub files_removed: u64,
    /// Compacted files written.
    pub files_added: u64,
    /// Partitions that had files compacted.
    pub partitions_optimized: u64,
}

/// What [`vacuum`] did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VacuumReport {
    /// The table under the lake root.
    pub table: String,
    /// Files no version within the retention refers to, now deleted (delta-rs also counts such
    /// files that an earlier vacuum already removed).
    pub files_deleted: usize,
}

/// The tables of the lake: every `<layer>/<table>` folder holding a `_delta_log`, sorted.
pub async fn tables(lake: &Lake) -> Result<Vec<String>, LakeError> {
    let store = deltalake::logstore::store_for(lake.root(), lake.storage_options())
        .map_err(LakeError::delta("<lake root>", "open the object store"))?;
    let mut found = Vec::new();
    for layer in children(store.as_ref(), None).await? {
        for table in children(store.as_ref(), Some(&layer)).await? {
            let entries = children(store.as_ref(), Some(&table)).await?;
            if entries.iter().any(|e| e.filename() == Some("_delta_log")) {
                found.push(table.to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}

async fn children(store: &dyn ObjectStore, prefix: Option<&Path>) -> Result<Vec<Path>, LakeError> {
    let listing = store
        .list_with_delimiter(prefix)
        .await
        .map_err(|source| LakeError::Delta {
            table: prefix.map(Path::to_string).unwrap_or_default(),
            operation: "list",
            source: Box::new(source.into()),
        })?;
    Ok(listing.common_prefixes)
}

/// Rewrites the small files of `table` into large ones (Delta `optimize`, 100 MiB target) in one
/// commit; `None` when the table does not exist. Readers and the sink keep working meanwhile.
pub async fn compact(lake: &Lake, table: &str) -> Result<Option<CompactReport>, LakeError> {
    let Some(delta) = lake.open(table).await? else {
        return Ok(None);
    };
    let (_, metrics) = delta
        .optimize()
        .await
        .map_err(LakeError::delta(table, "compact"))?;
    let report = CompactReport {
        table: table.to_owned(),
        files_removed: metrics.num_files_removed,
        files_added: metrics.num_files_added,
        partitions_optimized: metrics.partitions_optimized,
    };
    tracing::info!(?report, "compacted");
    Ok(Some(report))
}

/// Deletes the files of `table` that no table version younger than `retention` refers to;
/// `None` when the table does not exist. A retention shorter than the table's
/// `delta.deletedFileRetentionDuration` is honoured (the caller asked for it), so time travel
/// and readers older than `retention` lose their files.
pub async fn vacuum(
    lake: &Lake,
    table: &str,
    retention: chrono::Duration,
) -> Result<Option<VacuumReport>, LakeError> {
    let Some(delta) = lake.open(table).await? else {
        return Ok(None);
    };
    let (_, metrics) = delta
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .await
        .map_err(LakeError::delta(table, "vacuum"))?;
    let report = VacuumReport {
        table: table.to_owned(),
        files_deleted: metrics.files_deleted.len(),
    };
    tracing::info!(?report, "vacuumed");
    Ok(Some(report))
}
