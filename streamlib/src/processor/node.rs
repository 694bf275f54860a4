//! The instantiated node tree of one task: typed end to end, so a record crosses nodes by
//! plain (dynamic) calls without boxing or downcasting per record.

use std::sync::{Arc, Mutex};

use crate::error::ProcessError;
use crate::record::{RawRecord, Record, RecordMetadata};
use crate::serdes::Serde;
use crate::task::TaskContext;

use super::context::{forward_to_all, ProcessorContext, PunctuatorId};
use super::Processor;

/// Index of a node in its topology.
pub(crate) type NodeId = usize;

/// A node that accepts records of type `(K, V)`.
pub(crate) trait Node<K, V>: Send {
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError>;
    fn process(&mut self, record: Record<K, V>, task: &mut TaskContext)
        -> Result<(), ProcessError>;
    /// Delivers a punctuation to `target` if it is this node or below it; true when delivered.
    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError>;
    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError>;
}

/// A user or DSL processor and the nodes it forwards to.
pub(crate) struct ProcessorNode<KIn, VIn, KOut, VOut> {
    pub(crate) id: NodeId,
    pub(crate) processor: Box<dyn Processor<KIn, VIn, KOut, VOut>>,
    pub(crate) children: Vec<Box<dyn Node<KOut, VOut>>>,
}

impl<KIn, VIn, KOut, VOut> ProcessorNode<KIn, VIn, KOut, VOut> {
    fn context<'a>(
        id: NodeId,
        children: &'a mut [Box<dyn Node<KOut, VOut>>],
        task: &'a mut TaskContext,
    ) -> ProcessorContext<'a, KOut, VOut> {
        ProcessorContext {
            node: id,
            task,
            children,
        }
    }
}

impl<KIn, VIn, KOut, VOut> Node<KIn, VIn> for ProcessorNode<KIn, VIn, KOut, VOut>
where
    KIn: Send,
    VIn: Send,
    KOut: Send,
    VOut: Send,
{
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.processor
            .init(&mut Self::context(self.id, &mut self.children, task))?;
        self.children.iter_mut().try_for_each(|c| c.init(task))
    }

    fn process(
        &mut self,
        record: Record<KIn, VIn>,
        task: &mut TaskContext,
    ) -> Result<(), ProcessError> {
        self.processor.process(
            record,
            &mut Self::context(self.id, &mut self.children, task),
        )
    }

    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError> {
        if target == self.id {
            let mut ctx = Self::context(self.id, &mut self.children, task);
            self.processor.punctuate(punctuator, timestamp, &mut ctx)?;
            return Ok(true);
        }
        punctuate_children(&mut self.children, target, punctuator, timestamp, task)
    }

    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.processor
            .close(&mut Self::context(self.id, &mut self.children, task))?;
        self.children.iter_mut().try_for_each(|c| c.close(task))
    }
}

pub(crate) fn punctuate_children<K, V>(
    children: &mut [Box<dyn Node<K, V>>],
    target: NodeId,
    punctuator: PunctuatorId,
    timestamp: i64,
    task: &mut TaskContext,
) -> Result<bool, ProcessError> {
    for child in children {
        if child.punctuate(target, punctuator, timestamp, task)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Serializes records and hands them to the host for producing.
pub(crate) struct SinkNode<K, V> {
    pub(crate) topic: Arc<str>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
}

impl<K: Send + 'static, V: Send + 'static> Node<K, V> for SinkNode<K, V> {
    fn init(&mut self, _task: &mut TaskContext) -> Result<(), ProcessError> {
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        task: &mut TaskContext,
    ) -> Result<(), ProcessError> {
        let serialization = ProcessError::serialization(&self.topic);
        let key = self
            .key_serde
            .serialize_nullable(&self.topic, &record.key)
            .map_err(&serialization)?;
        let value = self
            .value_serde
            .serialize_nullable(&self.topic, &record.value)
            .map_err(&serialization)?;
        task.outputs.push(RawRecord {
            topic: self.topic.clone(),
            partition: None,
            offset: -1,
            key,
            value,
            timestamp: record.timestamp,
            headers: record.headers,
        });
        Ok(())
    }

    fn punctuate(
        &mut self,
        _: NodeId,
        _: PunctuatorId,
        _: i64,
        _: &mut TaskContext,
    ) -> Result<bool, ProcessError> {
        Ok(false)
    }

    fn close(&mut self, _task: &mut TaskContext) -> Result<(), ProcessError> {
        Ok(())
    }
}

/// A node reached from several parents (after `merge`): one instance, shared.
pub(crate) struct SharedNode<K, V> {
    inner: Arc<Mutex<SharedState<K, V>>>,
}

struct SharedState<K, V> {
    node: Box<dyn Node<K, V>>,
    initialized: bool,
    closed: bool,
}

impl<K, V> Clone for SharedNode<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> SharedNode<K, V> {
    pub(crate) fn new(node: Box<dyn Node<K, V>>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(SharedState {
                node,
                initialized: false,
                closed: false,
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SharedState<K, V>) -> R) -> R {
        // A poisoned lock means a panic while processing: the task is going down anyway.
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl<K: Send, V: Send> Node<K, V> for SharedNode<K, V> {
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.with(|s| {
            if s.initialized {
                return Ok(());
            }
            s.initialized = true;
            s.node.init(task)
        })
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        task: &mut TaskContext,
    ) -> Result<(), ProcessError> {
        self.with(|s| s.node.process(record, task))
    }

    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError> {
        self.with(|s| s.node.punctuate(target, punctuator, timestamp, task))
    }

    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.with(|s| {
            if s.closed {
                return Ok(());
            }
            s.closed = true;
            s.node.close(task)
        })
    }
}

/// Extracts the event time of a record from its key, value and Kafka timestamp.
pub type TimestampExtractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

/// Entry of a task's node tree: deserializes raw records of one topic.
pub(crate) trait SourceNode: Send {
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError>;
    fn process_raw(&mut self, raw: &RawRecord, task: &mut TaskContext) -> Result<(), ProcessError>;
    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError>;
    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError>;
}

pub(crate) struct TypedSource<K, V> {
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) timestamps: Option<TimestampExtractor<K, V>>,
    pub(crate) children: Vec<Box<dyn Node<K, V>>>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> SourceNode for TypedSource<K, V> {
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.children.iter_mut().try_for_each(|c| c.init(task))
    }

    fn process_raw(&mut self, raw: &RawRecord, task: &mut TaskContext) -> Result<(), ProcessError> {
        let deserialization = ProcessError::deserialization(&raw.topic);
        let key = self
            .key_serde
            .deserialize_nullable(&raw.topic, raw.key.as_deref())
            .map_err(&deserialization)?;
        let value = self
            .value_serde
            .deserialize_nullable(&raw.topic, raw.value.as_deref())
            .map_err(&deserialization)?;
        let timestamp = match &self.timestamps {
            Some(extract) => extract(&key, &value, raw.timestamp),
            None => raw.timestamp,
        };
        task.metadata = Some(RecordMetadata {
            topic: raw.topic.clone(),
            partition: raw.partition.unwrap_or(task.partition),
            offset: raw.offset,
            timestamp: raw.timestamp,
        });
        task.observe_time(timestamp);
        let record = Record {
            key,
            value,
            timestamp,
            headers: raw.headers.clone(),
        };
        let result = forward_to_all(&mut self.children, record, task);
        task.metadata = None;
        result
    }

    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError> {
        punctuate_children(&mut self.children, target, punctuator, timestamp, task)
    }

    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.children.iter_mut().try_for_each(|c| c.close(task))
    }
}
