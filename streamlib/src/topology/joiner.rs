//! What the join operations share: the two inputs of one join node, and the value joiner of
//! each join kind.

use std::sync::Arc;

/// A record of one side of a join, as both sides reach the one node that joins them.
#[derive(Clone, Debug)]
pub(crate) enum Side<L, R> {
    Left(L),
    Right(R),
}

/// An inner join's value joiner: called with both values.
type InnerFn<V1, V2, VR> = dyn Fn(&V1, &V2) -> VR + Send + Sync;
/// A left join's: called with the left value and the right one, if any.
type LeftFn<V1, V2, VR> = dyn Fn(&V1, Option<&V2>) -> VR + Send + Sync;
/// An outer join's: called with either value or both.
type OuterFn<V1, V2, VR> = dyn Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync;

/// The value joiner of an inner, left or outer join.
pub(crate) enum Joiner<V1, V2, VR> {
    Inner(Arc<InnerFn<V1, V2, VR>>),
    Left(Arc<LeftFn<V1, V2, VR>>),
    Outer(Arc<OuterFn<V1, V2, VR>>),
}

impl<V1, V2, VR> Clone for Joiner<V1, V2, VR> {
    fn clone(&self) -> Self {
        match self {
            Self::Inner(f) => Self::Inner(f.clone()),
            Self::Left(f) => Self::Left(f.clone()),
            Self::Outer(f) => Self::Outer(f.clone()),
        }
    }
}

impl<V1, V2, VR> Joiner<V1, V2, VR> {
    /// The joined value of `left` and `right`, or `None` when this kind of join has no
    /// result for them (a missing value on a side it does not keep).
    pub(crate) fn join(&self, left: Option<&V1>, right: Option<&V2>) -> Option<VR> {
        match (self, left, right) {
            (_, None, None) => None,
            (Self::Inner(f), Some(l), Some(r)) => Some(f(l, r)),
            (Self::Left(f), Some(l), r) => Some(f(l, r)),
            (Self::Outer(f), l, r) => Some(f(l, r)),
            (Self::Inner(_), _, _) | (Self::Left(_), None, Some(_)) => None,
        }
    }

    /// Whether a value of the left (`true`) or right side has a result without a partner.
    pub(crate) fn keeps(&self, left: bool) -> bool {
        match self {
            Self::Inner(_) => false,
            Self::Left(_) => left,
            Self::Outer(_) => true,
        }
    }
}
