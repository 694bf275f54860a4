//! What windowed aggregations do with records whose windows have all closed.

use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::ProcessorContext;
use crate::record::{RawRecord, Record};
use crate::serdes::Serde;

/// Counts late records and, when configured, sends them to a late-records topic.
pub(crate) struct LateRecords<K, V> {
    pub(crate) topic: Option<Arc<str>>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> Clone for LateRecords<K, V> {
    fn clone(&self) -> Self {
        Self {
            topic: self.topic.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K: 'static, V: 'static> LateRecords<K, V> {
    pub(crate) fn new(
        topic: Option<&str>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            topic: topic.map(Arc::from),
            key_serde,
            value_serde,
        }
    }

    /// Drops `record` as late: counts it and routes it to the late topic, if any.
    pub(crate) fn drop<KO, VO>(
        &self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<'_, KO, VO>,
    ) -> Result<(), ProcessError> {
        ctx.record_late_drop();
        let Some(topic) = self.topic.clone() else {
            return Ok(());
        };
        let error = ProcessError::serialization(&topic);
        let key = self
            .key_serde
            .serialize(&topic, &record.key)
            .map_err(&error)?;
        let value = self
            .value_serde
            .serialize(&topic, &record.value)
            .map_err(&error)?;
        ctx.send_raw(RawRecord {
            topic: topic.clone(),
            partition: None,
            offset: -1,
            key: Some(key),
            value: Some(value),
            timestamp: record.timestamp,
            headers: record.headers,
        });
        Ok(())
    }
}
