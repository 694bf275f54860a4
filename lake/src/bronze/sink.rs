//! The exactly-once Kafka → Bronze sink.
//!
//! One consumer (group = sink id, `read_committed`, no auto-commit) reads the routed topics and
//! buffers records per partition. On a size or time threshold it makes ONE Delta commit per table
//! with the data and the next offset of every partition in it ([`super::commit`]). On every
//! assignment the partitions are positioned at the offsets in the table's log (the beginning when
//! there are none), inside the rebalance callback, before anything is fetched; revoked partitions'
//! buffers are dropped (their offsets were not committed to Delta, so nothing is lost). Offsets
//! committed to Kafka are informational only (lag tools); the table's log is the truth.
//!
//! ```no_run
//! # fn demo() -> Result<(), lake::LakeError> {
//! use lake::bronze::sink::{parse_routes, BronzeSink, SinkConfig, DEFAULT_ROUTES};
//! let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
//! let config = SinkConfig::new("127.0.0.1:9092", parse_routes(DEFAULT_ROUTES)?);
//! let sink = BronzeSink::new(lake::storage::Lake::parse("./lake")?, config)?;
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! sink.run(runtime.handle(), stopped)?; // until `_stop.send(true)`
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use deltalake::DeltaTable;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::commit::{append_exactly_once, refresh, RetryPolicy};
use super::metrics::SinkMetrics;
use super::{columns, committed_offsets, BronzeRecord, Positions, PARTITION_COLUMN};
use crate::storage::Lake;
use crate::LakeError;

/// The platform's topics and their Bronze tables (LAKE-CONTRACT.md).
pub const DEFAULT_ROUTES: &str = "crypto.prices.raw=bronze/prices_raw,\
crypto.prices.dlq=bronze/dead_letters,crypto.alerts=bronze/alerts";

/// How long one poll waits for a record before the loop looks at the stop signal and the timer.
const POLL: Duration = Duration::from_millis(100);

/// How long the sink waits for the broker's metadata at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic and the Bronze table it is appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The Kafka topic.
    pub topic: String,
    /// The table under the lake root, like `bronze/prices_raw`.
    pub table: String,
}

/// Parses `topic=table,topic=table`; a topic may appear once.
pub fn parse_routes(text: &str) -> Result<Vec<Route>, LakeError> {
    let mut routes: Vec<Route> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((topic, table)) = item.split_once('=') else {
            return Err(LakeError::Config(format!(
                "route {item:?} is not topic=table"
            )));
        };
        let (topic, table) = (topic.trim(), table.trim().trim_matches('/'));
        if topic.is_empty() || table.is_empty() {
            return Err(LakeError::Config(format!(
                "route {item:?} is not topic=table"
            )));
        }
        if routes.iter().any(|r| r.topic == topic) {
            return Err(LakeError::Config(format!("topic {topic} is routed twice")));
        }
        routes.push(Route {
            topic: topic.to_owned(),
            table: table.to_owned(),
        });
    }
    if routes.is_empty() {
        return Err(LakeError::Config("no topic=table route given".to_owned()));
    }
    Ok(routes)
}

/// What a sink reads, where it writes, and when it commits.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// Consumer group and prefix of the `txn` app ids; instances with the same id share the work.
    pub sink_id: String,
    /// Topics and their tables.
    pub routes: Vec<Route>,
    /// Commit when this many records are buffered.
    pub flush_records: usize,
    /// Commit when the oldest buffered record has waited this long.
    pub flush_interval: Duration,
    /// Static group membership (`group.instance.id`): a restarted instance takes its partitions
    /// back at once instead of waiting for the session timeout.
    pub instance_id: Option<String>,
    /// Extra librdkafka properties (security, timeouts); they cannot turn auto-commit back on.
    pub client_properties: BTreeMap<String, String>,
    /// Retries of commits.
    pub retry: RetryPolicy,
}

impl SinkConfig {
    /// A configuration with the defaults: sink id `lake-sink`, 10 000 records or 5 s per commit.
    pub fn new(bootstrap_servers: &str, routes: Vec<Route>) -> SinkConfig {
        SinkConfig {
            bootstrap_servers: bootstrap_servers.to_owned(),
            sink_id: "lake-sink".to_owned(),
            routes,
            flush_records: 10_000,
            flush_interval: Duration::from_secs(5),
            instance_id: None,
            client_properties: BTreeMap::new(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A Kafka → Bronze sink, ready to [`run`](BronzeSink::run).
pub struct BronzeSink {
    lake: Lake,
    config: SinkConfig,
    metrics: Arc<SinkMetrics>,
}

impl BronzeSink {
    /// A sink writing to `lake` as `config` says.
    pub fn new(lake: Lake, config: SinkConfig) -> Result<BronzeSink, LakeError> {
        if config.sink_id.is_empty() {
            return Err(LakeError::Config("the sink id is empty".to_owned()));
        }
        if config.flush_records == 0 {
            return Err(LakeError::Config("flush records must be ≥ 1".to_owned()));
        }
        for route in &config.routes {
            lake.table_url(&route.table)?;
        }
        Ok(BronzeSink {
            lake,
            config,
            metrics: Arc::new(SinkMetrics::default()),
        })
    }

    /// The sink's counters, live while it runs.
    pub fn metrics(&self) -> Arc<SinkMetrics> {
        self.metrics.clone()
    }

    /// Runs until `stop` turns true, then commits what is buffered and returns. Blocking: call it
    /// on a thread that is not running async code (a plain thread or `spawn_blocking`); Delta I/O
    /// runs on `io`. A store failure that outlasts the retries stops it with the error.
    pub fn run(self, io: &Handle, stop: watch::Receiver<bool>) -> Result<(), LakeError> {
        let mut tables = BTreeMap::new();
        for route in &self.config.routes {
            if !tables.contains_key(&route.table) {
                let table = io.block_on(self.lake.open_or_create(
                    &route.table,
                    columns(),
                    &[PARTITION_COLUMN],
                ))?;
                tables.insert(route.table.clone(), table);
            }
        }
        let context = SinkContext {
            io: io.clone(),
            sink_id: self.config.sink_id.clone(),
            table_of: self
                .config
                .routes
                .iter()
                .map(|r| (r.topic.clone(), r.table.clone()))
                .collect(),
            metrics: self.metrics.clone(),
            state: Mutex::new(SinkState {
                tables,
                partitions: HashMap::new(),
                buffered: 0,
                oldest: None,
                fatal: None,
            }),
        };
        let consumer = self.consumer(context)?;
        self.check_topics(&consumer)?;
        let topics: Vec<&str> = self
            .config
            .routes
            .iter()
            .map(|r| r.topic.as_str())
            .collect();
        consumer
            .subscribe(&topics)
            .map_err(LakeError::kafka("subscribe"))?;
        tracing::info!(sink_id = %self.config.sink_id, ?topics, lake = %self.lake.root(), "bronze sink started");
        let mut last_idle_check = Instant::now();
        while !*stop.borrow() {
            if let Some(message) = consumer.poll(POLL) {
                match message {
                    Ok(message) => consumer.context().accept(to_record(&message)),
                    Err(error) => {
                        self.metrics.consumer_error();
                        tracing::warn!(%error, "consumer error");
                    }
                }
            }
            let context = consumer.context();
            if let Some(error) = context.lock().fatal.take() {
                return Err(error);
            }
            if context.due(&self.config) {
                self.flush(&consumer)?;
            } else if last_idle_check.elapsed() >= self.config.flush_interval {
                // Offsets taken by transaction markers or aborted records move no record into
                // the buffer; record the position anyway, or progress checks would wait forever.
                last_idle_check = Instant::now();
                if !self.positions_ahead(&consumer, true).is_empty() {
                    self.flush(&consumer)?;
                }
            }
        }
        self.flush(&consumer)?;
        tracing::info!(sink_id = %self.config.sink_id, "bronze sink stopped after its last commit");
        Ok(())
    }

    fn consumer(&self, context: SinkContext) -> Result<BaseConsumer<SinkContext>, LakeError> {
        let mut client = ClientConfig::new();
        for (name, value) in &self.config.client_properties {
            client.set(name, value);
        }
        client
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("group.id", &self.config.sink_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        if let Some(instance) = &self.config.instance_id {
            client.set("group.instance.id", instance);
        }
        client
            .create_with_context(context)
            .map_err(LakeError::kafka("create the consumer"))
    }

    /// Fails with a clear error when a routed topic does not exist.
    fn check_topics(&self, consumer: &BaseConsumer<SinkContext>) -> Result<(), LakeError> {
        let metadata = consumer
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(LakeError::kafka("read the cluster metadata"))?;
        for route in &self.config.routes {
            let present = metadata
                .topics()
                .iter()
                .any(|t| t.name() == route.topic && t.error().is_none());
            if !present {
                return Err(LakeError::Config(format!(
                    "topic {} does not exist on {}",
                    route.topic, self.config.bootstrap_servers
                )));
            }
        }
        Ok(())
    }

    /// The consumer positions of assigned partitions that are ahead of their committed offset
    /// (with `idle_only`, only of partitions with nothing buffered).
    fn positions_ahead(&self, consumer: &BaseConsumer<SinkContext>, idle_only: bool) -> Positions {
        let Ok(list) = consumer.position() else {
            return Positions::new();
        };
        let state = consumer.context().lock();
        let ahead: Positions = list
            .elements()
            .into_iter()
            .filter_map(|element| {
                let Offset::Offset(position) = element.offset() else {
                    return None;
                };
                let key = (element.topic().to_owned(), element.partition());
                let assigned = state.partitions.get(&key)?;
                let ahead = assigned.committed.is_none_or(|c| position > c);
                (ahead && (!idle_only || assigned.buffer.is_empty())).then_some((key, position))
            })
            .collect();
        ahead
    }

    /// One exactly-once commit per table with buffered records or positions ahead of the log;
    /// then (informational) the same offsets to Kafka.
    fn flush(&self, consumer: &BaseConsumer<SinkContext>) -> Result<(), LakeError> {
        let positions = self.positions_ahead(consumer, false);
        let context = consumer.context();
        let mut state = context.lock();
        let mut by_table: BTreeMap<String, (Vec<BronzeRecord>, Positions)> = BTreeMap::new();
        for ((topic, _), partition) in state.partitions.iter_mut() {
            if let Some(table) = context.table_of.get(topic) {
                by_table
                    .entry(table.clone())
                    .or_default()
                    .0
                    .append(&mut partition.buffer);
            }
        }
        for (key, position) in positions {
            if let Some(table) = context.table_of.get(&key.0) {
                by_table
                    .entry(table.clone())
                    .or_default()
                    .1
                    .insert(key, position);
            }
        }
        state.buffered = 0;
        state.oldest = None;
        for (name, (records, positions)) in by_table {
            if records.is_empty() && positions.is_empty() {
                continue;
            }
            let Some(table) = state.tables.get_mut(&name) else {
                continue;
            };
            let progress = context.io.block_on(append_exactly_once(
                table,
                &name,
                &self.config.sink_id,
                records,
                positions,
                &self.config.retry,
                &self.metrics,
            ))?;
            let mut offsets = TopicPartitionList::new();
            for ((topic, partition), next) in progress {
                if let Some(assigned) = state.partitions.get_mut(&(topic.clone(), partition)) {
                    assigned.committed = Some(assigned.committed.map_or(next, |c| c.max(next)));
                    assigned.next = Some(assigned.next.map_or(next, |n| n.max(next)));
                    // Ignored: the partition is in the list once.
                    let _ = offsets.add_partition_offset(&topic, partition, Offset::Offset(next));
                }
            }
            if offsets.count() > 0 {
                if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
                    tracing::debug!(%error, "informational offset commit to Kafka failed");
                }
            }
        }
        Ok(())
    }
}

/// A partition assigned to this instance.
struct AssignedPartition {
    /// The next offset in the table's log, as last read or written here.
    committed: Option<i64>,
    /// The offset the next accepted record must reach (`None`: from the beginning).
    next: Option<i64>,
    /// Records read but not yet committed to Delta.
    buffer: Vec<BronzeRecord>,
}

/// What the poll loop and the rebalance callback (which runs inside `poll`, on the same thread)
/// share.
struct SinkState {
    tables: BTreeMap<String, DeltaTable>,
    partitions: HashMap<(String, i32), AssignedPartition>,
    buffered: usize,
    oldest: Option<Instant>,
    /// An error the rebalance callback could not return; the loop stops with it.
    fatal: Option<LakeError>,
}

struct SinkContext {
    io: Handle,
    sink_id: String,
    table_of: HashMap<String, String>,
    metrics: Arc<SinkMetrics>,
    state: Mutex<SinkState>,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.metrics.rebalance();
                if let Err(error) = self.position_at_committed(tpl) {
                    self.lock().fatal = Some(error);
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.drop_partitions(tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error; dropping the assignment");
                self.drop_all();
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            self.lock().fatal = Some(LakeError::Kafka {
                operation: "apply a partition assignment",
                source: error,
            });
        }
    }
}

impl SinkContext {
    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets each newly assigned partition's start to the next offset in its table's log.
    fn position_at_committed(&self, tpl: &mut TopicPartitionList) -> Result<(), LakeError> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for element in tpl.elements() {
            by_topic
                .entry(element.topic().to_owned())
                .or_default()
                .push(element.partition());
        }
        let mut state = self.lock();
        for (topic, partitions) in by_topic {
            let Some(name) = self.table_of.get(&topic) else {
                continue;
            };
            let Some(table) = state.tables.get_mut(name) else {
                continue;
            };
            let committed = self.io.block_on(async {
                refresh(table, name).await?;
                committed_offsets(table, name, &self.sink_id, &topic, partitions.clone()).await
            })?;
            for partition in partitions {
                let next = committed.get(&partition).copied();
                let offset = next.map_or(Offset::Beginning, Offset::Offset);
                tpl.set_partition_offset(&topic, partition, offset)
                    .map_err(LakeError::kafka("position an assigned partition"))?;
                tracing::info!(%topic, partition, ?next, "assigned; resuming from the table's log");
                state.partitions.insert(
                    (topic.clone(), partition),
                    AssignedPartition {
                        committed: next,
                        next,
                        buffer: Vec::new(),
                    },
                );
            }
        }
        Ok(())
    }

    fn drop_partitions(&self, tpl: &TopicPartitionList) {
        let mut state = self.lock();
        for element in tpl.elements() {
            let key = (element.topic().to_owned(), element.partition());
            if let Some(revoked) = state.partitions.remove(&key) {
                state.buffered -= revoked.buffer.len();
                tracing::info!(topic = %key.0, partition = key.1, dropped = revoked.buffer.len(),
                    "revoked; uncommitted records dropped (the next owner reads them again)");
            }
        }
    }

    fn drop_all(&self) {
        let mut state = self.lock();
        state.partitions.clear();
        state.buffered = 0;
        state.oldest = None;
    }

    /// Buffers `record` if its partition is assigned here and the record is past the partition's
    /// committed progress.
    fn accept(&self, record: BronzeRecord) {
        let mut state = self.lock();
        let key = (record.topic.clone(), record.partition);
        let Some(partition) = state.partitions.get_mut(&key) else {
            self.metrics.not_assigned();
            return;
        };
        if partition.next.is_some_and(|next| record.offset < next) {
            self.metrics.already_committed(1);
            return;
        }
        partition.next = Some(record.offset + 1);
        partition.buffer.push(record);
        state.buffered += 1;
        state.oldest.get_or_insert_with(Instant::now);
    }

    fn due(&self, config: &SinkConfig) -> bool {
        let state = self.lock();
        state.buffered >= config.flush_records
            || state
                .oldest
                .is_some_and(|t| t.elapsed() >= config.flush_interval)
    }
}

fn to_record(message: &BorrowedMessage<'_>) -> BronzeRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    BronzeRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_reject_bad_input() -> Result<(), LakeError> {
        let routes = parse_routes(DEFAULT_ROUTES)?;
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1].topic, "crypto.prices.dlq");
        assert_eq!(routes[1].table, "bronze/dead_letters");
        assert!(parse_routes("a").is_err());
        assert!(parse_routes("a=").is_err());
        assert!(parse_routes("a=x,a=y").is_err());
        assert!(parse_routes(" ").is_err());
        Ok(())
    }
}
