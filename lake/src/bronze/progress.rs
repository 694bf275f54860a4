//! Has the sink committed past a data interval's end? (`lakehouse bronze-progress`)
//!
//! A partition is done when the sink has committed a record with `kafka_timestamp ≥ end`, or
//! committed up to the partition's high watermark (nothing more to read), or the partition holds
//! no records at all.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, Int32Array};
use deltalake::datafusion::prelude::{col, lit, SessionContext};
use deltalake::datafusion::scalar::ScalarValue;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::sink::Route;
use super::{committed_offsets, PARTITION_COLUMN};
use crate::storage::Lake;
use crate::LakeError;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// One partition's state against the interval end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset the sink committed (`None`: nothing yet).
    pub committed: Option<i64>,
    /// The partition's high watermark when checked.
    pub high_watermark: i64,
    /// Whether the sink is past the interval end on this partition.
    pub done: bool,
}

/// Every partition of every routed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BronzeProgress {
    /// In topic, partition order.
    pub partitions: Vec<PartitionStatus>,
}

impl BronzeProgress {
    /// True when every partition is done.
    pub fn complete(&self) -> bool {
        self.partitions.iter().all(|p| p.done)
    }

    /// The partitions that are not done yet.
    pub fn missing(&self) -> impl Iterator<Item = &PartitionStatus> {
        self.partitions.iter().filter(|p| !p.done)
    }
}

/// Low and high watermark per `(topic, partition)`.
type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// Low and high watermarks of every partition of `topics`.
fn watermarks(
    bootstrap_servers: &str,
    client_properties: &BTreeMap<String, String>,
    topics: &[String],
) -> Result<Watermarks, LakeError> {
    let mut config = ClientConfig::new();
    for (name, value) in client_properties {
        config.set(name, value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .map_err(LakeError::kafka("create a metadata client"))?;
    let mut marks = BTreeMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
            .map_err(LakeError::kafka("read topic metadata"))?;
        let Some(found) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        else {
            return Err(LakeError::Config(format!("topic {topic} does not exist")));
        };
        for partition in found.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), KAFKA_TIMEOUT)
                .map_err(LakeError::kafka("read watermarks"))?;
            marks.insert((topic.clone(), partition.id()), (low, high));
        }
    }
    Ok(marks)
}

/// The partitions of `topic` in `table` holding a record with `kafka_timestamp ≥ end`.
async fn partitions_past(
    table: &deltalake::DeltaTable,
    name: &str,
    topic: &str,
    end: DateTime<Utc>,
) -> Result<Vec<i32>, LakeError> {
    let query = |source| LakeError::Query {
        table: name.to_owned(),
        source: Box::new(source),
    };
    let ctx = SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(LakeError::delta(name, "prepare a query"))?;
    let provider = table.table_provider().await.map_err(query)?;
    let end_day = i32::try_from(end.timestamp().div_euclid(86_400)).unwrap_or(i32::MAX);
    let frame = ctx
        .read_table(provider)
        .map_err(query)?
        .filter(
            col("topic")
                .eq(lit(topic))
                .and(col(PARTITION_COLUMN).gt_eq(lit(ScalarValue::Date32(Some(end_day)))))
                .and(
                    col("kafka_timestamp").gt_eq(lit(ScalarValue::TimestampMicrosecond(
                        Some(end.timestamp_micros()),
                        Some("UTC".into()),
                    ))),
                ),
        )
        .map_err(query)?
        .select(vec![col("partition")])
        .map_err(query)?
        .distinct()
        .map_err(query)?;
    let mut partitions = Vec::new();
    for batch in frame.collect().await.map_err(query)? {
        if let Some(column) = batch.column(0).as_any().downcast_ref::<Int32Array>() {
            partitions.extend(column.iter().flatten());
        }
    }
    Ok(partitions)
}

/// Checks, for every partition of every routed topic, whether `sink_id` has committed past `end`.
pub async fn bronze_progress(
    lake: &Lake,
    bootstrap_servers: &str,
    client_properties: &BTreeMap<String, String>,
    routes: &[Route],
    sink_id: &str,
    end: DateTime<Utc>,
) -> Result<BronzeProgress, LakeError> {
    let topics: Vec<String> = routes.iter().map(|r| r.topic.clone()).collect();
    let (bootstrap, properties) = (bootstrap_servers.to_owned(), client_properties.clone());
    let marks = tokio::task::spawn_blocking(move || watermarks(&bootstrap, &properties, &topics))
        .await
        .map_err(|join| LakeError::Config(format!("the watermark reader failed: {join}")))??;
    let mut partitions = Vec::new();
    for route in routes {
        let table = lake.open(&route.table).await?;
        let of_topic: Vec<(i32, i64, i64)> = marks
            .iter()
            .filter(|((t, _), _)| *t == route.topic)
            .map(|((_, p), (low, high))| (*p, *low, *high))
            .collect();
        let numbers: Vec<i32> = of_topic.iter().map(|(p, _, _)| *p).collect();
        let (committed, past) = match &table {
            Some(table) => (
                committed_offsets(table, &route.table, sink_id, &route.topic, numbers).await?,
                partitions_past(table, &route.table, &route.topic, end).await?,
            ),
            None => (BTreeMap::new(), Vec::new()),
        };
        for (partition, low, high) in of_topic {
            let next = committed.get(&partition).copied();
            let done = next.is_some_and(|n| n >= high)
                || (next.is_none() && low == high)
                || past.contains(&partition);
            partitions.push(PartitionStatus {
                topic: route.topic.clone(),
                partition,
                committed: next,
                high_watermark: high,
                done,
            });
        }
    }
    Ok(BronzeProgress { partitions })
}
