//! The dashboard's web server: the page and its assets (compiled in), the current snapshot
//! (`GET /api/snapshot`), and a server-sent event stream of snapshots (`GET /api/events`,
//! event `snapshot`, `id:` its sequence number, so a reconnecting browser that already has
//! the latest one is not sent it again).
//!
//! One refresher builds a snapshot every `every` and publishes it on a `watch` channel; each
//! open page streams from it, so the query servers are asked once per refresh however many
//! pages are open. When `stop` turns true the refresher ends, the streams end with it and the
//! server shuts down.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde_json::Value;
use tokio::sync::watch;

use super::health::HealthSource;
use super::snapshot::{latest_event, series, Inputs, Snapshot, HISTORY_SPAN_MS};
use super::sources::QuerySource;
use crate::analytics::history::Point;

const INDEX_HTML: &str = include_str!("../../../dashboard/web/index.html");
const APP_JS: &str = include_str!("../../../dashboard/web/app.js");
const STYLE_CSS: &str = include_str!("../../../dashboard/web/style.css");
/// lightweight-charts' standalone build, vendored from npm by `apps/build.rs`.
const CHARTS_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/lightweight-charts.js"));

/// Same-origin only: the page works offline and asks nothing of any other host.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";

/// Where the dashboard's data comes from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The apps' interactive queries.
    pub queries: QuerySource,
    /// The apps' Prometheus text.
    pub health: HealthSource,
}

/// A published snapshot: its number and its JSON.
#[derive(Debug)]
struct Published {
    seq: u64,
    json: String,
}

impl Published {
    fn of(snapshot: &Snapshot) -> Self {
        Self {
            seq: snapshot.seq,
            json: serde_json::to_string(snapshot).unwrap_or_else(|e| {
                serde_json::json!({ "seq": snapshot.seq, "errors": [e.to_string()] }).to_string()
            }),
        }
    }
}

/// The histories of the last refresh and the answer positions they were read at: the
/// histories are asked again only when the metrics store has moved.
#[derive(Default)]
struct Cache {
    position: Option<Value>,
    histories: BTreeMap<String, Vec<Point>>,
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Asks every source once.
async fn gather(sources: &Sources, client: &reqwest::Client, cache: &mut Cache) -> Inputs {
    let mut inputs = Inputs::default();
    let (health, errors) = sources.health.read(client).await;
    inputs.health = health;
    inputs.errors.extend(errors);
    match sources.queries.recent_alerts().await {
        Ok(answer) => {
            if answer.undecodable > 0 {
                inputs.errors.push(format!(
                    "{} recent alerts did not decode",
                    answer.undecodable
                ));
            }
            inputs.alerts = answer.values;
        }
        Err(e) => inputs.errors.push(e.to_string()),
    }
    let metrics = match sources.queries.latest_metrics().await {
        Ok(answer) => answer,
        Err(e) => {
            inputs.errors.push(e.to_string());
            // Keep showing the charts of the last answer rather than none.
            inputs.histories = cache.histories.clone();
            return inputs;
        }
    };
    if metrics.undecodable > 0 {
        inputs.errors.push(format!(
            "{} metrics records did not decode",
            metrics.undecodable
        ));
    }
    inputs.metrics = metrics.values;
    if cache.position.as_ref() != Some(&metrics.position) {
        let since = latest_event(&inputs.metrics).map_or(0, |t| t - HISTORY_SPAN_MS);
        let mut histories = BTreeMap::new();
        let mut complete = true;
        for m in &inputs.metrics {
            let key = series(&m.coin_id, &m.vs_currency);
            if histories.contains_key(&key) {
                continue;
            }
            match sources.queries.history(&key, since).await {
                Ok(points) => {
                    histories.insert(key, points);
                }
                Err(e) => {
                    inputs.errors.push(e.to_string());
                    complete = false;
                }
            }
        }
        // A partial read is shown but asked again next time.
        cache.position = complete.then_some(metrics.position);
        cache.histories = histories;
    }
    inputs.histories = cache.histories.clone();
    inputs
}

/// Builds and publishes a snapshot every `every` until `stop`.
async fn refresh(
    sources: Sources,
    every: Duration,
    publish: watch::Sender<Arc<Published>>,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(every.max(Duration::from_secs(5)))
        .build()
        .unwrap_or_default();
    let mut cache = Cache::default();
    let mut seq = 0;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        let inputs = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            inputs = gather(&sources, &client, &mut cache) => inputs,
        };
        seq += 1;
        let snapshot = Snapshot::build(&inputs, now_millis(), seq);
        publish.send_replace(Arc::new(Published::of(&snapshot)));
    }
}

/// The routes, over the stream of published snapshots.
fn router(snapshots: watch::Receiver<Arc<Published>>) -> Router {
    fn asset(content_type: &'static str, body: &'static str) -> Response {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            ],
            body,
        )
            .into_response()
    }
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/vendor/lightweight-charts.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS_JS) }),
        )
        .route("/api/snapshot", get(current))
        .route("/api/events", get(events))
        .with_state(snapshots)
}

async fn current(State(snapshots): State<watch::Receiver<Arc<Published>>>) -> Response {
    let json = snapshots.borrow().json.clone();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        json,
    )
        .into_response()
}

/// Every published snapshot from now on, the current one first unless the browser says
/// (`Last-Event-ID`) it has it already.
fn stream(
    snapshots: watch::Receiver<Arc<Published>>,
    seen: Option<u64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((snapshots, seen), |(mut snapshots, seen)| async move {
        loop {
            let published = snapshots.borrow_and_update().clone();
            if seen != Some(published.seq) {
                let event = Event::default()
                    .event("snapshot")
                    .id(published.seq.to_string())
                    .data(published.json.as_str());
                return Some((Ok(event), (snapshots, Some(published.seq))));
            }
            // The refresher ended (the server stops): end the stream.
            snapshots.changed().await.ok()?;
        }
    })
}

async fn events(
    State(snapshots): State<watch::Receiver<Arc<Published>>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut response = Sse::new(stream(snapshots, seen))
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the dashboard on `listener` from `sources`, refreshed every `every`, on a thread of
/// its own until the server is stopped.
pub fn start(
    listener: std::net::TcpListener,
    sources: Sources,
    every: Duration,
) -> anyhow::Result<crate::serving::Server> {
    crate::serving::Server::start("dashboard", listener, move |listener, stop| {
        serve(listener, sources, every, stop)
    })
}

/// Serves the dashboard on `listener` from `sources`, refreshed every `every`, until `stop`
/// turns true.
pub async fn serve(
    listener: std::net::TcpListener,
    sources: Sources,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let empty = Snapshot::build(&Inputs::default(), now_millis(), 0);
    let (publish, snapshots) = watch::channel(Arc::new(Published::of(&empty)));
    let refresher = tokio::spawn(refresh(sources, every, publish, stop.clone()));
    let mut stopping = stop.clone();
    axum::serve(listener, router(snapshots))
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })
        .await
        .context("serving the dashboard")?;
    refresher.await.context("the dashboard's refresher")?;
    Ok(())
}
