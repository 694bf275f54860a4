//! One measured run of one system: a fresh output topic, application id and state directory;
//! the system as a child process; wait for every expected output; CPU and memory from `/proc`;
//! a clean stop; then the output is read back and compared with the reference. [`Session`],
//! [`measure`] and [`read_all`] serve every program (PEERS.md's workloads, Nexmark's queries).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use benches::data::{self, PriceEvent};
use benches::kafka::{self, GroupWatch};
use benches::sink::{Latency, LatencyProbe, OutputCounter};
use benches::wait::{self, End, Limits};
use benches::Guarantee;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::process::{Process, Usage};
use crate::system::{ChildArgs, Launchers, Program, System};
use crate::workload::{Digest, Workload};

/// Settings common to every run.
pub struct Settings {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Partitions of input and output topics.
    pub partitions: i32,
    /// The stop rule.
    pub limits: Limits,
    /// Commit interval of every system under at-least-once, ms.
    pub alos_commit_ms: u64,
    /// Commit interval of every system under exactly-once, ms.
    pub eos_commit_ms: u64,
    /// Stream threads of the systems that have them.
    pub threads: usize,
    /// Keep topics, state and logs of every run (else only of failed runs).
    pub keep: bool,
    /// Where runs keep their state directories and logs.
    pub work_dir: PathBuf,
}

impl Settings {
    /// The commit interval under `guarantee`, ms.
    fn commit_ms(&self, guarantee: Guarantee) -> u64 {
        match guarantee {
            Guarantee::Alos => self.alos_commit_ms,
            Guarantee::Eos => self.eos_commit_ms,
        }
    }
}

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// System under test.
    pub system: System,
    /// Workload.
    pub workload: Workload,
    /// Processing guarantee.
    pub guarantee: Guarantee,
}

impl Job {
    /// The start of its runs' application ids; `mode` says which run.
    fn tag(&self, mode: &str) -> String {
        format!(
            "peers-{}-{}-{}-{mode}",
            self.system, self.workload, self.guarantee
        )
    }
}

/// Whether a system's output is the reference output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Digest of the reference output.
    pub expected: Digest,
    /// Digest of what the output topic holds.
    pub actual: Digest,
    /// Output records that could not be read as the workload's output.
    pub malformed: u64,
    /// Why the first malformed record was.
    pub first_error: Option<String>,
}

impl Check {
    /// Same records, same values, nothing malformed.
    pub fn ok(&self) -> bool {
        self.malformed == 0 && self.actual == self.expected
    }

    /// `ok`, or what differs.
    pub fn summary(&self) -> String {
        if self.ok() {
            return "ok".into();
        }
        let mut parts = Vec::new();
        if self.actual.count != self.expected.count {
            parts.push(format!(
                "{} records, expected {}",
                self.actual.count, self.expected.count
            ));
        }
        if self.actual.sum != self.expected.sum {
            parts.push(format!(
                "checksum {} ≠ {}",
                self.actual.hex(),
                self.expected.hex()
            ));
        }
        if self.malformed > 0 {
            parts.push(format!(
                "{} malformed ({})",
                self.malformed,
                self.first_error.as_deref().unwrap_or_default()
            ));
        }
        format!("MISMATCH: {}", parts.join("; "))
    }
}

/// The measurements of a throughput run.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Input records.
    pub records: u64,
    /// From starting the process to its consumer group being stable (it has joined and owns
    /// the partitions), s.
    pub startup_s: f64,
    /// From starting the process to the first output record, s.
    pub first_output_s: f64,
    /// From the group being stable to the last output record, s.
    pub seconds: f64,
    /// `records / seconds`.
    pub records_per_s: f64,
    /// CPU and peak memory of the process from its start to the last output.
    pub usage: Usage,
    /// How the run ended.
    pub end: End,
    /// Output compared with the reference.
    pub check: Check,
}

/// The measurements of a live (latency) run.
#[derive(Clone, Debug)]
pub struct Live {
    /// Input records produced at `rate` (after the warm-up records).
    pub records: u64,
    /// Records per second.
    pub rate: u64,
    /// End-to-end latency of outputs of inputs produced after the warm-up.
    pub latency: Option<Latency>,
    /// How the run ended.
    pub end: End,
    /// Output compared with the reference.
    pub check: Check,
}

/// The topics, state and log of one run.
pub struct Session<'a> {
    settings: &'a Settings,
    app_id: String,
    output: String,
    dir: PathBuf,
}

/// Topic settings of every topic a run creates: records carry their event time, which may lie
/// further back than the broker's retention (Nexmark's pinned base time does), so time-based
/// retention must not delete them while the run reads them.
pub const KEEP_RECORDS: &[(&str, &str)] = &[("retention.ms", "-1")];

impl<'a> Session<'a> {
    /// A fresh application id starting with `tag`, output topic and directory.
    pub fn open(settings: &'a Settings, tag: &str) -> Result<Self> {
        let app_id = streamlib::testing::unique_topic(tag);
        let output = format!("{app_id}-out");
        let dir = settings.work_dir.join(&app_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        kafka::create_topics_with(
            &settings.bootstrap,
            &[&output],
            settings.partitions,
            KEEP_RECORDS,
        )?;
        Ok(Self {
            settings,
            app_id,
            output,
            dir,
        })
    }

    /// The application id; every topic whose name contains it is the run's.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        self.settings
    }

    /// Starts `system` running `program` under `guarantee`.
    pub fn spawn(
        &self,
        launchers: &Launchers,
        system: System,
        guarantee: Guarantee,
        program: Program<'_>,
    ) -> Result<Process> {
        let state_dir = self.dir.join("state");
        let args = ChildArgs {
            program,
            guarantee,
            bootstrap: &self.settings.bootstrap,
            output: &self.output,
            app_id: &self.app_id,
            state_dir: &state_dir,
            commit_ms: self.settings.commit_ms(guarantee),
            threads: self.settings.threads,
        };
        Process::spawn(
            launchers.command(system, &args)?,
            &self.dir.join("output.log"),
        )
    }

    /// A counter on the output topic.
    pub fn counter(&self, probe: LatencyProbe) -> Result<OutputCounter> {
        OutputCounter::start(
            &self.settings.bootstrap,
            &self.output,
            self.settings.partitions,
            probe,
        )
    }

    /// [`wait::until_done`]; when the system stops on its own, the error ends with its output.
    pub fn await_outputs(
        &self,
        sink: &OutputCounter,
        process: &Process,
        inputs: u64,
        expected: u64,
    ) -> Result<End> {
        wait::until_done(
            self.settings.limits,
            sink,
            process,
            inputs,
            expected,
            Instant::now(),
        )
        .map_err(|e| anyhow!("{e}; its output ends with:\n{}", process.log_tail(30)))
    }

    /// Reads the output topic back and compares it with `expected`.
    fn check(&self, workload: Workload, expected: Digest) -> Result<Check> {
        read_back(
            &self.settings.bootstrap,
            &self.output,
            self.settings.partitions,
            workload,
            expected,
        )
    }

    /// Calls `each` on every record of the output topic (see [`read_all`]).
    pub fn read_output(&self, each: impl FnMut(&BorrowedMessage<'_>)) -> Result<()> {
        read_all(
            &self.settings.bootstrap,
            &self.output,
            self.settings.partitions,
            each,
        )
    }

    /// Deletes the run's topics (every topic whose name contains the application id, the live
    /// input included) and directory, unless they are kept; a failed run keeps its directory
    /// (log and state).
    pub fn close(self, failed: bool) {
        if self.settings.keep {
            eprintln!("  kept {} and topics *{}*", self.dir.display(), self.app_id);
            return;
        }
        let topics = kafka::topics_containing(&self.settings.bootstrap, &self.app_id)
            .unwrap_or_else(|_| vec![self.output.clone()]);
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(error) = kafka::delete_topics(&self.settings.bootstrap, &refs) {
            eprintln!("  cleanup: {error:#}");
        }
        if failed {
            eprintln!("  kept {} (log and state)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How long a stopping system may take to commit and leave.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// When a system joined and produced its first and last output, and what it used.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// From starting the process to its consumer group being stable, s.
    pub startup_s: f64,
    /// From starting the process to the first output record, s.
    pub first_output_s: f64,
    /// From the group being stable to the last output record, s.
    pub seconds: f64,
    /// CPU and peak memory of the process from its start to the last output.
    pub usage: Usage,
    /// How the run ended.
    pub end: End,
}

impl Timing {
    /// `n` per second of [`Timing::seconds`].
    pub fn per_second(&self, n: u64) -> f64 {
        if self.seconds > 0.0 {
            n as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Starts `system` running `program` in `session`, waits for its outputs as
/// [`wait::until_done`] says (`inputs` records in, `expected` out), takes its CPU and memory at
/// its last output, and stops it cleanly.
pub fn measure(
    session: &Session<'_>,
    launchers: &Launchers,
    system: System,
    guarantee: Guarantee,
    program: Program<'_>,
    (inputs, expected): (u64, u64),
) -> Result<Timing> {
    let sink = session.counter(LatencyProbe::Off)?;
    let group = GroupWatch::start(&session.settings.bootstrap, &session.app_id)?;
    let spawned = Instant::now();
    let process = session.spawn(launchers, system, guarantee, program)?;
    let end = session.await_outputs(&sink, &process, inputs, expected)?;
    // A run that went quiet short of `expected` used its CPU by its last output, not while
    // the harness waited for more.
    let usage = match (end, process.usage_at_last_output()) {
        (End::Complete, _) | (_, None) => process.usage()?,
        (_, Some(usage)) => usage,
    };
    let (first, last) = (sink.first_output(), sink.last_output());
    stop(process)?;
    sink.finish()?;
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no output ({})", end.name());
    };
    // The group is stable before the first output; the watcher polls, so it may see it later.
    let joined = group.stable_at().map_or(first, |stable| stable.min(first));
    Ok(Timing {
        startup_s: joined.saturating_duration_since(spawned).as_secs_f64(),
        first_output_s: first.saturating_duration_since(spawned).as_secs_f64(),
        seconds: last.saturating_duration_since(joined).as_secs_f64(),
        usage,
        end,
    })
}

/// Runs `job` over `events`, already in `input`, and measures its throughput.
pub fn throughput(
    settings: &Settings,
    launchers: &Launchers,
    job: &Job,
    input: &str,
    events: &[PriceEvent],
) -> Result<Throughput> {
    let session = Session::open(settings, &job.tag("tp"))?;
    let result = measure_throughput(&session, launchers, job, input, events);
    session.close(result.as_ref().map_or(true, |r| !r.check.ok()));
    result
}

/// The body of [`throughput`].
fn measure_throughput(
    session: &Session<'_>,
    launchers: &Launchers,
    job: &Job,
    input: &str,
    events: &[PriceEvent],
) -> Result<Throughput> {
    let expected = job.workload.reference(events);
    let program = Program::Workload {
        workload: job.workload,
        input,
    };
    let records = events.len() as u64;
    let timing = measure(
        session,
        launchers,
        job.system,
        job.guarantee,
        program,
        (records, expected.count),
    )?;
    Ok(Throughput {
        records,
        startup_s: timing.startup_s,
        first_output_s: timing.first_output_s,
        seconds: timing.seconds,
        records_per_s: timing.per_second(records),
        usage: timing.usage,
        end: timing.end,
        check: session.check(job.workload, expected)?,
    })
}

/// Runs `job` live: on a fresh input topic, the first `warmup` events are produced at once
/// and their outputs awaited (the system has joined and processes every partition), then the
/// rest at `rate` per second; latency is measured on the outputs of those.
pub fn live(
    settings: &Settings,
    launchers: &Launchers,
    job: &Job,
    events: &[PriceEvent],
    warmup: usize,
    rate: u64,
) -> Result<Live> {
    let session = Session::open(settings, &job.tag("live"))?;
    let input = format!("{}-in", session.app_id);
    let result = kafka::create_topics(&settings.bootstrap, &[&input], settings.partitions)
        .and_then(|()| measure_live(&session, launchers, job, &input, events, warmup, rate));
    session.close(result.as_ref().map_or(true, |r| !r.check.ok()));
    result
}

/// The body of [`live`].
fn measure_live(
    session: &Session<'_>,
    launchers: &Launchers,
    job: &Job,
    input: &str,
    events: &[PriceEvent],
    warmup: usize,
    rate: u64,
) -> Result<Live> {
    let settings = session.settings;
    let (warm, paced) = events.split_at(warmup.min(events.len()));
    let sink = session.counter(LatencyProbe::JsonSentMs)?;
    let program = Program::Workload {
        workload: job.workload,
        input,
    };
    let process = session.spawn(launchers, job.system, job.guarantee, program)?;
    data::preproduce(&settings.bootstrap, input, warm)?;
    let warm_outputs = job.workload.reference(warm).count;
    let warm_end = session.await_outputs(&sink, &process, warm.len() as u64, warm_outputs)?;
    if warm_end != End::Complete {
        bail!(
            "warm-up {}: {} of {warm_outputs} outputs",
            warm_end.name(),
            sink.count()
        );
    }
    sink.set_warmup_until(kafka::now_ms());
    let expected = job.workload.reference(events);
    let producer = data::spawn_paced(&settings.bootstrap, input, paced.to_vec(), rate)?;
    let end = session.await_outputs(&sink, &process, events.len() as u64, expected.count)?;
    stop(process)?;
    producer
        .join()
        .map_err(|_| anyhow!("live producer panicked"))??;
    let report = sink.finish()?;
    Ok(Live {
        records: paced.len() as u64,
        rate,
        latency: Latency::from_histogram(&report.latency.steady),
        end,
        check: session.check(job.workload, expected)?,
    })
}

/// Stops a system under test; a non-zero exit after a clean stop request is an error.
pub fn stop(process: Process) -> Result<()> {
    let tail = process.log_tail(30);
    let status = process.stop(STOP_GRACE)?;
    if !status.success() {
        bail!("the system exited with {status} when stopped; its output ends with:\n{tail}");
    }
    Ok(())
}

/// Reads every record of `topic` (`read_committed`, to the end of each partition) and compares
/// their digest with `expected`.
fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    workload: Workload,
    expected: Digest,
) -> Result<Check> {
    let mut check = Check {
        expected,
        actual: Digest::default(),
        malformed: 0,
        first_error: None,
    };
    read_all(bootstrap, topic, partitions, |message| {
        match workload.canonical(message.key(), message.payload()) {
            Ok(form) => check.actual.add(&form),
            Err(error) => {
                check.malformed += 1;
                check.first_error.get_or_insert(error);
            }
        }
    })?;
    Ok(check)
}

/// Calls `each` on every record of `topic` (`read_committed`, to the end of each partition).
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<()> {
    let reader = kafka::reader_from_beginning(
        bootstrap,
        topic,
        partitions,
        &[("enable.partition.eof", "true")],
    )?;
    let mut at_end = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while (at_end.len() as i32) < partitions {
        if Instant::now() >= deadline {
            bail!("reading {topic} back took longer than 10 minutes");
        }
        match reader.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => each(&message),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => return Err(error).with_context(|| format!("reading {topic}")),
            None => {}
        }
    }
    Ok(())
}
