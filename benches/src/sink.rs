//! The output counter: a `read_committed` consumer on the output topic that counts records,
//! remembers when the first and the last arrived and, in live runs, records end-to-end latency.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use hdrhistogram::Histogram;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Message};
use serde_json::{json, Value};

use crate::kafka;
use crate::topologies::stats_sent_ms;

/// Where an output record carries the produce time (`sent_ms`) of the input behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyProbe {
    /// Count only (throughput runs: parsing would steal CPU from the system under test).
    Off,
    /// A JSON object with a `sent_ms` field (ceiling and passthrough outputs).
    JsonSentMs,
    /// An encoded `PriceStats` (hopping outputs).
    StatsTail,
    /// The output record's timestamp, when inputs are produced at the time their timestamp
    /// says (live Nexmark runs).
    RecordTimestamp,
}

impl LatencyProbe {
    /// `sent_ms` of an output record, when this probe finds one.
    fn sent_ms(self, message: &BorrowedMessage<'_>) -> Option<i64> {
        match self {
            Self::Off => None,
            Self::JsonSentMs => serde_json::from_slice::<serde_json::Value>(message.payload()?)
                .ok()?
                .get("sent_ms")?
                .as_i64(),
            Self::StatsTail => stats_sent_ms(message.payload()?),
            Self::RecordTimestamp => message.timestamp().to_millis(),
        }
    }
}

/// Progress shared between the counting thread and the harness.
struct Progress {
    count: AtomicU64,
    /// Nanoseconds after `origin` + 1 of the first / last output; 0 while none arrived.
    first_ns: AtomicU64,
    last_ns: AtomicU64,
    /// Outputs of inputs produced before this wall-clock time (ms) count as warm-up.
    warmup_until_ms: AtomicI64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            first_ns: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            warmup_until_ms: AtomicI64::new(i64::MAX),
        }
    }
}

/// End-to-end latency percentiles of a live run, in ms.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Largest.
    pub max_ms: u64,
    /// Output records measured.
    pub samples: u64,
}

impl Latency {
    /// Percentiles of `histogram`; `None` when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            p50_ms: histogram.value_at_quantile(0.50),
            p99_ms: histogram.value_at_quantile(0.99),
            max_ms: histogram.max(),
            samples: histogram.len(),
        })
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({
            "p50": self.p50_ms, "p99": self.p99_ms, "max": self.max_ms, "samples": self.samples,
        })
    }
}

/// Latencies (ms) of outputs whose input was produced during the warm-up and after it.
pub struct Latencies {
    /// Inputs produced before the end of the warm-up.
    pub warmup: Histogram<u64>,
    /// Inputs produced after it: the steady state.
    pub steady: Histogram<u64>,
}

impl Latencies {
    /// Empty histograms (3 significant digits, auto-resizing).
    fn new() -> Result<Self> {
        Ok(Self {
            warmup: Histogram::new(3).context("creating a latency histogram")?,
            steady: Histogram::new(3).context("creating a latency histogram")?,
        })
    }
}

/// What the counter saw, once stopped.
pub struct SinkReport {
    /// Output records read.
    pub count: u64,
    /// Latency (ms, output consumed − input produced) of every output carrying `sent_ms`.
    pub latency: Latencies,
}

/// A running output counter.
pub struct OutputCounter {
    origin: Instant,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Latencies>>>,
}

impl OutputCounter {
    /// Starts reading every partition of `topic` from the beginning (`read_committed`).
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        probe: LatencyProbe,
    ) -> Result<Self> {
        let consumer = kafka::reader_from_beginning(bootstrap, topic, partitions, &[])
            .context("starting the output counter")?;
        let origin = Instant::now();
        let progress = Arc::new(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (progress, stop) = (progress.clone(), stop.clone());
            std::thread::Builder::new()
                .name("harness-counter".into())
                .spawn(move || count_loop(consumer, probe, origin, &progress, &stop))
                .context("spawning the output counter")?
        };
        Ok(Self {
            origin,
            progress,
            stop,
            thread: Some(thread),
        })
    }

    /// Output records read so far.
    pub fn count(&self) -> u64 {
        self.progress.count.load(Ordering::Relaxed)
    }

    /// Outputs of inputs produced before `until_ms` (wall clock) go to the warm-up histogram.
    pub fn set_warmup_until(&self, until_ms: i64) {
        self.progress
            .warmup_until_ms
            .store(until_ms, Ordering::Relaxed);
    }

    /// When the counter read its first output.
    pub fn first_output(&self) -> Option<Instant> {
        self.instant(&self.progress.first_ns)
    }

    /// When the counter read its latest output.
    pub fn last_output(&self) -> Option<Instant> {
        self.instant(&self.progress.last_ns)
    }

    /// Converts a `*_ns` slot to an instant.
    fn instant(&self, slot: &AtomicU64) -> Option<Instant> {
        match slot.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.origin + Duration::from_nanos(ns - 1)),
        }
    }

    /// Stops the counter and returns what it saw.
    pub fn finish(mut self) -> Result<SinkReport> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("output counter already finished"))?;
        let latency = thread
            .join()
            .map_err(|_| anyhow!("output counter panicked"))??;
        Ok(SinkReport {
            count: self.count(),
            latency,
        })
    }
}

impl Drop for OutputCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls until `stop`, counting records and recording latencies.
fn count_loop(
    consumer: BaseConsumer,
    probe: LatencyProbe,
    origin: Instant,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Latencies> {
    let mut latency = Latencies::new()?;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let now_ns = origin.elapsed().as_nanos() as u64 + 1;
                if progress.count.fetch_add(1, Ordering::Relaxed) == 0 {
                    progress.first_ns.store(now_ns, Ordering::Relaxed);
                }
                progress.last_ns.store(now_ns, Ordering::Relaxed);
                if let Some(sent) = probe.sent_ms(&message) {
                    let ms = (kafka::now_ms() - sent).max(0) as u64;
                    if sent < progress.warmup_until_ms.load(Ordering::Relaxed) {
                        latency.warmup.saturating_record(ms);
                    } else {
                        latency.steady.saturating_record(ms);
                    }
                }
            }
            Some(Err(error)) => eprintln!("  output counter: {error}"),
            None => {}
        }
    }
    Ok(latency)
}
