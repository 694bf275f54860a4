//! Windowed aggregations: a grouped stream plus a window definition (time, session or
//! sliding), emitting per update or once per window when it closes.

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::Processor;
use crate::serdes::{I64Serde, Serde, SerdeError};
use crate::window::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Windowed};

use super::graph::Data;
use super::grouped::{Materialized, Updater};
use super::late::LateRecords;
use super::session_aggregate::SessionAggregate;
use super::sliding_aggregate::SlidingAggregate;
use super::time_window_aggregate::TimeWindowAggregate;
use super::{KGroupedStream, KStream, KTable, StoreKind, WindowLayout};

/// Combines two partial aggregates (panes or sessions) of one window.
pub(crate) type Merger<A> = Arc<dyn Fn(A, A) -> A + Send + Sync>;

/// What every windowed aggregation processor needs besides its window definition.
pub(crate) struct AggregateParts<K, V, A> {
    pub(crate) store: String,
    pub(crate) emit: EmitStrategy,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) aggregate_serde: Arc<dyn Serde<A>>,
    pub(crate) updater: Updater<K, V, A>,
    pub(crate) merger: Merger<A>,
    pub(crate) late: LateRecords<K, V>,
}

impl<K, V, A> Clone for AggregateParts<K, V, A> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            emit: self.emit,
            key_serde: self.key_serde.clone(),
            aggregate_serde: self.aggregate_serde.clone(),
            updater: self.updater.clone(),
            merger: self.merger.clone(),
            late: self.late.clone(),
        }
    }
}

impl<K: 'static, V, A: 'static> AggregateParts<K, V, A> {
    fn error(&self) -> impl Fn(SerdeError) -> ProcessError + '_ {
        ProcessError::serialization(&self.store)
    }

    pub(crate) fn key_bytes(&self, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.key_serde
            .serialize(&self.store, key)
            .map_err(self.error())
    }

    pub(crate) fn key(&self, bytes: &[u8]) -> Result<K, ProcessError> {
        self.key_serde
            .deserialize(&self.store, bytes)
            .map_err(self.error())
    }

    pub(crate) fn encode(&self, value: &A) -> Result<Vec<u8>, ProcessError> {
        self.aggregate_serde
            .serialize(&self.store, value)
            .map_err(self.error())
    }

    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<A, ProcessError> {
        self.aggregate_serde
            .deserialize(&self.store, bytes)
            .map_err(self.error())
    }

    /// Merges partial aggregates in order; `None` when there are none.
    pub(crate) fn merge_all(&self, parts: impl IntoIterator<Item = A>) -> Option<A> {
        parts.into_iter().reduce(|a, b| (self.merger)(a, b))
    }
}

/// A store retention of `ms` milliseconds (window arithmetic never yields a negative one).
fn retention(ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

/// A window definition that knows how to aggregate.
pub trait WindowDefinition: Copy + Send + Sync + 'static {
    /// The store kind its aggregation keeps.
    #[doc(hidden)]
    fn store_kind(&self) -> StoreKind;

    /// The table of the aggregation of `keyed` (a grouped stream without null keys) with
    /// these windows, in the store named by `parts`.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn aggregate<K: Data, V: Data, A: Data>(
        &self,
        keyed: &KStream<K, V>,
        parts: AggregateParts<K, V, A>,
    ) -> KTable<Windowed<K>, A>;
}

/// The table of a windowed aggregation whose processor forwards updates only (no deletes).
fn table_of_updates<K: Data, V: Data, A: Data, P>(
    keyed: &KStream<K, V>,
    store: String,
    processor: impl Fn() -> P + Send + Sync + 'static,
) -> KTable<Windowed<K>, A>
where
    P: Processor<K, V, Windowed<K>, A> + 'static,
{
    KTable::of_updates(keyed.process(processor, &[&store]), store)
}

impl WindowDefinition for TimeWindows {
    fn store_kind(&self) -> StoreKind {
        // Tumbling windows are their own panes; hopping windows share panes.
        let layout = if self.advance_ms() == self.size_ms() {
            WindowLayout::TimestampedWindows
        } else {
            WindowLayout::Panes
        };
        StoreKind::Window {
            retention: retention(self.size_ms() + self.grace_ms()),
            layout,
        }
    }

    #[allow(private_interfaces)]
    fn aggregate<K: Data, V: Data, A: Data>(
        &self,
        keyed: &KStream<K, V>,
        parts: AggregateParts<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = *self;
        table_of_updates(keyed, parts.store.clone(), move || {
            TimeWindowAggregate::new(windows, parts.clone())
        })
    }
}

impl WindowDefinition for SessionWindows {
    fn store_kind(&self) -> StoreKind {
        StoreKind::Session {
            retention: retention(self.gap_ms() + self.grace_ms()),
        }
    }

    /// Sessions merged away are deleted from the table (their updates are `None`), as Kafka
    /// Streams forwards them.
    #[allow(private_interfaces)]
    fn aggregate<K: Data, V: Data, A: Data>(
        &self,
        keyed: &KStream<K, V>,
        parts: AggregateParts<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = *self;
        let store = parts.store.clone();
        let changes = keyed.process(
            move || SessionAggregate::new(windows, parts.clone()),
            &[&store],
        );
        KTable::of_changes(changes, store)
    }
}

impl WindowDefinition for SlidingWindows {
    fn store_kind(&self) -> StoreKind {
        StoreKind::Window {
            retention: retention(2 * self.difference_ms() + self.grace_ms()),
            layout: WindowLayout::TimestampedWindows,
        }
    }

    #[allow(private_interfaces)]
    fn aggregate<K: Data, V: Data, A: Data>(
        &self,
        keyed: &KStream<K, V>,
        parts: AggregateParts<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = *self;
        table_of_updates(keyed, parts.store.clone(), move || {
            SlidingAggregate::new(windows, parts.clone())
        })
    }
}

/// A grouped stream with tumbling or hopping windows.
pub type TimeWindowedKStream<K, V> = WindowedKStream<K, V, TimeWindows>;
/// A grouped stream with session windows.
pub type SessionWindowedKStream<K, V> = WindowedKStream<K, V, SessionWindows>;
/// A grouped stream with sliding windows.
pub type SlidingWindowedKStream<K, V> = WindowedKStream<K, V, SlidingWindows>;

/// A grouped stream with a window definition, ready to aggregate.
pub struct WindowedKStream<K, V, W> {
    stream: KStream<K, V>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    windows: W,
    emit: EmitStrategy,
    late_topic: Option<String>,
}

impl<K: Data, V: Data, W: WindowDefinition> WindowedKStream<K, V, W> {
    pub(crate) fn new(grouped: &KGroupedStream<K, V>, windows: W) -> Self {
        Self {
            stream: KStream::new(grouped.stream.state.clone(), grouped.stream.node, false),
            key_serde: grouped.key_serde.clone(),
            value_serde: grouped.value_serde.clone(),
            windows,
            emit: EmitStrategy::OnUpdate,
            late_topic: None,
        }
    }

    /// Chooses between emitting every update and emitting once per window when it closes.
    pub fn emit(mut self, strategy: EmitStrategy) -> Self {
        self.emit = strategy;
        self
    }

    /// Sends records that arrive after all their windows closed to `topic` (they are counted
    /// as late drops either way).
    pub fn late_records_to(mut self, topic: &str) -> Self {
        self.late_topic = Some(topic.to_string());
        self
    }

    /// Number of records per key and window.
    pub fn count(&self, store: impl Into<Materialized>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, n| n + 1, |a, b| a + b, I64Serde, store)
    }

    /// Combines the values of each key and window with an associative `reducer`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        store: impl Into<Materialized>,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let merge = reducer.clone();
        let updater: Updater<K, V, V> = Arc::new(move |_, value, old| match old {
            Some(old) => reducer(old, value),
            None => value,
        });
        self.build(
            updater,
            Arc::new(move |a, b| merge(a, b)),
            self.value_serde.clone(),
            store.into(),
        )
    }

    /// Folds the values of each key and window into an aggregate starting at `init()`;
    /// `merger` combines two partial aggregates of one window (panes of a hopping window,
    /// merged sessions); it must be associative with `init()` as identity.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(A, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<A>,
        store: impl Into<Materialized>,
    ) -> KTable<Windowed<K>, A> {
        let updater: Updater<K, V, A> =
            Arc::new(move |key, value, old| aggregator(key, &value, old.unwrap_or_else(&init)));
        self.build(
            updater,
            Arc::new(merger),
            Arc::new(aggregate_serde),
            store.into(),
        )
    }

    fn build<A: Data>(
        &self,
        updater: Updater<K, V, A>,
        merger: Merger<A>,
        aggregate_serde: Arc<dyn Serde<A>>,
        store: Materialized,
    ) -> KTable<Windowed<K>, A> {
        let spec = store.spec(self.windows.store_kind());
        self.stream.state.borrow_mut().add_store(spec);
        let parts = AggregateParts {
            store: store.name,
            emit: self.emit,
            key_serde: self.key_serde.clone(),
            aggregate_serde,
            updater,
            merger,
            late: LateRecords::new(
                self.late_topic.as_deref(),
                self.key_serde.clone(),
                self.value_serde.clone(),
            ),
        };
        let keyed = self.stream.without_null_keys(self.key_serde.clone());
        self.windows.aggregate(&keyed, parts)
    }
}
