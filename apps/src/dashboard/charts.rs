//! What the dashboard draws from a coin's price history: hourly candles, the trailing 24 h
//! annualized volatility at each hour, and the correlation of recent 5-minute log returns
//! between coins. Pure functions of the points ([`crate::analytics::history`]), the same
//! formulas as the metrics app ([`crate::analytics::stats`], docs/METRICS.md).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analytics::history::Point;
use crate::analytics::stats::{log_returns, mean, WindowStats};
use crate::analytics::Horizon;
use crate::metrics::LOOKBACK_MS;

/// One hour of a coin's prices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candle {
    /// Start of the hour, UNIX seconds.
    pub time: i64,
    /// First price of the hour.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
}

/// A value at a time (UNIX seconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeValue {
    /// Start of the hour the value belongs to, UNIX seconds.
    pub time: i64,
    /// The value.
    pub value: f64,
}

const HOUR_MS: i64 = 3_600_000;
const BUCKET_MS: i64 = 5 * 60_000;

/// Hourly candles of `points` (time-ordered) with `ts > since`.
pub fn candles(points: &[Point], since: i64) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::new();
    for p in points.iter().filter(|p| p.ts > since) {
        let time = p.ts.div_euclid(HOUR_MS) * 3600;
        match out.last_mut() {
            Some(c) if c.time == time => {
                c.high = c.high.max(p.price);
                c.low = c.low.min(p.price);
                c.close = p.price;
            }
            _ => out.push(Candle {
                time,
                open: p.price,
                high: p.price,
                low: p.price,
                close: p.price,
            }),
        }
    }
    out
}

/// The 24 h annualized realized volatility at the last point of each hour with `ts > since`:
/// the window `(t − 24 h, t]` with its reference point, as the metrics app computes it.
pub fn volatility(points: &[Point], since: i64) -> Vec<TimeValue> {
    let horizon = Horizon::H24.millis();
    let mut out = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let last_of_hour = points
            .get(i + 1)
            .is_none_or(|next| next.ts.div_euclid(HOUR_MS) != p.ts.div_euclid(HOUR_MS));
        if p.ts <= since || !last_of_hour {
            continue;
        }
        // The reference is the last point at or before the window's start, within the
        // look-back (`PriceHistory::window`).
        let start = p.ts - horizon;
        let after = points[..=i].partition_point(|q| q.ts <= start);
        let from = match after.checked_sub(1) {
            Some(reference) if points[reference].ts >= start - LOOKBACK_MS => reference,
            _ => after,
        };
        let vol = WindowStats::of(&points[from..=i]).and_then(|s| s.realized_vol_annualized());
        if let Some(value) = vol {
            out.push(TimeValue {
                time: p.ts.div_euclid(HOUR_MS) * 3600,
                value,
            });
        }
    }
    out
}

/// Pearson correlations of 5-minute log returns over `(until − window, until]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    /// Row and column order.
    pub coins: Vec<String>,
    /// `matrix[i][j]`; `None` with fewer than 3 common returns or a constant series.
    pub matrix: Vec<Vec<Option<f64>>>,
    /// The window's label (`24h`).
    pub window: String,
    /// Most 5-minute returns any pair had in common.
    pub returns: usize,
}

/// The correlation matrix of `series` (coin → time-ordered points) over the `horizon` ending
/// at `until`, on the last price of each 5-minute bucket.
pub fn correlation(series: &[(String, &[Point])], until: i64, horizon: Horizon) -> Correlation {
    let since = until - horizon.millis();
    let returns: Vec<BTreeMap<i64, f64>> = series
        .iter()
        .map(|(_, points)| bucket_returns(points, since, until))
        .collect();
    let mut most = 0;
    let matrix = returns
        .iter()
        .map(|a| {
            returns
                .iter()
                .map(|b| {
                    let (xs, ys): (Vec<f64>, Vec<f64>) = a
                        .iter()
                        .filter_map(|(t, x)| b.get(t).map(|y| (*x, *y)))
                        .unzip();
                    most = most.max(xs.len());
                    pearson(&xs, &ys)
                })
                .collect()
        })
        .collect();
    Correlation {
        coins: series.iter().map(|(coin, _)| coin.clone()).collect(),
        matrix,
        window: horizon.label().to_string(),
        returns: most,
    }
}

/// Log returns between consecutive 5-minute buckets (last price of each) in `(since, until]`,
/// keyed by the later bucket.
fn bucket_returns(points: &[Point], since: i64, until: i64) -> BTreeMap<i64, f64> {
    let mut last: BTreeMap<i64, Point> = BTreeMap::new();
    for p in points.iter().filter(|p| p.ts > since && p.ts <= until) {
        last.insert(p.ts.div_euclid(BUCKET_MS), *p);
    }
    let buckets: Vec<(i64, Point)> = last.into_iter().collect();
    buckets
        .windows(2)
        .filter(|pair| pair[1].0 == pair[0].0 + 1)
        .filter_map(|pair| {
            let r = log_returns(&[pair[0].1, pair[1].1]);
            r.first().map(|r| (pair[1].0, *r))
        })
        .collect()
}

fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() < 3 {
        return None;
    }
    let (mx, my) = (mean(xs)?, mean(ys)?);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    let denominator = (sxx * syy).sqrt();
    (denominator > 0.0).then(|| (sxy / denominator).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ts: i64, price: f64) -> Point {
        Point {
            ts,
            price,
            volume: None,
        }
    }

    #[test]
    fn candles_take_first_last_high_low_per_hour() {
        let points = [
            p(0, 10.0),
            p(BUCKET_MS, 12.0),
            p(2 * BUCKET_MS, 9.0),
            p(HOUR_MS, 11.0),
            p(HOUR_MS + BUCKET_MS, 13.0),
        ];
        let c = candles(&points, -1);
        assert_eq!(
            c,
            [
                Candle {
                    time: 0,
                    open: 10.0,
                    high: 12.0,
                    low: 9.0,
                    close: 9.0
                },
                Candle {
                    time: 3600,
                    open: 11.0,
                    high: 13.0,
                    low: 11.0,
                    close: 13.0
                },
            ]
        );
        assert_eq!(candles(&points, 0).first().map(|c| c.open), Some(12.0));
    }

    #[test]
    fn volatility_matches_the_metrics_window_with_its_reference_point() {
        // Points every 5 minutes for two days, alternating prices.
        let points: Vec<Point> = (0..576)
            .map(|i| p(i * BUCKET_MS, if i % 2 == 0 { 100.0 } else { 101.0 }))
            .collect();
        let vol = volatility(&points, -1);
        assert_eq!(vol.len(), 48);
        // At the last point, the 24 h window is (t − 24 h, t] plus the point at t − 24 h.
        let last = points.last().unwrap().ts;
        let window: Vec<Point> = points
            .iter()
            .copied()
            .filter(|q| q.ts >= last - Horizon::H24.millis())
            .collect();
        let expected = WindowStats::of(&window)
            .unwrap()
            .realized_vol_annualized()
            .unwrap();
        assert_eq!(vol.last().unwrap().value, expected);
        assert_eq!(vol.last().unwrap().time, last.div_euclid(HOUR_MS) * 3600);
    }

    #[test]
    fn correlation_is_one_for_proportional_moves_and_minus_one_for_opposite() {
        let up: Vec<Point> = (0..30)
            .map(|i| p(i * BUCKET_MS, 100.0 * (1.0 + 0.01 * ((i * i) % 7) as f64)))
            .collect();
        let twice: Vec<Point> = up.iter().map(|q| p(q.ts, q.price * 2.0)).collect();
        let inverse: Vec<Point> = up.iter().map(|q| p(q.ts, 1.0 / q.price)).collect();
        let flat: Vec<Point> = up.iter().map(|q| p(q.ts, 5.0)).collect();
        let series = [
            ("a".to_string(), up.as_slice()),
            ("b".to_string(), twice.as_slice()),
            ("c".to_string(), inverse.as_slice()),
            ("d".to_string(), flat.as_slice()),
        ];
        let until = up.last().unwrap().ts;
        let c = correlation(&series, until, Horizon::H24);
        let at = |i: usize, j: usize| c.matrix[i][j].unwrap();
        assert!((at(0, 1) - 1.0).abs() < 1e-9);
        assert!((at(0, 2) + 1.0).abs() < 1e-9);
        assert_eq!(c.matrix[0][3], None);
        assert_eq!(c.returns, 29);
    }
}
