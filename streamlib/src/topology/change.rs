//! What flows between the nodes of a table: each update as its new and its previous value.

/// One update of a table row: the new value (`None` for a delete) and, where the table knows
/// it, the value it replaces (Kafka Streams' `Change`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change<V> {
    /// The row's value after the update; `None` when the row is deleted.
    pub(crate) new: Option<V>,
    /// The row's value before the update; `None` when there was none or it is not known.
    pub(crate) old: Option<V>,
}

impl<V> Change<V> {
    /// Applies `f` to both values.
    pub(crate) fn map<V2>(self, mut f: impl FnMut(V) -> V2) -> Change<V2> {
        Change {
            new: self.new.map(&mut f),
            old: self.old.map(f),
        }
    }
}
