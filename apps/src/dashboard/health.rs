//! Pipeline health for the dashboard, read from the apps' Prometheus text: dead letters,
//! duplicates, alerts raised, events validated, consumer lag and commit latency. In
//! `pipeline` the text comes from the process's own registry; the `dashboard` binary scrapes
//! the apps' `/metrics` endpoints. Either way the same parser reads it.

use prometheus_parse::{Scrape, Value};
use serde::Serialize;
use streamlib::metrics::MetricsRegistry;

/// What the health tiles show; `None` when no scraped text had the metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Health {
    /// Events the validator dead-lettered plus records the runtimes sent to a dead-letter topic.
    pub dead_letters: Option<f64>,
    /// Duplicates dedup dropped.
    pub duplicates: Option<f64>,
    /// Alerts raised.
    pub alerts_raised: Option<f64>,
    /// Events the validator checked (valid or dead-lettered).
    pub events_processed: Option<f64>,
    /// Records behind the end of their input partitions, over every app.
    pub consumer_lag: Option<f64>,
    /// Mean commit latency over every app, in milliseconds.
    pub commit_latency_ms: Option<f64>,
}

/// The sum of every sample named `metric` (any labels), `None` when there is none (the apps
/// list the counters the dashboard reads at 0 from their start).
fn total(scrapes: &[Scrape], metric: &str) -> Option<f64> {
    let values: Vec<f64> = scrapes
        .iter()
        .flat_map(|s| &s.samples)
        .filter(|s| s.metric == metric)
        .filter_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            Value::Histogram(_) | Value::Summary(_) => None,
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn sum(parts: [Option<f64>; 2]) -> Option<f64> {
    parts.into_iter().flatten().reduce(|a, b| a + b)
}

impl Health {
    /// Health from the Prometheus text of every app (one text per endpoint).
    pub fn from_texts<S: AsRef<str>>(texts: &[S]) -> Self {
        let scrapes: Vec<Scrape> = texts
            .iter()
            .filter_map(|text| {
                let lines = text.as_ref().lines().map(|l| Ok(l.to_owned()));
                Scrape::parse(lines).ok()
            })
            .collect();
        let total = |metric: &str| total(&scrapes, metric);
        let latency = match (
            total("streamlib_commit_latency_seconds_sum"),
            total("streamlib_commit_latency_seconds_count"),
        ) {
            (Some(seconds), Some(count)) if count > 0.0 => Some(seconds / count * 1000.0),
            _ => None,
        };
        Self {
            dead_letters: sum([
                total("validator_dead_lettered_total"),
                total("streamlib_records_dead_lettered_total"),
            ]),
            duplicates: total("dedup_duplicates_total"),
            alerts_raised: total("alerts_raised_total"),
            events_processed: sum([
                total("validator_valid_total"),
                total("validator_dead_lettered_total"),
            ]),
            consumer_lag: total("streamlib_consumer_lag"),
            commit_latency_ms: latency,
        }
    }
}

/// Where health comes from.
#[derive(Clone, Debug)]
pub enum HealthSource {
    /// The registry of this process (the apps of `pipeline`).
    Registry(MetricsRegistry),
    /// The apps' Prometheus endpoints (`http://host:port/metrics`).
    Scrape(Vec<reqwest::Url>),
}

impl HealthSource {
    /// Reads health now, with the endpoints that could not be read (as messages).
    pub async fn read(&self, client: &reqwest::Client) -> (Health, Vec<String>) {
        match self {
            Self::Registry(registry) => (Health::from_texts(&[registry.encode()]), Vec::new()),
            Self::Scrape(urls) => {
                let mut texts = Vec::new();
                let mut errors = Vec::new();
                for url in urls {
                    let answer = async {
                        client
                            .get(url.clone())
                            .send()
                            .await?
                            .error_for_status()?
                            .text()
                            .await
                    };
                    match answer.await {
                        Ok(text) => texts.push(text),
                        Err(e) => errors.push(format!("health from {url}: {e}")),
                    }
                }
                (Health::from_texts(&texts), errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;

    #[test]
    fn health_adds_up_the_apps_counters_from_their_text() {
        let counters = Counters::default();
        counters.add("validator_dead_lettered_total", &[("reason", "schema")], 2);
        counters.add("validator_dead_lettered_total", &[("reason", "json")], 1);
        counters.add("validator_valid_total", &[], 10);
        counters.add("dedup_duplicates_total", &[], 4);
        counters.add("alerts_raised_total", &[("rule", "zscore")], 0);
        let other = "# TYPE streamlib_consumer_lag gauge\n\
                     streamlib_consumer_lag{application_id=\"a\",topic=\"t\",partition=\"0\"} 5\n\
                     streamlib_consumer_lag{application_id=\"a\",topic=\"t\",partition=\"1\"} 2\n\
                     # TYPE streamlib_commit_latency_seconds histogram\n\
                     streamlib_commit_latency_seconds_sum{application_id=\"a\"} 0.5\n\
                     streamlib_commit_latency_seconds_count{application_id=\"a\"} 100\n\
                     streamlib_commit_latency_seconds_bucket{application_id=\"a\",le=\"+Inf\"} 100\n";
        let health = Health::from_texts(&[counters.registry().encode(), other.to_owned()]);
        assert_eq!(
            health,
            Health {
                dead_letters: Some(3.0),
                duplicates: Some(4.0),
                alerts_raised: Some(0.0),
                events_processed: Some(13.0),
                consumer_lag: Some(7.0),
                commit_latency_ms: Some(5.0),
            }
        );
        assert_eq!(Health::from_texts::<&str>(&[]), Health::default());
    }
}
