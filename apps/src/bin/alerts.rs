//! `alerts`: price moves, z-scores, volume spikes and stale feeds.

use std::path::PathBuf;
use std::process::ExitCode;

use apps::alerts::RulesConfig;
use apps::runner;
use clap::Args;

/// Flags of alerts.
#[derive(Args, Debug)]
struct AlertArgs {
    /// JSON file of rule thresholds: {"default": {...}, "coins": {"bitcoin": {...}}}
    /// (docs/METRICS.md, "Alert rules"); built-in defaults without it.
    #[arg(long, env = "ALERT_RULES")]
    rules: Option<PathBuf>,
}

fn main() -> ExitCode {
    runner::main(
        "alerts",
        "Raises anomaly alerts (price_move, zscore, volume_spike, stale_feed) from \
         crypto.prices.dedup into crypto.alerts, one per rule and coin per cooldown.",
        |args: &AlertArgs, topics, counters| {
            let rules = match &args.rules {
                Some(path) => RulesConfig::from_file(path)?,
                None => RulesConfig::default(),
            };
            Ok(apps::alerts::topology(topics, rules, counters))
        },
    )
}
