//! **metrics**: `crypto.prices.dedup` → `crypto.metrics`: per coin and horizon (5 m, 1 h,
//! 24 h, 7 d) the simple and log return and the realized volatility, emitted on every event
//! (`emit: update`, the window ending at the event) and once per closed epoch-aligned window
//! (`emit: final`). Formulas and edge cases: `docs/METRICS.md`.
//!
//! Two stores, both queryable ([`crate::queries`]): the price history ([`STORE`]) and the
//! latest `emit: update` record per coin and horizon ([`LATEST_STORE`]).

use serde::{Deserialize, Serialize};
use streamlib::error::ProcessError;
use streamlib::prelude::*;

use crate::analytics::history::{Point, PriceHistory};
use crate::analytics::stats::WindowStats;
use crate::analytics::Horizon;
use crate::counters::Counters;
use crate::event::{format_millis, format_ts, PriceEvent};
use crate::topics::Topics;

/// Name of the price history store.
pub const STORE: &str = "metrics-history";
/// Name of the store of the latest `emit: update` record per series and horizon, keyed by
/// [`latest_key`] (a table of the metrics' current values, for interactive queries).
pub const LATEST_STORE: &str = "metrics-latest";
/// How far before a window's start its reference price may lie (one day): an older price is
/// not a meaningful reference, and points older than the longest horizon plus this are purged.
pub const LOOKBACK_MS: i64 = 24 * 3_600_000;

/// A record of `crypto.metrics` (contract `metrics_event` 1.0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // documented field by field in the JSON Schema
pub struct MetricsEvent {
    pub schema_version: String,
    pub coin_id: String,
    pub vs_currency: String,
    pub horizon: Horizon,
    pub window_start: String,
    pub window_end: String,
    pub emit: Emit,
    pub n_points: usize,
    pub price_first: f64,
    pub price_last: f64,
    pub simple_return: Option<f64>,
    pub log_return: Option<f64>,
    pub realized_vol: Option<f64>,
    pub realized_vol_annualized: Option<f64>,
    pub ts_event: String,
    pub ts_emit: String,
}

/// Whether a metrics record updates an open window or closes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emit {
    /// The window ending at the latest event.
    Update,
    /// An epoch-aligned window that has closed.
    Final,
}

impl MetricsEvent {
    /// The record for `stats` of the window `[window_end − horizon, window_end)`.
    pub fn new(
        event: &PriceEvent,
        horizon: Horizon,
        window_end: i64,
        emit: Emit,
        stats: &WindowStats,
    ) -> Self {
        let vol = stats.realized_vol.filter(|_| horizon.has_volatility());
        Self {
            schema_version: "1.0".into(),
            coin_id: event.coin_id.clone(),
            vs_currency: event.vs_currency.clone(),
            horizon,
            window_start: format_millis(window_end - horizon.millis()),
            window_end: format_millis(window_end),
            emit,
            n_points: stats.n_points,
            price_first: stats.price_first,
            price_last: stats.price_last,
            simple_return: stats.simple_return,
            log_return: stats.log_return,
            realized_vol: vol,
            realized_vol_annualized: vol.and(stats.realized_vol_annualized()),
            ts_event: format_millis(stats.ts_last),
            ts_emit: format_ts(chrono::Utc::now()),
        }
    }
}

/// `coin_id|vs_currency`: the series an event belongs to.
pub fn series(event: &PriceEvent) -> String {
    format!("{}|{}", event.coin_id, event.vs_currency)
}

/// `coin_id|vs_currency|horizon`: the key of [`LATEST_STORE`].
pub fn latest_key(coin_id: &str, vs_currency: &str, horizon: Horizon) -> String {
    format!("{coin_id}|{vs_currency}|{}", horizon.label())
}

/// The point an event adds to its series.
pub fn point(event: &PriceEvent) -> Result<Point, ProcessError> {
    let ts = event
        .ts_event_millis()
        .ok_or_else(|| ProcessError::User(format!("bad ts_event {:?}", event.ts_event)))?;
    Ok(Point {
        ts,
        price: event.price,
        volume: event.total_volume,
    })
}

/// Every metrics record one in-order event causes: finals of the windows it closes (since the
/// series' previous event at `previous`), then updates of the windows ending at it.
pub fn emissions(
    history: &PriceHistory<'_>,
    event: &PriceEvent,
    ts: i64,
    previous: Option<i64>,
) -> Result<Vec<MetricsEvent>, ProcessError> {
    let mut out = Vec::new();
    if let Some(previous) = previous {
        for horizon in Horizon::ALL {
            let h = horizon.millis();
            let closed_end = (previous.div_euclid(h) + 1) * h;
            if ts >= closed_end {
                if let Some(stats) = history.stats(closed_end - 1, h, LOOKBACK_MS)? {
                    out.push(MetricsEvent::new(
                        event,
                        horizon,
                        closed_end,
                        Emit::Final,
                        &stats,
                    ));
                }
            }
        }
    }
    for horizon in Horizon::ALL {
        if let Some(stats) = history.stats(ts, horizon.millis(), LOOKBACK_MS)? {
            out.push(MetricsEvent::new(
                event,
                horizon,
                ts + 1,
                Emit::Update,
                &stats,
            ));
        }
    }
    Ok(out)
}

struct Metrics {
    counters: Counters,
}

impl Processor<String, PriceEvent, String, MetricsEvent> for Metrics {
    fn process(
        &mut self,
        record: Record<String, PriceEvent>,
        ctx: &mut ProcessorContext<'_, String, MetricsEvent>,
    ) -> Result<(), ProcessError> {
        let event = &record.value;
        let point = point(event)?;
        let store = ctx.key_value_store(STORE)?;
        let mut history = PriceHistory::new(store, series(event));
        let previous = history.latest()?;
        history.add(point)?;
        if previous.is_some_and(|latest| point.ts <= latest) {
            // Out of order: it shapes later windows but emits nothing now.
            self.counters.inc("metrics_out_of_order_total", &[]);
            return Ok(());
        }
        let emitted = emissions(&history, event, point.ts, previous)?;
        history.trim(point.ts - Horizon::D7.millis() - LOOKBACK_MS)?;
        let latest = ctx.key_value_store(LATEST_STORE)?;
        for metrics in emitted.iter().filter(|m| m.emit == Emit::Update) {
            let key = latest_key(&metrics.coin_id, &metrics.vs_currency, metrics.horizon);
            let value = serde_json::to_vec(metrics)
                .map_err(|e| ProcessError::User(format!("encoding a metrics record: {e}")))?;
            latest.put(key.as_bytes(), &value)?;
        }
        for metrics in emitted {
            self.counters.inc(
                "metrics_emitted_total",
                &[("horizon", metrics.horizon.label())],
            );
            ctx.forward(Record::new(record.key.clone(), metrics, point.ts))?;
        }
        Ok(())
    }
}

/// The metrics topology, counting into `counters`.
pub fn topology(topics: &Topics, counters: &Counters) -> Topology {
    let builder = StreamsBuilder::new();
    counters.describe(
        "metrics_out_of_order_total",
        "Events not after their series' latest, stored but emitting nothing",
    );
    counters.describe(
        "metrics_emitted_total",
        "Metrics events emitted, by horizon",
    );
    let counters = counters.clone();
    let stream = crate::analytics::price_stream(&builder, &topics.dedup);
    stream.with_store(StoreSpec::new(STORE, StoreKind::KeyValue));
    stream.with_store(StoreSpec::new(LATEST_STORE, StoreKind::KeyValue));
    stream
        .process(
            move || Metrics {
                counters: counters.clone(),
            },
            &[STORE, LATEST_STORE],
        )
        .to(
            &topics.metrics,
            StringSerde,
            JsonSerde::<MetricsEvent>::new(),
        );
    builder.build()
}
