//! `topics`: creates the platform topics that are missing, with the partitions, replication
//! factor, cleanup policy and retention of docs/NFR.md §1, and fails when an existing one has another partition
//! count (the topics are co-partitioned by coin_id). Run it once before the apps; it changes
//! nothing when everything is in place.

use std::collections::BTreeMap;

use anyhow::Context;
use apps::cli::{self, KafkaOptions};
use apps::topics::{self, TopicSpec, Topics};
use clap::Parser;

/// Creates the missing platform topics (crypto.prices.raw, .valid, .dlq, .dedup,
/// crypto.metrics, crypto.alerts, and the compacted crypto.coins) with the settings of
/// docs/NFR.md §1; exits non-zero when an existing one has another partition count than
/// --partitions.
#[derive(Parser, Debug)]
#[command(name = "topics", args_override_self = true)]
struct Args {
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaOptions,
    /// Partitions of every platform topic; existing ones must have exactly this many.
    #[arg(long, env = "PARTITIONS", default_value_t = topics::DEFAULT_PARTITIONS)]
    partitions: i32,
    /// Replication factor of the topics it creates (-1: the broker's default).
    #[arg(long, env = "REPLICATION_FACTOR", default_value_t = -1)]
    replication_factor: i32,
    /// Prefix of every platform topic (e.g. `staging.`).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Create the topics keeping every record (`retention.ms=-1`), for replays and backfills
    /// of history older than their retention: Kafka deletes by record timestamp (the event
    /// time), so it would drop such records at its next retention check.
    #[arg(long, env = "KEEP_RECORDS")]
    keep_records: bool,
}

fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args: Args = cli::parse_args();
    let mut specs =
        Topics::prefixed(&args.topic_prefix).specs(args.partitions, args.replication_factor);
    if args.keep_records {
        specs = specs.into_iter().map(TopicSpec::keeping_records).collect();
    }
    let properties: BTreeMap<String, String> =
        args.kafka.kafka_properties.iter().cloned().collect();
    let ensured =
        topics::ensure(args.kafka.bootstrap(), &properties, &specs).with_context(|| {
            format!(
                "preparing the platform topics on {}",
                args.kafka.bootstrap()
            )
        })?;
    for name in &ensured.created {
        println!("created {name}");
    }
    for name in &ensured.existing {
        println!("exists  {name}");
    }
    Ok(())
}
