//! The four stream-app binaries as an operator runs them: separate processes on the real
//! broker, configured by flags, environment and a config file, fed by the `producer` binary,
//! scraped for metrics, and stopped with SIGTERM (exit 0). Needs `KAFKA_BOOTSTRAP`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use apps::topics::Topics;
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, unique_topic};

const WAIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

#[test]
fn each_app_runs_as_its_own_process_and_stops_cleanly() {
    let bootstrap = kafka_bootstrap();
    let prefix = format!("{}.", unique_topic("bins"));
    let topics = Topics::prefixed(&prefix);
    for topic in topics.all() {
        create_topic(&bootstrap, topic, 2);
    }
    let dir = tempfile::tempdir().unwrap();
    // Shared settings through a config file; the prefix through the environment.
    let config = dir.path().join("apps.conf");
    std::fs::write(
        &config,
        format!(
            "bootstrap-servers = {bootstrap}\nstate-dir = {}\nkafka.client.id = app-binaries-test\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let metrics_port = free_port();
    let apps: Vec<(&str, Child)> = ["validator", "dedup", "metrics", "alerts"]
        .into_iter()
        .map(|name| {
            let binary = match name {
                "validator" => env!("CARGO_BIN_EXE_validator"),
                "dedup" => env!("CARGO_BIN_EXE_dedup"),
                "metrics" => env!("CARGO_BIN_EXE_metrics"),
                _ => env!("CARGO_BIN_EXE_alerts"),
            };
            let mut command = Command::new(binary);
            command
                .arg("--config")
                .arg(&config)
                .env("TOPIC_PREFIX", &prefix)
                .env("RUST_LOG", "warn")
                .env_remove("KAFKA_BOOTSTRAP");
            if name == "validator" {
                command.args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")]);
            }
            (name, command.spawn().unwrap())
        })
        .collect();

    // Two synthetic ticks of the ten coins, then the producer ends on its own.
    let producer = Command::new(env!("CARGO_BIN_EXE_producer"))
        .args([
            "--mode",
            "synthetic",
            "--history-ticks",
            "1",
            "--max-batches",
            "2",
        ])
        .args([
            "--speedup",
            "0",
            "--bootstrap-servers",
            &bootstrap,
            "--topic",
            &topics.raw,
            "--coins-topic",
            &topics.coins,
        ])
        .env("RUST_LOG", "warn")
        .env_remove("APP_CONFIG")
        .status()
        .unwrap();
    assert!(producer.success());

    let metrics = consume_until(&bootstrap, &topics.metrics, "read_committed", WAIT, |got| {
        got.len() >= 20 * 4
    });
    assert!(
        metrics.len() >= 80,
        "four updates per event: {}",
        metrics.len()
    );
    let dedup = consume_until(&bootstrap, &topics.dedup, "read_committed", WAIT, |got| {
        got.len() >= 20
    });
    assert_eq!(dedup.len(), 20);
    let deadline = Instant::now() + WAIT;
    let mut text = scrape(metrics_port);
    while !text.contains("validator_valid_total 20") {
        assert!(
            Instant::now() < deadline,
            "metrics never showed 20 valid:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
        text = scrape(metrics_port);
    }
    assert!(
        text.contains(&format!("application_id=\"{prefix}crypto-validator\"")),
        "{text}"
    );
    for (name, child) in apps {
        let exit = common::terminate(child);
        assert!(exit.success(), "{name} exited with {exit:?}");
    }
}
