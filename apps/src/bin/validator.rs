//! `validator`: crypto.prices.raw → crypto.prices.valid, or crypto.prices.dlq with the reason.

use std::process::ExitCode;

use apps::runner::{self, NoArgs};

fn main() -> ExitCode {
    runner::main(
        apps::validator::APP,
        "Validates price events against contract v1.1: valid ones to crypto.prices.valid \
         (bytes unchanged), the rest to crypto.prices.dlq with the rule and JSON pointer.",
        |_: &NoArgs, topics, counters| Ok(apps::validator::topology(topics, counters)),
    )
}
