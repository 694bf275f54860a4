//! The recent price points of each series (`coin_id|vs_currency`) in a key-value store.
//!
//! Layout: `[b'p'][series][0x00][ts: 8 bytes big-endian, sign bit flipped]` →
//! `[price: f64 BE][volume: f64 BE, NaN = none]`, so a range scan returns a series' points in
//! time order; `[b'l'][series]` → the latest event time, for ordering checks.

use streamlib::state::{KeyValueStore, StateError};

use super::stats::WindowStats;

/// One price observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// Price, > 0.
    pub price: f64,
    /// 24 h volume, when known.
    pub volume: Option<f64>,
}

const POINT: u8 = b'p';
const LATEST: u8 = b'l';

fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

fn ts_from(bytes: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
}

/// The store key of `series`' point at `ts` (bounds of interactive range queries).
pub fn point_key(series: &str, ts: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(series.len() + 10);
    key.push(POINT);
    key.extend_from_slice(series.as_bytes());
    key.push(0);
    key.extend_from_slice(&ts_bytes(ts));
    key
}

/// The store key of `series`' latest event time.
pub fn latest_key(series: &str) -> Vec<u8> {
    let mut key = vec![LATEST];
    key.extend_from_slice(series.as_bytes());
    key
}

fn corrupt(what: &str) -> StateError {
    StateError::Corrupt {
        store: "price history".into(),
        reason: what.into(),
    }
}

/// What a key of the store names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryKey {
    /// The point of `series` at `ts`.
    Point {
        /// `coin_id|vs_currency`.
        series: String,
        /// Event time, ms since the epoch.
        ts: i64,
    },
    /// The latest event time of `series`.
    Latest {
        /// `coin_id|vs_currency`.
        series: String,
    },
}

impl HistoryKey {
    /// The key `bytes` names, `None` when they are not a key of this layout.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (&kind, rest) = bytes.split_first()?;
        match kind {
            POINT => {
                let at = rest.len().checked_sub(9)?;
                (rest[at] == 0).then_some(())?;
                Some(Self::Point {
                    series: String::from_utf8(rest[..at].to_vec()).ok()?,
                    ts: ts_from(&rest[at + 1..])?,
                })
            }
            LATEST => Some(Self::Latest {
                series: String::from_utf8(rest.to_vec()).ok()?,
            }),
            _ => None,
        }
    }
}

/// A point's stored value: its price and volume.
pub fn decode_value(value: &[u8]) -> Option<(f64, Option<f64>)> {
    let price = f64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let volume = f64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    (value.len() == 16).then_some((price, (!volume.is_nan()).then_some(volume)))
}

/// The stored latest event time.
pub fn decode_latest(value: &[u8]) -> Option<i64> {
    ts_from(value)
}

fn decode(key: &[u8], value: &[u8]) -> Result<Point, StateError> {
    let ts = key
        .len()
        .checked_sub(8)
        .and_then(|at| ts_from(&key[at..]))
        .ok_or_else(|| corrupt("short key"))?;
    let (price, volume) = decode_value(value).ok_or_else(|| corrupt("value is not 16 bytes"))?;
    Ok(Point { ts, price, volume })
}

/// The points of one series over a store.
pub struct PriceHistory<'a> {
    store: &'a mut dyn KeyValueStore,
    series: String,
}

impl<'a> PriceHistory<'a> {
    /// The series `series` (e.g. `bitcoin|usd`) in `store`.
    pub fn new(store: &'a mut dyn KeyValueStore, series: String) -> Self {
        Self { store, series }
    }

    /// Latest event time added so far.
    pub fn latest(&self) -> Result<Option<i64>, StateError> {
        self.store
            .get(&latest_key(&self.series))?
            .map(|bytes| ts_from(&bytes).ok_or_else(|| corrupt("latest")))
            .transpose()
    }

    /// Adds a point (replacing one at the same time) and moves `latest` forward.
    pub fn add(&mut self, point: Point) -> Result<(), StateError> {
        let mut value = point.price.to_be_bytes().to_vec();
        value.extend_from_slice(&point.volume.unwrap_or(f64::NAN).to_be_bytes());
        self.store.put(&point_key(&self.series, point.ts), &value)?;
        if self.latest()?.is_none_or(|latest| point.ts > latest) {
            self.store
                .put(&latest_key(&self.series), &ts_bytes(point.ts))?;
        }
        Ok(())
    }

    /// Points with `from <= ts <= to`, in time order.
    pub fn points(&self, from: i64, to: i64) -> Result<Vec<Point>, StateError> {
        if from > to {
            return Ok(Vec::new());
        }
        // `range` is end-exclusive: one past `to`, saturating at the top of the time range.
        let end = to.checked_add(1).map_or_else(
            || {
                let mut key = point_key(&self.series, i64::MAX);
                key.push(0);
                key
            },
            |end| point_key(&self.series, end),
        );
        self.store
            .range(&point_key(&self.series, from), &end)?
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect()
    }

    /// The window ending at `end` (inclusive) of length `horizon_ms`: the reference point (the
    /// last at or before `end − horizon_ms`, searched back `lookback_ms` further) followed by
    /// the points in `(end − horizon_ms, end]`.
    pub fn window(
        &self,
        end: i64,
        horizon_ms: i64,
        lookback_ms: i64,
    ) -> Result<Vec<Point>, StateError> {
        let start = end - horizon_ms;
        let mut points: Vec<Point> = self
            .points(start - lookback_ms, start)?
            .last()
            .copied()
            .into_iter()
            .collect();
        points.extend(self.points(start + 1, end)?);
        Ok(points)
    }

    /// [`WindowStats`] of [`Self::window`].
    pub fn stats(
        &self,
        end: i64,
        horizon_ms: i64,
        lookback_ms: i64,
    ) -> Result<Option<WindowStats>, StateError> {
        Ok(WindowStats::of(&self.window(
            end,
            horizon_ms,
            lookback_ms,
        )?))
    }

    /// Deletes the points older than `before`; returns how many.
    pub fn trim(&mut self, before: i64) -> Result<usize, StateError> {
        let old = self.store.range(
            &point_key(&self.series, i64::MIN),
            &point_key(&self.series, before),
        )?;
        for (key, _) in &old {
            self.store.delete(key)?;
        }
        Ok(old.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlib::state::memory_store;

    fn point(ts: i64, price: f64) -> Point {
        Point {
            ts,
            price,
            volume: Some(price * 10.0),
        }
    }

    #[test]
    fn windows_take_the_reference_point_and_the_points_after_it() {
        let mut store = memory_store("h", false);
        let mut h = PriceHistory::new(store.as_mut(), "bitcoin|usd".into());
        for (ts, price) in [(-100, 1.0), (0, 2.0), (100, 3.0), (200, 4.0), (300, 5.0)] {
            h.add(point(ts, price)).unwrap();
        }
        assert_eq!(h.latest().unwrap(), Some(300));
        let prices = |w: Vec<Point>| w.iter().map(|p| p.price).collect::<Vec<_>>();
        // (100, 300] plus the last point at or before 100.
        assert_eq!(prices(h.window(300, 200, 1_000).unwrap()), [3.0, 4.0, 5.0]);
        // (150, 300] plus the last point at or before 150 (ts 100).
        assert_eq!(prices(h.window(300, 150, 1_000).unwrap()), [3.0, 4.0, 5.0]);
        // The look-back limits how far back the reference may be.
        assert_eq!(prices(h.window(300, 150, 10).unwrap()), [4.0, 5.0]);
        assert_eq!(h.trim(100).unwrap(), 2);
        assert_eq!(
            prices(h.points(i64::MIN, i64::MAX).unwrap()),
            [3.0, 4.0, 5.0]
        );
        assert_eq!(h.points(0, 1000).unwrap()[0].volume, Some(30.0));
    }

    #[test]
    fn keys_and_values_decode_for_queries() {
        assert_eq!(
            HistoryKey::parse(&point_key("bitcoin|usd", -5)),
            Some(HistoryKey::Point {
                series: "bitcoin|usd".into(),
                ts: -5
            })
        );
        assert_eq!(
            HistoryKey::parse(&latest_key("a|usd")),
            Some(HistoryKey::Latest {
                series: "a|usd".into()
            })
        );
        assert_eq!(HistoryKey::parse(b"x"), None);
        assert_eq!(HistoryKey::parse(b"p"), None);
        let mut value = 2.5f64.to_be_bytes().to_vec();
        value.extend_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(decode_value(&value), Some((2.5, None)));
        assert_eq!(decode_value(&value[..8]), None);
        assert_eq!(decode_latest(&ts_bytes(42)), Some(42));
    }

    #[test]
    fn series_do_not_mix_and_latest_only_moves_forward() {
        let mut store = memory_store("h", false);
        PriceHistory::new(store.as_mut(), "a|usd".into())
            .add(point(10, 1.0))
            .unwrap();
        let mut b = PriceHistory::new(store.as_mut(), "a|usdt".into());
        b.add(point(20, 2.0)).unwrap();
        b.add(point(5, 3.0)).unwrap();
        assert_eq!(b.latest().unwrap(), Some(20));
        assert_eq!(b.points(i64::MIN, i64::MAX).unwrap().len(), 2);
        let a = PriceHistory::new(store.as_mut(), "a|usd".into());
        assert_eq!(a.points(i64::MIN, i64::MAX).unwrap().len(), 1);
    }
}
