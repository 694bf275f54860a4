//! The stream thread: polls, processes, punctuates and commits; reacts to rebalances.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

use crate::error::StreamsError;

use super::assignment::TaskManager;
use super::metrics::ConsumerLag;

const POLL: Duration = Duration::from_millis(50);
const PUNCTUATE_EVERY: Duration = Duration::from_millis(100);

/// Shared between the loop and the rebalance callbacks (which run inside `poll`).
pub(crate) struct Shared {
    pub(crate) tasks: Mutex<TaskManager>,
    /// First error raised inside a rebalance callback, surfaced by the loop.
    pub(crate) error: Mutex<Option<StreamsError>>,
    /// Consumer lag per partition, from librdkafka's statistics.
    pub(crate) lag: ConsumerLag,
}

impl Shared {
    pub(crate) fn tasks(&self) -> MutexGuard<'_, TaskManager> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail(&self, error: StreamsError) {
        tracing::error!(%error, "rebalance failed");
        let mut slot = self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }
}

pub(crate) struct RebalanceContext(pub(crate) Arc<Shared>);

fn partitions(list: &TopicPartitionList) -> BTreeSet<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for RebalanceContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.lag.record(&statistics);
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if let Err(error) = self.0.tasks().revoke(partitions(list), consumer) {
                self.0.fail(error);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            if let Err(error) = self.0.tasks().assign(partitions(list)) {
                self.0.fail(error);
            }
        }
    }
}

/// Runs until `running` is cleared or an error stops it (a record failing with a failing
/// handler, a failing store, a cluster failure it cannot recover from); then commits and closes
/// the tasks (after an error: drops them uncommitted) and leaves the group.
pub(crate) fn run(
    consumer: BaseConsumer<RebalanceContext>,
    shared: Arc<Shared>,
    running: Arc<AtomicBool>,
) -> Result<(), StreamsError> {
    let mut last_punctuation = Instant::now();
    let result = (|| {
        while running.load(Ordering::Relaxed) {
            let message = consumer.poll(POLL);
            if let Some(error) = shared
                .error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                return Err(error);
            }
            let mut tasks = shared.tasks();
            let step = (|| {
                match message {
                    Some(Ok(message)) => tasks.process(&message)?,
                    Some(Err(error)) => tracing::warn!(%error, "consumer error"),
                    None => {}
                }
                if last_punctuation.elapsed() >= PUNCTUATE_EVERY {
                    tasks.punctuate()?;
                    last_punctuation = Instant::now();
                }
                tasks.maybe_commit(&consumer)
            })();
            let partitions = tasks.partitions();
            tasks.recover_or_fail(step, &consumer, &partitions)?;
        }
        Ok(())
    })();
    let shutdown = match &result {
        Ok(()) => shared.tasks().shutdown(&consumer),
        Err(_) => {
            shared.tasks().abandon();
            Ok(())
        }
    };
    consumer.unsubscribe();
    result.and(shutdown)
}
