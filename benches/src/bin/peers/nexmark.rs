//! `peers nexmark`: the Nexmark queries of `benches/NEXMARK.md` on Kafka Streams and streamlib,
//! measured and checked the way `peers bench` measures its workloads.
//!
//! The events are pre-produced once to three topics. Each query then runs on each system under
//! each guarantee alone (a fresh application id, state directory and output topic), until its
//! output is complete: as many records as the reference model says where that number does not
//! depend on timing, else quiet for `--settle-secs`. A run measures input events per second
//! (the events of the kinds the query reads, from the consumer group being stable to the last
//! output), CPU seconds and peak RSS of the process; then its output is read back and compared
//! with the model ([`benches::nexmark::model`]) and with the other system's, as the query's
//! compare mode says. Live runs produce fresh events at a fixed rate, each when its timestamp
//! says, and measure latency as the time an output record is read minus its timestamp.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use benches::kafka::{self, GroupWatch};
use benches::nexmark::compare::{self, compare, Mismatch, Output, Side};
use benches::nexmark::events::{self, Counts, Kind, BASE_TIME_MS};
use benches::nexmark::model::{self, Expected, Model};
use benches::nexmark::{Query, Topics};
use benches::sink::{Latency, LatencyProbe};
use benches::wait::{End, Observed};
use benches::Guarantee;
use clap::Args;
use nexmark::event::Event;
use rdkafka::message::Message;
use serde_json::{json, Value};

use crate::report::{self, Bar, Panel};
use crate::run::{self, Session, Settings, Timing, KEEP_RECORDS};
use crate::system::{Launchers, Program, System};

/// What `peers nexmark` runs and where it writes.
#[derive(Args, Debug)]
pub struct NexmarkArgs {
    #[command(flatten)]
    common: crate::Common,
    /// Events of the throughput runs (people, auctions and bids together).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Event time of the first event, ms since the epoch (the default is 2026-01-01T00:00Z).
    #[arg(long, default_value_t = BASE_TIME_MS)]
    base_time_ms: u64,
    /// Partitions of the input, internal and output topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Queries to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "q0,q1,q2,q3,q4,q5,q7,q8"
    )]
    queries: Vec<Query>,
    /// Systems to run, comma-separated: kafka-streams, streamlib.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kafka-streams,streamlib"
    )]
    systems: Vec<System>,
    /// Events of each live (latency) run; 0 skips live runs.
    #[arg(long, default_value_t = 20_000)]
    live_events: u64,
    /// Events per second of the live runs (also their event-time rate).
    #[arg(long, default_value_t = 2_000)]
    live_rate: u64,
    /// File name (without extension) of the results.
    #[arg(long, default_value = "nexmark")]
    name: String,
}

/// Where the events of a run come from: generated again whenever needed.
enum Source {
    /// The throughput runs' events: `n` from a pinned base time at the default rate.
    Pinned { n: u64, base_time: u64 },
    /// A live run's events.
    Live(Vec<Event>),
}

impl Source {
    fn events(&self) -> Box<dyn Iterator<Item = Event> + '_> {
        match self {
            Self::Pinned { n, base_time } => Box::new(events::generate(*n, *base_time)),
            Self::Live(events) => Box::new(events.iter().cloned()),
        }
    }
}

/// A throughput run that finished.
struct Run {
    /// Input events of the kinds the query reads.
    events: u64,
    timing: Timing,
    /// Output records read back.
    outputs: u64,
    /// How the output differs from the model's, if it does.
    wrong: Option<String>,
}

/// A live run that finished.
struct LiveRun {
    latency: Option<Latency>,
    end: End,
    outputs: u64,
    wrong: Option<String>,
}

/// One (query, guarantee, system).
struct Row {
    query: Query,
    guarantee: Guarantee,
    system: System,
    throughput: Result<Run, String>,
    live: Option<Result<LiveRun, String>>,
    /// How its output differs from the other system's in the same (query, guarantee).
    versus: Option<String>,
}

impl Row {
    /// Events per second of a throughput run whose output was right.
    fn rate(&self) -> Option<f64> {
        self.good_run().map(|r| r.timing.per_second(r.events))
    }

    /// Events per CPU-second of a throughput run whose output was right.
    fn per_cpu_second(&self) -> Option<f64> {
        self.good_run()
            .filter(|r| r.timing.usage.cpu_s > 0.0)
            .map(|r| r.events as f64 / r.timing.usage.cpu_s)
    }

    fn good_run(&self) -> Option<&Run> {
        self.throughput
            .as_ref()
            .ok()
            .filter(|r| r.wrong.is_none() && r.timing.end != End::TimedOut && self.versus.is_none())
    }

    /// Whether every run of the row finished with the right output.
    fn ok(&self) -> bool {
        let live_ok = match &self.live {
            None => true,
            Some(Ok(live)) => live.wrong.is_none() && live.end != End::TimedOut,
            Some(Err(_)) => false,
        };
        self.good_run().is_some() && live_ok
    }

    /// What went wrong, in full, for the report.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.throughput {
            Err(error) => problems.push(format!("throughput run failed: {error}")),
            Ok(run) => {
                if run.timing.end == End::TimedOut {
                    problems.push("throughput run timed out".into());
                }
                problems.extend(run.wrong.clone());
            }
        }
        problems.extend(self.versus.clone());
        match &self.live {
            Some(Err(error)) => problems.push(format!("live run failed: {error}")),
            Some(Ok(live)) => {
                if live.end == End::TimedOut {
                    problems.push("live run timed out".into());
                }
                problems.extend(live.wrong.as_ref().map(|w| format!("live: {w}")));
            }
            None => {}
        }
        problems
    }

    fn to_json(&self) -> Value {
        let throughput = match &self.throughput {
            Ok(r) => json!({
                "events": r.events,
                "startup_s": r.timing.startup_s,
                "first_output_s": r.timing.first_output_s,
                "seconds": r.timing.seconds,
                "events_per_s": r.timing.per_second(r.events),
                "cpu_s": r.timing.usage.cpu_s,
                "events_per_cpu_s": self.per_cpu_second(),
                "peak_rss_mib": r.timing.usage.peak_rss_mib,
                "end": r.timing.end.name(),
                "outputs": r.outputs,
                "output_check": r.wrong.as_deref().unwrap_or("ok"),
            }),
            Err(error) => json!({ "error": error }),
        };
        let live = self.live.as_ref().map(|live| match live {
            Ok(l) => json!({
                "latency_ms": l.latency.map(Latency::to_json),
                "end": l.end.name(),
                "outputs": l.outputs,
                "output_check": l.wrong.as_deref().unwrap_or("ok"),
            }),
            Err(error) => json!({ "error": error }),
        });
        json!({
            "query": self.query.name(),
            "compare": self.query.mode().name(),
            "guarantee": self.guarantee.name(),
            "system": self.system.name(),
            "throughput": throughput,
            "live": live,
            "versus_other_system": self.versus.as_deref().unwrap_or("ok"),
            "ok": self.ok(),
        })
    }
}

/// `peers nexmark`.
pub fn bench(cli: &NexmarkArgs) -> Result<()> {
    if let Some(other) = cli
        .systems
        .iter()
        .find(|s| !matches!(s, System::KafkaStreams | System::Streamlib))
    {
        bail!("{other} does not run Nexmark: --systems takes kafka-streams and streamlib");
    }
    let load_before = crate::load_average();
    let (launchers, settings) = cli
        .common
        .prepare(&cli.systems, cli.partitions, "nexmark-runs")?;
    let started = Instant::now();
    let (mut rows, counts, produce_s) = throughput_runs(cli, &settings, &launchers)?;
    if cli.live_events > 0 {
        live_runs(cli, &settings, &launchers, &mut rows);
    }
    let _ = std::fs::remove_dir(&settings.work_dir);

    let fields = json!({
        "events": cli.events,
        "people": counts.of(Kind::Person),
        "auctions": counts.of(Kind::Auction),
        "bids": counts.of(Kind::Bid),
        "base_time_ms": cli.base_time_ms,
        "partitions": cli.partitions,
        "live_events": cli.live_events,
        "live_rate": cli.live_rate,
        "live_task_idle_ms": LIVE_TASK_IDLE_MS,
        "live_task_idle_queries": Query::ALL
            .into_iter()
            .filter(|q| q.joins_a_stream_with_a_table())
            .map(Query::name)
            .collect::<Vec<_>>(),
        "preproduce_s": produce_s,
    });
    let setup = crate::environment(&cli.common, &launchers, load_before, started, fields);
    write_results(cli, &setup, &rows)?;
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok())
        .map(|r| format!("{}/{}/{}", r.query, r.system, r.guarantee))
        .collect();
    crate::verdict("nexmark", rows.len(), &bad)
}

/// Pre-produces the events and runs every (query, guarantee, system) over them; returns the
/// rows, the events per kind and how long pre-producing took (s).
fn throughput_runs(
    cli: &NexmarkArgs,
    settings: &Settings,
    launchers: &Launchers,
) -> Result<(Vec<Row>, Counts, f64)> {
    let source = Source::Pinned {
        n: cli.events,
        base_time: cli.base_time_ms,
    };
    let prefix = streamlib::testing::unique_topic("nexmark");
    let topics = Topics::prefixed(&prefix);
    kafka::create_topics_with(
        &settings.bootstrap,
        &topics.all(),
        settings.partitions,
        KEEP_RECORDS,
    )?;
    eprintln!("producing {} events to {prefix}-*", cli.events);
    let (produce, counts) = events::preproduce(&settings.bootstrap, &topics, source.events())?;
    eprintln!(
        "  {:.1} s: {} people, {} auctions, {} bids",
        produce.as_secs_f64(),
        counts.of(Kind::Person),
        counts.of(Kind::Auction),
        counts.of(Kind::Bid)
    );
    let mut model = Model::new(&cli.queries);
    for event in source.events() {
        model.add(&event);
    }
    let mut rows = Vec::new();
    for &query in &cli.queries {
        let expected = model.expected(query);
        for &guarantee in &cli.common.guarantees {
            let mut outputs = Vec::new();
            for &system in &cli.systems {
                let reads = counts.read_by(query);
                eprintln!("throughput: {query} / {system} / {guarantee} ({reads} events)");
                // Everything is on the broker: a partition read to its end has nothing more.
                let job = Job {
                    system,
                    guarantee,
                    query,
                    topics: &topics,
                    task_idle_ms: 0,
                };
                let result = throughput(settings, launchers, &job, reads, &expected, &source);
                let throughput = match result {
                    Ok((run, output)) => {
                        eprintln!(
                            "  {:.0} events/s, startup {:.1} s, CPU {:.1} s, peak RSS {:.0} MiB, \
                             {} outputs ({}): {}",
                            run.timing.per_second(run.events),
                            run.timing.startup_s,
                            run.timing.usage.cpu_s,
                            run.timing.usage.peak_rss_mib,
                            run.outputs,
                            run.timing.end.name(),
                            run.wrong.as_deref().unwrap_or("ok")
                        );
                        outputs.push((system, output));
                        Ok(run)
                    }
                    Err(error) => {
                        eprintln!("  failed: {error:#}");
                        Err(format!("{error:#}"))
                    }
                };
                rows.push(Row {
                    query,
                    guarantee,
                    system,
                    throughput,
                    live: None,
                    versus: None,
                });
            }
            if let Some(text) = versus(query, &outputs, &source) {
                eprintln!("  {text}");
                let n = cli.systems.len();
                for row in rows.iter_mut().rev().take(n) {
                    row.versus = Some(text.clone());
                }
            }
        }
    }
    if !settings.keep {
        if let Err(error) = kafka::delete_topics(&settings.bootstrap, &topics.all()) {
            eprintln!("  cleanup: {error:#}");
        }
    }
    Ok((rows, counts, produce.as_secs_f64()))
}

/// One system running one query under one guarantee over `topics`.
struct Job<'a> {
    system: System,
    guarantee: Guarantee,
    query: Query,
    topics: &'a Topics,
    /// How long its tasks wait for an empty input partition read to its end, ms.
    task_idle_ms: u64,
}

impl Job<'_> {
    fn program(&self) -> Program<'_> {
        Program::Nexmark {
            query: self.query,
            topics: self.topics,
            task_idle_ms: self.task_idle_ms,
        }
    }

    /// The start of its runs' application ids; `mode` says which run.
    fn tag(&self, mode: &str) -> String {
        format!(
            "nexmark-{}-{}-{}-{mode}",
            self.query, self.system, self.guarantee
        )
    }
}

/// Runs `job` over the pre-produced events (`reads` of them of the kinds it reads), measures
/// it and compares its output with `expected`; returns the run and the output.
fn throughput(
    settings: &Settings,
    launchers: &Launchers,
    job: &Job<'_>,
    reads: u64,
    expected: &Expected,
    source: &Source,
) -> Result<(Run, Output)> {
    let session = Session::open(settings, &job.tag("tp"))?;
    let result = run::measure(
        &session,
        launchers,
        job.system,
        job.guarantee,
        job.program(),
        (reads, expected.records.unwrap_or(u64::MAX)),
    )
    .and_then(|timing| {
        let (output, wrong) = collect(&session, job, expected, source)?;
        let run = Run {
            events: reads,
            timing,
            outputs: output.records(),
            wrong,
        };
        Ok((run, output))
    });
    session.close(result.as_ref().map_or(true, |(r, _)| r.wrong.is_some()));
    result
}

/// Reads a run's output back and compares it with the model's; returns the output and, when
/// they differ, how.
fn collect(
    session: &Session<'_>,
    job: &Job<'_>,
    expected: &Expected,
    source: &Source,
) -> Result<(Output, Option<String>)> {
    let mut output = Output::new(job.query.mode());
    let (mut malformed, mut first_error) = (0_u64, None);
    session.read_output(|message| {
        if let Err(error) = output.add_raw(message.key(), message.payload()) {
            malformed += 1;
            first_error.get_or_insert(error);
        }
    })?;
    let mut problems = Vec::new();
    if let Some(error) = first_error {
        problems.push(format!("{malformed} malformed records (first: {error})"));
    }
    if let Some(mut mismatch) = compare(&expected.output, &output) {
        resolve_from_model(&mut mismatch, job.query, source);
        if mismatch.unresolved(Side::Actual) {
            session.read_output(|message| {
                if let Ok((key, value)) = compare::parse(message.key(), message.payload()) {
                    let text = compare::canonical(&key, value.as_ref());
                    mismatch.resolve(Side::Actual, [text]);
                }
            })?;
        }
        problems.push(mismatch.describe("the model", job.system.name()));
    }
    Ok((output, (!problems.is_empty()).then(|| problems.join("; "))))
}

/// Finds the text of hashed examples (all-records queries) among the model's records.
fn resolve_from_model(mismatch: &mut Mismatch, query: Query, source: &Source) {
    for side in [Side::Expected, Side::Actual] {
        if mismatch.unresolved(side) {
            mismatch.resolve(side, model::stateless_records(query, source.events()));
        }
    }
}

/// How the two systems' outputs of one (query, guarantee) differ, if they do.
fn versus(query: Query, outputs: &[(System, Output)], source: &Source) -> Option<String> {
    let [(first, a), (second, b)] = outputs else {
        return None;
    };
    let mut mismatch = compare(a, b)?;
    resolve_from_model(&mut mismatch, query, source);
    Some(mismatch.describe(first.name(), second.name()))
}

/// Runs every row's job live, each on fresh topics.
fn live_runs(cli: &NexmarkArgs, settings: &Settings, launchers: &Launchers, rows: &mut [Row]) {
    for row in rows {
        eprintln!(
            "live: {} / {} / {} ({} events at {}/s)",
            row.query, row.system, row.guarantee, cli.live_events, cli.live_rate
        );
        let session = Session::open(
            settings,
            &format!(
                "nexmark-{}-{}-{}-live",
                row.query, row.system, row.guarantee
            ),
        );
        let result = session.and_then(|session| {
            let topics = Topics::prefixed(session.app_id());
            let job = Job {
                system: row.system,
                guarantee: row.guarantee,
                query: row.query,
                topics: &topics,
                task_idle_ms: live_task_idle_ms(row.query),
            };
            let result = kafka::create_topics_with(
                &settings.bootstrap,
                &topics.all(),
                settings.partitions,
                KEEP_RECORDS,
            )
            .and_then(|()| live(&session, launchers, &job, cli.live_events, cli.live_rate));
            session.close(result.as_ref().map_or(true, |r| r.wrong.is_some()));
            result
        });
        match &result {
            Ok(live) => eprintln!(
                "  latency {:?}, {} outputs ({}): {}",
                live.latency,
                live.outputs,
                live.end.name(),
                live.wrong.as_deref().unwrap_or("ok")
            ),
            Err(error) => eprintln!("  failed: {error:#}"),
        }
        row.live = Some(result.map_err(|e| format!("{e:#}")));
    }
}

/// How long, in a live run of a stream–table join, a task waits for the table's partition
/// when the consumer has read it to its end (`max.task.idle.ms` on both systems, ADR-054): an
/// auction and its first bids are produced milliseconds apart onto two topics, and without
/// the wait a bid read a moment before its auction is joined without it, where the model
/// joins in event-time order. Throughput runs do not wait: all their data is on the broker.
const LIVE_TASK_IDLE_MS: u64 = 500;

/// [`LIVE_TASK_IDLE_MS`] for the queries that join a stream with a table, else 0.
fn live_task_idle_ms(query: Query) -> u64 {
    if query.joins_a_stream_with_a_table() {
        LIVE_TASK_IDLE_MS
    } else {
        0
    }
}

/// How far ahead of now a live run's first event is due: time to generate and encode the
/// events and start the producer.
const LIVE_LEAD_MS: i64 = 1_000;
/// Longest a system may take to join its group in a live run.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts `job`'s system on empty topics; once it has joined, produces `n` events at `rate`
/// per second, each when its timestamp says, and measures latency on the outputs of all but the
/// first tenth (warm-up).
fn live(
    session: &Session<'_>,
    launchers: &Launchers,
    job: &Job<'_>,
    n: u64,
    rate: u64,
) -> Result<LiveRun> {
    let bootstrap = &session.settings().bootstrap;
    let sink = session.counter(LatencyProbe::RecordTimestamp)?;
    let group = GroupWatch::start(bootstrap, session.app_id())?;
    let process = session.spawn(launchers, job.system, job.guarantee, job.program())?;
    let joining = Instant::now();
    while group.stable_at().is_none() {
        if !process.is_running() {
            bail!(
                "the system stopped before joining; its output ends with:\n{}",
                process.log_tail(30)
            );
        }
        if joining.elapsed() > JOIN_TIMEOUT {
            bail!("the system did not join within {JOIN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = kafka::now_ms() + LIVE_LEAD_MS;
    let config = events::config(
        u64::try_from(base).context("a clock before 1970")?,
        Some(rate),
    );
    let generated: Vec<Event> = events::generate_with(n, config).collect();
    let encoded = generated
        .iter()
        .map(events::encode)
        .collect::<Result<Vec<_>>>()?;
    let mut model = Model::new(&[job.query]);
    for event in &generated {
        model.add(event);
    }
    let expected = model.expected(job.query);
    let reads = model.counts().read_by(job.query);
    let warmup_ms = i64::try_from(n / 10 * 1_000 / rate.max(1)).unwrap_or(i64::MAX);
    sink.set_warmup_until(base.saturating_add(warmup_ms));
    let producer = events::spawn_paced(bootstrap, job.topics, encoded, rate, base)?;
    let end =
        session.await_outputs(&sink, &process, reads, expected.records.unwrap_or(u64::MAX))?;
    run::stop(process)?;
    producer
        .join()
        .map_err(|_| anyhow!("live producer panicked"))??;
    let report = sink.finish()?;
    let (output, wrong) = collect(session, job, &expected, &Source::Live(generated))?;
    Ok(LiveRun {
        latency: Latency::from_histogram(&report.latency.steady),
        end,
        outputs: output.records(),
        wrong,
    })
}

/// `value ÷` Kafka Streams' value of the same query and guarantee, by `metric`.
fn ratio(rows: &[Row], row: &Row, metric: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
    let ks = rows.iter().find(|r| {
        r.system == System::KafkaStreams && r.query == row.query && r.guarantee == row.guarantee
    })?;
    Some(metric(row)? / metric(ks)?)
}

/// A number per second, or a dash.
fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "–".to_string(), format)
}

/// The results as Markdown: every row, the ratios to Kafka Streams, what went wrong.
fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| query | guarantee | system | events/s | × KS | events per CPU-s | × KS | startup s | CPU s | peak RSS MiB | live p50 ms | live p99 ms | output |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let (p50, p99) = match &row.live {
            Some(Ok(LiveRun {
                latency: Some(l), ..
            })) => (l.p50_ms.to_string(), l.p99_ms.to_string()),
            Some(Err(_)) => ("failed".into(), "failed".into()),
            _ => ("–".into(), "–".into()),
        };
        let ratio_cell = |metric: fn(&Row) -> Option<f64>| match row.system {
            System::KafkaStreams => "–".to_string(),
            _ => cell(ratio(rows, row, metric), |r| format!("{r:.2}")),
        };
        let status = match row.good_run() {
            Some(run) if row.ok() => {
                format!("ok ({} records, {})", run.outputs, run.timing.end.name())
            }
            _ => format!(
                "**wrong/failed**: {}",
                row.problems()
                    .first()
                    .map_or_else(String::new, |p| report::first_line(p))
            ),
        };
        let (startup, cpu, rss) = match &row.throughput {
            Ok(r) => (
                format!("{:.1}", r.timing.startup_s),
                format!("{:.1}", r.timing.usage.cpu_s),
                format!("{:.0}", r.timing.usage.peak_rss_mib),
            ),
            Err(_) => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {startup} | {cpu} | {rss} | {p50} | {p99} | {status} |",
            row.query,
            row.guarantee,
            row.system.label(),
            cell(row.rate(), report::rate),
            ratio_cell(Row::rate),
            cell(row.per_cpu_second(), report::rate),
            ratio_cell(Row::per_cpu_second),
        );
    }
    let ratios: Vec<String> = rows
        .iter()
        .filter(|r| r.system != System::KafkaStreams)
        .filter_map(|r| {
            let rate = ratio(rows, r, Row::rate)?;
            let cpu = cell(ratio(rows, r, Row::per_cpu_second), |v| format!("{v:.2}"));
            Some(format!(
                "| {} | {} | {} | {rate:.2} | {cpu} |",
                r.query,
                r.guarantee,
                r.system.label()
            ))
        })
        .collect();
    if !ratios.is_empty() {
        out.push_str(
            "\nRelative to Kafka Streams (the same query and guarantee):\n\n\
             | query | guarantee | system | events/s ÷ KS | events per CPU-s ÷ KS |\n\
             |---|---|---|---:|---:|\n",
        );
        out.push_str(&(ratios.join("\n") + "\n"));
    }
    let problems: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok())
        .map(|r| {
            format!(
                "- {} / {} / {}: {}",
                r.query,
                r.guarantee,
                r.system.label(),
                r.problems().join("; ").replace('\n', " ")
            )
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\nWrong outputs and failed runs:\n\n");
        out.push_str(&(problems.join("\n") + "\n"));
    }
    out
}

/// The Markdown header of the results: what ran, on what, with which command.
fn describe(setup: &Value) -> String {
    let lines = [
        format!(
            "Data: {events} events of the `nexmark` crate 0.2.0 from base time {base} ms \
             ({people} people, {auctions} auctions, {bids} bids), {partitions} partitions per topic",
            events = setup["events"],
            base = setup["base_time_ms"],
            people = setup["people"],
            auctions = setup["auctions"],
            bids = setup["bids"],
            partitions = setup["partitions"],
        ),
        format!(
            "Commit interval: {alos} ms at-least-once, {eos} ms exactly-once; live runs: {live} \
             events at {rate}/s, latency = output read − output record timestamp, the first \
             tenth warm-up; live runs of {joins} with max.task.idle.ms = {idle} on both systems",
            alos = setup["alos_commit_ms"],
            eos = setup["eos_commit_ms"],
            live = setup["live_events"],
            rate = setup["live_rate"],
            idle = setup["live_task_idle_ms"],
            joins = setup["live_task_idle_queries"]
                .as_array()
                .map(|names| names.iter().filter_map(|n| n.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ),
        "events/s: input events of the kinds the query reads ÷ seconds from the consumer group \
         being stable to the last output; CPU s and peak RSS of the process"
            .to_string(),
    ];
    crate::header(
        &format!("Nexmark: {} events", setup["events"]),
        setup,
        &lines,
        "NEXMARK.md",
    )
}

/// Events per second per core published for engines that run Nexmark without Kafka, in
/// thousands: (query, Flink 1.13 in the Nexmark project's README, Flink in Feldera's 16-core
/// comparison, Feldera in the same); sources and setups in benches/NEXMARK.md.
const PUBLISHED_PER_CORE_K: [(&str, u32, u32, u32); 8] = [
    ("q0", 155, 165, 436),
    ("q1", 158, 163, 412),
    ("q2", 175, 195, 422),
    ("q3", 152, 127, 413),
    ("q4", 34, 31, 265),
    ("q5", 22, 41, 412),
    ("q7", 12, 18, 196),
    ("q8", 146, 131, 415),
];

/// The report's section on [`PUBLISHED_PER_CORE_K`].
fn without_kafka() -> String {
    let mut md = String::from(
        "\n## Flink and Feldera\n\nTheir published per-core Nexmark figures come from runs \
         without Kafka (events generated inside the engine, a discarding sink, no commits), so \
         they are not comparable with the rows above; sources and setups in \
         benches/NEXMARK.md.\n\n| query | Flink 1.13, events/s per core | Flink (Feldera's run) \
         | Feldera |\n|---|---|---|---|\n",
    );
    for (query, flink, flink_feldera_run, feldera) in PUBLISHED_PER_CORE_K {
        let _ = writeln!(
            md,
            "| {query} | {flink} k | {flink_feldera_run} k | {feldera} k |"
        );
    }
    md
}

/// Writes `<name>.json`, `.md` and `.svg` to the output directory.
fn write_results(cli: &NexmarkArgs, setup: &Value, rows: &[Row]) -> Result<()> {
    let table = markdown(rows);
    println!("{table}");
    let document = json!({
        "setup": setup,
        "runs": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "ratios_to_kafka_streams": rows
            .iter()
            .filter(|r| r.system != System::KafkaStreams)
            .map(|r| json!({
                "query": r.query.name(),
                "guarantee": r.guarantee.name(),
                "system": r.system.name(),
                "events_per_s_ratio": ratio(rows, r, Row::rate),
                "events_per_cpu_s_ratio": ratio(rows, r, Row::per_cpu_second),
            }))
            .collect::<Vec<_>>(),
        "published_per_core_without_kafka": PUBLISHED_PER_CORE_K
            .iter()
            .map(|(query, flink, flink_feldera_run, feldera)| json!({
                "query": query,
                "flink_1_13_events_per_s": flink * 1000,
                "flink_in_feldera_comparison_events_per_s": flink_feldera_run * 1000,
                "feldera_events_per_s": feldera * 1000,
            }))
            .collect::<Vec<_>>(),
    });
    let common = &cli.common;
    common.write(
        &cli.name,
        "json",
        &(serde_json::to_string_pretty(&document)? + "\n"),
    )?;
    let md = format!("{}\n{table}{}", describe(setup), without_kafka());
    common.write(&cli.name, "md", &md)?;
    let mut panels: Vec<Panel> = Vec::new();
    for row in rows {
        let title = row.query.to_string();
        if panels.last().is_none_or(|p| p.title != title) {
            panels.push(Panel {
                title,
                groups: Vec::new(),
            });
        }
        if let Some(panel) = panels.last_mut() {
            let bar = Bar {
                system: row.system,
                value: row.rate(),
            };
            report::add_bar(panel, row.guarantee, bar);
        }
    }
    let subtitle = format!(
        "{} events, {} partitions; {} stream thread(s) each; {}",
        cli.events,
        cli.partitions,
        common.threads,
        setup["machine"]["summary"].as_str().unwrap_or_default()
    );
    let chart = report::chart(
        &panels,
        "Nexmark: input events per second, per query and guarantee",
        &subtitle,
        "events/s (each panel its own scale)",
    );
    common.write(&cli.name, "svg", &chart)
}
