//! `Topology::describe()`: the graph as text, in the style of Kafka Streams.

use std::fmt::Write;

use super::graph::{Graph, NodeKind, TopicName};
use super::{InternalTopic, StoreSpec};

fn topic_text(topic: &TopicName) -> String {
    match topic {
        TopicName::External(t) => t.clone(),
        TopicName::Internal(t) => format!("<application.id>-{t}"),
    }
}

pub(super) fn describe(graph: &Graph, stores: &[StoreSpec], internal: &[InternalTopic]) -> String {
    let mut out = String::from("Topology:\n");
    for node in &graph.nodes {
        let children: Vec<&str> = node
            .children
            .iter()
            .map(|&c| graph.nodes[c].name.as_str())
            .collect();
        // Writing to a String cannot fail.
        let _ = match &node.kind {
            NodeKind::Source { topic } => {
                writeln!(
                    out,
                    "  Source: {} (topics: [{}])",
                    node.name,
                    topic_text(topic)
                )
            }
            NodeKind::Processor => writeln!(
                out,
                "  Processor: {} (stores: {:?})",
                node.name, node.stores
            ),
            NodeKind::Sink { topic } => {
                writeln!(out, "  Sink: {} (topic: {})", node.name, topic_text(topic))
            }
        };
        if !children.is_empty() {
            let _ = writeln!(out, "    --> {}", children.join(", "));
        }
    }
    for store in stores {
        let _ = writeln!(
            out,
            "  Store: {} ({:?}, {:?}, changelog: {})",
            store.name, store.kind, store.backend, store.logged
        );
    }
    for topic in internal {
        let _ = writeln!(
            out,
            "  Internal topic: <application.id>-{} ({:?})",
            topic.name, topic.kind
        );
    }
    out
}
