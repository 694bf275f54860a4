//! `peers app`: streamlib or the raw rdkafka ceiling as a child process of the harness, like the
//! Java and Python peers: it runs one workload until its standard input closes, then commits
//! and stops.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use benches::ceiling::Ceiling;
use benches::{topologies, Guarantee};
use clap::Args;
use streamlib::runtime::{KafkaStreams, StreamsConfig};

use crate::system::System;
use crate::workload::Workload;

/// The arguments every peer takes (see `system::ChildArgs`), plus which Rust system to run.
#[derive(Args, Debug)]
pub struct AppArgs {
    /// `streamlib` or `ceiling`.
    #[arg(long, value_enum)]
    system: System,
    /// Workload (the ceiling always copies).
    #[arg(long, value_enum)]
    workload: Workload,
    /// Processing guarantee.
    #[arg(long, value_enum)]
    guarantee: Guarantee,
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Input topic.
    #[arg(long)]
    input: String,
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

/// Runs until standard input closes or the system stops on its own (an error).
pub fn run(args: &AppArgs) -> Result<()> {
    let stdin_closed = watch_stdin()?;
    let commit_interval = Duration::from_millis(args.commit_ms);
    match args.system {
        System::Streamlib => {
            let topology = match args.workload {
                Workload::Stateless => topologies::passthrough(&args.input, &args.output),
                Workload::Hopping => topologies::hopping_json(&args.input, &args.output),
                Workload::Dedup => topologies::dedup(&args.input, &args.output),
                Workload::Copy => bail!("streamlib runs stateless, hopping or dedup"),
            };
            let mut config = StreamsConfig::new(&args.app_id, &args.bootstrap);
            config.state_dir = args.state_dir.clone();
            config.processing_guarantee = args.guarantee.streams();
            config.commit_interval = Some(commit_interval);
            config.num_stream_threads = args.threads;
            let mut app = KafkaStreams::new(topology, config);
            app.start().context("starting the streams app")?;
            let stopped_by_harness = wait(&stdin_closed, || app.is_running());
            app.close().context("closing the streams app")?;
            if !stopped_by_harness {
                bail!("the stream thread stopped on its own");
            }
        }
        System::Ceiling => {
            // The partition count only serves `Ceiling::assigned`, which a child process does
            // not report (the harness watches the consumer group instead).
            let ceiling = Ceiling::start(
                &args.bootstrap,
                &args.app_id,
                &args.input,
                &args.output,
                0,
                args.guarantee,
                commit_interval,
            )?;
            let stopped_by_harness = wait(&stdin_closed, || ceiling.is_running());
            ceiling.stop()?;
            if !stopped_by_harness {
                bail!("the ceiling stopped on its own");
            }
        }
        System::KafkaStreams | System::Quix => bail!("`peers app` runs streamlib or ceiling"),
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
