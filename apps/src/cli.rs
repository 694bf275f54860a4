//! Command-line, environment and file configuration shared by every app binary.
//!
//! Each option has a flag and an environment variable (shown by `--help`). `--config FILE`
//! reads `name = value` lines whose names are the long flag names (`bootstrap-servers = …`);
//! `kafka.<property> = value` lines pass librdkafka properties, like `-X property=value`.
//! Precedence: flags given on the command line, then the file, then the environment, then the
//! defaults.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser};
use streamlib::runtime::{ProcessingGuarantee, StreamsConfig};

/// Connection to Kafka.
#[derive(Args, Clone, Debug)]
pub struct KafkaOptions {
    /// Kafka bootstrap servers [default: 127.0.0.1:9092; `pipeline`: an in-process cluster].
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    pub bootstrap_servers: Option<String>,
    /// librdkafka property for every client, `name=value`; repeatable (SASL/SSL, timeouts, …).
    #[arg(short = 'X', long = "kafka-property", value_name = "NAME=VALUE", value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// File of `name = value` lines with any of these options (`kafka.<property>` for -X).
    #[arg(long, env = "APP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl KafkaOptions {
    /// The bootstrap servers, `127.0.0.1:9092` when none were given.
    pub fn bootstrap(&self) -> &str {
        self.bootstrap_servers
            .as_deref()
            .unwrap_or(DEFAULT_BOOTSTRAP)
    }
}

/// Where the apps look for Kafka when told nothing.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// Options of every stream-processing app.
#[derive(Args, Clone, Debug)]
pub struct StreamOptions {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaOptions,
    /// Consumer group and prefix of internal topics; defaults to `<topic prefix>crypto-<app>`.
    #[arg(long, env = "APPLICATION_ID")]
    pub application_id: Option<String>,
    /// `exactly_once_v2` or `at_least_once`.
    #[arg(long, env = "PROCESSING_GUARANTEE", default_value = "exactly_once_v2", value_parser = parse_guarantee)]
    pub processing_guarantee: ProcessingGuarantee,
    /// Commit interval in milliseconds (default: 100 under exactly-once, 30000 otherwise).
    #[arg(long, env = "COMMIT_INTERVAL_MS")]
    pub commit_interval_ms: Option<u64>,
    /// Root folder of the RocksDB state stores.
    #[arg(long, env = "STATE_DIR", default_value_os_t = std::env::temp_dir().join("crypto-apps"))]
    pub state_dir: PathBuf,
    /// Serve Prometheus metrics on `GET /metrics` at this address (e.g. 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Stable identity of this instance (static group membership, stable transactional id).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Replication factor of the internal topics (-1: the broker's default).
    #[arg(long, env = "REPLICATION_FACTOR", default_value_t = -1)]
    pub replication_factor: i32,
    /// Prefix of every platform topic (e.g. `staging.` reads `staging.crypto.prices.raw`).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
}

impl StreamOptions {
    /// The runtime configuration of app `name` (application id `<topic prefix>crypto-<name>`
    /// by default).
    pub fn streams_config(&self, name: &str) -> StreamsConfig {
        let application_id = self
            .application_id
            .clone()
            .unwrap_or_else(|| format!("{}crypto-{name}", self.topic_prefix));
        let mut config = StreamsConfig::new(&application_id, self.kafka.bootstrap());
        config.processing_guarantee = self.processing_guarantee;
        config.commit_interval = self.commit_interval_ms.map(Duration::from_millis);
        config.state_dir = self.state_dir.clone();
        config.metrics_addr = self.metrics_addr;
        config.instance_id = self.instance_id.clone();
        config.replication_factor = self.replication_factor;
        config.client_properties = self.kafka.kafka_properties.iter().cloned().collect();
        config
    }
}

/// Options of the validator's contract check (`contract::CheckConfig`).
#[derive(Args, Clone, Debug)]
pub struct ValidatorOptions {
    /// How many seconds `ts_event` may be after `ts_ingest` (and `ts_ingest` after the
    /// record's Kafka timestamp) before the event is dead-lettered as future-dated.
    #[arg(long, env = "FUTURE_TOLERANCE_SECS", default_value_t = contract::CheckConfig::DEFAULT_FUTURE_TOLERANCE.as_secs())]
    pub future_tolerance_secs: u64,
}

impl ValidatorOptions {
    /// The contract check these options describe.
    pub fn check_config(&self) -> contract::CheckConfig {
        contract::CheckConfig {
            future_tolerance: Duration::from_secs(self.future_tolerance_secs),
        }
    }
}

/// Parses a `-X name=value` librdkafka property.
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

fn parse_guarantee(text: &str) -> Result<ProcessingGuarantee, String> {
    ProcessingGuarantee::parse(text)
        .ok_or_else(|| format!("expected exactly_once_v2 or at_least_once, got `{text}`"))
}

/// Parses the process arguments with the `--config` file (or `$APP_CONFIG`) expanded in front
/// of them, so that flags typed on the command line win over the file. Exits with clap's
/// message on bad input, like `T::parse()`.
pub fn parse_args<T: Parser>() -> T {
    T::parse_from(process_args())
}

/// The process arguments with the config file expanded (see [`parse_args`]); exits with a
/// message when the file cannot be read.
pub fn process_args() -> Vec<OsString> {
    expand_config(std::env::args_os().collect()).unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        std::process::exit(2);
    })
}

/// `args` with the lines of the config file inserted after the program name.
pub fn expand_config(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let file = config_file(&args).or_else(|| std::env::var_os("APP_CONFIG").map(PathBuf::from));
    let Some(file) = file else {
        return Ok(args);
    };
    let mut expanded = args[..1.min(args.len())].to_vec();
    expanded.extend(read_config_file(&file)?);
    expanded.extend(args.into_iter().skip(1));
    Ok(expanded)
}

fn config_file(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The flags a config file stands for: `name = value` → `--name value`, `kafka.p = v` →
/// `-X p=v`; blank lines and `#` comments are skipped.
pub fn read_config_file(path: &Path) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut flags = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!("{}:{}: expected `name = value`", path.display(), number + 1);
        };
        let (name, value) = (name.trim(), value.trim());
        if let Some(property) = name.strip_prefix("kafka.") {
            flags.push("-X".into());
            flags.push(format!("{property}={value}").into());
        } else if name == "config" {
            bail!(
                "{}:{}: a config file cannot name another",
                path.display(),
                number + 1
            );
        } else {
            flags.push(format!("--{name}").into());
            flags.push(value.into());
        }
    }
    Ok(flags)
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` gives JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    #[command(args_override_self = true)]
    struct Demo {
        #[command(flatten)]
        stream: StreamOptions,
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_values_apply_and_command_line_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.conf");
        std::fs::write(
            &file,
            "# demo\nbootstrap-servers = broker:1\ncommit-interval-ms = 250\nkafka.security.protocol = SASL_SSL\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let args =
            expand_config(os(&["app", "--config", path, "--bootstrap-servers", "b:2"])).unwrap();
        let demo = Demo::parse_from(args);
        assert_eq!(demo.stream.kafka.bootstrap(), "b:2");
        assert_eq!(demo.stream.commit_interval_ms, Some(250));
        let config = demo.stream.streams_config("validator");
        assert_eq!(config.application_id, "crypto-validator");
        assert_eq!(config.client_properties["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn a_malformed_file_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.conf");
        std::fs::write(&file, "\nno equals sign\n").unwrap();
        let error = read_config_file(&file).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("bad.conf:2: expected `name = value`"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_guarantee_is_refused() {
        let error = Demo::try_parse_from(["app", "--processing-guarantee", "maybe"]).unwrap_err();
        assert!(error
            .to_string()
            .contains("expected exactly_once_v2 or at_least_once"));
    }
}
