//! What the dashboard reads through interactive queries: the HTTP routes of
//! `streamlib::query::http` on the metrics and alerts apps ([`crate::queries`] names their
//! stores). Any instance of an app answers for all of its partitions (it forwards keys and
//! fans ranges out), so one address per app is enough.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::alerts::{self, AlertEvent};
use crate::analytics::history::Point;
use crate::metrics::{self, MetricsEvent};

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request did not complete.
    #[error("asking {url}: {source}")]
    Http {
        /// What was asked.
        url: String,
        /// Why it failed.
        #[source]
        source: reqwest::Error,
    },
    /// The instance answered with an error status (503 while a partition restores, …).
    #[error("{url} answered {status}: {body}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// The error it gave.
        body: String,
    },
    /// The answer did not have the shape of a query answer.
    #[error("reading the answer of {url}: {source}")]
    Decode {
        /// What was asked.
        url: String,
        /// Why it did not decode.
        #[source]
        source: serde_json::Error,
    },
}

/// A range answer: its entries and the position it was read at.
#[derive(Debug, Deserialize)]
struct Entries {
    entries: Vec<Entry>,
    position: Value,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    key: Value,
    value: Value,
}

/// The entries of one store, decoded, with the position they were read at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer<T> {
    /// The values that decoded.
    pub values: Vec<T>,
    /// The position of the answer (JSON), which changes whenever the store may have.
    pub position: Value,
    /// Values that did not decode (shown as errors, never as data).
    pub undecodable: usize,
}

/// The value of a price history entry (`HistoryCodec`: `{price, volume}` or `{ts}`).
#[derive(Debug, Deserialize)]
struct HistoryValue {
    price: f64,
    volume: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct HistoryKeyJson {
    ts: i64,
}

/// How long one interactive query may take.
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The query servers of the metrics and alerts apps.
#[derive(Clone, Debug)]
pub struct QuerySource {
    metrics: reqwest::Url,
    alerts: reqwest::Url,
    client: reqwest::Client,
}

impl QuerySource {
    /// Reads from the query server of the metrics app at `metrics` and of the alerts app at
    /// `alerts` (`http://host:port`); a request that takes longer than [`QUERY_TIMEOUT`] fails,
    /// so an app that stopped answering cannot hold the dashboard's refresher.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(metrics: reqwest::Url, alerts: reqwest::Url) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder().timeout(QUERY_TIMEOUT).build()?;
        Ok(Self {
            metrics,
            alerts,
            client,
        })
    }

    /// `GET base/state/keyvalues/<segments…>`, the path segments percent-encoded.
    async fn entries(
        &self,
        base: &reqwest::Url,
        segments: &[&str],
    ) -> Result<Entries, SourceError> {
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("state").push("keyvalues");
            path.extend(segments);
        }
        let shown = url.to_string();
        let http = |source| SourceError::Http {
            url: shown.clone(),
            source,
        };
        let response = self.client.get(url).send().await.map_err(http)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http)?;
        if !status.is_success() {
            let text = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(SourceError::Status {
                url: shown,
                status: status.as_u16(),
                body: text,
            });
        }
        serde_json::from_slice(&body).map_err(|source| SourceError::Decode { url: shown, source })
    }

    async fn all<T: DeserializeOwned>(
        &self,
        base: &reqwest::Url,
        store: &str,
    ) -> Result<Answer<T>, SourceError> {
        let answer = self.entries(base, &[store, "all"]).await?;
        let mut values = Vec::new();
        let mut undecodable = 0;
        for entry in answer.entries {
            match serde_json::from_value(entry.value) {
                Ok(value) => values.push(value),
                Err(_) => undecodable += 1,
            }
        }
        Ok(Answer {
            values,
            position: answer.position,
            undecodable,
        })
    }

    /// The latest `emit: update` metrics record of every series and horizon.
    pub async fn latest_metrics(&self) -> Result<Answer<MetricsEvent>, SourceError> {
        self.all(&self.metrics, metrics::LATEST_STORE).await
    }

    /// The alerts of the last week, every series.
    pub async fn recent_alerts(&self) -> Result<Answer<AlertEvent>, SourceError> {
        self.all(&self.alerts, alerts::RECENT_STORE).await
    }

    /// The points of `series` (`coin_id|vs_currency`) from `since` on, in time order.
    pub async fn history(&self, series: &str, since: i64) -> Result<Vec<Point>, SourceError> {
        let from = format!("{series}@{since}");
        let to = format!("{series}@{}", i64::MAX);
        let answer = self
            .entries(&self.metrics, &[metrics::STORE, "range", &from, &to])
            .await?;
        let mut points: BTreeMap<i64, Point> = BTreeMap::new();
        for entry in answer.entries {
            let key = serde_json::from_value::<HistoryKeyJson>(entry.key);
            let value = serde_json::from_value::<HistoryValue>(entry.value);
            if let (Ok(key), Ok(value)) = (key, value) {
                points.insert(
                    key.ts,
                    Point {
                        ts: key.ts,
                        price: value.price,
                        volume: value.volume,
                    },
                );
            }
        }
        Ok(points.into_values().collect())
    }
}
