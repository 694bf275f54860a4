//! Windowed stream–stream joins (inner, left, outer) with Kafka Streams' semantics,
//! including KIP-633: a left or outer result without a partner is emitted only once its
//! window and grace have passed.
//!
//! Both inputs reach one join node, which keeps each side's records in a window store for
//! `before + after + grace` of that store's own time, and (left and outer joins) the records
//! still waiting for a partner in a key-value store ordered by `(timestamp, side, key)`.
//! Stream time is shared by both sides: the largest timestamp that reached the join.
//!
//! ```
//! use std::time::Duration;
//! use streamlib::prelude::*;
//! use streamlib::topology::{JoinWindows, StreamJoined};
//!
//! let builder = StreamsBuilder::new();
//! let orders = builder.stream("orders", StringSerde, StringSerde);
//! let payments = builder.stream("payments", StringSerde, StringSerde);
//! orders
//!     .left_join(
//!         &payments,
//!         |order, payment| format!("{order}|{}", payment.map_or("unpaid", String::as_str)),
//!         JoinWindows::of_time_difference_and_grace(Duration::from_secs(60), Duration::from_secs(5)),
//!         StreamJoined::with(StringSerde, StringSerde, StringSerde),
//!     )
//!     .to("orders-with-payments", StringSerde, StringSerde);
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serde;
use crate::state::encoding::{read_sortable, sortable};
use crate::state::StateError;
use crate::window::millis;

use super::graph::Data;
use super::joiner::{Joiner, Side};
use super::stateless::stateless;
use super::{KStream, StoreKind, StoreSpec, WindowLayout};

/// Which records of two streams join: those whose timestamps differ by at most `before`
/// (the other record earlier) or `after` (the other record later), both inclusive; records
/// arriving up to `grace` after their window are still joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinWindows {
    before: i64,
    after: i64,
    grace: i64,
}

impl JoinWindows {
    /// Records at most `difference` apart join; late records are accepted for `grace`.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        Self {
            before: millis(difference),
            after: millis(difference),
            grace: millis(grace),
        }
    }

    /// Records at most `difference` apart join; no grace.
    pub fn of_time_difference_without_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// How much earlier than a left record a right record may be.
    pub fn before(mut self, before: Duration) -> Self {
        self.before = millis(before);
        self
    }

    /// How much later than a left record a right record may be.
    pub fn after(mut self, after: Duration) -> Self {
        self.after = millis(after);
        self
    }

    /// How long each side's window store keeps records: `before + after + grace`.
    fn retention(&self) -> i64 {
        self.before + self.after + self.grace
    }

    /// `(before, after)` as seen from the left side (`true`) or the right one.
    fn seen_from(&self, left: bool) -> (i64, i64) {
        if left {
            (self.before, self.after)
        } else {
            (self.after, self.before)
        }
    }
}

/// The serdes a stream–stream join stores its records with.
pub struct StreamJoined<K, V1, V2> {
    keys: Arc<dyn Serde<K>>,
    lefts: Arc<dyn Serde<V1>>,
    rights: Arc<dyn Serde<V2>>,
}

impl<K, V1, V2> StreamJoined<K, V1, V2> {
    /// The key serde and each side's value serde.
    pub fn with(keys: impl Serde<K>, lefts: impl Serde<V1>, rights: impl Serde<V2>) -> Self {
        Self {
            keys: Arc::new(keys),
            lefts: Arc::new(lefts),
            rights: Arc::new(rights),
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner windowed join: `joiner(left, right)` for every pair of records with the same key
    /// within `windows`, with the later of the two timestamps. Records with a null key or
    /// value are dropped and counted.
    pub fn join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        self.join_streams(other, Joiner::Inner(Arc::new(joiner)), windows, serdes)
    }

    /// Left windowed join: also `joiner(left, None)` for a left record that found no partner,
    /// once its window and grace have passed (at once for a null key).
    pub fn left_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        self.join_streams(other, Joiner::Left(Arc::new(joiner)), windows, serdes)
    }

    /// Outer windowed join: also `joiner(Some(left), None)` and `joiner(None, Some(right))`
    /// for records of either side that found no partner.
    pub fn outer_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        self.join_streams(other, Joiner::Outer(Arc::new(joiner)), windows, serdes)
    }

    fn join_streams<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V, V2, VR>,
        windows: JoinWindows,
        serdes: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        let left = match self.needs_repartition {
            false => KStream::new(self.state.clone(), self.node, false),
            true => self.repartition(serdes.keys.clone(), serdes.lefts.clone()),
        };
        let right = match other.needs_repartition {
            false => KStream::new(other.state.clone(), other.node, false),
            true => other.repartition(serdes.keys.clone(), serdes.rights.clone()),
        };
        let wrap_left = left.then("JOINTHIS", false, || {
            stateless(|r: Record<K, V>, ctx| ctx.forward(r.map_value(Side::<V, V2>::Left)))
        });
        let wrap_right = right.then("JOINOTHER", false, || {
            stateless(|r: Record<K, V2>, ctx| ctx.forward(r.map_value(Side::<V, V2>::Right)))
        });
        let state = self.state.clone();
        let node = {
            let mut state = state.borrow_mut();
            let retention = Duration::from_millis(u64::try_from(windows.retention()).unwrap_or(0));
            let window_store = |node: &str| {
                StoreSpec::new(
                    format!("{node}-store"),
                    StoreKind::Window {
                        retention,
                        layout: WindowLayout::Windows,
                    },
                )
            };
            let left_store = window_store(&state.graph.nodes[wrap_left.node].name);
            let right_store = window_store(&state.graph.nodes[wrap_right.node].name);
            let name = state.name("JOIN");
            let outer_store = (joiner.keeps(true) || joiner.keeps(false))
                .then(|| StoreSpec::new(format!("{name}-outer-shared-store"), StoreKind::KeyValue));
            let stores = JoinStores {
                left: left_store.name.clone(),
                right: right_store.name.clone(),
                outer: outer_store.as_ref().map(|s| s.name.clone()),
            };
            let mut names = vec![stores.left.clone(), stores.right.clone()];
            names.extend(stores.outer.clone());
            for spec in [Some(left_store), Some(right_store), outer_store]
                .into_iter()
                .flatten()
            {
                state.add_store(spec);
            }
            state.graph.add_processor::<K, Side<V, V2>, K, VR, _>(
                name,
                &[wrap_left.node, wrap_right.node],
                names,
                move || StreamJoin {
                    keys: serdes.keys.clone(),
                    lefts: serdes.lefts.clone(),
                    rights: serdes.rights.clone(),
                    windows,
                    stores: stores.clone(),
                    joiner: joiner.clone(),
                    stream_time: -1,
                    min_waiting: i64::MAX,
                    observed: [None, None],
                    expired_until: [None, None],
                    waiting_from: None,
                },
            )
        };
        KStream::new(state, node, false)
    }
}

/// The stores of one join node.
#[derive(Clone)]
struct JoinStores {
    left: String,
    right: String,
    outer: Option<String>,
}

impl JoinStores {
    fn window(&self, left: bool) -> &str {
        if left {
            &self.left
        } else {
            &self.right
        }
    }
}

/// The join node: both sides' records, one at a time.
struct StreamJoin<K, V1, V2, VR> {
    keys: Arc<dyn Serde<K>>,
    lefts: Arc<dyn Serde<V1>>,
    rights: Arc<dyn Serde<V2>>,
    windows: JoinWindows,
    stores: JoinStores,
    joiner: Joiner<V1, V2, VR>,
    /// The largest timestamp that reached the join (`-1` before any).
    stream_time: i64,
    /// A lower bound of the timestamps waiting in the outer store (`i64::MAX`: unknown), to
    /// skip scanning it while nothing can be due (Kafka Streams' `minTime`, kept exactly as
    /// it keeps it, since it decides when results come out).
    min_waiting: i64,
    /// The largest timestamp put into each side's window store, loaded on first use.
    observed: [Option<i64>; 2],
    /// Per side: every window store entry older than this is gone (unknown after a start).
    expired_until: [Option<i64>; 2],
    /// No outer store entry is older than this (unknown after a start): where its scans begin.
    waiting_from: Option<i64>,
}

impl<K: Data, V1: Data, V2: Data, VR: Data> Processor<K, Side<V1, V2>, K, VR>
    for StreamJoin<K, V1, V2, VR>
{
    fn process(
        &mut self,
        record: Record<K, Side<V1, V2>>,
        ctx: &mut ProcessorContext<'_, K, VR>,
    ) -> Result<(), ProcessError> {
        let Record {
            key,
            value,
            timestamp,
            headers,
        } = record;
        let left = matches!(value, Side::Left(_));
        let key_null = self.keys.is_null(&key);
        let value_bytes = match &value {
            Side::Left(v) if !self.lefts.is_null(v) => Some(self.encode(&*self.lefts, v)?),
            Side::Right(v) if !self.rights.is_null(v) => Some(self.encode(&*self.rights, v)?),
            _ => None,
        };
        let key_bytes = match key_null {
            true => None,
            false => Some(self.encode(&*self.keys, &key)?),
        };
        if let (Some(key_bytes), Some(value_bytes)) = (&key_bytes, &value_bytes) {
            self.put_window(ctx, left, key_bytes, timestamp, value_bytes)?;
        }
        self.stream_time = self.stream_time.max(timestamp);
        let keeps_alone = self.joiner.keeps(left);
        let (Some(key_bytes), Some(value_bytes)) = (key_bytes, value_bytes) else {
            if keeps_alone && key_null && value_bytes_present(&value, &*self.lefts, &*self.rights) {
                if let Some(joined) = self.alone(&value) {
                    return ctx.forward(Record {
                        key,
                        value: joined,
                        timestamp,
                        headers,
                    });
                }
            }
            ctx.record_drop();
            return Ok(());
        };
        if timestamp == self.stream_time && self.stores.outer.is_some() {
            self.emit_waiting(ctx, left)?;
        }
        let (before, after) = self.windows.seen_from(left);
        let from = timestamp.saturating_sub(before).max(0);
        let to = timestamp.saturating_add(after).max(0);
        let partners = self.fetch(ctx, !left, &key_bytes, from, to)?;
        let alone = keeps_alone && partners.is_empty();
        for (partner_time, partner) in partners {
            if let Some(outer) = &self.stores.outer {
                // Deleted only if there (Kafka Streams' `putIfAbsent(key, null)`): a delete of
                // an absent key would leave a tombstone for scans to step over.
                let store = ctx.key_value_store(outer)?;
                let waiting = waiting_key(partner_time, !left, &key_bytes);
                if store.get(&waiting)?.is_some() {
                    store.delete(&waiting)?;
                }
            }
            let joined = match &value {
                Side::Left(v) => {
                    let r = self.decode(&*self.rights, &partner)?;
                    self.joiner.join(Some(v), Some(&r))
                }
                Side::Right(v) => {
                    let l = self.decode(&*self.lefts, &partner)?;
                    self.joiner.join(Some(&l), Some(v))
                }
            };
            if let Some(joined) = joined {
                ctx.forward(Record {
                    key: key.clone(),
                    value: joined,
                    timestamp: timestamp.max(partner_time),
                    headers: headers.clone(),
                })?;
            }
        }
        if !alone {
            return Ok(());
        }
        match &self.stores.outer {
            Some(outer) if to >= self.stream_time => {
                self.min_waiting = self.min_waiting.min(timestamp);
                if let Some(from) = &mut self.waiting_from {
                    *from = (*from).min(timestamp);
                }
                let store = ctx.key_value_store(outer)?;
                let waiting = waiting_key(timestamp, left, &key_bytes);
                let list = append(store.get(&waiting)?, &value_bytes);
                store.put(&waiting, &list)?;
                Ok(())
            }
            _ => match self.alone(&value) {
                Some(joined) => ctx.forward(Record {
                    key,
                    value: joined,
                    timestamp,
                    headers,
                }),
                None => Ok(()),
            },
        }
    }
}

/// Whether the record's value is not null.
fn value_bytes_present<V1: Data, V2: Data>(
    value: &Side<V1, V2>,
    lefts: &dyn Serde<V1>,
    rights: &dyn Serde<V2>,
) -> bool {
    match value {
        Side::Left(v) => !lefts.is_null(v),
        Side::Right(v) => !rights.is_null(v),
    }
}

impl<K: Data, V1: Data, V2: Data, VR: Data> StreamJoin<K, V1, V2, VR> {
    fn encode<T: Data>(&self, serde: &dyn Serde<T>, value: &T) -> Result<Vec<u8>, ProcessError> {
        serde
            .serialize(&self.stores.left, value)
            .map_err(ProcessError::serialization(&self.stores.left))
    }

    fn decode<T: Data>(&self, serde: &dyn Serde<T>, bytes: &[u8]) -> Result<T, ProcessError> {
        serde
            .deserialize(&self.stores.left, bytes)
            .map_err(ProcessError::deserialization(&self.stores.left))
    }

    /// The result of a record without a partner, if this join has one.
    fn alone(&self, value: &Side<V1, V2>) -> Option<VR> {
        match value {
            Side::Left(v) => self.joiner.join(Some(v), None),
            Side::Right(v) => self.joiner.join(None, Some(v)),
        }
    }

    /// The largest timestamp ever put into a side's window store.
    fn observed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        left: bool,
    ) -> Result<i64, ProcessError> {
        let slot = usize::from(!left);
        if let Some(t) = self.observed[slot] {
            return Ok(t);
        }
        let all = ctx
            .window_store(self.stores.window(left))?
            .windows_starting_before(i64::MAX)?;
        let t = all.last().map_or(-1, |(start, _)| *start);
        self.observed[slot] = Some(t);
        Ok(t)
    }

    /// Adds a record to its side's window store, unless it is older than the store keeps,
    /// and drops what the store no longer keeps.
    fn put_window(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        left: bool,
        key: &[u8],
        timestamp: i64,
        value: &[u8],
    ) -> Result<(), ProcessError> {
        let observed = self.observed(ctx, left)?.max(timestamp);
        self.observed[usize::from(!left)] = Some(observed);
        let bound = observed.saturating_sub(self.windows.retention());
        if timestamp <= bound {
            return Ok(());
        }
        let store = ctx.window_store(self.stores.window(left))?;
        let list = append(store.get(key, timestamp)?, value);
        store.put(key, timestamp, &list)?;
        let slot = usize::from(!left);
        let (from, until) = (
            self.expired_until[slot].unwrap_or(i64::MIN),
            bound.saturating_add(1),
        );
        // Expired entries are removed in steps of an eighth of the retention (as segments
        // would be): until then `fetch` leaves them out anyway.
        let step = (self.windows.retention() / 8).max(1);
        if until.saturating_sub(from) >= step {
            for (start, expired) in store.windows_starting_between(from, until)? {
                store.remove(&expired, start)?;
            }
            self.expired_until[slot] = Some(until);
        }
        Ok(())
    }

    /// The records of a side's window store with `key` and `from <= timestamp <= to`, that
    /// the store still keeps, ascending by timestamp, duplicates in arrival order.
    fn fetch(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        left: bool,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, ProcessError> {
        let kept_from = self
            .observed(ctx, left)?
            .saturating_sub(self.windows.retention())
            .saturating_add(1);
        let from = from.max(kept_from);
        if from > to {
            return Ok(Vec::new());
        }
        let store_name = self.stores.window(left).to_owned();
        let mut found = Vec::new();
        for (timestamp, list) in ctx.window_store(&store_name)?.fetch(key, from, to)? {
            for value in split(&store_name, &list)? {
                found.push((timestamp, value.to_vec()));
            }
        }
        Ok(found)
    }

    /// Emits the waiting records whose window and grace have passed, in the order of the
    /// outer store: by timestamp, then right side before left, then key.
    fn emit_waiting(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        left: bool,
    ) -> Result<(), ProcessError> {
        let Some(outer) = self.stores.outer.clone() else {
            return Ok(());
        };
        let (_, after) = self.windows.seen_from(left);
        // Kafka Streams' guard, overflow included: `minTime` at i64::MAX wraps to negative.
        if self
            .min_waiting
            .wrapping_add(after)
            .wrapping_add(self.windows.grace)
            >= self.stream_time
        {
            return Ok(());
        }
        self.min_waiting = i64::MAX;
        let from = sortable(self.waiting_from.unwrap_or(i64::MIN));
        let entries = ctx.key_value_store(&outer)?.range(&from, &[0xFF; 9])?;
        let (mut left_open, mut right_open) = (false, false);
        // The oldest entry left in the store after this scan, where the next one begins.
        let mut first_kept = None;
        for (waiting, list) in entries {
            let (timestamp, is_left, key_bytes) = split_waiting_key(&outer, &waiting)?;
            self.min_waiting = timestamp;
            if left_open && right_open {
                first_kept = first_kept.or(Some(timestamp));
                break;
            }
            let look_back = if is_left {
                self.windows.after
            } else {
                self.windows.before
            };
            if timestamp + look_back + self.windows.grace >= self.stream_time {
                if is_left {
                    left_open = true;
                } else {
                    right_open = true;
                }
                first_kept = first_kept.or(Some(timestamp));
                continue;
            }
            let key = self.decode(&*self.keys, key_bytes)?;
            for value in split(&outer, &list)? {
                let joined = match is_left {
                    true => self
                        .joiner
                        .join(Some(&self.decode(&*self.lefts, value)?), None),
                    false => self
                        .joiner
                        .join(None, Some(&self.decode(&*self.rights, value)?)),
                };
                if let Some(joined) = joined {
                    ctx.forward(Record::new(key.clone(), joined, timestamp))?;
                }
            }
            ctx.key_value_store(&outer)?.delete(&waiting)?;
        }
        self.waiting_from = Some(first_kept.unwrap_or(i64::MAX));
        Ok(())
    }
}

/// The outer store's key: `[sortable timestamp][0 right / 1 left][key]`.
fn waiting_key(timestamp: i64, left: bool, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&sortable(timestamp));
    out.push(u8::from(left));
    out.extend_from_slice(key);
    out
}

fn split_waiting_key<'a>(
    store: &str,
    bytes: &'a [u8],
) -> Result<(i64, bool, &'a [u8]), StateError> {
    let timestamp = read_sortable(store, bytes, 0)?;
    match bytes.get(8) {
        Some(&side) => Ok((timestamp, side == 1, &bytes[9..])),
        None => Err(StateError::Corrupt {
            store: store.to_owned(),
            reason: "a waiting record's key has no side".into(),
        }),
    }
}

/// `list` (values as `[u32 BE length][bytes]`, possibly none yet) with `value` appended.
fn append(list: Option<Vec<u8>>, value: &[u8]) -> Vec<u8> {
    let mut list = list.unwrap_or_default();
    // Values longer than 4 GiB do not reach a join (Kafka's records are far smaller).
    list.extend_from_slice(&(value.len() as u32).to_be_bytes());
    list.extend_from_slice(value);
    list
}

/// The values of a list written by [`append`], in order.
fn split<'a>(store: &str, mut list: &'a [u8]) -> Result<Vec<&'a [u8]>, StateError> {
    let mut values = Vec::new();
    while !list.is_empty() {
        let corrupt = || StateError::Corrupt {
            store: store.to_owned(),
            reason: "a join store's value list is cut short".into(),
        };
        let (len, rest) = list.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt());
        }
        values.push(&rest[..len]);
        list = &rest[len..];
    }
    Ok(values)
}
