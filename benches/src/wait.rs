//! The stop rule of a measured run, shared by both harnesses: wait until the system under test
//! has produced every expected output, has gone quiet short of it, or ran out of time.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::sink::OutputCounter;

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every input was consumed and the output count reached the expected count.
    Complete,
    /// Every input was consumed, the output stopped growing for the settle time, short of the
    /// expected count.
    Settled,
    /// The timeout passed first.
    TimedOut,
}

impl End {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Settled => "settled",
            Self::TimedOut => "timed-out",
        }
    }
}

/// What the stop rule can see of the system under test.
pub trait Observed {
    /// Input records consumed so far, when the system reports it (an in-process system does; a
    /// child process does not, and then only its outputs count).
    fn consumed(&self) -> Option<u64>;

    /// Whether it is still processing.
    fn is_running(&self) -> bool;

    /// Called while [`until_done`] waits, whenever the output has grown since the last call
    /// (e.g. to sample what the system has used by its latest output).
    fn outputs_grew(&self) {}
}

/// How long [`until_done`] waits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long the output must stay unchanged, once every input was consumed (or, when the
    /// system does not report consumption, after its first output), before a run short of its
    /// expected output count ends [`End::Settled`].
    pub settle: Duration,
    /// Longest a run may take.
    pub timeout: Duration,
}

/// Waits until the run is done:
/// - [`End::Complete`]: every one of `inputs` was consumed (when known) and the counter has read
///   `expected` outputs;
/// - [`End::Settled`]: as [`Limits::settle`] says;
/// - [`End::TimedOut`]: [`Limits::timeout`] after `started`.
///
/// Fails when the system under test stops on its own.
pub fn until_done(
    limits: Limits,
    sink: &OutputCounter,
    sut: &dyn Observed,
    inputs: u64,
    expected: u64,
    started: Instant,
) -> Result<End> {
    let mut all_in_since: Option<Instant> = None;
    let mut progress = Progress::new(sut.consumed());
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let consumed = sut.consumed();
        let outputs = sink.count();
        if outputs > seen {
            seen = outputs;
            sut.outputs_grew();
        }
        progress.maybe_log(consumed, outputs);
        let all_in = match consumed {
            Some(consumed) => consumed >= inputs,
            None => sink.first_output().is_some(),
        };
        if all_in && outputs >= expected {
            return Ok(End::Complete);
        }
        if all_in {
            let since = *all_in_since.get_or_insert_with(Instant::now);
            let quiet_since = sink.last_output().map_or(since, |last| last.max(since));
            if quiet_since.elapsed() >= limits.settle {
                return Ok(End::Settled);
            }
        }
        if !sut.is_running() {
            bail!("the system under test stopped before finishing");
        }
        if started.elapsed() >= limits.timeout {
            return Ok(End::TimedOut);
        }
    }
}

/// Logs input and output rates every [`Progress::EVERY`] while a run waits.
struct Progress {
    last: Instant,
    consumed: Option<u64>,
    outputs: u64,
}

impl Progress {
    /// Interval between two progress lines.
    const EVERY: Duration = Duration::from_secs(10);

    /// Starts counting from `consumed` inputs and no outputs.
    fn new(consumed: Option<u64>) -> Self {
        Self {
            last: Instant::now(),
            consumed,
            outputs: 0,
        }
    }

    /// Prints the rates since the last line when [`Progress::EVERY`] has passed.
    fn maybe_log(&mut self, consumed: Option<u64>, outputs: u64) {
        let elapsed = self.last.elapsed();
        if elapsed < Self::EVERY {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let inputs = match (consumed, self.consumed) {
            (Some(now), Some(before)) => format!(
                "{now} in ({:.0}/s), ",
                now.saturating_sub(before) as f64 / secs
            ),
            _ => String::new(),
        };
        eprintln!(
            "  … {inputs}{outputs} out ({:.0}/s)",
            outputs.saturating_sub(self.outputs) as f64 / secs
        );
        *self = Self {
            last: Instant::now(),
            consumed,
            outputs,
        };
    }
}
