//! Processors behind the stateless DSL operations.

use crate::error::ProcessError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;

/// A processor made of one closure; every stateless DSL operation is one of these.
pub(crate) struct FnProcessor<F>(F);

/// Wraps `f`; the explicit bound lets closures infer the context's lifetime.
pub(crate) fn stateless<KIn, VIn, KOut, VOut, F>(f: F) -> FnProcessor<F>
where
    F: FnMut(Record<KIn, VIn>, &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError>
        + Send,
{
    FnProcessor(f)
}

impl<KIn, VIn, KOut, VOut, F> Processor<KIn, VIn, KOut, VOut> for FnProcessor<F>
where
    F: FnMut(Record<KIn, VIn>, &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError>
        + Send,
{
    fn process(
        &mut self,
        record: Record<KIn, VIn>,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
    ) -> Result<(), ProcessError> {
        (self.0)(record, ctx)
    }
}
