//! How far a store has read its inputs: Kafka Streams' `Position` and `PositionBound`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The offset of the last input record reflected in a store, per input topic and partition.
///
/// A client that wrote a record at offset `o` of `topic`/`partition` (the producer's delivery
/// report tells it) and asks with [`PositionBound::at_least`] a position holding `o` reads a
/// state that includes its write, or gets [`super::QueryFailure::NotUpToBound`]: never an
/// older answer.
///
/// ```
/// use streamlib::query::Position;
///
/// let seen = Position::default().with("prices", 0, 41);
/// let wanted = Position::default().with("prices", 0, 40);
/// assert!(seen.dominates(&wanted));
/// assert!(!wanted.dominates(&seen));
/// assert!(!seen.dominates(&Position::default().with("prices", 1, 0)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(BTreeMap<String, BTreeMap<i32, i64>>);

impl Position {
    /// This position with `topic`/`partition` at `offset` (moved forward only).
    pub fn with(mut self, topic: &str, partition: i32, offset: i64) -> Self {
        self.advance(topic, partition, offset);
        self
    }

    /// Moves `topic`/`partition` to `offset` unless it already is at or past it.
    pub fn advance(&mut self, topic: &str, partition: i32, offset: i64) {
        let partitions = match self.0.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.0.entry(topic.to_owned()).or_default(),
        };
        let at = partitions.entry(partition).or_insert(offset);
        *at = (*at).max(offset);
    }

    /// The offset of `topic`/`partition`, if this position has one.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic)?.get(&partition).copied()
    }

    /// Every component of `other` merged into this one (the later offset wins).
    pub fn merge(&mut self, other: &Position) {
        for (topic, partitions) in &other.0 {
            for (partition, offset) in partitions {
                self.advance(topic, *partition, *offset);
            }
        }
    }

    /// Whether this position is at or past every component of `bound`.
    pub fn dominates(&self, bound: &Position) -> bool {
        bound.0.iter().all(|(topic, partitions)| {
            partitions.iter().all(|(partition, offset)| {
                self.offset(topic, *partition)
                    .is_some_and(|seen| seen >= *offset)
            })
        })
    }

    /// Whether the position has no component.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How fresh an answer must be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PositionBound {
    /// Any state will do.
    #[default]
    Unbounded,
    /// The store must have read at least this far.
    AtLeast(Position),
}

impl PositionBound {
    /// A bound requiring at least `position`.
    pub fn at_least(position: Position) -> Self {
        Self::AtLeast(position)
    }
}
