//! `peers app`: streamlib or the raw rdkafka ceiling as a child process of the harness, like the
//! Java and Python peers: it runs one workload until its standard input closes, then commits
//! and stops. `peers nexmark-app` does the same with one Nexmark query.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use benches::ceiling::Ceiling;
use benches::nexmark::{queries, Query, Topics};
use benches::{topologies, Guarantee};
use clap::Args;
use streamlib::prelude::Topology;
use streamlib::runtime::{KafkaStreams, StreamsConfig};

use crate::system::System;
use crate::workload::Workload;

/// The arguments every system under test takes besides what it runs (see
/// `system::ChildArgs`).
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Processing guarantee.
    #[arg(long, value_enum)]
    guarantee: Guarantee,
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Output topic.
    #[arg(long)]
    output: String,
    /// Application id (consumer group).
    #[arg(long)]
    app_id: String,
    /// State directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// Commit interval, ms.
    #[arg(long)]
    commit_ms: u64,
    /// Stream threads (streamlib; the ceiling always runs one).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// `peers app`: a workload, and which Rust system runs it.
#[derive(Args, Debug)]
pub struct AppArgs {
    /// `streamlib` or `ceiling`.
    #[arg(long, value_enum)]
    system: System,
    /// Workload (the ceiling always copies).
    #[arg(long, value_enum)]
    workload: Workload,
    /// Input topic.
    #[arg(long)]
    input: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// `peers nexmark-app`: the arguments of the Kafka Streams peer's `NexmarkApp`.
#[derive(Args, Debug)]
pub struct NexmarkAppArgs {
    /// The query.
    #[arg(long, value_enum)]
    query: Query,
    /// Topic of the people.
    #[arg(long)]
    person: String,
    /// Topic of the auctions.
    #[arg(long)]
    auction: String,
    /// Topic of the bids.
    #[arg(long)]
    bid: String,
    /// How long a task waits for an empty input partition read to its end, ms
    /// (`StreamsConfig::max_task_idle_caught_up`).
    #[arg(long, default_value_t = 0)]
    task_idle_ms: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// Runs until standard input closes or the system stops on its own (an error).
pub fn run(args: &AppArgs) -> Result<()> {
    let common = &args.common;
    match args.system {
        System::Streamlib => {
            let topology = match args.workload {
                Workload::Stateless => topologies::passthrough(&args.input, &common.output),
                Workload::Hopping => topologies::hopping_json(&args.input, &common.output),
                Workload::Dedup => topologies::dedup(&args.input, &common.output),
                Workload::Copy => bail!("streamlib runs stateless, hopping or dedup"),
            };
            run_streamlib(topology, common, Duration::ZERO)
        }
        System::Ceiling => {
            let stdin_closed = watch_stdin()?;
            // The partition count only serves `Ceiling::assigned`, which a child process does
            // not report (the harness watches the consumer group instead).
            let ceiling = Ceiling::start(
                &common.bootstrap,
                &common.app_id,
                &args.input,
                &common.output,
                0,
                common.guarantee,
                Duration::from_millis(common.commit_ms),
            )?;
            let stopped_by_harness = wait(&stdin_closed, || ceiling.is_running());
            ceiling.stop()?;
            if !stopped_by_harness {
                bail!("the ceiling stopped on its own");
            }
            Ok(())
        }
        System::KafkaStreams | System::Quix => bail!("`peers app` runs streamlib or ceiling"),
    }
}

/// `peers nexmark-app`: one Nexmark query on streamlib, until standard input closes.
pub fn run_nexmark(args: &NexmarkAppArgs) -> Result<()> {
    let topics = Topics {
        person: args.person.clone(),
        auction: args.auction.clone(),
        bid: args.bid.clone(),
    };
    run_streamlib(
        queries::build(args.query, &topics, &args.common.output),
        &args.common,
        Duration::from_millis(args.task_idle_ms),
    )
}

/// Runs `topology` on streamlib until standard input closes, then closes it cleanly; fails
/// when the stream thread stops on its own. `task_idle` is its `max_task_idle_caught_up`.
fn run_streamlib(topology: Topology, args: &CommonArgs, task_idle: Duration) -> Result<()> {
    let stdin_closed = watch_stdin()?;
    let mut config = StreamsConfig::new(&args.app_id, &args.bootstrap);
    config.state_dir = args.state_dir.clone();
    config.processing_guarantee = args.guarantee.streams();
    config.commit_interval = Some(Duration::from_millis(args.commit_ms));
    config.num_stream_threads = args.threads;
    config.max_task_idle_caught_up = task_idle;
    let mut app = KafkaStreams::new(topology, config);
    app.start().context("starting the streams app")?;
    let stopped_by_harness = wait(&stdin_closed, || app.is_running());
    app.close().context("closing the streams app")?;
    let metrics = app.metrics();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    // The run's log (kept with `--keep`) says how the thread went about it.
    eprintln!(
        "streamlib: {} consumed, {} produced, {} commits, {} records taken without waiting for an empty input (enforced processing)",
        load(&metrics.consumed),
        load(&metrics.produced),
        load(&metrics.commits),
        load(&metrics.enforced_processing),
    );
    if !stopped_by_harness {
        bail!("the stream thread stopped on its own");
    }
    Ok(())
}

/// A channel that gets a message when standard input reaches its end.
pub(crate) fn watch_stdin() -> Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            // The harness never writes; end of input (or an error) is the stop signal.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        })
        .context("spawning the stdin watcher")?;
    Ok(rx)
}

/// Waits until standard input closes (`true`) or `running` turns false (`false`).
pub(crate) fn wait(stdin_closed: &mpsc::Receiver<()>, running: impl Fn() -> bool) -> bool {
    loop {
        match stdin_closed.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) if !running() => return false,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
