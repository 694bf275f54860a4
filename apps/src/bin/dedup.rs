//! `dedup`: the first occurrence of each (coin_id, vs_currency, ts_event).

use std::process::ExitCode;
use std::time::Duration;

use apps::runner;
use clap::Args;

/// Flags of dedup.
#[derive(Args, Debug)]
struct DedupArgs {
    /// How long a key is remembered, in hours of event time.
    #[arg(long, env = "DEDUP_HORIZON_HOURS", default_value_t = apps::dedup::DEFAULT_HORIZON.as_secs() / 3600)]
    horizon_hours: u64,
}

fn main() -> ExitCode {
    runner::main(
        "dedup",
        "Forwards the first occurrence of each (coin_id, vs_currency, ts_event) from \
         crypto.prices.valid to crypto.prices.dedup and counts the duplicates.",
        |args: &DedupArgs, topics, counters| {
            let horizon = Duration::from_secs(args.horizon_hours * 3600);
            Ok(apps::dedup::topology(topics, horizon, counters))
        },
    )
}
