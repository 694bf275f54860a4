//! The ceiling: a raw rdkafka consume → produce loop with the same client settings, group
//! protocol, poll-one-message loop and commit protocol as streamlib's runtime, but no
//! deserialization, processing or state. Records keep key, value, timestamp and partition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{self, CountingProducer, Deliveries, TIMEOUT};
use crate::Guarantee;

/// Commit counters, comparable to streamlib's `RuntimeMetrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommitStats {
    /// Commits completed.
    pub commits: u64,
    /// Total time spent committing, µs.
    pub commit_micros: u64,
}

/// Flags shared between the pump thread and the harness.
#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    assigned: AtomicBool,
    consumed: AtomicU64,
}

/// A running ceiling pump.
pub struct Ceiling {
    flags: Arc<Flags>,
    thread: Option<JoinHandle<Result<CommitStats>>>,
}

/// The clients and settings of one pump.
struct Pump {
    consumer: BaseConsumer,
    producer: CountingProducer,
    deliveries: Deliveries,
    output: String,
    partitions: i32,
    guarantee: Guarantee,
    commit_interval: Duration,
    pending: HashMap<(String, i32), i64>,
    stats: CommitStats,
}

impl Ceiling {
    /// Joins group `group` on `input` and starts copying records to `output`, committing every
    /// `commit_interval`.
    pub fn start(
        bootstrap: &str,
        group: &str,
        input: &str,
        output: &str,
        partitions: i32,
        guarantee: Guarantee,
        commit_interval: Duration,
    ) -> Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .context("creating the ceiling consumer")?;
        consumer
            .subscribe(&[input])
            .context("subscribing the ceiling consumer")?;
        let transactional_id = format!("{group}-tx");
        let mut extra = vec![("linger.ms", "5")];
        if guarantee == Guarantee::Eos {
            extra.push(("transactional.id", &transactional_id));
            extra.push(("transaction.timeout.ms", "10000"));
        }
        let (producer, deliveries) =
            kafka::counting_producer(&kafka::producer_config(bootstrap, &extra))?;
        if guarantee == Guarantee::Eos {
            producer
                .init_transactions(TIMEOUT)
                .context("initializing transactions")?;
            producer
                .begin_transaction()
                .context("beginning a transaction")?;
        }
        let mut pump = Pump {
            consumer,
            producer,
            deliveries,
            output: output.to_string(),
            partitions,
            guarantee,
            commit_interval,
            pending: HashMap::new(),
            stats: CommitStats::default(),
        };
        let flags = Arc::new(Flags::default());
        let thread = {
            let flags = flags.clone();
            std::thread::Builder::new()
                .name("harness-ceiling".into())
                .spawn(move || pump.run(&flags))
                .context("spawning the ceiling")?
        };
        Ok(Self {
            flags,
            thread: Some(thread),
        })
    }

    /// Input records copied so far.
    pub fn consumed(&self) -> u64 {
        self.flags.consumed.load(Ordering::Relaxed)
    }

    /// Whether the pump owns every input partition.
    pub fn assigned(&self) -> bool {
        self.flags.assigned.load(Ordering::Relaxed)
    }

    /// Whether the pump thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the pump after a final commit.
    pub fn stop(mut self) -> Result<CommitStats> {
        self.flags.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("ceiling already stopped"))?;
        thread.join().map_err(|_| anyhow!("ceiling panicked"))?
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Pump {
    /// Polls, copies and commits until stopped; commits a last time.
    fn run(&mut self, flags: &Flags) -> Result<CommitStats> {
        let interval = self.commit_interval;
        let mut last_commit = Instant::now();
        while !flags.stop.load(Ordering::Relaxed) {
            if !flags.assigned.load(Ordering::Relaxed) && self.owns_all_partitions() {
                flags.assigned.store(true, Ordering::Relaxed);
            }
            match self.consumer.poll(Duration::from_millis(50)) {
                Some(Ok(message)) => {
                    forward(&self.producer, &self.output, &message)?;
                    self.pending.insert(
                        (message.topic().to_string(), message.partition()),
                        message.offset() + 1,
                    );
                    flags.consumed.fetch_add(1, Ordering::Relaxed);
                }
                Some(Err(error)) => eprintln!("  ceiling consumer: {error}"),
                None => {}
            }
            if last_commit.elapsed() >= interval {
                self.commit(true)?;
                last_commit = Instant::now();
            }
        }
        self.commit(false)?;
        self.consumer.unsubscribe();
        Ok(self.stats)
    }

    /// Whether the consumer's assignment covers every input partition.
    fn owns_all_partitions(&self) -> bool {
        self.consumer
            .assignment()
            .is_ok_and(|a| a.count() as i32 == self.partitions)
    }

    /// Waits until every sent record is acknowledged (the producer's own thread serves the
    /// delivery reports).
    fn drain(&self) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(anyhow!("records still in flight after {TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Commits like streamlib: ALOS flushes then commits offsets; EOS adds the offsets to the
    /// transaction, commits it and (when `begin_next`) begins the next one.
    ///
    /// Unlike streamlib it first waits for in-flight records itself: rdkafka 0.39's `flush`
    /// (also called by `commit_transaction`) polls in 100 ms slices that run to their end, so
    /// any flush that finds a record in flight takes ≥ 100 ms.
    fn commit(&mut self, begin_next: bool) -> Result<()> {
        let started = Instant::now();
        self.drain()?;
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in &self.pending {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .context("building offsets")?;
        }
        match self.guarantee {
            Guarantee::Alos => {
                self.producer.flush(TIMEOUT).context("flushing")?;
                self.deliveries.check()?;
                if offsets.count() > 0 {
                    self.consumer
                        .commit(&offsets, CommitMode::Sync)
                        .context("committing offsets")?;
                }
            }
            Guarantee::Eos => {
                if offsets.count() > 0 {
                    let group = self
                        .consumer
                        .group_metadata()
                        .ok_or_else(|| anyhow!("the ceiling consumer has no group metadata"))?;
                    self.producer
                        .send_offsets_to_transaction(&offsets, &group, TIMEOUT)
                        .context("adding offsets to the transaction")?;
                }
                self.producer
                    .commit_transaction(TIMEOUT)
                    .context("committing the transaction")?;
                self.deliveries.check()?;
                if begin_next {
                    self.producer
                        .begin_transaction()
                        .context("beginning a transaction")?;
                }
            }
        }
        self.pending.clear();
        self.stats.commits += 1;
        self.stats.commit_micros += started.elapsed().as_micros() as u64;
        Ok(())
    }
}

/// Copies one record to the same partition of `output`.
fn forward(producer: &CountingProducer, output: &str, message: &BorrowedMessage<'_>) -> Result<()> {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(output)
        .partition(message.partition())
        .timestamp(message.timestamp().to_millis().unwrap_or_default());
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    kafka::send(producer, record)
}
