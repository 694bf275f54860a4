//! A task's input buffer, Kafka Streams' `PartitionGroup`: the records polled for a task wait
//! here, one queue per input topic, and the task takes them in timestamp order — the smallest
//! head timestamp first — within each of its sub-topologies ([`Topology::source_groups`]), so
//! that a join, a table lookup or a merge sees its inputs in event-time order whatever order
//! the consumer fetched them in. A sub-topology with one input is simply first in, first out.
//!
//! A sub-topology takes its next record only when each of its queues holds one, or when the
//! empty ones have nothing more to give: the consumer has read that partition to the high
//! watermark of its last fetch (Kafka Streams' `max.task.idle.ms = 0`: data not yet produced
//! is not waited for, unless
//! [`StreamsConfig::max_task_idle_caught_up`](super::StreamsConfig::max_task_idle_caught_up)
//! says how long to wait for it, as a positive `max.task.idle.ms` does). Data known to be on
//! the broker, or a partition not fetched yet, is waited for at most
//! [`StreamsConfig::max_task_idle`](super::StreamsConfig::max_task_idle). When the longest
//! wait of its empty queues is over, the sub-topology goes on without them ("enforced
//! processing", counted in [`super::RuntimeMetrics::enforced_processing`]) until a queue
//! receives a record again.
//! Under `read_committed` the high watermark includes records of transactions still open,
//! so a queue fed by an exactly-once producer is waited for until that producer commits.
//!
//! [`Topology::source_groups`]: crate::topology::Topology::source_groups

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::record::RawRecord;

/// The buffered input of one task.
pub(crate) struct PartitionGroup {
    parts: Vec<Part>,
    /// Where each topic's queue is: (part, queue).
    by_topic: HashMap<Arc<str>, (usize, usize)>,
}

/// One sub-topology's queues.
struct Part {
    queues: Vec<Queue>,
    /// Since when the part has records but waits for an empty queue.
    waiting_since: Option<Instant>,
}

struct Queue {
    topic: Arc<str>,
    records: VecDeque<RawRecord>,
    /// Given up on by enforced processing: not waited for until it receives a record.
    passed: bool,
}

/// How long a sub-topology waits for one of its empty queues.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdleLimits {
    /// While data is known to be on the broker for its partition, or it was not fetched yet.
    pub(crate) behind: Duration,
    /// When the consumer has read its partition to the end (zero: not waited for).
    pub(crate) caught_up: Duration,
}

/// The next record of a task, and whether taking it gave up waiting for an empty queue.
pub(crate) struct Next {
    pub(crate) record: RawRecord,
    pub(crate) enforced: bool,
}

impl PartitionGroup {
    /// Empty queues for the topics of each sub-topology in `groups` (full topic names).
    pub(crate) fn new(groups: &[Vec<String>]) -> Self {
        let mut by_topic = HashMap::new();
        let parts = groups
            .iter()
            .enumerate()
            .map(|(p, topics)| Part {
                queues: topics
                    .iter()
                    .enumerate()
                    .map(|(q, topic)| {
                        let topic: Arc<str> = Arc::from(topic.as_str());
                        by_topic.insert(topic.clone(), (p, q));
                        Queue {
                            topic,
                            records: VecDeque::new(),
                            passed: false,
                        }
                    })
                    .collect(),
                waiting_since: None,
            })
            .collect();
        Self { parts, by_topic }
    }

    /// Buffers `record`; returns its queue's length, or the record back when no queue reads
    /// its topic.
    pub(crate) fn push(&mut self, record: RawRecord) -> Result<usize, RawRecord> {
        let Some(&(part, queue)) = self.by_topic.get(&record.topic) else {
            return Err(record);
        };
        let queue = &mut self.parts[part].queues[queue];
        queue.passed = false;
        queue.records.push_back(record);
        Ok(queue.records.len())
    }

    /// Records buffered for `topic`.
    pub(crate) fn buffered(&self, topic: &str) -> usize {
        self.by_topic
            .get(topic)
            .map_or(0, |&(p, q)| self.parts[p].queues[q].records.len())
    }

    /// Takes the record with the smallest timestamp among the sub-topologies that may go on,
    /// or `None` when none may. `caught_up(topic)` tells whether the consumer has read that
    /// topic's partition to its end; it is asked only about empty queues of sub-topologies
    /// that have records.
    pub(crate) fn next(
        &mut self,
        now: Instant,
        limits: IdleLimits,
        caught_up: &mut dyn FnMut(&str) -> bool,
    ) -> Option<Next> {
        let mut best: Option<(usize, usize, i64, bool)> = None;
        for (p, part) in self.parts.iter_mut().enumerate() {
            let Some((q, timestamp)) = part.head() else {
                part.waiting_since = None;
                continue;
            };
            let Some(enforced) = part.may_go_on(now, limits, caught_up) else {
                continue;
            };
            if best.is_none_or(|(_, _, t, _)| timestamp < t) {
                best = Some((p, q, timestamp, enforced));
            }
        }
        let (p, q, _, enforced) = best?;
        let record = self.parts[p].queues[q].records.pop_front()?;
        Some(Next { record, enforced })
    }
}

impl Part {
    /// The queue whose head has the smallest timestamp (the first such queue on a tie), and
    /// that timestamp; `None` when every queue is empty.
    fn head(&self) -> Option<(usize, i64)> {
        let mut head: Option<(usize, i64)> = None;
        for (q, queue) in self.queues.iter().enumerate() {
            if let Some(record) = queue.records.front() {
                if head.is_none_or(|(_, t)| record.timestamp < t) {
                    head = Some((q, record.timestamp));
                }
            }
        }
        head
    }

    /// Whether the part, which has records, may take one now: `Some(enforced)` when it may
    /// (`enforced`: only by giving up on an empty queue just now), `None` when it waits.
    fn may_go_on(
        &mut self,
        now: Instant,
        limits: IdleLimits,
        caught_up: &mut dyn FnMut(&str) -> bool,
    ) -> Option<bool> {
        // The longest wait among the empty queues still waited for.
        let mut wait: Option<Duration> = None;
        for queue in &self.queues {
            if !queue.records.is_empty() || queue.passed {
                continue;
            }
            let limit = if caught_up(&queue.topic) {
                if limits.caught_up.is_zero() {
                    continue;
                }
                limits.caught_up
            } else {
                limits.behind
            };
            wait = Some(wait.map_or(limit, |w| w.max(limit)));
        }
        let Some(wait) = wait else {
            self.waiting_since = None;
            return Some(false);
        };
        let since = *self.waiting_since.get_or_insert(now);
        if now.duration_since(since) < wait {
            return None;
        }
        for queue in &mut self.queues {
            if queue.records.is_empty() {
                queue.passed = true;
            }
        }
        self.waiting_since = None;
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, timestamp: i64, offset: i64) -> RawRecord {
        RawRecord {
            topic: Arc::from(topic),
            partition: Some(0),
            offset,
            key: None,
            value: None,
            timestamp,
            headers: Vec::new(),
        }
    }

    /// Data on the broker is waited for 1 s; data not produced yet is not.
    const LIMITS: IdleLimits = IdleLimits {
        behind: Duration::from_secs(1),
        caught_up: Duration::ZERO,
    };

    fn group() -> PartitionGroup {
        PartitionGroup::new(&[vec!["a".into(), "b".into()], vec!["c".into()]])
    }

    fn take(
        group: &mut PartitionGroup,
        now: Instant,
        caught_up: &mut dyn FnMut(&str) -> bool,
    ) -> Vec<(String, i64, bool)> {
        let mut taken = Vec::new();
        while let Some(next) = group.next(now, LIMITS, caught_up) {
            taken.push((
                next.record.topic.to_string(),
                next.record.timestamp,
                next.enforced,
            ));
        }
        taken
    }

    #[test]
    fn a_sub_topology_takes_its_records_in_timestamp_order_across_topics() {
        let mut group = group();
        for (topic, ts) in [("a", 5), ("a", 9), ("b", 1), ("b", 7), ("c", 3)] {
            group.push(record(topic, ts, 0)).unwrap();
        }
        // `a` empties after 9; `b` is caught up then, so nothing waits.
        let taken = take(&mut group, Instant::now(), &mut |_| true);
        let order: Vec<(String, i64)> = taken.into_iter().map(|(t, ts, _)| (t, ts)).collect();
        assert_eq!(
            order,
            [("b", 1), ("c", 3), ("a", 5), ("b", 7), ("a", 9)].map(|(t, ts)| (t.to_string(), ts))
        );
    }

    #[test]
    fn an_empty_queue_with_data_on_the_broker_is_waited_for_then_passed() {
        let mut group = group();
        group.push(record("a", 5, 0)).unwrap();
        group.push(record("c", 8, 0)).unwrap();
        let start = Instant::now();
        // `b` is not caught up: part 0 waits, part 1 (only `c`) goes on.
        let taken = take(&mut group, start, &mut |topic| topic != "b");
        assert_eq!(taken, [("c".to_string(), 8, false)]);
        assert_eq!(group.buffered("a"), 1);
        // Still within the bound.
        assert!(group
            .next(start + Duration::from_millis(999), LIMITS, &mut |t| t
                != "b")
            .is_none());
        // Past it: `a`'s record goes, enforced once; then `b` is no longer waited for.
        let taken = take(&mut group, start + Duration::from_secs(1), &mut |t| {
            t != "b"
        });
        assert_eq!(taken, [("a".to_string(), 5, true)]);
        group.push(record("a", 6, 1)).unwrap();
        let taken = take(&mut group, start + Duration::from_secs(1), &mut |t| {
            t != "b"
        });
        assert_eq!(taken, [("a".to_string(), 6, false)]);
        // A record for `b` makes it waited for again.
        group.push(record("b", 10, 0)).unwrap();
        group.push(record("a", 11, 2)).unwrap();
        let later = start + Duration::from_secs(5);
        let taken = take(&mut group, later, &mut |t| t != "b");
        assert_eq!(taken, [("b".to_string(), 10, false)]);
        assert_eq!(group.buffered("a"), 1);
    }

    #[test]
    fn a_caught_up_queue_is_waited_for_only_when_asked_to() {
        let start = Instant::now();
        let mut group = group();
        group.push(record("a", 5, 0)).unwrap();
        // `b` is read to its end: by default nothing waits for it.
        assert_eq!(
            take(&mut group, start, &mut |_| true),
            [("a".to_string(), 5, false)]
        );
        let limits = IdleLimits {
            caught_up: Duration::from_millis(200),
            ..LIMITS
        };
        group.push(record("a", 7, 1)).unwrap();
        assert!(group.next(start, limits, &mut |_| true).is_none());
        // A record for `b` within the wait comes first, as its timestamp says.
        group.push(record("b", 6, 0)).unwrap();
        let later = start + Duration::from_millis(100);
        let first = group.next(later, limits, &mut |_| true).unwrap();
        assert_eq!((&*first.record.topic, first.enforced), ("b", false));
        // `b` is empty again: `a`'s record waits the whole 200 ms, then goes, enforced.
        assert!(group.next(later, limits, &mut |_| true).is_none());
        let end = later + Duration::from_millis(199);
        assert!(group.next(end, limits, &mut |_| true).is_none());
        let next = group
            .next(end + Duration::from_millis(1), limits, &mut |_| true)
            .unwrap();
        assert_eq!((next.record.timestamp, next.enforced), (7, true));
    }

    #[test]
    fn a_record_of_an_unknown_topic_comes_back() {
        let mut group = group();
        assert!(group.push(record("z", 1, 0)).is_err());
        assert_eq!(group.push(record("c", 1, 0)).ok(), Some(1));
    }
}
