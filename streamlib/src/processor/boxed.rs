//! A boxed processor is a processor.

use crate::error::ProcessError;
use crate::record::Record;

use super::{Processor, ProcessorContext, PunctuatorId};

impl<KIn, VIn, KOut, VOut> Processor<KIn, VIn, KOut, VOut>
    for Box<dyn Processor<KIn, VIn, KOut, VOut>>
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError> {
        (**self).init(ctx)
    }

    fn process(
        &mut self,
        record: Record<KIn, VIn>,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
    ) -> Result<(), ProcessError> {
        (**self).process(record, ctx)
    }

    fn punctuate(
        &mut self,
        punctuator: PunctuatorId,
        timestamp: i64,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
    ) -> Result<(), ProcessError> {
        (**self).punctuate(punctuator, timestamp, ctx)
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError> {
        (**self).close(ctx)
    }
}
