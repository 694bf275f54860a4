//! An app's own counters (valid, dead-lettered by reason, duplicates, alerts by rule, …),
//! served as Prometheus text next to the runtime's metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use streamlib::runtime::ExtraMetrics;

/// Counters keyed by metric name and label pairs; clones share them.
#[derive(Clone, Debug, Default)]
pub struct Counters(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl Counters {
    /// Adds one to `name{labels}`.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds `n` to `name{labels}`.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], n: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((name.to_string(), label_text(labels)))
            .or_default() += n;
    }

    /// Current value of `name{labels}`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(name.to_string(), label_text(labels)))
            .copied()
            .unwrap_or_default()
    }

    /// Sum of `name` over all label sets.
    pub fn total(&self, name: &str) -> u64 {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in map.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out
    }

    /// These counters as an extension of the runtime's metrics endpoint.
    pub fn as_extra_metrics(&self) -> ExtraMetrics {
        let counters = self.clone();
        ExtraMetrics(Arc::new(move || counters.render()))
    }
}

fn label_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_grouped_by_name() {
        let c = Counters::default();
        c.inc("dlq_total", &[("keyword", "type")]);
        c.add("dlq_total", &[("keyword", "required")], 2);
        c.inc("valid_total", &[]);
        assert_eq!(c.total("dlq_total"), 3);
        assert_eq!(c.get("dlq_total", &[("keyword", "required")]), 2);
        assert_eq!(
            c.render(),
            "# TYPE dlq_total counter\ndlq_total{keyword=\"required\"} 2\ndlq_total{keyword=\"type\"} 1\n\
             # TYPE valid_total counter\nvalid_total 1\n"
        );
    }
}
