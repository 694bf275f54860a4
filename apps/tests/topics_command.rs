//! The `topics` command on the real broker: it creates every missing platform topic with the
//! partitions, cleanup policy and retention of docs/NFR.md (`crypto.coins` compacted, the others
//! deleted after their retention), is a no-op the second time, and refuses a topic whose
//! partition count breaks co-partitioning. Needs `KAFKA_BOOTSTRAP`.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use apps::topics::{Cleanup, Topics, CLEANUP};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use streamlib::testing::{create_topic, kafka_bootstrap, unique_topic};

fn topics_command(bootstrap: &str, prefix: &str, partitions: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topics"))
        .args(["--bootstrap-servers", bootstrap, "--topic-prefix", prefix])
        .args(["--partitions", partitions])
        .env_remove("APP_CONFIG")
        .output()
        .expect("the topics binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

/// Partition count of `topic`, 0 if it does not exist.
fn partitions(admin: &AdminClient<DefaultClientContext>, topic: &str) -> usize {
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len())
}

/// `(partitions, cleanup.policy, retention.ms)` of each topic.
fn describe(bootstrap: &str, topics: &[&str]) -> BTreeMap<String, (usize, String, String)> {
    let admin = admin(bootstrap);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let specifiers: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let configs = runtime
        .block_on(admin.describe_configs(&specifiers, &AdminOptions::new()))
        .expect("describe_configs");
    topics
        .iter()
        .zip(configs)
        .map(|(topic, config)| {
            let config = config.expect("topic config");
            let value = |name: &str| {
                config
                    .get(name)
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default()
            };
            (
                topic.to_string(),
                (
                    partitions(&admin, topic),
                    value("cleanup.policy"),
                    value("retention.ms"),
                ),
            )
        })
        .collect()
}

#[test]
fn topics_are_created_with_the_documented_settings_once() {
    let bootstrap = kafka_bootstrap();
    let prefix = format!("{}.", unique_topic("topics"));
    let topics = Topics::prefixed(&prefix);
    let first = topics_command(&bootstrap, &prefix, "4");
    assert!(first.status.success(), "{}", text(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(stdout.matches("created ").count(), 7, "{}", text(&first));

    let described = describe(&bootstrap, &topics.all());
    for (topic, (name, cleanup)) in topics.all().iter().zip(CLEANUP) {
        assert!(topic.ends_with(name));
        let (partitions, policy, retention) = &described[*topic];
        match cleanup {
            Cleanup::Delete { days } => assert_eq!(
                (*partitions, policy.as_str(), retention.clone()),
                (4, "delete", (days * 86_400_000).to_string()),
                "{topic}"
            ),
            // retention.ms is the broker's default and does not apply to compaction.
            Cleanup::Compact => {
                assert_eq!((*partitions, policy.as_str()), (4, "compact"), "{topic}")
            }
        }
    }
    assert_eq!(described[topics.coins.as_str()].1, "compact");

    let again = topics_command(&bootstrap, &prefix, "4");
    assert!(again.status.success(), "{}", text(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(
        (
            stdout.matches("created ").count(),
            stdout.matches("exists ").count()
        ),
        (0, 7),
        "{}",
        text(&again)
    );
}

#[test]
fn a_topic_with_another_partition_count_is_refused_and_nothing_is_created() {
    let bootstrap = kafka_bootstrap();
    let prefix = format!("{}.", unique_topic("copart"));
    let topics = Topics::prefixed(&prefix);
    create_topic(&bootstrap, &topics.dedup, 2);
    let output = topics_command(&bootstrap, &prefix, "6");
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("topic {} has 2 partitions", topics.dedup))
            && stderr.contains("must all have 6 partitions"),
        "{}",
        text(&output)
    );
    assert_eq!(
        partitions(&admin(&bootstrap), &topics.raw),
        0,
        "nothing created"
    );
}
