//! The topology as a graph of node factories, and its instantiation into a task's node tree.
//!
//! Each node stores a factory typed by the records it accepts. Instantiation starts at the
//! sources and asks each node's factory for a fresh instance, so every task gets its own
//! processors while the graph itself stays shared and immutable.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::ProcessError;
use crate::processor::node::{Node, NodeId, ProcessorNode, SharedNode, SourceNode};
use crate::processor::Processor;
use crate::processor::PunctuatorId;
use crate::record::RawRecord;
use crate::task::TaskContext;

/// Bounds every key and value type in a topology meets.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// State of one instantiation: the application id that names internal topics, and the nodes
/// with several parents built so far.
pub(crate) struct Memo {
    pub(crate) application_id: String,
    shared: HashMap<NodeId, Box<dyn Any>>,
}

impl Memo {
    /// The full name of a topic: internal topics are prefixed by the application id.
    pub(crate) fn topic_name(&self, topic: &TopicName) -> Arc<str> {
        match topic {
            TopicName::External(name) => Arc::from(name.as_str()),
            TopicName::Internal(name) => Arc::from(super::prefixed(&self.application_id, name)),
        }
    }
}

/// A topic as the graph knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TopicName {
    /// A user topic, used as is.
    External(String),
    /// An internal topic, named `<application.id>-<name>` at run time.
    Internal(String),
}

pub(crate) type SourceFactory = Arc<dyn Fn(&Graph, &mut Memo) -> Box<dyn SourceNode> + Send + Sync>;

/// Builds a node that accepts `(K, V)` records.
pub(crate) struct NodeFactory<K, V>(
    #[allow(clippy::type_complexity)]
    Arc<dyn Fn(&Graph, &mut Memo) -> Box<dyn Node<K, V>> + Send + Sync>,
);

pub(crate) enum Factory {
    Source(SourceFactory),
    Node(Box<dyn Any + Send + Sync>),
}

/// What a node is, for `describe()` and for the hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Source { topic: TopicName },
    Processor,
    Sink { topic: TopicName },
}

pub(crate) struct GraphNode {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<NodeId>,
    pub(crate) children: Vec<NodeId>,
    pub(crate) stores: Vec<String>,
    pub(crate) factory: Factory,
}

/// The node graph of a topology.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<GraphNode>,
}

impl Graph {
    pub(crate) fn next_id(&self) -> NodeId {
        self.nodes.len()
    }

    pub(crate) fn push(&mut self, node: GraphNode) -> NodeId {
        let id = self.nodes.len();
        for &parent in &node.parents {
            self.nodes[parent].children.push(id);
        }
        self.nodes.push(node);
        id
    }

    /// Adds a processor node below `parents`.
    pub(crate) fn add_processor<KIn, VIn, KOut, VOut, P>(
        &mut self,
        name: String,
        parents: &[NodeId],
        stores: Vec<String>,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> NodeId
    where
        KIn: Data,
        VIn: Data,
        KOut: Data,
        VOut: Data,
        P: Processor<KIn, VIn, KOut, VOut> + 'static,
    {
        let id = self.next_id();
        let factory = NodeFactory::<KIn, VIn>(Arc::new(move |graph, memo| {
            Box::new(ProcessorNode {
                id,
                processor: Box::new(supplier()),
                children: graph.build_children::<KOut, VOut>(id, memo),
            })
        }));
        self.push(GraphNode {
            name,
            kind: NodeKind::Processor,
            parents: parents.to_vec(),
            children: Vec::new(),
            stores,
            factory: Factory::Node(Box::new(factory)),
        })
    }

    /// Adds a node built by `build` (sinks and other leaves).
    pub(crate) fn add_leaf<K: Data, V: Data>(
        &mut self,
        name: String,
        kind: NodeKind,
        parent: NodeId,
        build: impl Fn(&Memo) -> Box<dyn Node<K, V>> + Send + Sync + 'static,
    ) -> NodeId {
        let factory = NodeFactory::<K, V>(Arc::new(move |_, memo| build(memo)));
        self.push(GraphNode {
            name,
            kind,
            parents: vec![parent],
            children: Vec::new(),
            stores: Vec::new(),
            factory: Factory::Node(Box::new(factory)),
        })
    }

    /// Fresh instances of the children of `id`, which all accept `(K, V)`.
    pub(crate) fn build_children<K: Data, V: Data>(
        &self,
        id: NodeId,
        memo: &mut Memo,
    ) -> Vec<Box<dyn Node<K, V>>> {
        self.nodes[id]
            .children
            .iter()
            .map(|&child| self.build_node::<K, V>(child, memo))
            .collect()
    }

    fn build_node<K: Data, V: Data>(&self, id: NodeId, memo: &mut Memo) -> Box<dyn Node<K, V>> {
        let node = &self.nodes[id];
        let Factory::Node(any) = &node.factory else {
            unreachable!("a source node is never a child");
        };
        let factory = any
            .downcast_ref::<NodeFactory<K, V>>()
            .unwrap_or_else(|| panic!("node {} attached with mismatched types", node.name));
        if node.parents.len() < 2 {
            return (factory.0)(self, memo);
        }
        // Several parents forward into one shared instance.
        if let Some(shared) = memo.shared.get(&id) {
            let shared = shared
                .downcast_ref::<SharedNode<K, V>>()
                .expect("memo holds the node's own type");
            return Box::new(shared.clone());
        }
        let shared = SharedNode::new((factory.0)(self, memo));
        memo.shared.insert(id, Box::new(shared.clone()));
        Box::new(shared)
    }

    /// Fresh source nodes, by topic, with the whole tree below them.
    pub(crate) fn instantiate(
        &self,
        application_id: &str,
    ) -> HashMap<Arc<str>, Box<dyn SourceNode>> {
        let mut memo = Memo {
            application_id: application_id.to_string(),
            shared: HashMap::new(),
        };
        let mut sources = HashMap::new();
        for node in &self.nodes {
            if let (NodeKind::Source { topic }, Factory::Source(factory)) =
                (&node.kind, &node.factory)
            {
                let name = memo.topic_name(topic);
                let source = factory(self, &mut memo);
                // Several sources of one topic (a stream and a table of it, say) each get
                // every record.
                let source = match sources.remove(&name) {
                    Some(first) => Box::new(FanOut(vec![first, source])) as Box<dyn SourceNode>,
                    None => source,
                };
                sources.insert(name, source);
            }
        }
        sources
    }
}

/// The sources of one topic, each given every record in the order they were added.
struct FanOut(Vec<Box<dyn SourceNode>>);

impl SourceNode for FanOut {
    fn init(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.0.iter_mut().try_for_each(|s| s.init(task))
    }

    fn process_raw(&mut self, raw: &RawRecord, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.0.iter_mut().try_for_each(|s| s.process_raw(raw, task))
    }

    fn punctuate(
        &mut self,
        target: NodeId,
        punctuator: PunctuatorId,
        timestamp: i64,
        task: &mut TaskContext,
    ) -> Result<bool, ProcessError> {
        for source in &mut self.0 {
            if source.punctuate(target, punctuator, timestamp, task)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn close(&mut self, task: &mut TaskContext) -> Result<(), ProcessError> {
        self.0.iter_mut().try_for_each(|s| s.close(task))
    }
}
