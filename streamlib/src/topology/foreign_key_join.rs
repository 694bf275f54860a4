//! Foreign-key table–table joins (KIP-213): each row of the left table joins the row of the
//! right table whose key its value names, whatever the two tables' partitioning.
//!
//! As in Kafka Streams, through two internal topics: a left row *subscribes* to its foreign key
//! (`…-subscription-registration-topic`, keyed by the foreign key, so the subscription lands in
//! the task holding the right row), and the right side *responds* with the right row
//! (`…-subscription-response-topic`, keyed by the left key) — at once, and again whenever the
//! right row changes. A response carries a hash of the left value it answers, so a response to a
//! value that has changed since is dropped.
//!
//! ```
//! use streamlib::prelude::*;
//! use streamlib::testing::{DriverConfig, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! let coins = builder.table("coins", StringSerde, StringSerde, "coins"); // id → name
//! builder
//!     .table("holdings", StringSerde, StringSerde, "holdings") // account → "coin:amount"
//!     .join_foreign_key(
//!         &coins,
//!         |holding: &String| holding.split(':').next().unwrap_or_default().to_string(),
//!         |holding, name| format!("{holding} ({name})"),
//!     )
//!     .to_stream()
//!     .to("named-holdings", StringSerde, Nullable(StringSerde));
//! let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
//! let s = Nullable(StringSerde);
//! driver.pipe("coins", &StringSerde, &s, "btc".into(), Some("Bitcoin".into()), 1).unwrap();
//! driver.pipe("holdings", &StringSerde, &s, "alice".into(), Some("btc:2".into()), 2).unwrap();
//! let out = driver.read_output("named-holdings", &StringSerde, &s).unwrap();
//! assert_eq!(out[0].value.as_deref(), Some("btc:2 (Bitcoin)"));
//! ```

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{Serde, SerdeError};
use crate::state::encoding::{push_len_key, split_timestamped, timestamped};

use super::change::Change;
use super::graph::{Data, TopicName};
use super::joiner::Joiner;
use super::rows::Rows;
use super::{KStream, KTable, StoreKind, StoreSpec};

/// A hash of a left value's bytes: tells whether a response answers the current value.
type ValueHash = Option<[u8; 16]>;

fn value_hash<V: Data>(
    values: &dyn Serde<V>,
    value: Option<&V>,
) -> Result<ValueHash, ProcessError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bytes = values
        .serialize("fk-join-hash", value)
        .map_err(ProcessError::serialization("fk-join-hash"))?;
    let digest = Sha256::digest(&bytes);
    let mut hash = [0; 16];
    hash.copy_from_slice(&digest[..16]);
    Ok(Some(hash))
}

/// What the right side is to do with a subscription (Kafka Streams' `Instruction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Instruction {
    DeleteAndPropagate = 0,
    DeleteNoPropagate = 1,
    PropagateNullIfNoValue = 2,
    PropagateOnlyIfValue = 3,
}

/// A left row's subscription to a foreign key.
#[derive(Clone, Debug)]
struct Subscription<K> {
    hash: ValueHash,
    instruction: Instruction,
    primary: K,
}

/// The right side's answer to a left row.
#[derive(Clone, Debug)]
struct Response<VO> {
    hash: ValueHash,
    foreign: Option<VO>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Inner foreign-key join: each row of this table joins the row of `other` whose key is
    /// `foreign_key(value)`, as `joiner(value, other_row)`. A left row without a match has no
    /// result (a delete is forwarded when it had one, or when its foreign key changed); an update
    /// of a right row reaches every left row that names it, in left-key order. Results made by a
    /// left update carry the later of the two rows' timestamps, those made by a right update the
    /// right update's.
    ///
    /// # Panics
    /// When either table's serdes are unknown (see [`KTable::materialize`]).
    pub fn join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_on_foreign_key(
            other,
            Arc::new(foreign_key),
            Joiner::Inner(Arc::new(joiner)),
        )
    }

    /// Left foreign-key join: also `joiner(value, None)` for left rows without a match.
    pub fn left_join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_on_foreign_key(other, Arc::new(foreign_key), Joiner::Left(Arc::new(joiner)))
    }

    fn join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: Arc<dyn Fn(&V) -> KO + Send + Sync>,
        joiner: Joiner<V, VO, VR>,
    ) -> KTable<K, VR> {
        let (left, left_rows) = self.with_rows();
        let (right, right_rows) = other.with_rows();
        let state = left.changes.state.clone();
        let (subscriptions, registration, response) = {
            let mut state = state.borrow_mut();
            let name = state.name("KTABLE-FK-JOIN");
            let subscriptions = format!("{name}-subscription-store");
            state.add_store(StoreSpec::new(subscriptions.clone(), StoreKind::KeyValue));
            let registration = format!("{name}-subscription-registration-topic");
            let response = format!("{name}-subscription-response-topic");
            state.repartition_topics.push(registration.clone());
            state.repartition_topics.push(response.clone());
            (subscriptions, registration, response)
        };
        let left_join = joiner.keeps(true);

        // Left rows subscribe to their foreign keys.
        let (fk, lkeys, lvalues, rkeys) = (
            foreign_key,
            left_rows.keys.clone(),
            left_rows.values.clone(),
            right_rows.keys.clone(),
        );
        let sent = left
            .changes
            .then("KTABLE-FK-JOIN-SUBSCRIPTION-SEND", true, move || {
                SubscriptionSend {
                    foreign_key: fk.clone(),
                    foreign_keys: rkeys.clone(),
                    values: lvalues.clone(),
                    left_join,
                }
            });
        let subscription_serde = Arc::new(SubscriptionSerde(lkeys.clone()));
        sent.to_topic(
            TopicName::Internal(registration.clone()),
            right_rows.keys.clone(),
            subscription_serde.clone(),
        );
        let received = KStream::<KO, Subscription<K>>::new(
            state.clone(),
            state.borrow_mut().add_source(
                TopicName::Internal(registration),
                right_rows.keys.clone(),
                subscription_serde,
                None,
            ),
            false,
        );

        // The right side answers each subscription, and each update of a right row.
        let response_serde = Arc::new(ResponseSerde(right_rows.values.clone()));
        let (store, rows) = (subscriptions.clone(), right_rows.clone());
        let lkeys2 = lkeys.clone();
        received
            .process(
                move || SubscriptionJoin {
                    store: store.clone(),
                    primary_keys: lkeys2.clone(),
                    rows: rows.clone(),
                },
                &[&subscriptions, &right_rows.store],
            )
            .to_topic(
                TopicName::Internal(response.clone()),
                lkeys.clone(),
                response_serde.clone(),
            );
        let (store, primary_keys, foreign_keys) = (
            subscriptions.clone(),
            lkeys.clone(),
            right_rows.keys.clone(),
        );
        right
            .changes
            .process(
                move || ForeignTableJoin {
                    store: store.clone(),
                    primary_keys: primary_keys.clone(),
                    foreign_keys: foreign_keys.clone(),
                },
                &[&subscriptions],
            )
            .to_topic(
                TopicName::Internal(response.clone()),
                lkeys.clone(),
                response_serde.clone(),
            );

        // Responses meet the current left row.
        let responses = KStream::<K, Response<VO>>::new(
            state.clone(),
            state.borrow_mut().add_source(
                TopicName::Internal(response),
                lkeys,
                response_serde,
                None,
            ),
            false,
        );
        let rows = left_rows.clone();
        let changes = responses.process(
            move || ResponseJoin {
                rows: rows.clone(),
                joiner: joiner.clone(),
            },
            &[&left_rows.store],
        );
        KTable {
            changes,
            rows: None,
            key_serde: left.key_serde.clone(),
            value_serde: None,
            old_values: false,
            store_name: None,
        }
    }
}

/// Turns left changes into subscriptions (Kafka Streams' `SubscriptionSendProcessorSupplier`).
struct SubscriptionSend<V, KO> {
    foreign_key: Arc<dyn Fn(&V) -> KO + Send + Sync>,
    foreign_keys: Arc<dyn Serde<KO>>,
    values: Arc<dyn Serde<V>>,
    left_join: bool,
}

impl<V: Data, KO: Data> SubscriptionSend<V, KO> {
    fn same(&self, a: &KO, b: &KO) -> bool {
        let bytes = |k: &KO| {
            self.foreign_keys
                .serialize_nullable("fk-join", k)
                .ok()
                .flatten()
        };
        bytes(a) == bytes(b)
    }
}

impl<K: Data, V: Data, KO: Data> Processor<K, Change<V>, KO, Subscription<K>>
    for SubscriptionSend<V, KO>
{
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<'_, KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        let hash = value_hash(&*self.values, record.value.new.as_ref())?;
        let old_fk = record.value.old.as_ref().map(|v| (self.foreign_key)(v));
        let new_fk = record.value.new.as_ref().map(|v| (self.foreign_key)(v));
        let null = |fk: &KO| self.foreign_keys.is_null(fk);
        let mut sends: Vec<(KO, Instruction)> = Vec::new();
        match (old_fk, new_fk) {
            (Some(old), new) if self.left_join => {
                let moved = new.as_ref().is_none_or(|new| !self.same(new, &old));
                if !null(&old) && moved {
                    sends.push((old, Instruction::DeleteAndPropagate));
                }
                // (Kafka Streams also sends a deleted row's absent foreign key on, as a null
                // key, which answers with a second delete; there is no null of a `KO` here.)
                sends.extend(new.map(|new| (new, Instruction::PropagateNullIfNoValue)));
            }
            (None, Some(new)) if self.left_join => {
                sends.push((new, Instruction::PropagateNullIfNoValue));
            }
            (Some(old), _) if null(&old) => return dropped(ctx),
            (Some(old), Some(new)) => {
                if null(&new) {
                    return dropped(ctx);
                }
                if !self.same(&new, &old) {
                    sends.push((old, Instruction::DeleteNoPropagate));
                }
                sends.push((new, Instruction::PropagateNullIfNoValue));
            }
            (Some(old), None) => sends.push((old, Instruction::DeleteAndPropagate)),
            (None, Some(new)) if null(&new) => return dropped(ctx),
            (None, Some(new)) => sends.push((new, Instruction::PropagateOnlyIfValue)),
            (None, None) => {}
        }
        for (foreign_key, instruction) in sends {
            ctx.forward(Record {
                key: foreign_key,
                value: Subscription {
                    hash,
                    instruction,
                    primary: record.key.clone(),
                },
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// Drops (and counts) the record being processed: a null foreign key.
fn dropped<A, B>(ctx: &mut ProcessorContext<'_, A, B>) -> Result<(), ProcessError> {
    ctx.record_drop();
    Ok(())
}

/// The subscription store's key: `[u32 BE len][foreign key][primary key]`, so one foreign
/// key's subscriptions are contiguous and ordered by primary key.
fn subscription_key(store: &str, foreign: &[u8], primary: &[u8]) -> Result<Vec<u8>, ProcessError> {
    let mut out = Vec::with_capacity(4 + foreign.len() + primary.len());
    push_len_key(&mut out, store, foreign)?;
    out.extend_from_slice(primary);
    Ok(out)
}

fn encode_hash(hash: &ValueHash) -> Vec<u8> {
    match hash {
        Some(hash) => [&[1u8][..], hash].concat(),
        None => vec![0],
    }
}

fn decode_hash(bytes: &[u8]) -> Result<(ValueHash, &[u8]), SerdeError> {
    let short = || SerdeError::Length {
        expected: 17,
        actual: bytes.len(),
    };
    match bytes.split_first() {
        Some((1, rest)) => {
            let (hash, rest) = rest.split_first_chunk::<16>().ok_or_else(short)?;
            Ok((Some(*hash), rest))
        }
        Some((_, rest)) => Ok((None, rest)),
        None => Err(short()),
    }
}

/// Stores subscriptions and answers them with the right row (Kafka Streams'
/// `SubscriptionReceiveProcessorSupplier` and `SubscriptionJoinProcessorSupplier`).
struct SubscriptionJoin<K, KO, VO> {
    store: String,
    primary_keys: Arc<dyn Serde<K>>,
    rows: Rows<KO, VO>,
}

impl<K: Data, KO: Data, VO: Data> Processor<KO, Subscription<K>, K, Response<VO>>
    for SubscriptionJoin<K, KO, VO>
{
    fn process(
        &mut self,
        record: Record<KO, Subscription<K>>,
        ctx: &mut ProcessorContext<'_, K, Response<VO>>,
    ) -> Result<(), ProcessError> {
        let Subscription {
            hash,
            instruction,
            primary,
        } = record.value;
        let null_key = self.rows.keys.is_null(&record.key);
        if null_key && instruction != Instruction::PropagateNullIfNoValue {
            ctx.record_drop();
            return Ok(());
        }
        let foreign = match null_key {
            true => None,
            false => {
                let foreign = self.rows.key_bytes(&record.key)?;
                let primary_bytes = self
                    .primary_keys
                    .serialize(&self.store, &primary)
                    .map_err(ProcessError::serialization(&self.store))?;
                let key = subscription_key(&self.store, &foreign, &primary_bytes)?;
                let store = ctx.key_value_store(&self.store)?;
                match instruction {
                    Instruction::DeleteAndPropagate | Instruction::DeleteNoPropagate => {
                        store.delete(&key)?
                    }
                    _ => store.put(&key, &timestamped(record.timestamp, &encode_hash(&hash)))?,
                }
                self.rows.get(ctx, &foreign)?
            }
        };
        let timestamp = foreign
            .as_ref()
            .map_or(record.timestamp, |row| row.timestamp.max(record.timestamp));
        let foreign = foreign.map(|row| row.value);
        let respond = match instruction {
            Instruction::DeleteAndPropagate => Some(None),
            Instruction::PropagateNullIfNoValue => Some(foreign),
            Instruction::PropagateOnlyIfValue => foreign.map(Some),
            Instruction::DeleteNoPropagate => None,
        };
        match respond {
            Some(foreign) => ctx.forward(Record {
                key: primary,
                value: Response { hash, foreign },
                timestamp,
                headers: record.headers,
            }),
            None => Ok(()),
        }
    }
}

/// Sends each update of a right row to every left row subscribed to it (Kafka Streams'
/// `ForeignTableJoinProcessorSupplier`).
struct ForeignTableJoin<K, KO> {
    store: String,
    primary_keys: Arc<dyn Serde<K>>,
    foreign_keys: Arc<dyn Serde<KO>>,
}

impl<K: Data, KO: Data, VO: Data> Processor<KO, Change<VO>, K, Response<VO>>
    for ForeignTableJoin<K, KO>
{
    fn process(
        &mut self,
        record: Record<KO, Change<VO>>,
        ctx: &mut ProcessorContext<'_, K, Response<VO>>,
    ) -> Result<(), ProcessError> {
        if self.foreign_keys.is_null(&record.key) {
            ctx.record_drop();
            return Ok(());
        }
        let foreign = self
            .foreign_keys
            .serialize(&self.store, &record.key)
            .map_err(ProcessError::serialization(&self.store))?;
        let prefix = subscription_key(&self.store, &foreign, &[])?;
        let subscribed = ctx.key_value_store(&self.store)?.prefix_scan(&prefix)?;
        for (key, value) in subscribed {
            let primary = self
                .primary_keys
                .deserialize(&self.store, &key[prefix.len()..])
                .map_err(ProcessError::deserialization(&self.store))?;
            let (_, hash) = split_timestamped(&self.store, &value)?;
            let (hash, _) =
                decode_hash(hash).map_err(ProcessError::deserialization(&self.store))?;
            ctx.forward(Record {
                key: primary,
                value: Response {
                    hash,
                    foreign: record.value.new.clone(),
                },
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// Joins a response with the current left row, unless it answers a value since replaced
/// (Kafka Streams' `ResponseJoinProcessorSupplier`).
struct ResponseJoin<K, V, VO, VR> {
    rows: Rows<K, V>,
    joiner: Joiner<V, VO, VR>,
}

impl<K: Data, V: Data, VO: Data, VR: Data> Processor<K, Response<VO>, K, Change<VR>>
    for ResponseJoin<K, V, VO, VR>
{
    fn process(
        &mut self,
        record: Record<K, Response<VO>>,
        ctx: &mut ProcessorContext<'_, K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let key = self.rows.key_bytes(&record.key)?;
        let current = self.rows.get(ctx, &key)?.map(|row| row.value);
        if value_hash(&*self.rows.values, current.as_ref())? != record.value.hash {
            return Ok(()); // an answer to a value that has changed since
        }
        let foreign = record.value.foreign.as_ref();
        let result = match (&current, foreign) {
            (Some(current), foreign) => self.joiner.join(Some(current), foreign),
            (None, _) => None,
        };
        ctx.forward(Record {
            key: record.key,
            value: Change {
                new: result,
                old: None,
            },
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}

/// `[instruction][hash][primary key]` through the registration topic.
struct SubscriptionSerde<K>(Arc<dyn Serde<K>>);

impl<K: Data> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(&self, topic: &str, value: &Subscription<K>) -> Result<Vec<u8>, SerdeError> {
        let mut out = vec![value.instruction as u8];
        out.extend(encode_hash(&value.hash));
        out.extend(self.0.serialize(topic, &value.primary)?);
        Ok(out)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Subscription<K>, SerdeError> {
        let (&instruction, rest) = bytes.split_first().ok_or(SerdeError::Length {
            expected: 2,
            actual: 0,
        })?;
        let instruction = match instruction {
            0 => Instruction::DeleteAndPropagate,
            1 => Instruction::DeleteNoPropagate,
            2 => Instruction::PropagateNullIfNoValue,
            _ => Instruction::PropagateOnlyIfValue,
        };
        let (hash, primary) = decode_hash(rest)?;
        Ok(Subscription {
            hash,
            instruction,
            primary: self.0.deserialize(topic, primary)?,
        })
    }
}

/// `[hash][0 | 1 + right value]` through the response topic.
struct ResponseSerde<VO>(Arc<dyn Serde<VO>>);

impl<VO: Data> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(&self, topic: &str, value: &Response<VO>) -> Result<Vec<u8>, SerdeError> {
        let mut out = encode_hash(&value.hash);
        match &value.foreign {
            Some(foreign) => {
                out.push(1);
                out.extend(self.0.serialize(topic, foreign)?);
            }
            None => out.push(0),
        }
        Ok(out)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Response<VO>, SerdeError> {
        let (hash, rest) = decode_hash(bytes)?;
        let foreign = match rest.split_first() {
            Some((1, value)) => Some(self.0.deserialize(topic, value)?),
            _ => None,
        };
        Ok(Response { hash, foreign })
    }
}
