//! One store query on one task's store, in bytes.

use crate::state::{encoding, session, ttl, window, KeyValueStore, KvRead, StateError};
use crate::task::TaskStore;
use crate::topology::WindowLayout;

use super::{QueryFailure, RawAnswer, StoreQuery};

/// The window start at which windowed aggregates keep their own bookkeeping entry (how far
/// they closed), never a window of the data.
const AGGREGATE_MARK: i64 = i64::MIN;

/// Runs `query` on `store`, reading its committed state alone when `committed`, and judging a
/// TTL store's expiry at `stream_time`.
pub(crate) fn run(
    store: &TaskStore,
    query: &StoreQuery,
    committed: bool,
    stream_time: i64,
) -> Result<RawAnswer, QueryFailure> {
    let (kind, kv): (&str, &dyn KeyValueStore) = match store {
        TaskStore::KeyValue(s) | TaskStore::Timestamped(s) => ("key-value", s.as_ref()),
        TaskStore::Window(s, WindowLayout::Windows | WindowLayout::TimestampedWindows) => {
            ("window", s.inner())
        }
        TaskStore::Window(_, WindowLayout::Panes) => {
            return Err(QueryFailure::UnknownQueryType {
                kind: "window store of panes (a hopping aggregate)".to_owned(),
            })
        }
        TaskStore::Session(s) => ("session", s.inner()),
        TaskStore::Ttl(s) => ("ttl", s.inner()),
    };
    let reader: &dyn KvRead = if committed { kv.committed() } else { kv };
    let name = kv.name();
    let answer = match (store, query) {
        (TaskStore::KeyValue(_), StoreQuery::Key(key)) => RawAnswer::Value(reader.read(key)?),
        (TaskStore::KeyValue(_), StoreQuery::Range { from, to }) => {
            RawAnswer::Entries(range(reader, from, to)?)
        }
        (TaskStore::Timestamped(_), StoreQuery::Key(key)) => RawAnswer::Value(
            reader
                .read(key)?
                .map(|v| without_timestamp(name, &v))
                .transpose()?,
        ),
        (TaskStore::Timestamped(_), StoreQuery::Range { from, to }) => RawAnswer::Entries(
            range(reader, from, to)?
                .into_iter()
                .map(|(k, v)| Ok((k, without_timestamp(name, &v)?)))
                .collect::<Result<_, StateError>>()?,
        ),
        (TaskStore::Ttl(_), StoreQuery::Key(key)) => {
            RawAnswer::Value(ttl::get(reader, name, key, stream_time)?)
        }
        (
            TaskStore::Window(..),
            StoreQuery::WindowKey {
                key,
                from_start,
                to_start,
            },
        ) => RawAnswer::Windows(without_timestamps(
            store,
            name,
            window::fetch(reader, name, key, *from_start, *to_start)?
                .into_iter()
                .filter(|(start, _)| *start != AGGREGATE_MARK)
                .map(|(start, value)| (key.clone(), start, value))
                .collect(),
        )?),
        (
            TaskStore::Window(..),
            StoreQuery::WindowRange {
                from_start,
                to_start,
            },
        ) => RawAnswer::Windows(without_timestamps(
            store,
            name,
            window::windows_between(reader, name, *from_start, *to_start)?
                .into_iter()
                .filter(|(_, start, _)| *start != AGGREGATE_MARK)
                .collect(),
        )?),
        (TaskStore::Session(_), StoreQuery::Session { key }) => RawAnswer::Sessions(
            session::find_sessions(reader, name, key, i64::MIN, i64::MAX)?
                .into_iter()
                .map(|(start, end, value)| (key.clone(), start, end, value))
                .collect(),
        ),
        _ => {
            return Err(QueryFailure::UnknownQueryType {
                kind: kind.to_owned(),
            })
        }
    };
    Ok(answer)
}

/// The entries with `from <= key <= to` (unbounded where `None`).
fn range(
    reader: &dyn KvRead,
    from: &Option<Vec<u8>>,
    to: &Option<Vec<u8>>,
) -> Result<crate::state::KvEntries, StateError> {
    let from = from.as_deref().unwrap_or_default();
    let to = to.as_deref().map(encoding::successor);
    reader.scan(from, to.as_deref())
}

/// The windows of a [`WindowLayout::TimestampedWindows`] store without their timestamps; those
/// of other stores as they are.
fn without_timestamps(
    store: &TaskStore,
    name: &str,
    windows: window::KeyedWindows,
) -> Result<window::KeyedWindows, StateError> {
    if !matches!(
        store,
        TaskStore::Window(_, WindowLayout::TimestampedWindows)
    ) {
        return Ok(windows);
    }
    windows
        .into_iter()
        .map(|(key, start, value)| Ok((key, start, without_timestamp(name, &value)?)))
        .collect()
}

/// A timestamped value's bytes without the timestamp.
fn without_timestamp(store: &str, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
    Ok(encoding::split_timestamped(store, bytes)?.1.to_vec())
}

impl From<StateError> for QueryFailure {
    fn from(error: StateError) -> Self {
        QueryFailure::StoreException(error.to_string())
    }
}
