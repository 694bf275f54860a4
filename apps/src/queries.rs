//! The platform's interactive queries over HTTP: which stores of each app answer queries, how
//! their bytes read as JSON, and the server every app runs at its `--application-server`
//! address (`streamlib::query::http`'s routes: `/state/keyvalue/{store}/{key}`,
//! `/state/keyvalues/{store}/all`, `…/range/{from}/{to}`, `/state/instances`).
//!
//! | app | store | key (URL segment) | value |
//! |---|---|---|---|
//! | metrics | `metrics-latest` | `bitcoin\|usd\|1h` | the latest `emit: update` metrics record |
//! | metrics | `metrics-history` | `bitcoin\|usd@<ts ms>` (a point), `bitcoin\|usd` (latest time) | `{price, volume}` / `{ts}` |
//! | alerts | `alerts-recent` | `bitcoin\|usd\|<ts ms, 13 digits>\|<alert_id>` | the alert record |
//! | alerts | `alerts-history` | as `metrics-history` | as `metrics-history` |

use std::net::TcpListener;

use anyhow::Context;
use serde_json::{json, Value};
use streamlib::prelude::{JsonSerde, StringSerde};
use streamlib::query::http::{router, QueryService, SerdeCodec, StoreCodec};
use streamlib::runtime::Queryable;
use tokio::sync::watch;

use crate::alerts::{self, AlertEvent};
use crate::analytics::history::{decode_latest, decode_value, latest_key, point_key, HistoryKey};
use crate::metrics::{self, MetricsEvent};
use crate::serving::Server;

/// Reads a price history store ([`crate::analytics::history`]): URL keys `series@ts` name a
/// point and `series` the latest event time; keys show as `{series, ts}` or
/// `{series, latest: true}`, values as `{price, volume}` or `{ts}`.
pub struct HistoryCodec;

impl StoreCodec for HistoryCodec {
    fn key(&self, _: &str, text: &str) -> Result<Vec<u8>, String> {
        match text.rsplit_once('@') {
            Some((series, ts)) => {
                let ts = ts
                    .parse::<i64>()
                    .map_err(|e| format!("the time after '@' in {text:?}: {e}"))?;
                Ok(point_key(series, ts))
            }
            None => Ok(latest_key(text)),
        }
    }

    fn key_json(&self, _: &str, bytes: &[u8]) -> Value {
        match HistoryKey::parse(bytes) {
            Some(HistoryKey::Point { series, ts }) => json!({ "series": series, "ts": ts }),
            Some(HistoryKey::Latest { series }) => json!({ "series": series, "latest": true }),
            None => json!({ "error": "not a price history key" }),
        }
    }

    fn value_json(&self, _: &str, bytes: &[u8]) -> Value {
        if let Some((price, volume)) = decode_value(bytes) {
            json!({ "price": price, "volume": volume })
        } else if let Some(ts) = decode_latest(bytes) {
            json!({ "ts": ts })
        } else {
            json!({ "error": "not a price history value" })
        }
    }
}

/// The query service of app `app` (`metrics`, `alerts`; the others have no queryable stores
/// and answer every store with 404).
pub fn service(app: &str, queryable: Queryable) -> QueryService {
    let service = QueryService::new(queryable);
    match app {
        "metrics" => service.with_store(metrics::STORE, HistoryCodec).with_store(
            metrics::LATEST_STORE,
            SerdeCodec::new(StringSerde, JsonSerde::<MetricsEvent>::new()),
        ),
        "alerts" => service
            .with_store(alerts::HISTORY_STORE, HistoryCodec)
            .with_store(
                alerts::RECENT_STORE,
                SerdeCodec::new(StringSerde, JsonSerde::<AlertEvent>::new()),
            ),
        _ => service,
    }
}

/// Serves `service` on `listener` (bound before the app starts, so that its address can be
/// the app's `application_server`) until the server is stopped.
pub fn start_server(listener: TcpListener, service: QueryService) -> anyhow::Result<Server> {
    Server::start("queries", listener, move |listener, stop| {
        serve(listener, service, stop)
    })
}

/// Serves `service` on `listener` until `stop` turns true.
async fn serve(
    listener: TcpListener,
    service: QueryService,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router(service))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await
        .context("serving interactive queries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_round_trip_through_urls() {
        let codec = HistoryCodec;
        let key = codec.key("h", "bitcoin|usd@1700000000000").unwrap();
        assert_eq!(
            codec.key_json("h", &key),
            json!({ "series": "bitcoin|usd", "ts": 1_700_000_000_000i64 })
        );
        let latest = codec.key("h", "bitcoin|usd").unwrap();
        assert_eq!(
            codec.key_json("h", &latest),
            json!({ "series": "bitcoin|usd", "latest": true })
        );
        assert!(codec.key("h", "bitcoin|usd@soon").is_err());
        let mut value = 3.5f64.to_be_bytes().to_vec();
        value.extend_from_slice(&7.0f64.to_be_bytes());
        assert_eq!(
            codec.value_json("h", &value),
            json!({ "price": 3.5, "volume": 7.0 })
        );
        assert!(codec.value_json("h", b"odd").get("error").is_some());
    }
}
