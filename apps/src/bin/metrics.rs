//! `metrics`: rolling returns and realized volatility per coin.

use std::process::ExitCode;

use apps::runner::{self, NoArgs};

fn main() -> ExitCode {
    runner::main(
        "metrics",
        "Computes simple and log returns (5m, 1h, 24h, 7d) and realized volatility (1h, 24h, \
         7d) per coin from crypto.prices.dedup into crypto.metrics (docs/METRICS.md).",
        |_: &NoArgs, topics, counters| Ok(apps::metrics::topology(topics, counters)),
    )
}
