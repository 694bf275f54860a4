//! The record collector: the instance's producer, the records a task drained sent through it,
//! their delivery reports, and what is done with a send that fails (Kafka Streams'
//! `RecordCollectorImpl`).
//!
//! An output record the broker refuses for a reason of its own ([`super::refusal`]) goes to the
//! production handler under both guarantees. The broker refuses batches, and reports the
//! refusal for every record of the batch, so a refused record is only a suspect until it is
//! refused alone: sent in its own request, awaited before the next record is sent
//! ("isolation").
//! - At-least-once: at the commit, after the flush, each suspect is sent again alone; one
//!   refused alone goes to the handler, the others are delivered, and then the offsets commit.
//! - Exactly-once: the transaction is aborted ([`super::commit`]), and the redo sends every
//!   output alone until it has passed the inputs whose outputs were suspects. The culprit,
//!   refused alone, aborts that transaction too; its fingerprint is kept, and when the next
//!   redo produces the record again it goes to the handler instead of the producer (a dead
//!   letter inside the same transaction), so the redo commits. One bad record thus costs two
//!   aborts.
//!
//! A record the client itself refuses at `send` (too large for `message.max.bytes`) never
//! enters the transaction and is handled at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::TopicPartitionList;

use crate::error::{ErrorAction, StreamsError};
use crate::record::RawRecord;
use crate::task::{dead_letter, dead_letter_headers, Drained, SourceCoordinates};

use super::delivery::{DeliveryTracker, Origin, Refused, Role, Sent};
use super::refusal::{self, Fingerprint};
use super::{wall_clock_ms, ProcessingGuarantee, RuntimeMetrics, StreamsConfig, TIMEOUT};

/// What an aborted transaction leaves the collector knowing about refused records.
pub(crate) struct AbortedSends {
    /// Records the broker refused in batches: the redo sends outputs alone past their inputs.
    pub(crate) suspects: usize,
    /// An output was refused alone: its redo hands it to the production handler.
    pub(crate) culprit: bool,
}

/// The producer of one instance with its delivery reports and refused-record isolation state.
pub(crate) struct RecordCollector {
    config: StreamsConfig,
    producer: ThreadedProducer<DeliveryTracker>,
    tracker: DeliveryTracker,
    /// `<application.id>-<thread identity>` under exactly-once.
    transactional_id: Option<String>,
    /// Something was produced since the last commit.
    dirty: bool,
    /// Culprits (outputs refused alone) of aborted transactions, with the broker's reason:
    /// produced again by the redo, they go to the production handler instead (exactly-once).
    refusals: HashMap<Fingerprint, KafkaError>,
    /// Culprits handed to the production handler in the open transaction: an identical record
    /// produced again in it goes there too, and an abort makes them culprits to await again.
    handled: HashMap<Fingerprint, KafkaError>,
    /// An output was refused alone in the open transaction, which must abort.
    culprit_found: bool,
    /// Per input partition, the offset of the last input whose outputs were suspects of a
    /// refusal: outputs are sent alone until every such input has been processed again.
    isolate_until: HashMap<(String, i32), i64>,
    /// A suspect was produced outside of processing a record (a punctuation): outputs are
    /// sent alone until a punctuation pass has run again.
    isolate_unsourced: bool,
    /// Origin of changelog records.
    changelog: Arc<Origin>,
    /// Origin of outputs produced outside of processing a record (initialization,
    /// punctuation).
    unsourced: Arc<Origin>,
    metrics: Arc<RuntimeMetrics>,
}

impl RecordCollector {
    /// The collector of the stream thread `identity` of an instance configured by `config`,
    /// with its producer created (and under exactly-once its first transaction begun, with
    /// the transactional id `<application.id>-<identity>`).
    pub(crate) fn new(
        config: StreamsConfig,
        metrics: Arc<RuntimeMetrics>,
        identity: &str,
    ) -> Result<Self, StreamsError> {
        let transactional_id = (config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2)
            .then(|| format!("{}-{identity}", config.application_id));
        let (producer, tracker) = create_producer(&config, transactional_id.as_deref())?;
        Ok(Self {
            config,
            producer,
            tracker,
            transactional_id,
            dirty: false,
            refusals: HashMap::new(),
            handled: HashMap::new(),
            culprit_found: false,
            isolate_until: HashMap::new(),
            isolate_unsourced: false,
            changelog: Arc::new(Origin {
                role: Role::Changelog,
                source: None,
            }),
            unsourced: Arc::new(Origin {
                role: Role::Output,
                source: None,
            }),
            metrics,
        })
    }

    /// Whether anything was produced since the last commit.
    pub(crate) fn dirty(&self) -> bool {
        self.dirty
    }

    /// Offset of the last acknowledged record of `topic`/`partition`.
    pub(crate) fn acked_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.tracker.acked_offset(topic, partition)
    }

    /// Sends what the task of `partition` drained: its outputs, produced while `source` was
    /// processed (`None`: initialization or punctuation), then its stores' changelog records.
    pub(crate) fn send(
        &mut self,
        partition: i32,
        drained: Drained,
        source: Option<SourceCoordinates>,
    ) -> Result<(), StreamsError> {
        let origin = match source {
            Some(source) => Arc::new(Origin {
                role: Role::Output,
                source: Some(source),
            }),
            None => self.unsourced.clone(),
        };
        for record in drained.outputs {
            let dlq = self.config.handlers.dead_letter_topic.as_deref();
            let origin = if dlq == Some(&*record.topic) {
                Arc::new(Origin {
                    role: Role::DeadLetter,
                    source: origin.source.clone(),
                })
            } else {
                origin.clone()
            };
            if origin.role == Role::Output {
                if let Some(error) = self.take_refusal(&record) {
                    self.refuse(&record, origin.source.as_ref(), error)?;
                    continue;
                }
            }
            if !self.isolating() {
                self.send_record(&record, origin)?;
            } else if let Some(error) = self.send_alone(&record, origin)? {
                // The culprit: the transaction cannot commit, and its redo hands the record to
                // the production handler.
                self.refusals
                    .insert(Fingerprint::of(&record), error.clone());
                self.culprit_found = true;
                return Err(StreamsError::kafka("delivering a record sent alone")(error));
            }
        }
        for (topic, entries) in &drained.changelog {
            for entry in entries {
                let mut base: BaseRecord<'_, [u8], [u8], Box<Sent>> = BaseRecord::with_opaque_to(
                    topic,
                    Box::new(Sent {
                        origin: self.changelog.clone(),
                        timestamp: 0,
                    }),
                )
                .partition(partition)
                .key(&entry.key);
                if let Some(value) = &entry.value {
                    base = base.payload(value);
                }
                self.produce(base).map_err(|(error, _)| {
                    StreamsError::kafka("producing a changelog record")(error)
                })?;
            }
        }
        Ok(())
    }

    /// Notes that the input at `offset` of `topic`/`partition` was processed (again): once the
    /// redo has passed the last input of a suspect there, outputs no longer need isolating.
    pub(crate) fn processed(&mut self, topic: &str, partition: i32, offset: i64) {
        let position = (topic.to_string(), partition);
        if self
            .isolate_until
            .get(&position)
            .is_some_and(|last| offset > *last)
        {
            self.isolate_until.remove(&position);
        }
    }

    /// Notes that every task punctuated: suspects produced by a punctuation were redone.
    pub(crate) fn punctuated(&mut self) {
        self.isolate_unsourced = false;
    }

    /// Forgets the isolation of inputs of `partitions`, whose tasks this instance gave up.
    pub(crate) fn forget(&mut self, partitions: &[i32]) {
        self.isolate_until
            .retain(|(_, partition), _| !partitions.contains(partition));
    }

    /// The broker's reason if `record` is a culprit of an aborted transaction (or one already
    /// handled in the open one).
    fn take_refusal(&mut self, record: &RawRecord) -> Option<KafkaError> {
        if self.refusals.is_empty() && self.handled.is_empty() {
            return None;
        }
        let fingerprint = Fingerprint::of(record);
        if let Some(error) = self.refusals.remove(&fingerprint) {
            self.handled.insert(fingerprint, error.clone());
            return Some(error);
        }
        self.handled.get(&fingerprint).cloned()
    }

    /// Whether outputs are sent alone (exactly-once, after a refusal; see the module doc).
    fn isolating(&self) -> bool {
        self.isolate_unsourced || !self.isolate_until.is_empty()
    }

    /// Sends `record` and waits for its delivery report, and for every other record in
    /// flight: the broker judges it alone. Returns the broker's refusal of it; a refused dead
    /// letter (alone, so the culprit) and every other failure are errors.
    fn send_alone(
        &mut self,
        record: &RawRecord,
        origin: Arc<Origin>,
    ) -> Result<Option<KafkaError>, StreamsError> {
        self.send_record(record, origin)?;
        self.await_acks()?;
        let failures = self.tracker.take_failures();
        if let Some(error) = failures.other {
            return Err(StreamsError::kafka("delivering records")(error));
        }
        let mut refusal = None;
        for refused in failures.refused {
            fail_on_dead_letter(&refused)?;
            refusal = Some(refused.error);
        }
        Ok(refusal)
    }

    /// Sends one output record or dead letter; one the client refuses for a reason of its own
    /// goes to the production handler at once.
    fn send_record(&mut self, record: &RawRecord, origin: Arc<Origin>) -> Result<(), StreamsError> {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], Box<Sent>> = BaseRecord::with_opaque_to(
            &record.topic,
            Box::new(Sent {
                origin,
                timestamp: record.timestamp,
            }),
        )
        .timestamp(record.timestamp)
        .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        if let Some(value) = &record.value {
            base = base.payload(value);
        }
        if let Some(p) = record.partition {
            base = base.partition(p);
        }
        match self.produce(base) {
            Ok(()) => Ok(()),
            Err((error, _)) if !refusal::is_refusal(&error) => {
                Err(StreamsError::kafka("producing")(error))
            }
            Err((error, origin)) if origin.role == Role::DeadLetter => {
                Err(StreamsError::DeadLetterRefused {
                    topic: record.topic.to_string(),
                    source: error,
                })
            }
            Err((error, origin)) => self.refuse(record, origin.source.as_ref(), error),
        }
    }

    /// Applies the production handler to `record`, refused for a reason of its own.
    fn refuse(
        &mut self,
        record: &RawRecord,
        source: Option<&SourceCoordinates>,
        error: KafkaError,
    ) -> Result<(), StreamsError> {
        let handlers = &self.config.handlers;
        match (handlers.production, &handlers.dead_letter_topic) {
            (ErrorAction::Fail, _) => Err(StreamsError::Refused {
                topic: record.topic.to_string(),
                source: error,
            }),
            (ErrorAction::DeadLetter, Some(dlq)) => {
                tracing::warn!(topic = %record.topic, %error, "refused record sent to the dead-letter topic");
                let timestamp = refusal::dead_letter_timestamp(source, wall_clock_ms());
                let reason = error.to_string();
                let mut dead = dead_letter(record, dlq, "production", &reason, source, timestamp);
                dead.headers.push((
                    dead_letter_headers::OUTPUT_TOPIC.to_string(),
                    record.topic.as_bytes().to_vec(),
                ));
                self.metrics
                    .production_dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                let origin = Arc::new(Origin {
                    role: Role::DeadLetter,
                    source: source.cloned(),
                });
                self.send_record(&dead, origin)
            }
            _ => {
                tracing::warn!(topic = %record.topic, %error, "refused record dropped");
                self.metrics
                    .production_dropped
                    .fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Hands `record` to the producer, waiting while its queue is full; on failure returns the
    /// error with the record's origin.
    fn produce(
        &mut self,
        mut record: BaseRecord<'_, [u8], [u8], Box<Sent>>,
    ) -> Result<(), (KafkaError, Arc<Origin>)> {
        self.dirty = true;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.metrics.produced.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The queue drains as the broker acknowledges; wait for some of it.
                    let _ = self.producer.flush(Duration::from_millis(100));
                }
                Err((error, back)) => return Err((error, back.delivery_opaque.origin)),
            }
        }
    }

    /// Waits until every record sent so far is acknowledged. librdkafka's `flush` (also inside
    /// `commit_transaction`) serves its queue in 100 ms slices, so calling it with records in
    /// flight stalls each commit by up to 100 ms; waiting on the in-flight count first makes
    /// the flush that follows return at once.
    pub(crate) fn await_acks(&self) -> Result<(), StreamsError> {
        let deadline = Instant::now() + TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(StreamsError::kafka("waiting for acknowledgements")(
                    KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// At-least-once: flushes the producer, then sends every record refused in a batch again
    /// alone, so the broker judges it by itself; one refused alone goes to the production
    /// handler (a dead letter refused alone stops the instance). Any other failure stops the
    /// instance before the offsets commit, so the records are produced again after the
    /// restart. A suspect delivered this way lands after the records its partition received
    /// since.
    pub(crate) fn flush(&mut self) -> Result<(), StreamsError> {
        self.producer
            .flush(TIMEOUT)
            .map_err(StreamsError::kafka("flushing the producer"))?;
        let failures = self.tracker.take_failures();
        if let Some(error) = failures.other {
            return Err(StreamsError::kafka("delivering records")(error));
        }
        for refused in failures.refused {
            let source = refused.origin.source.clone();
            if let Some(error) = self.send_alone(&refused.record, refused.origin)? {
                self.refuse(&refused.record, source.as_ref(), error)?;
            }
        }
        self.await_acks()?;
        self.check_deliveries()
    }

    /// Fails on any delivery failure since the last check (exactly-once: the transaction
    /// that follows a failure must not commit).
    fn check_deliveries(&self) -> Result<(), StreamsError> {
        let failures = self.tracker.take_failures();
        if let Some(refused) = failures.refused.into_iter().next() {
            fail_on_dead_letter(&refused)?;
            return Err(StreamsError::kafka("delivering records")(refused.error));
        }
        failures.other.map_or(Ok(()), |e| {
            Err(StreamsError::kafka("delivering records")(e))
        })
    }

    /// Exactly-once: adds the consumed `offsets` of `group` to the open transaction.
    pub(crate) fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), StreamsError> {
        self.producer
            .send_offsets_to_transaction(offsets, group, TIMEOUT)
            .map_err(StreamsError::kafka("adding offsets to the transaction"))
    }

    /// Exactly-once: commits the open transaction, and fails on any delivery failure in it.
    pub(crate) fn commit_transaction(&self) -> Result<(), StreamsError> {
        self.producer
            .commit_transaction(TIMEOUT)
            .map_err(StreamsError::kafka("committing the transaction"))?;
        self.check_deliveries()
    }

    /// Exactly-once: begins the next transaction.
    pub(crate) fn begin_transaction(&self) -> Result<(), StreamsError> {
        self.producer
            .begin_transaction()
            .map_err(StreamsError::kafka("beginning a transaction"))
    }

    /// Notes a successful commit: nothing is produced since, and the culprits handled in the
    /// committed transaction are done with.
    pub(crate) fn committed(&mut self) {
        self.handled.clear();
        self.dirty = false;
    }

    /// Exactly-once: aborts the open transaction, then learns the records its broker refused
    /// in batches (the redo sends outputs alone until it has passed the inputs they came
    /// from) and keeps the culprits handled in it for the redo.
    pub(crate) fn abort(&mut self) -> AbortedSends {
        if let Err(error) = self.producer.abort_transaction(TIMEOUT) {
            tracing::warn!(%error, "abort failed; the new producer's initialization aborts instead");
        }
        // The delivery report of a refused record may still wait in the queue the producer's
        // thread serves; the in-flight count covers those reports too.
        if let Err(error) = self.await_acks() {
            tracing::warn!(%error, "delivery reports of the aborted transaction");
        }
        self.dirty = false;
        let refused = self.tracker.take_failures().refused;
        for suspect in &refused {
            match &suspect.origin.source {
                Some(source) => {
                    let last = self
                        .isolate_until
                        .entry((source.topic.to_string(), source.partition))
                        .or_insert(source.offset);
                    *last = (*last).max(source.offset);
                }
                None => self.isolate_unsourced = true,
            }
        }
        let handled = std::mem::take(&mut self.handled);
        self.refusals.extend(handled);
        AbortedSends {
            suspects: refused.len(),
            culprit: std::mem::take(&mut self.culprit_found),
        }
    }

    /// Replaces the producer after an abort. The new one has the same transactional id, so
    /// `init_transactions` bumps the epoch, and starts with clean sequence numbers and no
    /// delivery reports of the aborted work; librdkafka's own producer may fail the next
    /// transaction once with "skipped sequence numbers" after a refused record.
    pub(crate) fn renew_producer(&mut self) -> Result<(), StreamsError> {
        (self.producer, self.tracker) =
            create_producer(&self.config, self.transactional_id.as_deref())?;
        Ok(())
    }

    /// After an error stopped the thread: under exactly-once aborts the open transaction, so
    /// nothing of the failed work becomes visible; forgets every isolation.
    pub(crate) fn abandon(&mut self) {
        if self.transactional_id.is_some() {
            if let Err(error) = self.producer.abort_transaction(TIMEOUT) {
                tracing::warn!(%error, "aborting the open transaction");
            }
        }
        self.isolate_until.clear();
    }
}

/// Stops on a refused dead letter: the record it stands for can go nowhere else.
fn fail_on_dead_letter(refused: &Refused) -> Result<(), StreamsError> {
    if refused.origin.role == Role::DeadLetter {
        return Err(StreamsError::DeadLetterRefused {
            topic: refused.record.topic.to_string(),
            source: refused.error.clone(),
        });
    }
    Ok(())
}

/// The instance's producer, idempotent, and under exactly-once transactional with its first
/// transaction begun (`init_transactions` fences any older producer with the same id).
fn create_producer(
    config: &StreamsConfig,
    transactional_id: Option<&str>,
) -> Result<(ThreadedProducer<DeliveryTracker>, DeliveryTracker), StreamsError> {
    let tracker = DeliveryTracker::default();
    let mut defaults = vec![
        ("enable.idempotence", "true"),
        ("acks", "all"),
        // Kafka's Java partitioner, so keys land where Kafka Streams would put them.
        ("partitioner", "murmur2_random"),
        ("linger.ms", "5"),
    ];
    if let Some(id) = transactional_id {
        defaults.push(("transactional.id", id));
        defaults.push(("transaction.timeout.ms", "10000"));
    }
    let producer: ThreadedProducer<DeliveryTracker> = config
        .client(&defaults)
        .create_with_context(tracker.clone())
        .map_err(StreamsError::kafka("creating the producer"))?;
    if transactional_id.is_some() {
        producer
            .init_transactions(TIMEOUT)
            .map_err(StreamsError::kafka("initializing transactions"))?;
        producer
            .begin_transaction()
            .map_err(StreamsError::kafka("beginning a transaction"))?;
    }
    Ok((producer, tracker))
}
