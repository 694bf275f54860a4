//! The queries a store answers, typed by the serdes of its keys and values: Kafka Streams'
//! `KeyQuery`, `RangeQuery`, `WindowKeyQuery`, `WindowRangeQuery`, and a session query.

use std::sync::Arc;

use crate::serdes::{Serde, SerdeError};

use super::{QueryFailure, RawAnswer, StoreQuery};

/// A query of a store, typed: what it asks in bytes and how it reads the answer.
pub trait Query: Send + Sync {
    /// What one partition answers.
    type Output;
    /// The query in the store's bytes (keys serialized for `store`).
    fn to_store_query(&self, store: &str) -> Result<StoreQuery, SerdeError>;
    /// One partition's answer, deserialized.
    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Self::Output, QueryFailure>;
}

/// The serdes of a store's keys and values.
struct Codec<K, V> {
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K: 'static, V: 'static> Codec<K, V> {
    fn new(keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self {
            keys: Arc::new(keys),
            values: Arc::new(values),
        }
    }

    fn key_bytes(&self, store: &str, key: &K) -> Result<Vec<u8>, SerdeError> {
        self.keys.serialize(store, key)
    }

    fn key(&self, store: &str, bytes: &[u8]) -> Result<K, QueryFailure> {
        self.keys.deserialize(store, bytes).map_err(decoding)
    }

    fn value(&self, store: &str, bytes: &[u8]) -> Result<V, QueryFailure> {
        self.values.deserialize(store, bytes).map_err(decoding)
    }
}

fn wrong_answer(query: &str) -> QueryFailure {
    QueryFailure::StoreException(format!("the store answered a {query} with another shape"))
}

fn decoding(error: SerdeError) -> QueryFailure {
    QueryFailure::Deserialization(error.to_string())
}

/// The value of one key in a key-value (or TTL) store.
///
/// ```
/// use streamlib::query::KeyQuery;
/// use streamlib::serdes::{I64Serde, StringSerde};
///
/// let query = KeyQuery::with_key("bitcoin".to_string(), StringSerde, I64Serde);
/// # let _ = query;
/// ```
pub struct KeyQuery<K, V> {
    key: K,
    codec: Codec<K, V>,
}

impl<K: 'static, V: 'static> KeyQuery<K, V> {
    /// Asks for `key`'s value.
    pub fn with_key(key: K, keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self {
            key,
            codec: Codec::new(keys, values),
        }
    }
}

impl<K: Send + Sync + 'static, V: 'static> Query for KeyQuery<K, V> {
    type Output = Option<V>;

    fn to_store_query(&self, store: &str) -> Result<StoreQuery, SerdeError> {
        Ok(StoreQuery::Key(self.codec.key_bytes(store, &self.key)?))
    }

    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Option<V>, QueryFailure> {
        match answer {
            RawAnswer::Value(value) => value.map(|v| self.codec.value(store, &v)).transpose(),
            _ => Err(wrong_answer("key query")),
        }
    }
}

/// The entries of a key-value store with `from <= key <= to` in the order of their serialized
/// keys (either bound may be left open).
pub struct RangeQuery<K, V> {
    from: Option<K>,
    to: Option<K>,
    codec: Codec<K, V>,
}

impl<K: 'static, V: 'static> RangeQuery<K, V> {
    /// Entries with `from <= key <= to`.
    pub fn with_range(
        from: Option<K>,
        to: Option<K>,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Self {
        Self {
            from,
            to,
            codec: Codec::new(keys, values),
        }
    }

    /// Every entry.
    pub fn with_no_bounds(keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self::with_range(None, None, keys, values)
    }
}

impl<K: Send + Sync + 'static, V: 'static> Query for RangeQuery<K, V> {
    type Output = Vec<(K, V)>;

    fn to_store_query(&self, store: &str) -> Result<StoreQuery, SerdeError> {
        let bound = |key: &Option<K>| {
            key.as_ref()
                .map(|k| self.codec.key_bytes(store, k))
                .transpose()
        };
        Ok(StoreQuery::Range {
            from: bound(&self.from)?,
            to: bound(&self.to)?,
        })
    }

    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Vec<(K, V)>, QueryFailure> {
        let RawAnswer::Entries(entries) = answer else {
            return Err(wrong_answer("range query"));
        };
        entries
            .iter()
            .map(|(k, v)| Ok((self.codec.key(store, k)?, self.codec.value(store, v)?)))
            .collect()
    }
}

/// One key's windows of a window store whose start lies in `[from, to]` (milliseconds), as
/// `(window start, value)` ascending by start.
pub struct WindowKeyQuery<K, V> {
    key: K,
    from: i64,
    to: i64,
    codec: Codec<K, V>,
}

impl<K: 'static, V: 'static> WindowKeyQuery<K, V> {
    /// `key`'s windows starting at `from..=to`.
    pub fn with_key_and_window_starts(
        key: K,
        from: i64,
        to: i64,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Self {
        Self {
            key,
            from,
            to,
            codec: Codec::new(keys, values),
        }
    }
}

impl<K: Send + Sync + 'static, V: 'static> Query for WindowKeyQuery<K, V> {
    type Output = Vec<(i64, V)>;

    fn to_store_query(&self, store: &str) -> Result<StoreQuery, SerdeError> {
        Ok(StoreQuery::WindowKey {
            key: self.codec.key_bytes(store, &self.key)?,
            from_start: self.from,
            to_start: self.to,
        })
    }

    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Vec<(i64, V)>, QueryFailure> {
        let RawAnswer::Windows(windows) = answer else {
            return Err(wrong_answer("window key query"));
        };
        windows
            .iter()
            .map(|(_, start, v)| Ok((*start, self.codec.value(store, v)?)))
            .collect()
    }
}

/// Every key's windows of a window store whose start lies in `[from, to]`, as
/// `(key, window start, value)` ascending by start, then serialized key.
pub struct WindowRangeQuery<K, V> {
    from: i64,
    to: i64,
    codec: Codec<K, V>,
}

impl<K: 'static, V: 'static> WindowRangeQuery<K, V> {
    /// Windows starting at `from..=to`, of every key.
    pub fn with_window_starts(
        from: i64,
        to: i64,
        keys: impl Serde<K>,
        values: impl Serde<V>,
    ) -> Self {
        Self {
            from,
            to,
            codec: Codec::new(keys, values),
        }
    }
}

impl<K: Send + Sync + 'static, V: 'static> Query for WindowRangeQuery<K, V> {
    type Output = Vec<(K, i64, V)>;

    fn to_store_query(&self, _: &str) -> Result<StoreQuery, SerdeError> {
        Ok(StoreQuery::WindowRange {
            from_start: self.from,
            to_start: self.to,
        })
    }

    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Vec<(K, i64, V)>, QueryFailure> {
        let RawAnswer::Windows(windows) = answer else {
            return Err(wrong_answer("window range query"));
        };
        windows
            .iter()
            .map(|(k, start, v)| {
                Ok((
                    self.codec.key(store, k)?,
                    *start,
                    self.codec.value(store, v)?,
                ))
            })
            .collect()
    }
}

/// One key's sessions of a session store, as `(start, end, value)` ascending by end, then start.
pub struct SessionQuery<K, V> {
    key: K,
    codec: Codec<K, V>,
}

impl<K: 'static, V: 'static> SessionQuery<K, V> {
    /// Every session of `key`.
    pub fn with_key(key: K, keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self {
            key,
            codec: Codec::new(keys, values),
        }
    }
}

impl<K: Send + Sync + 'static, V: 'static> Query for SessionQuery<K, V> {
    type Output = Vec<(i64, i64, V)>;

    fn to_store_query(&self, store: &str) -> Result<StoreQuery, SerdeError> {
        Ok(StoreQuery::Session {
            key: self.codec.key_bytes(store, &self.key)?,
        })
    }

    fn decode(&self, store: &str, answer: RawAnswer) -> Result<Vec<(i64, i64, V)>, QueryFailure> {
        let RawAnswer::Sessions(sessions) = answer else {
            return Err(wrong_answer("session query"));
        };
        sessions
            .iter()
            .map(|(_, start, end, v)| Ok((*start, *end, self.codec.value(store, v)?)))
            .collect()
    }
}

/// The store's bytes as they are: for tools that do not know its types (the HTTP layer's
/// callers decode with codecs of their own).
pub struct RawQuery(pub StoreQuery);

impl Query for RawQuery {
    type Output = RawAnswer;

    fn to_store_query(&self, _: &str) -> Result<StoreQuery, SerdeError> {
        Ok(self.0.clone())
    }

    fn decode(&self, _: &str, answer: RawAnswer) -> Result<RawAnswer, QueryFailure> {
        Ok(answer)
    }
}
