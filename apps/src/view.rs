//! The pipeline's terminal view: the latest price, returns and volatility per coin and the
//! latest alerts, rebuilt from the records of `crypto.prices.dedup`, `crypto.metrics` and
//! `crypto.alerts`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use crate::alerts::AlertEvent;
use crate::analytics::Horizon;
use crate::event::PriceEvent;
use crate::metrics::{Emit, MetricsEvent};
use crate::topics::Topics;

/// Alerts kept on screen.
const ALERTS_SHOWN: usize = 8;

/// What the view knows about one coin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoinRow {
    /// Latest price.
    pub price: Option<f64>,
    /// Event time of the latest price.
    pub ts_event: String,
    /// Latest simple return per horizon.
    pub returns: BTreeMap<Horizon, f64>,
    /// Latest annualized volatility per horizon.
    pub vol_annualized: BTreeMap<Horizon, f64>,
}

/// The view's state.
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    /// Rows by coin id.
    pub coins: BTreeMap<String, CoinRow>,
    /// Newest first.
    pub alerts: VecDeque<AlertEvent>,
    /// Records read per topic.
    pub counts: BTreeMap<String, u64>,
    /// `emit: update` records read from the metrics topic.
    pub metric_updates: u64,
    /// Earliest and latest `ts_event` of the deduplicated events read.
    pub event_span: crate::batch::EventSpan,
}

impl Dashboard {
    /// Applies one record read from `topic`; records that do not parse are counted only.
    pub fn apply(&mut self, topics: &Topics, topic: &str, value: &[u8]) {
        *self.counts.entry(topic.to_string()).or_default() += 1;
        if topic == topics.dedup {
            if let Ok(event) = serde_json::from_slice::<PriceEvent>(value) {
                self.widen_span(&event.ts_event);
                let row = self.coins.entry(event.coin_id).or_default();
                if event.ts_event >= row.ts_event {
                    row.price = Some(event.price);
                    row.ts_event = event.ts_event;
                }
            }
        } else if topic == topics.metrics {
            if let Ok(m) = serde_json::from_slice::<MetricsEvent>(value) {
                if m.emit == Emit::Update {
                    self.metric_updates += 1;
                    let row = self.coins.entry(m.coin_id).or_default();
                    if let Some(r) = m.simple_return {
                        row.returns.insert(m.horizon, r);
                    }
                    if let Some(v) = m.realized_vol_annualized {
                        row.vol_annualized.insert(m.horizon, v);
                    }
                }
            }
        } else if topic == topics.alerts {
            if let Ok(alert) = serde_json::from_slice::<AlertEvent>(value) {
                self.alerts.push_front(alert);
                self.alerts.truncate(ALERTS_SHOWN);
            }
        }
    }

    fn widen_span(&mut self, ts_event: &str) {
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts_event) else {
            return;
        };
        let t = t.with_timezone(&chrono::Utc);
        self.event_span = Some(match self.event_span {
            Some((first, last)) => (first.min(t), last.max(t)),
            None => (t, t),
        });
    }

    /// The screen, as plain text lines.
    pub fn render(&self, topics: &Topics) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>14}  {:>8} {:>8} {:>8} {:>8}  {:>8} {:>8}  as of (UTC)",
            "coin", "price", "5m", "1h", "24h", "7d", "vol 1h", "vol 24h"
        );
        for (coin, row) in &self.coins {
            let ret = |h| percent(row.returns.get(&h), true);
            let vol = |h| percent(row.vol_annualized.get(&h), false);
            let price = row
                .price
                .map_or_else(|| "–".to_string(), |p| format!("{p:.4}"));
            let _ = writeln!(
                out,
                "{coin:<12} {price:>14}  {:>8} {:>8} {:>8} {:>8}  {:>8} {:>8}  {}",
                ret(Horizon::M5),
                ret(Horizon::H1),
                ret(Horizon::H24),
                ret(Horizon::D7),
                vol(Horizon::H1),
                vol(Horizon::H24),
                row.ts_event
                    .get(..19)
                    .unwrap_or(&row.ts_event)
                    .replace('T', " "),
            );
        }
        let _ = writeln!(out, "\nlatest alerts");
        if self.alerts.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for a in &self.alerts {
            let _ = writeln!(
                out,
                "  {} {:<8} {:<12} {}",
                a.ts_event
                    .get(..19)
                    .unwrap_or(&a.ts_event)
                    .replace('T', " "),
                format!("{:?}", a.severity).to_lowercase(),
                a.rule.label(),
                a.message
            );
        }
        let counts: Vec<String> = [&topics.dedup, &topics.metrics, &topics.alerts]
            .iter()
            .map(|t| format!("{t} {}", self.counts.get(*t).copied().unwrap_or_default()))
            .collect();
        let _ = writeln!(out, "\nrecords read: {}", counts.join(" · "));
        out
    }
}

/// A fraction as percent with two decimals (`–` when unknown).
fn percent(value: Option<&f64>, signed: bool) -> String {
    match value {
        Some(v) if signed => format!("{:+.2}%", v * 100.0),
        Some(v) => format!("{:.1}%", v * 100.0),
        None => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    #[test]
    fn rows_follow_prices_and_metric_updates() {
        let topics = Topics::default();
        let mut d = Dashboard::default();
        let at = chrono::DateTime::from_timestamp_millis(1_795_392_000_000).unwrap();
        let event = PriceEvent::new(Source::Synthetic, "bitcoin", "btc", "usd", 70_000.0, at, at);
        d.apply(&topics, &topics.dedup, &serde_json::to_vec(&event).unwrap());
        d.apply(&topics, &topics.dedup, b"not json");
        let screen = d.render(&topics);
        assert!(screen.contains("bitcoin"), "{screen}");
        assert!(screen.contains("70000.0000"), "{screen}");
        assert!(screen.contains("2026-11-23 00:00:00"), "{screen}");
        assert!(screen.contains("crypto.prices.dedup 2 ·"), "{screen}");
    }
}
