//! Graceful shutdown on SIGINT / SIGTERM for programs hosting a [`super::KafkaStreams`].

use std::time::Duration;

use crate::error::StreamsError;

use super::KafkaStreams;

/// Runs until SIGINT or SIGTERM arrives (or the stream thread stops on its own), then closes
/// `app`: in-flight work finishes, everything is committed, stores close and the instance
/// leaves the group. Returns the error that stopped the thread, if any.
pub fn run_until_signal(app: &mut KafkaStreams) -> Result<(), StreamsError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StreamsError::Config(format!("starting a tokio runtime: {e}")))?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        )
        .map_err(|e| StreamsError::Config(format!("installing the SIGTERM handler: {e}")))?;
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = ticks.tick() => if !app.is_running() { break },
            }
        }
        Ok::<(), StreamsError>(())
    })?;
    tracing::info!("shutting down");
    app.close()
}
