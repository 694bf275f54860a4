//! One snapshot of everything the dashboard shows, built from interactive-query answers by a
//! pure function ([`Snapshot::build`]) of its inputs and the wall-clock time it is built at.
//! The page renders it as it is: the numbers on screen are the snapshot's numbers.

use std::collections::BTreeMap;

use serde::Serialize;

use super::charts::{self, Candle, Correlation, TimeValue};
use super::health::Health;
use crate::alerts::AlertEvent;
use crate::analytics::history::Point;
use crate::analytics::Horizon;
use crate::metrics::MetricsEvent;
use crate::topics::DEFAULT_COINS;

/// How far back the candles and the volatility pane reach from the latest event.
pub const CHART_SPAN_MS: i64 = 48 * 3_600_000;
/// How far back the points asked for reach: the charts' span, plus a day for the volatility
/// window of their first hour, plus the day the window's reference point may lie before it
/// ([`crate::metrics::LOOKBACK_MS`]).
pub const HISTORY_SPAN_MS: i64 = CHART_SPAN_MS + 2 * 24 * 3_600_000;
/// Alerts in the feed.
pub const ALERTS_SHOWN: usize = 50;

/// The freshness objective (docs/KPI_SLO_SLA.md): a coin's newest price is at most
/// `fresh_ms` old; past `stale_ms` the `stale_feed` alert fires.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Slo {
    /// Age up to which a coin is fresh (10 minutes).
    pub fresh_ms: i64,
    /// Age past which it is stale (15 minutes, the stale-feed rule's default).
    pub stale_ms: i64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            fresh_ms: 10 * 60_000,
            stale_ms: 15 * 60_000,
        }
    }
}

/// A coin's freshness against the [`Slo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Within the objective.
    Ok,
    /// Past the objective, not yet stale.
    Late,
    /// Past the stale-feed threshold.
    Stale,
    /// No price yet.
    Unknown,
}

/// What the dashboard shows of one coin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoinView {
    /// CoinGecko id.
    pub coin_id: String,
    /// Quote currency.
    pub vs_currency: String,
    /// Latest price.
    pub price: Option<f64>,
    /// Event time of the latest price, ms.
    pub ts_event: Option<i64>,
    /// Wall-clock age of the latest price when the snapshot was built, ms.
    pub age_ms: Option<i64>,
    /// [`Freshness`] of `age_ms`.
    pub freshness: Freshness,
    /// Latest simple return per horizon (`1h`, `24h`, `7d`).
    pub returns: BTreeMap<&'static str, Option<f64>>,
    /// Latest annualized realized volatility per horizon (`24h`, `7d`).
    pub volatility: BTreeMap<&'static str, Option<f64>>,
    /// Hourly candles of the last [`CHART_SPAN_MS`].
    pub candles: Vec<Candle>,
    /// 24 h annualized volatility at each hour of the candles.
    pub volatility_series: Vec<TimeValue>,
}

/// An alert of the feed: the record and its event time in ms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    /// The alert as the alerts app wrote it.
    #[serde(flatten)]
    pub alert: AlertEvent,
    /// Its event time, ms.
    pub ts_ms: i64,
}

/// Everything the page shows at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// Increases with every snapshot a server publishes.
    pub seq: u64,
    /// Wall-clock time the snapshot was built at, ms.
    pub generated_at: i64,
    /// Latest event time over every coin, ms.
    pub until: Option<i64>,
    /// The freshness objective.
    pub slo: Slo,
    /// Per coin, largest coins first.
    pub coins: Vec<CoinView>,
    /// Correlation of 5-minute log returns over the last 24 h.
    pub correlation: Correlation,
    /// Newest first, at most [`ALERTS_SHOWN`].
    pub alerts: Vec<AlertView>,
    /// Pipeline health.
    pub health: Health,
    /// What could not be read now (the page shows them; the rest is still shown).
    pub errors: Vec<String>,
}

/// What a snapshot is built from.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The latest `emit: update` metrics records (the metrics app's `metrics-latest` store).
    pub metrics: Vec<MetricsEvent>,
    /// Price points per series (`coin_id|vs_currency`) of the last [`HISTORY_SPAN_MS`].
    pub histories: BTreeMap<String, Vec<Point>>,
    /// Recent alerts (the alerts app's `alerts-recent` store).
    pub alerts: Vec<AlertEvent>,
    /// Pipeline health.
    pub health: Health,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// Milliseconds of an RFC 3339 time.
pub fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The series of a coin.
pub fn series(coin_id: &str, vs_currency: &str) -> String {
    format!("{coin_id}|{vs_currency}")
}

/// The latest event time over the metrics records, where the histories start.
pub fn latest_event(metrics: &[MetricsEvent]) -> Option<i64> {
    metrics.iter().filter_map(|m| millis(&m.ts_event)).max()
}

fn freshness(slo: Slo, age_ms: Option<i64>) -> Freshness {
    match age_ms {
        None => Freshness::Unknown,
        Some(age) if age <= slo.fresh_ms => Freshness::Ok,
        Some(age) if age <= slo.stale_ms => Freshness::Late,
        Some(_) => Freshness::Stale,
    }
}

/// The coins' series in display order: the platform's coins by market cap, then any other.
fn ordered_series(inputs: &Inputs) -> Vec<(String, String)> {
    let mut series: Vec<(String, String)> = inputs
        .metrics
        .iter()
        .map(|m| (m.coin_id.clone(), m.vs_currency.clone()))
        .collect();
    series.sort_by_key(|(coin, vs)| {
        let rank = DEFAULT_COINS.iter().position(|c| c == coin);
        (rank.unwrap_or(usize::MAX), coin.clone(), vs.clone())
    });
    series.dedup();
    series
}

impl Snapshot {
    /// The snapshot of `inputs` at wall-clock `now` (ms), numbered `seq`.
    pub fn build(inputs: &Inputs, now: i64, seq: u64) -> Self {
        let slo = Slo::default();
        let points_of = |coin: &str, vs: &str| -> &[Point] {
            inputs
                .histories
                .get(&series(coin, vs))
                .map_or(&[], Vec::as_slice)
        };
        let coins_series = ordered_series(inputs);
        let until = inputs
            .histories
            .values()
            .filter_map(|points| points.last().map(|p| p.ts))
            .max()
            .or_else(|| latest_event(&inputs.metrics));
        let chart_since = until.map_or(i64::MIN, |u| u - CHART_SPAN_MS);
        let coins = coins_series
            .iter()
            .map(|(coin, vs)| {
                let points = points_of(coin, vs);
                let latest = points.last();
                let age_ms = latest.map(|p| now - p.ts);
                let metric = |horizon: Horizon| {
                    inputs.metrics.iter().find(|m| {
                        m.coin_id == *coin && m.vs_currency == *vs && m.horizon == horizon
                    })
                };
                CoinView {
                    coin_id: coin.clone(),
                    vs_currency: vs.clone(),
                    price: latest.map(|p| p.price),
                    ts_event: latest.map(|p| p.ts),
                    age_ms,
                    freshness: freshness(slo, age_ms),
                    returns: [Horizon::H1, Horizon::H24, Horizon::D7]
                        .into_iter()
                        .map(|h| (h.label(), metric(h).and_then(|m| m.simple_return)))
                        .collect(),
                    volatility: [Horizon::H24, Horizon::D7]
                        .into_iter()
                        .map(|h| (h.label(), metric(h).and_then(|m| m.realized_vol_annualized)))
                        .collect(),
                    candles: charts::candles(points, chart_since),
                    volatility_series: charts::volatility(points, chart_since),
                }
            })
            .collect();
        let correlated: Vec<(String, &[Point])> = coins_series
            .iter()
            .map(|(coin, vs)| (coin.clone(), points_of(coin, vs)))
            .collect();
        let mut alerts: Vec<AlertView> = inputs
            .alerts
            .iter()
            .filter_map(|alert| {
                Some(AlertView {
                    ts_ms: millis(&alert.ts_event)?,
                    alert: alert.clone(),
                })
            })
            .collect();
        alerts.sort_by(|a, b| (b.ts_ms, &b.alert.alert_id).cmp(&(a.ts_ms, &a.alert.alert_id)));
        alerts.truncate(ALERTS_SHOWN);
        Self {
            seq,
            generated_at: now,
            until,
            slo,
            coins,
            correlation: charts::correlation(&correlated, until.unwrap_or(0), Horizon::H24),
            alerts,
            health: inputs.health.clone(),
            errors: inputs.errors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Rule, Severity};
    use crate::metrics::Emit;

    const T0: i64 = 1_765_000_000_000;

    fn rfc3339(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    fn metric(coin: &str, horizon: Horizon, ts: i64, ret: f64) -> MetricsEvent {
        MetricsEvent {
            schema_version: "1.0".into(),
            coin_id: coin.into(),
            vs_currency: "usd".into(),
            horizon,
            window_start: rfc3339(ts - horizon.millis()),
            window_end: rfc3339(ts),
            emit: Emit::Update,
            n_points: 3,
            price_first: 1.0,
            price_last: 1.0 + ret,
            simple_return: Some(ret),
            log_return: Some(ret.ln_1p()),
            realized_vol: None,
            realized_vol_annualized: (horizon == Horizon::H24).then_some(0.5),
            ts_event: rfc3339(ts),
            ts_emit: rfc3339(ts),
        }
    }

    fn alert(id: &str, ts: i64) -> AlertEvent {
        AlertEvent {
            schema_version: "1.0".into(),
            alert_id: id.into(),
            rule: Rule::PriceMove,
            severity: Severity::Warning,
            coin_id: "bitcoin".into(),
            vs_currency: "usd".into(),
            window: Some(Horizon::H1),
            observed: 0.05,
            threshold: 0.03,
            ts_event: rfc3339(ts),
            ts_alert: rfc3339(ts),
            message: "moved".into(),
        }
    }

    #[test]
    fn a_snapshot_shows_the_query_answers_as_they_are() {
        let points = |base: f64| -> Vec<Point> {
            (0..30)
                .map(|i| Point {
                    ts: T0 - (29 - i) * 300_000,
                    price: base + i as f64,
                    volume: None,
                })
                .collect()
        };
        let inputs = Inputs {
            metrics: vec![
                metric("ethereum", Horizon::H1, T0, -0.01),
                metric("bitcoin", Horizon::H1, T0, 0.02),
                metric("bitcoin", Horizon::H24, T0, 0.1),
            ],
            histories: BTreeMap::from([
                ("bitcoin|usd".to_string(), points(100.0)),
                ("ethereum|usd".to_string(), points(10.0)[..20].to_vec()),
            ]),
            alerts: vec![alert("old", T0 - 60_000), alert("new", T0)],
            health: Health {
                duplicates: Some(2.0),
                ..Health::default()
            },
            errors: vec!["alerts: 503".into()],
        };
        let now = T0 + 11 * 60_000;
        let s = Snapshot::build(&inputs, now, 7);
        assert_eq!((s.seq, s.generated_at, s.until), (7, now, Some(T0)));
        let ids: Vec<&str> = s.coins.iter().map(|c| c.coin_id.as_str()).collect();
        assert_eq!(ids, ["bitcoin", "ethereum"], "market-cap order");
        let btc = &s.coins[0];
        assert_eq!((btc.price, btc.ts_event), (Some(129.0), Some(T0)));
        assert_eq!(btc.age_ms, Some(11 * 60_000));
        assert_eq!(btc.freshness, Freshness::Late);
        assert_eq!(btc.returns["1h"], Some(0.02));
        assert_eq!(btc.returns["7d"], None);
        assert_eq!(btc.volatility["24h"], Some(0.5));
        assert_eq!(btc.candles.last().unwrap().close, 129.0);
        let eth = &s.coins[1];
        assert_eq!(
            eth.freshness,
            Freshness::Stale,
            "its last point is 10 polls older"
        );
        assert_eq!(s.correlation.coins, ["bitcoin", "ethereum"]);
        let alert_ids: Vec<&str> = s.alerts.iter().map(|a| a.alert.alert_id.as_str()).collect();
        assert_eq!(alert_ids, ["new", "old"]);
        assert_eq!(s.alerts[0].ts_ms, T0);
        assert_eq!(s.health.duplicates, Some(2.0));
        assert_eq!(s.errors, ["alerts: 503"]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["coins"][0]["freshness"], "late");
        assert_eq!(json["alerts"][0]["alert_id"], "new");
        assert_eq!(json["alerts"][0]["ts_ms"], T0);
    }

    #[test]
    fn an_empty_platform_gives_an_empty_snapshot() {
        let s = Snapshot::build(&Inputs::default(), T0, 1);
        assert_eq!(s.until, None);
        assert!(s.coins.is_empty() && s.alerts.is_empty());
        assert!(s.correlation.matrix.is_empty());
    }
}
