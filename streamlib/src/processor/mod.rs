//! The Processor API: per-record logic, forwarding, timers and store access.
//!
//! ```
//! use streamlib::processor::{Processor, ProcessorContext};
//! use streamlib::error::ProcessError;
//! use streamlib::record::Record;
//!
//! /// Forwards every record whose value is above a threshold, doubled.
//! struct DoubleLarge(i64);
//!
//! impl Processor<String, i64, String, i64> for DoubleLarge {
//!     fn process(
//!         &mut self,
//!         record: Record<String, i64>,
//!         ctx: &mut ProcessorContext<'_, String, i64>,
//!     ) -> Result<(), ProcessError> {
//!         if record.value > self.0 {
//!             let doubled = record.value * 2;
//!             ctx.forward(record.with_value(doubled))?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```

mod boxed;
mod context;
pub(crate) mod node;

pub use context::{ProcessorContext, PunctuationType, PunctuatorId};

use crate::error::ProcessError;
use crate::record::Record;

/// Per-record logic with access to stores, timers and downstream nodes.
///
/// One instance exists per task (input partition); the host calls `init` once before the first
/// record, `process` per record, `punctuate` when a scheduled punctuator fires and `close` when
/// the task closes.
pub trait Processor<KIn, VIn, KOut, VOut>: Send {
    /// Called once before the first record: look stores up, schedule punctuators.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Handles one record.
    fn process(
        &mut self,
        record: Record<KIn, VIn>,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
    ) -> Result<(), ProcessError>;

    /// Called when a punctuator scheduled by this processor fires, with the time it fired at.
    fn punctuate(
        &mut self,
        _punctuator: PunctuatorId,
        _timestamp: i64,
        _ctx: &mut ProcessorContext<'_, KOut, VOut>,
    ) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called once when the task closes.
    fn close(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<(), ProcessError> {
        Ok(())
    }
}
