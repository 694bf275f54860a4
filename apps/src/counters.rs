//! An app's own counters (valid, dead-lettered by reason, duplicates, alerts by rule, …),
//! registered in the process's metrics registry next to the runtime's metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use streamlib::metrics::MetricsRegistry;

/// Label pairs of one series, in the order given.
type Labels = Vec<(String, String)>;

/// Counters by exposed name (`…_total`) and label pairs, registered in one registry; clones
/// share them.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    registry: MetricsRegistry,
    families: Arc<Mutex<BTreeMap<String, Named>>>,
}

/// One counter family and the label sets it has series for (a `Family` cannot list them).
#[derive(Debug)]
struct Named {
    family: Family<Labels, Counter>,
    series: BTreeSet<Labels>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Counters {
    /// The registry the counters are in (a new one per `Counters::default()`).
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Registers the counter `name` (ending in `_total`, as exposed) with its help text (no
    /// final period); describing it again changes nothing. It is listed from its first count.
    pub fn describe(&self, name: &str, help: &str) {
        drop(self.named(name, help));
    }

    fn named(&self, name: &str, help: &str) -> MutexGuard<'_, BTreeMap<String, Named>> {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !families.contains_key(name) {
            let family = Family::<Labels, Counter>::default();
            // The encoder appends `_total` to a counter's name.
            let base = name.strip_suffix("_total").unwrap_or(name);
            self.registry.register(base, help, family.clone());
            families.insert(
                name.to_string(),
                Named {
                    family,
                    series: BTreeSet::new(),
                },
            );
        }
        families
    }

    /// Adds one to `name{labels}`.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds `n` to `name{labels}`; a name not described yet is registered with a generic help.
    pub fn add(&self, name: &str, pairs: &[(&str, &str)], n: u64) {
        let mut families = self.named(name, "A counter of the application");
        if let Some(named) = families.get_mut(name) {
            let labels = labels(pairs);
            named.family.get_or_create(&labels).inc_by(n);
            named.series.insert(labels);
        }
    }

    /// Current value of `name{labels}`.
    pub fn get(&self, name: &str, pairs: &[(&str, &str)]) -> u64 {
        let families = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        families
            .get(name)
            .and_then(|named| named.family.get(&labels(pairs)).map(|c| c.get()))
            .unwrap_or_default()
    }

    /// Sum of `name` over all label sets.
    pub fn total(&self, name: &str) -> u64 {
        let families = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        families.get(name).map_or(0, |named| {
            named
                .series
                .iter()
                .filter_map(|labels| named.family.get(labels).map(|c| c.get()))
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_labels_in_the_registry_under_the_exposed_names() {
        let c = Counters::default();
        c.describe("dlq_total", "Records dead-lettered, by keyword");
        c.describe("valid_total", "Valid records");
        c.describe("idle_total", "Never counted");
        c.inc("dlq_total", &[("keyword", "type")]);
        c.add("dlq_total", &[("keyword", "required")], 2);
        c.inc("valid_total", &[]);
        c.describe("valid_total", "Described twice, registered once");
        assert_eq!(c.total("dlq_total"), 3);
        assert_eq!(c.get("dlq_total", &[("keyword", "required")]), 2);
        assert_eq!(c.get("dlq_total", &[("keyword", "other")]), 0);
        let text = c.registry().encode();
        for expected in [
            "# HELP dlq_total Records dead-lettered, by keyword.\n# TYPE dlq_total counter\n",
            "\ndlq_total{keyword=\"required\"} 2\n",
            "\ndlq_total{keyword=\"type\"} 1\n",
            "# HELP valid_total Valid records.\n# TYPE valid_total counter\nvalid_total 1\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        assert!(
            !text.contains("idle_total"),
            "a family without series is not listed: {text}"
        );
        assert_eq!(text.matches("# TYPE valid_total counter").count(), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        let c = Counters::default();
        c.inc("odd_total", &[("id", "a\"b\\c\nd")]);
        assert!(
            c.registry()
                .encode()
                .contains("odd_total{id=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{}",
            c.registry().encode()
        );
    }
}
