//! Results: one row per run, as a Markdown table and as JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use benches::sink::Latency;
use benches::Guarantee;

use crate::model::{Mode, Workload};

/// The measurements of one run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// System under test.
    pub workload: Workload,
    /// Processing guarantee.
    pub guarantee: Guarantee,
    /// Throughput or live.
    pub mode: Mode,
    /// Input records.
    pub records: u64,
    /// Output records the run waited for.
    pub expected_outputs: u64,
    /// Output records read.
    pub outputs: u64,
    /// Measured time (see `run::run`).
    pub seconds: f64,
    /// `records / seconds`.
    pub records_per_s: f64,
    /// From the start of the measured time to the first output record.
    pub first_output_s: Option<f64>,
    /// Live runs only: outputs of inputs produced after the warm-up.
    pub latency: Option<Latency>,
    /// Live runs only: outputs of inputs produced during the warm-up.
    pub warmup_latency: Option<Latency>,
    /// Commits of the system under test.
    pub commits: u64,
    /// Time it spent committing.
    pub commit_ms_total: f64,
    /// `complete`, `settled` or `timed-out`.
    pub end: &'static str,
    /// Why the run failed, if it did (the numbers are then zero).
    pub error: Option<String>,
}

impl RunResult {
    /// A row for a run that failed.
    pub fn failed(workload: Workload, guarantee: Guarantee, mode: Mode, error: String) -> Self {
        Self {
            workload,
            guarantee,
            mode,
            records: 0,
            expected_outputs: 0,
            outputs: 0,
            seconds: 0.0,
            records_per_s: 0.0,
            first_output_s: None,
            latency: None,
            warmup_latency: None,
            commits: 0,
            commit_ms_total: 0.0,
            end: "failed",
            error: Some(error),
        }
    }

    /// Workload name with the live rate, e.g. `hopping (live 5000/s)`.
    fn label(&self) -> String {
        match self.mode {
            Mode::Throughput => self.workload.to_string(),
            Mode::Live { rate } => format!("{} (live {rate}/s)", self.workload),
        }
    }

    /// The row as JSON.
    fn to_json(&self) -> Value {
        json!({
            "workload": self.workload.name(),
            "guarantee": self.guarantee.name(),
            "mode": self.mode.name(),
            "live_rate": match self.mode { Mode::Live { rate } => Some(rate), Mode::Throughput => None },
            "records": self.records,
            "expected_outputs": self.expected_outputs,
            "outputs": self.outputs,
            "seconds": self.seconds,
            "records_per_s": self.records_per_s,
            "first_output_s": self.first_output_s,
            "latency_ms": self.latency.map(Latency::to_json),
            "warmup_latency_ms": self.warmup_latency.map(Latency::to_json),
            "commits": self.commits,
            "commit_ms_total": self.commit_ms_total,
            "end": self.end,
            "error": self.error,
        })
    }
}

/// Formats an optional number of ms.
fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "–".into(), |v| v.to_string())
}

/// The results as a Markdown table.
pub fn markdown(results: &[RunResult]) -> String {
    let mut out = String::from(
        "| workload | guarantee | records | seconds | records/s | first output s | p50 ms | p99 ms | end |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in results {
        let end = match (&r.error, r.outputs == r.expected_outputs) {
            (Some(error), _) => format!("failed: {error}"),
            (None, true) => r.end.to_string(),
            (None, false) => format!(
                "{} ({} of {} outputs)",
                r.end, r.outputs, r.expected_outputs
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.0} | {} | {} | {} | {} |",
            r.label(),
            r.guarantee,
            r.records,
            r.seconds,
            r.records_per_s,
            r.first_output_s
                .map_or_else(|| "–".into(), |s| format!("{s:.1}")),
            ms(r.latency.map(|l| l.p50_ms)),
            ms(r.latency.map(|l| l.p99_ms)),
            end,
        );
    }
    out
}

/// The results and the setup that produced them as one JSON document.
pub fn document(setup: Value, results: &[RunResult]) -> Value {
    json!({
        "setup": setup,
        "runs": results.iter().map(RunResult::to_json).collect::<Vec<_>>(),
    })
}
