//! `validator`: crypto.prices.raw → crypto.prices.valid, or crypto.prices.dlq with the reason.

use std::process::ExitCode;

use apps::cli::ValidatorOptions;
use apps::runner;

fn main() -> ExitCode {
    runner::main(
        apps::validator::APP,
        "Validates price events against contract v1.2 (JSON Schema, event_id, event-time \
         sanity; contracts/README.md): valid ones to crypto.prices.valid (bytes unchanged, keyed \
         by coin_id), the rest to crypto.prices.dlq with the rule and JSON pointer.",
        |options: &ValidatorOptions, topics, counters| {
            Ok(apps::validator::topology(
                topics,
                options.check_config(),
                counters,
            ))
        },
    )
}
