//! Returns, realized volatility, z-scores and medians over a window of price points.

use super::history::Point;

/// `sqrt` of this annualizes a per-5-minute volatility: 5-minute intervals in 365 days.
pub const INTERVALS_PER_YEAR: f64 = 105_120.0;

/// What a window of points says (`metrics_event` contract fields).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStats {
    /// Points used (the reference point included).
    pub n_points: usize,
    /// p₁: the reference price, or the first price in the window when there is none.
    pub price_first: f64,
    /// pₙ: the latest price.
    pub price_last: f64,
    /// Event time of the latest point.
    pub ts_last: i64,
    /// pₙ / p₁ − 1; `None` with fewer than 2 points.
    pub simple_return: Option<f64>,
    /// ln(pₙ / p₁); `None` with fewer than 2 points.
    pub log_return: Option<f64>,
    /// Sample standard deviation of the consecutive log returns; `None` with fewer than 3
    /// points.
    pub realized_vol: Option<f64>,
}

impl WindowStats {
    /// Stats of `points`, ordered by time (the first is the reference point if there is one).
    /// `None` for no points.
    pub fn of(points: &[Point]) -> Option<Self> {
        let (first, last) = (points.first()?, points.last()?);
        let n = points.len();
        let returns = log_returns(points);
        Some(Self {
            n_points: n,
            price_first: first.price,
            price_last: last.price,
            ts_last: last.ts,
            simple_return: (n >= 2).then(|| last.price / first.price - 1.0),
            log_return: (n >= 2).then(|| (last.price / first.price).ln()),
            realized_vol: sample_std(&returns),
        })
    }

    /// `realized_vol` × √[`INTERVALS_PER_YEAR`].
    pub fn realized_vol_annualized(&self) -> Option<f64> {
        self.realized_vol.map(|v| v * INTERVALS_PER_YEAR.sqrt())
    }
}

/// ln(pᵢ / pᵢ₋₁) for consecutive points.
pub fn log_returns(points: &[Point]) -> Vec<f64> {
    points
        .windows(2)
        .map(|pair| (pair[1].price / pair[0].price).ln())
        .collect()
}

/// Arithmetic mean; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (denominator n − 1); `None` for fewer than 2 values.
pub fn sample_std(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    Some((squares / (values.len() - 1) as f64).sqrt())
}

/// Median (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// z-score of `latest` against `history`'s mean and sample standard deviation; `None` when
/// the deviation is undefined or zero.
pub fn z_score(latest: f64, history: &[f64]) -> Option<f64> {
    let std = sample_std(history).filter(|s| *s > 0.0)?;
    Some((latest - mean(history)?) / std)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(prices: &[f64]) -> Vec<Point> {
        prices
            .iter()
            .enumerate()
            .map(|(i, &price)| Point {
                ts: i as i64 * 300_000,
                price,
                volume: None,
            })
            .collect()
    }

    #[test]
    fn a_single_point_has_no_return_and_no_volatility() {
        let s = WindowStats::of(&points(&[100.0])).unwrap();
        assert_eq!(
            (s.n_points, s.simple_return, s.realized_vol),
            (1, None, None)
        );
        assert!(WindowStats::of(&[]).is_none());
    }

    #[test]
    fn two_points_have_a_return_but_no_volatility() {
        let s = WindowStats::of(&points(&[100.0, 110.0])).unwrap();
        assert!((s.simple_return.unwrap() - 0.1).abs() < 1e-12);
        assert!((s.log_return.unwrap() - 1.1f64.ln()).abs() < 1e-12);
        assert_eq!(s.realized_vol, None);
    }

    #[test]
    fn volatility_is_the_sample_std_of_log_returns() {
        let s = WindowStats::of(&points(&[100.0, 110.0, 99.0, 104.0])).unwrap();
        let r = [
            (1.1f64).ln(),
            (99.0f64 / 110.0).ln(),
            (104.0f64 / 99.0).ln(),
        ];
        let m = r.iter().sum::<f64>() / 3.0;
        let expected = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((s.realized_vol.unwrap() - expected).abs() < 1e-12);
        assert!((s.realized_vol_annualized().unwrap() - expected * 105_120f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn median_and_z_score() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(z_score(5.0, &[1.0, 1.0]), None, "zero deviation");
        let z = z_score(4.0, &[1.0, 2.0, 3.0]).unwrap();
        assert!((z - 2.0).abs() < 1e-12);
    }
}
