//! Failover of a stateful task, measured (benches/PEERS.md "Failover", ADR-043).
//!
//! Two instances of one application — child processes, streamlib or Kafka Streams — run an
//! exactly-once count per key over two partitions, so each holds the store of one task. The
//! driver fills the stores with `keys` distinct keys, raises the counts of `hot_keys` keys once
//! more, then kills one instance with SIGKILL and at once sends the hot keys a third time. It
//! measures, from the SIGKILL, when the survivor's first output of the moved task arrives and
//! when every hot key has been answered; and it reads how many records the survivor restored
//! (with a warm standby only what the standby had not applied yet). Every count must end
//! exactly once, so a fast wrong failover cannot pass.
//!
//! An instance prints, at least every 100 ms,
//! `status partitions=<input partitions of its active tasks> restored=<n> standby=<n>`
//! (records restored into active stores and applied to standby stores so far) and runs until it
//! is killed or its standard input closes. It takes the arguments of [`Instance`].

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use rdkafka::consumer::BaseConsumer;
use rdkafka::Message as _;

use crate::kafka;

/// Input partitions, and so tasks: one per instance.
pub const PARTITIONS: i32 = 2;
/// The counting store's name; its changelog is `<app>-counts-changelog` in both systems.
pub const STORE: &str = "counts";

/// What one instance is told (the same flags for every system).
#[derive(clap::Args, Clone, Debug)]
pub struct Instance {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub bootstrap: String,
    /// Application id (consumer group).
    #[arg(long)]
    pub app_id: String,
    /// Input topic (string keys and values).
    #[arg(long)]
    pub input: String,
    /// Output topic: the count per key, 8-byte big-endian.
    #[arg(long)]
    pub output: String,
    /// State directory.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Static member id (`group.instance.id`).
    #[arg(long)]
    pub instance: String,
    /// `num_standby_replicas`.
    #[arg(long)]
    pub standbys: usize,
}

impl Instance {
    /// As command-line arguments.
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--bootstrap", self.bootstrap.clone()),
            ("--app-id", self.app_id.clone()),
            ("--input", self.input.clone()),
            ("--output", self.output.clone()),
            ("--state-dir", self.state_dir.display().to_string()),
            ("--instance", self.instance.clone()),
            ("--standbys", self.standbys.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }
}

/// One failover to measure.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Distinct keys, so about `keys / 2` store entries per task.
    pub keys: usize,
    /// Keys counted again before and after the SIGKILL.
    pub hot_keys: usize,
    /// `num_standby_replicas` of both instances.
    pub standbys: usize,
    /// How long any one step may take.
    pub timeout: Duration,
}

/// What a failover did.
#[derive(Clone, Debug)]
pub struct Failover {
    /// Changelog records of the moved task before the second round: its store's size.
    pub changelog: u64,
    /// Records the survivor restored when it took the task over.
    pub restored: u64,
    /// From the SIGKILL to the first output of the moved task (the group notices the death
    /// after the session timeout, 6 s).
    pub first_output: Duration,
    /// From the SIGKILL until every hot key of both tasks has been answered.
    pub all_answered: Duration,
}

/// What an instance last reported, and when.
#[derive(Clone, Debug, PartialEq)]
struct Status {
    partitions: Vec<i32>,
    restored: u64,
    standby: u64,
    at: Instant,
}

impl Status {
    fn parse(line: &str, at: Instant) -> Option<Self> {
        let mut status = Status {
            partitions: Vec::new(),
            restored: 0,
            standby: 0,
            at,
        };
        for field in line.strip_prefix("status ")?.split(' ') {
            let (name, value) = field.split_once('=')?;
            match name {
                "partitions" => {
                    status.partitions = value
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().ok())
                        .collect::<Option<_>>()?;
                }
                "restored" => status.restored = value.parse().ok()?,
                "standby" => status.standby = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(status)
    }
}

/// A running instance and its latest status; killed when dropped.
struct Running {
    child: Child,
    status: Arc<Mutex<Option<Status>>>,
    _state: tempfile::TempDir,
}

impl Running {
    fn spawn(launch: &dyn Fn(&Instance) -> Command, mut instance: Instance) -> Result<Self> {
        let state = tempfile::tempdir().context("creating a state directory")?;
        instance.state_dir = state.path().to_path_buf();
        let mut child = launch(&instance)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting instance {}", instance.instance))?;
        let status = Arc::new(Mutex::new(None));
        let lines = BufReader::new(child.stdout.take().context("the instance's stdout")?);
        let latest = status.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(status) = Status::parse(&line, Instant::now()) {
                    *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                }
            }
        });
        Ok(Self {
            child,
            status,
            _state: state,
        })
    }

    /// The latest status, or an error when the instance has exited.
    fn status(&mut self) -> Result<Option<Status>> {
        if let Some(exit) = self.child.try_wait()? {
            bail!("an instance exited on its own: {exit}");
        }
        Ok(self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    fn partitions(&mut self) -> Result<Vec<i32>> {
        Ok(self.status()?.map(|s| s.partitions).unwrap_or_default())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An error when either instance has exited.
fn both_alive(a: &mut Running, b: &mut Running) -> Result<()> {
    a.status()?;
    b.status()?;
    Ok(())
}

/// Checks `condition` every 50 ms until it holds; fails naming `what` after `timeout`.
fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition()? {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `key-<i>` for `i` in `keys`, each once, stamped now.
fn records(keys: std::ops::Range<usize>) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let ts = kafka::now_ms();
    keys.map(|i| (key(i), b"x".to_vec(), ts)).collect()
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// The output topic read as it grows: the latest count per key, and when a watched set of keys
/// first reached a count.
struct Counts {
    consumer: BaseConsumer,
    latest: HashMap<Vec<u8>, i64>,
    watch: HashSet<Vec<u8>>,
    watch_count: i64,
    first_watched: Option<Instant>,
}

impl Counts {
    fn new(bootstrap: &str, topic: &str) -> Result<Self> {
        Ok(Self {
            consumer: kafka::reader_from_beginning(bootstrap, topic, PARTITIONS, &[])?,
            latest: HashMap::new(),
            watch: HashSet::new(),
            watch_count: 0,
            first_watched: None,
        })
    }

    /// Reads until `done(latest counts)` holds, checking it and `alive` (an error when an
    /// instance has died) whenever caught up and every 1 000 records.
    fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        alive: &mut dyn FnMut() -> Result<()>,
        done: impl Fn(&HashMap<Vec<u8>, i64>) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut unchecked = 0;
        loop {
            if unchecked == 0 {
                if done(&self.latest) {
                    return Ok(());
                }
                alive().with_context(|| format!("while waiting for {what}"))?;
            }
            ensure!(Instant::now() < deadline, "timed out waiting for {what}");
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(message) => {
                    let message = message.context("reading the output")?;
                    let count = message
                        .payload()
                        .and_then(|v| <[u8; 8]>::try_from(v).ok())
                        .map(i64::from_be_bytes)
                        .context("an output value that is not an 8-byte count")?;
                    let key = message.key().unwrap_or_default();
                    if self.first_watched.is_none()
                        && count == self.watch_count
                        && self.watch.contains(key)
                    {
                        self.first_watched = Some(Instant::now());
                    }
                    self.latest.insert(key.to_vec(), count);
                    unchecked = (unchecked + 1) % 1_000;
                }
                None => unchecked = 0,
            }
        }
    }

    /// Whether keys `0..n` all have `count`.
    fn all(latest: &HashMap<Vec<u8>, i64>, n: usize, count: i64) -> bool {
        (0..n).all(|i| latest.get(&key(i)) == Some(&count))
    }
}

/// The changelog of [`STORE`], read to `records` in all: how many records partition `moved` holds,
/// and which of the hot keys live there.
fn changelog(
    bootstrap: &str,
    topic: &str,
    records: usize,
    moved: i32,
    hot: &HashSet<Vec<u8>>,
    timeout: Duration,
) -> Result<(u64, HashSet<Vec<u8>>)> {
    let consumer = kafka::reader_from_beginning(bootstrap, topic, PARTITIONS, &[])?;
    let deadline = Instant::now() + timeout;
    let (mut seen, mut in_moved) = (0, 0);
    let mut moved_hot = HashSet::new();
    while seen < records {
        ensure!(Instant::now() < deadline, "timed out reading {topic}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.with_context(|| format!("reading {topic}"))?;
            seen += 1;
            if message.partition() == moved {
                in_moved += 1;
                if let Some(key) = message.key().filter(|k| hot.contains(*k)) {
                    moved_hot.insert(key.to_vec());
                }
            }
        }
    }
    Ok((in_moved, moved_hot))
}

/// Runs one failover of instances started by `launch` (given each instance's arguments).
pub fn run(setup: &Setup, launch: &dyn Fn(&Instance) -> Command) -> Result<Failover> {
    let unique = |prefix: &str| streamlib::testing::unique_topic(prefix);
    let app_id = unique(&format!("failover-{}", setup.standbys));
    let instance = Instance {
        bootstrap: setup.bootstrap.clone(),
        input: unique("failover-in"),
        output: unique("failover-out"),
        app_id: app_id.clone(),
        state_dir: PathBuf::new(),
        instance: String::new(),
        standbys: setup.standbys,
    };
    kafka::create_topics(
        &setup.bootstrap,
        &[&instance.input, &instance.output],
        PARTITIONS,
    )?;
    let named = |name: &str| Instance {
        instance: name.into(),
        ..instance.clone()
    };
    let mut survivor = Running::spawn(launch, named("a"))?;
    let mut victim = Running::spawn(launch, named("b"))?;
    wait_until("each instance to own one task", setup.timeout, || {
        Ok(survivor.partitions()?.len() == 1 && victim.partitions()?.len() == 1)
    })?;
    let moved = victim.partitions()?[0];
    let mut counts = Counts::new(&setup.bootstrap, &instance.output)?;

    // Round 1: every key once; the moved task's store is its changelog partition.
    let produce =
        |keys| streamlib::testing::produce(&setup.bootstrap, &instance.input, &records(keys));
    produce(0..setup.keys);
    counts.until(
        "every key's first count",
        setup.timeout,
        &mut || both_alive(&mut survivor, &mut victim),
        |c| c.len() == setup.keys,
    )?;
    let hot: HashSet<Vec<u8>> = (0..setup.hot_keys).map(key).collect();
    let changelog_topic = streamlib::topology::changelog_topic(&app_id, STORE);
    let (changelog, moved_hot) = changelog(
        &setup.bootstrap,
        &changelog_topic,
        setup.keys,
        moved,
        &hot,
        setup.timeout,
    )?;
    ensure!(!moved_hot.is_empty(), "no hot key lives in the moved task");
    if setup.standbys > 0 {
        wait_until(
            "the survivor's standby to apply the moved task's changelog",
            setup.timeout,
            || Ok(survivor.status()?.is_some_and(|s| s.standby >= changelog)),
        )?;
    }

    // Round 2: the hot keys again, committed; then the victim dies and round 3 is sent at once.
    produce(0..setup.hot_keys);
    counts.until(
        "the hot keys' second count",
        setup.timeout,
        &mut || both_alive(&mut survivor, &mut victim),
        |c| Counts::all(c, setup.hot_keys, 2),
    )?;
    let restored_before = survivor.status()?.map(|s| s.restored).unwrap_or_default();
    counts.watch = moved_hot;
    counts.watch_count = 3;
    let killed = Instant::now();
    victim.kill();
    produce(0..setup.hot_keys);
    counts.until(
        "the hot keys' third count",
        setup.timeout,
        &mut || survivor.status().map(|_| ()),
        |c| Counts::all(c, setup.hot_keys, 3),
    )?;
    let all_answered = killed.elapsed();
    let first = counts
        .first_watched
        .context("the moved task's first output")?;
    // The restore ended before that first output; a status printed after it has the total.
    let mut after = None;
    wait_until(
        "the survivor's status after the takeover",
        setup.timeout,
        || {
            after = survivor.status()?.filter(|s| s.at > first);
            Ok(after.is_some())
        },
    )?;
    let after = after.context("a status")?;
    ensure!(
        after.partitions.len() == PARTITIONS as usize,
        "the survivor owns {:?} after the takeover",
        after.partitions
    );

    let wrong: Vec<String> = counts
        .latest
        .iter()
        .filter(|(k, count)| {
            let hot = hot.contains(*k);
            **count != if hot { 3 } else { 1 }
        })
        .take(10)
        .map(|(k, count)| format!("{}={count}", String::from_utf8_lossy(k)))
        .collect();
    ensure!(
        wrong.is_empty(),
        "counts not exactly once: {}",
        wrong.join(", ")
    );
    ensure!(
        counts.latest.len() == setup.keys,
        "{} keys counted of {}",
        counts.latest.len(),
        setup.keys
    );
    // Stop both instances before their topics go.
    drop((survivor, victim));
    let _ = kafka::delete_topics(
        &setup.bootstrap,
        &[&instance.input, &instance.output, &changelog_topic],
    );
    Ok(Failover {
        changelog,
        restored: after.restored - restored_before,
        first_output: first - killed,
        all_answered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_parses() {
        let at = Instant::now();
        let status = Status::parse("status partitions=0,1 restored=7 standby=9", at).unwrap();
        assert_eq!(status.partitions, vec![0, 1]);
        assert_eq!((status.restored, status.standby), (7, 9));
        assert_eq!(
            Status::parse("status partitions= restored=0 standby=0", at)
                .unwrap()
                .partitions,
            Vec::<i32>::new()
        );
        assert!(Status::parse("status partitions=0 restored=x standby=0", at).is_none());
        assert!(Status::parse("log line", at).is_none());
    }
}
