//! The runtime's metrics, collected at scrape time into a [`crate::metrics::MetricsRegistry`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::task::TaskMetrics;

use super::thread::Shared;
use super::RuntimeMetrics;

/// Consumer lag per input partition, from librdkafka's statistics.
#[derive(Default)]
pub(crate) struct ConsumerLag(Mutex<BTreeMap<(String, i32), i64>>);

impl ConsumerLag {
    pub(crate) fn record(&self, statistics: &rdkafka::Statistics) {
        let mut lag = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lag.clear();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Records not yet handed to the application: the last stable offset (the end
                // a read_committed consumer can reach) minus the position. librdkafka's own
                // `consumer_lag` counts from its committed offset, which it never learns when
                // offsets are committed through a transaction (exactly-once).
                let behind = if p.app_offset >= 0 && p.ls_offset >= 0 {
                    (p.ls_offset - p.app_offset).max(0)
                } else {
                    p.consumer_lag
                };
                if *partition >= 0 && behind >= 0 {
                    lag.insert((topic.clone(), *partition), behind);
                }
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<(String, i32), i64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The runtime metrics of every streams instance registered with one [`MetricsRegistry`],
/// read at scrape time and labelled `application_id`: each metric family is described once,
/// with one series per instance.
///
/// [`MetricsRegistry`]: crate::metrics::MetricsRegistry
#[derive(Debug, Default)]
pub(crate) struct RuntimeCollector(Mutex<Vec<Instance>>);

/// One instance as the collector sees it: its counters and its task manager, which the
/// collector does not keep alive.
#[derive(Debug)]
struct Instance {
    application_id: String,
    runtime: Arc<RuntimeMetrics>,
    /// One per stream thread.
    threads: Vec<Weak<Shared>>,
}

/// The values of one instance at one scrape.
struct Values<'a> {
    app: &'a str,
    runtime: &'a RuntimeMetrics,
    tasks: TaskMetrics,
    lag: BTreeMap<(String, i32), i64>,
}

impl RuntimeCollector {
    /// Adds an instance; it is reported until [`RuntimeCollector::remove`].
    pub(crate) fn add(
        &self,
        application_id: &str,
        runtime: Arc<RuntimeMetrics>,
        threads: &[Arc<Shared>],
    ) {
        self.instances().push(Instance {
            application_id: application_id.to_string(),
            runtime,
            threads: threads.iter().map(Arc::downgrade).collect(),
        });
    }

    /// Stops reporting the instance whose counters are `runtime`.
    pub(crate) fn remove(&self, runtime: &Arc<RuntimeMetrics>) {
        self.instances()
            .retain(|i| !Arc::ptr_eq(&i.runtime, runtime));
    }

    fn instances(&self) -> MutexGuard<'_, Vec<Instance>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One counter family with the series `series` gives for each instance.
fn counters<'v, const L: usize, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[Values<'v>],
    series: impl Fn(&Values<'v>) -> [([(&'static str, &'v str); L], u64); N],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for v in values {
        for (labels, value) in series(v) {
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
    }
    Ok(())
}

/// A counter family with one series per instance.
fn counter<'v>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[Values<'v>],
    value: impl Fn(&Values<'v>) -> u64,
) -> Result<(), std::fmt::Error> {
    counters(encoder, name, help, values, |v| {
        [([("application_id", v.app)], value(v))]
    })
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let instances = self.instances();
        let values: Vec<Values> = instances
            .iter()
            .filter_map(|i| {
                let threads: Vec<Arc<Shared>> =
                    i.threads.iter().filter_map(Weak::upgrade).collect();
                if threads.is_empty() {
                    return None;
                }
                let mut tasks = TaskMetrics::default();
                let mut lag = BTreeMap::new();
                for shared in threads {
                    tasks.add(&shared.tasks().task_totals());
                    lag.extend(shared.lag.snapshot());
                }
                Some(Values {
                    app: &i.application_id,
                    runtime: &i.runtime,
                    tasks,
                    lag,
                })
            })
            .collect();
        let e = &mut encoder;
        counter(
            e,
            "streamlib_records_consumed",
            "Records consumed from input and repartition topics.",
            &values,
            |v| load(&v.runtime.consumed),
        )?;
        counter(
            e,
            "streamlib_records_processed",
            "Records processed without error.",
            &values,
            |v| v.tasks.processed,
        )?;
        counter(
            e,
            "streamlib_records_produced",
            "Records produced (outputs, repartition, changelog, dead letters).",
            &values,
            |v| load(&v.runtime.produced),
        )?;
        counter(
            e,
            "streamlib_records_late_dropped",
            "Records dropped because their windows had closed.",
            &values,
            |v| v.tasks.late_dropped,
        )?;
        counters(
            e,
            "streamlib_records_dropped",
            "Records dropped by log-and-continue handlers or processors (kind=processing) and \
             records the broker refused that the production handler dropped (kind=production).",
            &values,
            |v| {
                [
                    (
                        [("application_id", v.app), ("kind", "processing")],
                        v.tasks.dropped,
                    ),
                    (
                        [("application_id", v.app), ("kind", "production")],
                        load(&v.runtime.production_dropped),
                    ),
                ]
            },
        )?;
        counters(
            e,
            "streamlib_records_dead_lettered",
            "Records sent to the dead-letter topic: inputs failing deserialization or processing \
             (kind=processing), outputs the broker refused (kind=production).",
            &values,
            |v| {
                [
                    (
                        [("application_id", v.app), ("kind", "processing")],
                        v.tasks.dead_lettered,
                    ),
                    (
                        [("application_id", v.app), ("kind", "production")],
                        load(&v.runtime.production_dead_lettered),
                    ),
                ]
            },
        )?;
        counter(
            e,
            "streamlib_restored_records",
            "Changelog records applied while restoring stores.",
            &values,
            |v| load(&v.runtime.restored),
        )?;
        counter(
            e,
            "streamlib_transactions_aborted",
            "Transactions aborted and recovered from in process (exactly-once).",
            &values,
            |v| load(&v.runtime.aborted_transactions),
        )?;
        counter(
            e,
            "streamlib_enforced_processing",
            "Times a task stopped waiting for an input partition and went on out of timestamp order.",
            &values,
            |v| load(&v.runtime.enforced_processing),
        )?;
        counter(
            e,
            "streamlib_standby_records",
            "Changelog records applied to standby replicas.",
            &values,
            |v| load(&v.runtime.standby_records),
        )?;
        counter(
            e,
            "streamlib_global_records",
            "Records of global tables' topics applied to the global stores.",
            &values,
            |v| load(&v.runtime.global_records),
        )?;
        counter(
            e,
            "streamlib_global_skipped",
            "Records of global tables' topics skipped: a null key, or bytes the serdes do not read.",
            &values,
            |v| load(&v.runtime.global_skipped),
        )?;
        counter(
            e,
            "streamlib_stream_threads_replaced",
            "Stream threads that failed and were replaced.",
            &values,
            |v| load(&v.runtime.replaced_threads),
        )?;
        // Only the sum and the count are kept: a histogram with the +Inf bucket alone.
        let mut family = e.encode_descriptor(
            "streamlib_commit_latency_seconds",
            "Time spent committing.",
            None,
            MetricType::Histogram,
        )?;
        for v in &values {
            family
                .encode_family(&[("application_id", v.app)])?
                .encode_histogram::<NoLabelSet>(
                    load(&v.runtime.commit_micros) as f64 / 1e6,
                    load(&v.runtime.commits),
                    &[],
                    None,
                )?;
        }
        let mut family = e.encode_descriptor(
            "streamlib_tasks",
            "Tasks assigned to this instance.",
            None,
            MetricType::Gauge,
        )?;
        for v in &values {
            family
                .encode_family(&[("application_id", v.app)])?
                .encode_gauge(&load(&v.runtime.tasks))?;
        }
        let mut family = e.encode_descriptor(
            "streamlib_consumer_lag",
            "Records of each input partition not yet handed to the application (last stable offset minus position).",
            None,
            MetricType::Gauge,
        )?;
        for v in &values {
            for ((topic, partition), lag) in &v.lag {
                let partition = partition.to_string();
                family
                    .encode_family(&[
                        ("application_id", v.app),
                        ("topic", topic),
                        ("partition", &partition),
                    ])?
                    .encode_gauge(lag)?;
            }
        }
        Ok(())
    }
}
