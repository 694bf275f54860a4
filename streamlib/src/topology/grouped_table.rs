//! `KGroupedTable`: a table's rows regrouped by a new key, aggregated with an adder and a
//! subtractor, so that a row that changes or moves is taken out of its old group and put into
//! its new one.
//!
//! ```
//! use streamlib::prelude::*;
//! use streamlib::testing::{DriverConfig, TopologyTestDriver};
//!
//! // Market capitalisation per category, from a table of coins keyed by id.
//! let builder = StreamsBuilder::new();
//! builder
//!     .table("coins", StringSerde, StringSerde, "coins")
//!     .group_by(
//!         |_, v: &String| {
//!             let (category, cap) = v.split_once(':').unwrap_or((v, "0"));
//!             (category.to_string(), cap.parse::<i64>().unwrap_or(0))
//!         },
//!         StringSerde,
//!         I64Serde,
//!     )
//!     .reduce(|sum, cap| sum + cap, |sum, cap| sum - cap, "cap-per-category")
//!     .to_stream()
//!     .to("caps", StringSerde, Nullable(I64Serde));
//! let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
//! let coins = Nullable(StringSerde);
//! driver.pipe("coins", &StringSerde, &coins, "btc".into(), Some("l1:100".into()), 1).unwrap();
//! driver.pipe("coins", &StringSerde, &coins, "eth".into(), Some("l1:50".into()), 2).unwrap();
//! driver.pipe("coins", &StringSerde, &coins, "eth".into(), Some("l2:60".into()), 3).unwrap();
//! let caps: Vec<_> = driver
//!     .read_output("caps", &StringSerde, &I64Serde)
//!     .unwrap()
//!     .into_iter()
//!     .map(|r| (r.key, r.value))
//!     .collect();
//! assert_eq!(caps, [("l1".into(), 100), ("l1".into(), 150), ("l1".into(), 100), ("l2".into(), 60)]);
//! ```

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{I64Serde, Serde, SerdeError};

use super::change::Change;
use super::graph::Data;
use super::rows::Rows;
use super::stateless::stateless;
use super::{KStream, KTable, Materialized, StoreKind};

/// Folds a value into an aggregate (`None` when the group has none yet).
type Adder<K, V, A> = Arc<dyn Fn(&K, &V, Option<A>) -> A + Send + Sync>;
/// Takes a value out of an aggregate.
type Subtractor<K, V, A> = Arc<dyn Fn(&K, &V, A) -> A + Send + Sync>;

impl<K: Data, V: Data> KTable<K, V> {
    /// Regroups the rows by `selector(key, value) → (group, value)`, through a repartition
    /// topic. An update that keeps its group reaches it as one change (KIP-904); one that moves
    /// reaches the old group first (to subtract) and then the new one (to add).
    pub fn group_by<K2: Data, V2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        key_serde: impl Serde<K2>,
        value_serde: impl Serde<V2>,
    ) -> KGroupedTable<K2, V2> {
        let table = match self.old_values {
            true => self.clone_handle(),
            false => self.materialized(),
        };
        let keys: Arc<dyn Serde<K2>> = Arc::new(key_serde);
        let values: Arc<dyn Serde<V2>> = Arc::new(value_serde);
        let selector = Arc::new(selector);
        let group_keys = keys.clone();
        let regrouped = table.changes.then("KTABLE-SELECT", true, move || {
            let selector = selector.clone();
            let keys = group_keys.clone();
            stateless(move |r: Record<K, Change<V>>, ctx| {
                let pick = |v: &Option<V>| {
                    v.as_ref()
                        .map(|v| selector(&r.key, v))
                        .filter(|(k, _)| !keys.is_null(k))
                };
                let (new, old) = (pick(&r.value.new), pick(&r.value.old));
                let same_group = match (&new, &old) {
                    (Some((n, _)), Some((o, _))) => {
                        let bytes = |k: &K2| keys.serialize("group-by", k).ok();
                        bytes(n).is_some() && bytes(n) == bytes(o)
                    }
                    _ => false,
                };
                let forward = |ctx: &mut ProcessorContext<'_, K2, Change<V2>>, key, change| {
                    ctx.forward(Record {
                        key,
                        value: change,
                        timestamp: r.timestamp,
                        headers: r.headers.clone(),
                    })
                };
                match (new, old) {
                    (Some((key, new)), Some((_, old))) if same_group => forward(
                        ctx,
                        key,
                        Change {
                            new: Some(new),
                            old: Some(old),
                        },
                    ),
                    (new, old) => {
                        if let Some((key, old)) = old {
                            forward(
                                ctx,
                                key,
                                Change {
                                    new: None,
                                    old: Some(old),
                                },
                            )?;
                        }
                        match new {
                            Some((key, new)) => forward(
                                ctx,
                                key,
                                Change {
                                    new: Some(new),
                                    old: None,
                                },
                            ),
                            None => Ok(()),
                        }
                    }
                }
            })
        });
        let changes = regrouped.repartition(keys.clone(), Arc::new(ChangeSerde(values.clone())));
        KGroupedTable {
            changes,
            keys,
            values,
        }
    }
}

/// A table's rows grouped by a new key, ready to aggregate.
pub struct KGroupedTable<K, V> {
    changes: KStream<K, Change<V>>,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    /// Number of rows per group.
    pub fn count(&self, store: impl Into<Materialized>) -> KTable<K, i64> {
        self.aggregate(|| 0, |_, _, n| n + 1, |_, _, n| n - 1, I64Serde, store)
    }

    /// Combines the values of each group: `adder(aggregate, value)` for a row entering it,
    /// `subtractor(aggregate, value)` for one leaving it. A group's first value is its
    /// aggregate; a group whose rows all left keeps its last aggregate.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        store: impl Into<Materialized>,
    ) -> KTable<K, V> {
        let add: Adder<K, V, V> = Arc::new(move |_, value, agg| match agg {
            Some(agg) => adder(agg, value.clone()),
            None => value.clone(),
        });
        let remove: Subtractor<K, V, V> =
            Arc::new(move |_, value, agg| subtractor(agg, value.clone()));
        self.fold(add, remove, self.values.clone(), store.into())
    }

    /// Folds the values of each group into an aggregate starting at `init()`: `adder` for a
    /// row entering the group, `subtractor` for one leaving it.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        adder: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<A>,
        store: impl Into<Materialized>,
    ) -> KTable<K, A> {
        let add: Adder<K, V, A> =
            Arc::new(move |key, value, agg| adder(key, value, agg.unwrap_or_else(&init)));
        self.fold(
            add,
            Arc::new(subtractor),
            Arc::new(aggregate_serde),
            store.into(),
        )
    }

    fn fold<A: Data>(
        &self,
        add: Adder<K, V, A>,
        remove: Subtractor<K, V, A>,
        aggregates: Arc<dyn Serde<A>>,
        store: Materialized,
    ) -> KTable<K, A> {
        self.changes
            .state
            .borrow_mut()
            .add_store(store.spec(StoreKind::TimestampedKeyValue));
        let rows = Rows {
            store: store.name.clone(),
            keys: self.keys.clone(),
            values: aggregates.clone(),
        };
        let changes = self.changes.process(
            move || TableAggregate {
                rows: rows.clone(),
                add: add.clone(),
                remove: remove.clone(),
            },
            &[&store.name],
        );
        KTable::aggregated(changes, store.name, self.keys.clone(), aggregates)
    }
}

/// Applies a group's changes to its aggregate, as Kafka Streams' `KTableAggregate` does.
struct TableAggregate<K, V, A> {
    rows: Rows<K, A>,
    add: Adder<K, V, A>,
    remove: Subtractor<K, V, A>,
}

impl<K: Data, V: Data, A: Data> Processor<K, Change<V>, K, Change<A>> for TableAggregate<K, V, A> {
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<'_, K, Change<A>>,
    ) -> Result<(), ProcessError> {
        let key = self.rows.key_bytes(&record.key)?;
        let previous = self.rows.get(ctx, &key)?;
        let Change { new, old } = &record.value;
        let mut timestamp = record.timestamp;
        if let Some(previous) = &previous {
            if new.is_some() || old.is_some() {
                timestamp = timestamp.max(previous.timestamp);
            }
        }
        let previous = previous.map(|row| row.value);
        let intermediate = match (old, previous.clone()) {
            (Some(old), Some(agg)) => Some((self.remove)(&record.key, old, agg)),
            (_, agg) => agg,
        };
        let aggregate = match new {
            Some(new) => Some((self.add)(&record.key, new, intermediate)),
            None => intermediate,
        };
        self.rows.put(ctx, &key, aggregate.as_ref(), timestamp)?;
        ctx.forward(Record {
            key: record.key,
            value: Change {
                new: aggregate,
                old: previous,
            },
            timestamp,
            headers: record.headers,
        })
    }
}

/// A change through a repartition topic: `[flags: bit 0 new, bit 1 old][u32 BE length of
/// new][new][old]`.
struct ChangeSerde<V>(Arc<dyn Serde<V>>);

impl<V: Data> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, change: &Change<V>) -> Result<Vec<u8>, SerdeError> {
        let encode = |v: &Option<V>| v.as_ref().map(|v| self.0.serialize(topic, v)).transpose();
        let (new, old) = (encode(&change.new)?, encode(&change.old)?);
        let flags = u8::from(new.is_some()) | (u8::from(old.is_some()) << 1);
        let new = new.unwrap_or_default();
        let mut out = vec![flags];
        out.extend_from_slice(&(new.len() as u32).to_be_bytes());
        out.extend_from_slice(&new);
        out.extend_from_slice(&old.unwrap_or_default());
        Ok(out)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Change<V>, SerdeError> {
        let short = || SerdeError::Length {
            expected: 5,
            actual: bytes.len(),
        };
        let (&flags, rest) = bytes.split_first().ok_or_else(short)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(SerdeError::Length {
                expected: 5 + len,
                actual: bytes.len(),
            });
        }
        let (new, old) = rest.split_at(len);
        let decode = |present: bool, bytes: &[u8]| {
            present
                .then(|| self.0.deserialize(topic, bytes))
                .transpose()
        };
        Ok(Change {
            new: decode(flags & 1 != 0, new)?,
            old: decode(flags & 2 != 0, old)?,
        })
    }
}
