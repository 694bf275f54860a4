//! Prometheus text exposition of an instance's counters, served on an opt-in HTTP port.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::task::TaskMetrics;

use super::thread::Shared;
use super::RuntimeMetrics;

/// Consumer lag per input partition, from librdkafka's statistics.
#[derive(Default)]
pub(crate) struct ConsumerLag(Mutex<BTreeMap<(String, i32), i64>>);

impl ConsumerLag {
    pub(crate) fn record(&self, statistics: &rdkafka::Statistics) {
        let mut lag = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lag.clear();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.insert((topic.clone(), *partition), p.consumer_lag);
                }
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<(String, i32), i64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn counter(out: &mut String, name: &str, help: &str, app: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{application_id=\"{app}\"}} {value}\n"
    );
}

/// A counter with one series per `kind` label.
fn by_kind<const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    app: &str,
    values: [(&str, u64); N],
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
    for (kind, value) in values {
        let _ = writeln!(
            out,
            "{name}{{application_id=\"{app}\",kind=\"{kind}\"}} {value}"
        );
    }
}

/// The Prometheus text for one instance.
pub(crate) fn render(
    app: &str,
    runtime: &RuntimeMetrics,
    tasks: &TaskMetrics,
    lag: &BTreeMap<(String, i32), i64>,
) -> String {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    counter(
        &mut out,
        "streamlib_records_consumed_total",
        "Records consumed from input and repartition topics.",
        app,
        load(&runtime.consumed),
    );
    counter(
        &mut out,
        "streamlib_records_processed_total",
        "Records processed without error.",
        app,
        tasks.processed,
    );
    counter(
        &mut out,
        "streamlib_records_produced_total",
        "Records produced (outputs, repartition, changelog, dead letters).",
        app,
        load(&runtime.produced),
    );
    counter(
        &mut out,
        "streamlib_records_late_dropped_total",
        "Records dropped because their windows had closed.",
        app,
        tasks.late_dropped,
    );
    by_kind(
        &mut out,
        "streamlib_records_dropped_total",
        "Records dropped by log-and-continue handlers or processors (kind=processing) and \
         records the broker refused that the production handler dropped (kind=production).",
        app,
        [
            ("processing", tasks.dropped),
            ("production", load(&runtime.production_dropped)),
        ],
    );
    by_kind(
        &mut out,
        "streamlib_records_dead_lettered_total",
        "Records sent to the dead-letter topic: inputs failing deserialization or processing \
         (kind=processing), outputs the broker refused (kind=production).",
        app,
        [
            ("processing", tasks.dead_lettered),
            ("production", load(&runtime.production_dead_lettered)),
        ],
    );
    counter(
        &mut out,
        "streamlib_restored_records_total",
        "Changelog records applied while restoring stores.",
        app,
        load(&runtime.restored),
    );
    counter(
        &mut out,
        "streamlib_transactions_aborted_total",
        "Transactions aborted and recovered from in process (exactly-once).",
        app,
        load(&runtime.aborted_transactions),
    );
    let commits = load(&runtime.commits);
    let seconds = load(&runtime.commit_micros) as f64 / 1e6;
    let _ = write!(
        out,
        "# HELP streamlib_commit_latency_seconds Time spent committing.\n# TYPE streamlib_commit_latency_seconds summary\n\
         streamlib_commit_latency_seconds_sum{{application_id=\"{app}\"}} {seconds}\n\
         streamlib_commit_latency_seconds_count{{application_id=\"{app}\"}} {commits}\n"
    );
    let _ = write!(
        out,
        "# HELP streamlib_tasks Tasks assigned to this instance.\n# TYPE streamlib_tasks gauge\n\
         streamlib_tasks{{application_id=\"{app}\"}} {}\n",
        load(&runtime.tasks)
    );
    out.push_str("# HELP streamlib_consumer_lag Records between the committed position and the end of each partition.\n# TYPE streamlib_consumer_lag gauge\n");
    for ((topic, partition), value) in lag {
        let _ = writeln!(
            out,
            "streamlib_consumer_lag{{application_id=\"{app}\",topic=\"{topic}\",partition=\"{partition}\"}} {value}"
        );
    }
    out
}

/// Serves `GET /metrics` on `listener` until `running` is cleared.
pub(crate) fn serve(
    listener: TcpListener,
    app: String,
    runtime: Arc<RuntimeMetrics>,
    shared: Arc<Shared>,
    running: Arc<AtomicBool>,
    extra: Option<super::ExtraMetrics>,
) -> std::io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name(format!("{app}-metrics"))
        .spawn(move || {
            while running.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let mut body = render(
                            &app,
                            &runtime,
                            &shared.tasks().task_totals(),
                            &shared.lag.snapshot(),
                        );
                        if let Some(extra) = &extra {
                            body.push_str(&(extra.0)());
                        }
                        if let Err(error) = respond(stream, &body) {
                            tracing::debug!(%error, "metrics request failed");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(error) => tracing::warn!(%error, "metrics listener"),
                }
            }
        })
}

fn respond(mut stream: TcpStream, body: &str) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = [0u8; 1024];
    let n = stream.read(&mut request)?;
    let status = if request[..n].starts_with(b"GET /metrics") {
        "200 OK"
    } else {
        "404 Not Found"
    };
    let body = if status == "200 OK" {
        body
    } else {
        "only GET /metrics is served\n"
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Binds the metrics port.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}
