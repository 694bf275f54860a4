//! Kafka plumbing of the harness: admin calls, producers that count their deliveries, and the
//! retry loop around a full producer queue.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Timeout of admin, metadata, flush and transaction calls.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Wakes the thread blocked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread. The admin client's futures are completed by
/// rdkafka's own polling thread, so parking until woken is all the executor they need.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// An admin client for `bootstrap`.
fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")
}

/// Fails with a hint when no broker answers at `bootstrap`; returns the number of brokers.
pub fn check_broker(bootstrap: &str) -> Result<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a metadata client")?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| {
            format!("no Kafka broker answers at {bootstrap} (start one with `scripts/kafka start`)")
        })?;
    Ok(metadata.brokers().len())
}

/// Creates `topics`, each with `partitions` partitions and the broker's replication factor.
pub fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> Result<()> {
    create_topics_with(bootstrap, topics, partitions, &[])
}

/// [`create_topics`] with topic-level `config` (e.g. `retention.ms`).
pub fn create_topics_with(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<()> {
    let admin = admin(bootstrap)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            config.iter().fold(
                NewTopic::new(t, partitions, TopicReplication::Fixed(-1)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = block_on(admin.create_topics(&new, &options)).context("creating topics")?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic}: {code}");
        }
    }
    Ok(())
}

/// Deletes `topics`; topics that are already gone are not an error.
pub fn delete_topics(bootstrap: &str, topics: &[&str]) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin = admin(bootstrap)?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = block_on(admin.delete_topics(topics, &options)).context("deleting topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => bail!("deleting topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Every topic whose name contains `part` (e.g. the internal topics of one application id).
pub fn topics_containing(bootstrap: &str, part: &str) -> Result<Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a metadata client")?;
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .context("listing topics")?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|name| name.contains(part))
        .collect())
}

/// A consumer in a fresh group of its own, assigned every partition of `topic` from the
/// beginning, `read_committed`, with `extra` settings.
pub fn reader_from_beginning(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    extra: &[(&str, &str)],
) -> Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            streamlib::testing::unique_topic("harness-reader"),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().context("creating a reader")?;
    // Learn the partition leaders first: assigning a partition whose leader is unknown makes
    // librdkafka retry the offset lookup only after 500 ms, which would delay first outputs.
    consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("fetching metadata of {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .with_context(|| format!("assigning {topic}"))?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("assigning {topic}"))?;
    Ok(consumer)
}

/// Notes, from a thread of its own, when consumer group `group` is first `Stable` with a
/// member: the moment a fresh application has joined and been given its partitions.
pub struct GroupWatch {
    stable_at: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GroupWatch {
    /// How often the group is described.
    const EVERY: Duration = Duration::from_millis(20);

    /// Starts watching `group` (which need not exist yet).
    pub fn start(bootstrap: &str, group: &str) -> Result<Self> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .context("creating a group watcher")?;
        let stable_at = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stable_at, stop, group) = (stable_at.clone(), stop.clone(), group.to_string());
            std::thread::Builder::new()
                .name("harness-group-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let stable = client
                            .fetch_group_list(Some(&group), Duration::from_secs(1))
                            .is_ok_and(|list| {
                                list.groups()
                                    .iter()
                                    .any(|g| g.state() == "Stable" && !g.members().is_empty())
                            });
                        if stable {
                            *stable_at.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(Instant::now());
                            return;
                        }
                        std::thread::sleep(Self::EVERY);
                    }
                })
                .context("spawning the group watcher")?
        };
        Ok(Self {
            stable_at,
            stop,
            thread: Some(thread),
        })
    }

    /// When the group was first seen stable, if it was.
    pub fn stable_at(&self) -> Option<Instant> {
        *self
            .stable_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for GroupWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Producer settings shared by every producer of the harness: idempotent, `acks=all`, Kafka's
/// Java (murmur2) partitioner, plus `extra`.
pub fn producer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
}

/// Delivery reports of one producer: how many records were acknowledged or failed.
#[derive(Clone, Default)]
pub struct Deliveries(Arc<DeliveryCounts>);

/// The counters behind [`Deliveries`].
#[derive(Default)]
struct DeliveryCounts {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    /// Records acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.0.acked.load(Ordering::Relaxed)
    }

    /// Fails with the first delivery error, if any record failed.
    pub fn check(&self) -> Result<()> {
        let failed = self.0.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = self
                .0
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_default();
            bail!("{failed} records were not delivered; first error: {first}");
        }
        Ok(())
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0
                    .first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// A producer whose deliveries are counted.
pub type CountingProducer = ThreadedProducer<Deliveries>;

/// Creates a [`CountingProducer`] from `config`.
pub fn counting_producer(config: &ClientConfig) -> Result<(CountingProducer, Deliveries)> {
    let deliveries = Deliveries::default();
    let producer = config
        .create_with_context(deliveries.clone())
        .context("creating a producer")?;
    Ok((producer, deliveries))
}

/// Sends `record`, waiting while the producer's queue is full.
pub fn send(producer: &CountingProducer, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                // The producer's polling thread drains the queue as the broker acknowledges.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error).context("producing a record"),
        }
    }
}

/// Waits until every record sent through `producer` is acknowledged and checks that none failed.
pub fn finish(producer: &CountingProducer, deliveries: &Deliveries, sent: u64) -> Result<()> {
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the producer")?;
    deliveries.check()?;
    anyhow::ensure!(
        deliveries.acked() == sent,
        "{} of {sent} records acknowledged",
        deliveries.acked()
    );
    Ok(())
}

/// Starts a thread that sends `items` with `send` at `rate` per second, on a fixed schedule so
/// that it does not drift, with `linger.ms=1`; the thread returns the records sent. The
/// schedule starts at wall-clock time `start_at_ms` (ms since the epoch; the thread sleeps
/// until then), or at once when `None`. The producer learns the leaders of `topics` before.
pub fn spawn_paced<T: Send + 'static>(
    bootstrap: &str,
    topics: &[&str],
    items: Vec<T>,
    rate: u64,
    start_at_ms: Option<i64>,
    send: impl Fn(&CountingProducer, &T) -> Result<()> + Send + 'static,
) -> Result<JoinHandle<Result<u64>>> {
    let config = producer_config(bootstrap, &[("linger.ms", "1")]);
    let (producer, deliveries) = counting_producer(&config)?;
    // Connect and learn the topics' leaders before the clock starts.
    for topic in topics {
        producer
            .client()
            .fetch_metadata(Some(topic), TIMEOUT)
            .with_context(|| format!("fetching metadata of {topic}"))?;
    }
    let rate = rate.max(1) as f64;
    std::thread::Builder::new()
        .name("harness-live-producer".into())
        .spawn(move || {
            let wait_ms = start_at_ms.map_or(0, |at| (at - now_ms()).max(0));
            let started = Instant::now() + Duration::from_millis(wait_ms as u64);
            for (i, item) in items.iter().enumerate() {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                send(&producer, item)?;
            }
            finish(&producer, &deliveries, items.len() as u64)?;
            Ok(items.len() as u64)
        })
        .context("spawning the live producer")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
