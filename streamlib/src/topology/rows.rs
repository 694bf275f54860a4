//! The rows of a table in a [`StoreKind::TimestampedKeyValue`](super::StoreKind) store: per
//! key, the value and the timestamp of the update that wrote it (Kafka Streams' timestamped
//! key-value store).

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::ProcessorContext;
use crate::serdes::Serde;
use crate::state::encoding::{split_timestamped, timestamped};

/// A table row as stored: its value and the timestamp of the update that wrote it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row<V> {
    pub(crate) value: V,
    pub(crate) timestamp: i64,
}

/// Typed access to the store holding a table's rows.
pub(crate) struct Rows<K, V> {
    pub(crate) store: String,
    pub(crate) keys: Arc<dyn Serde<K>>,
    pub(crate) values: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for Rows<K, V> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K: 'static, V: 'static> Rows<K, V> {
    /// The store bytes of `key`.
    pub(crate) fn key_bytes(&self, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.keys
            .serialize(&self.store, key)
            .map_err(ProcessError::serialization(&self.store))
    }

    /// The row of the key whose store bytes are `key`.
    pub(crate) fn get<KO, VO>(
        &self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &[u8],
    ) -> Result<Option<Row<V>>, ProcessError> {
        let Some(bytes) = ctx.key_value_store(&self.store)?.get(key)? else {
            return Ok(None);
        };
        let (timestamp, value) = split_timestamped(&self.store, &bytes)?;
        let value = self
            .values
            .deserialize(&self.store, value)
            .map_err(ProcessError::deserialization(&self.store))?;
        Ok(Some(Row { value, timestamp }))
    }

    /// Writes the row of `key` (store bytes), or deletes it when `value` is `None`.
    pub(crate) fn put<KO, VO>(
        &self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &[u8],
        value: Option<&V>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store(&self.store)?;
        match value {
            None => store.delete(key)?,
            Some(value) => {
                let value = self
                    .values
                    .serialize(&self.store, value)
                    .map_err(ProcessError::serialization(&self.store))?;
                store.put(key, &timestamped(timestamp, &value))?;
            }
        }
        Ok(())
    }
}
