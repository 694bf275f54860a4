//! Synthetic mode: a seeded random walk per coin, for demos, tests and benchmarks when there
//! is neither network nor a recording.
//!
//! Each coin follows a geometric Brownian motion whose volatility switches between a calm and
//! a turbulent regime (three times the calm volatility; on average two turbulent spells a
//! day, three hours each), plus occasional jumps (log size ~ N(0, 4 %); about one every two
//! days when calm, three a day when turbulent). Same seed, coins and interval ⇒ same prices,
//! whatever the wall clock. Prices start at [`coins::profile`](super::coins::profile)
//! values; market cap, 24 h high/low/change and volume are derived so the downstream apps have
//! realistic events to chew on.
//!
//! ```
//! use std::time::Duration;
//! use apps::producer::synthetic::Market;
//!
//! let coins = ["bitcoin".to_string(), "sui".to_string()];
//! let at = "2025-07-25T14:55:00Z".parse().unwrap();
//! let mut a = Market::new(7, &coins, Duration::from_secs(300));
//! let mut b = Market::new(7, &coins, Duration::from_secs(300));
//! let (x, y) = (a.tick(at, "usd", at), b.tick(at, "usd", at));
//! assert_eq!(x, y);
//! assert_eq!((x[0].symbol.as_str(), x[0].market_cap_rank), ("btc", Some(1)));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::coins::{profile, CoinProfile};
use super::reference::{profile_row, SentRows};
use super::schedule::{Pacer, Schedule};
use super::sink::EventSink;
use super::{event_record, wait_until, Output, ProducerError, Stats};
use crate::event::{PriceEvent, Source};

const SECONDS_PER_DAY: f64 = 86_400.0;
const DAYS_PER_YEAR: f64 = 365.25;
/// Calm → turbulent switches per day.
const TURBULENCE_ONSET_PER_DAY: f64 = 2.0;
/// Turbulent → calm switches per day (mean spell: 3 h).
const TURBULENCE_END_PER_DAY: f64 = 8.0;
/// Volatility multiplier of the turbulent regime.
const TURBULENT_VOLATILITY: f64 = 3.0;
/// Jumps per day, calm and turbulent.
const JUMPS_PER_DAY: [f64; 2] = [0.5, 3.0];
/// Standard deviation of a jump's log size.
const JUMP_SIZE: f64 = 0.04;
/// `last_updated` lags the tick by up to this much, like CoinGecko's per-coin times.
const MAX_UPDATE_LAG_MS: i64 = 20_000;

/// Synthetic-mode settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Random seed: the same seed gives the same prices.
    pub seed: u64,
    /// Time between ticks (wall-clock aligned, like live polls).
    pub interval: Duration,
    /// Start this many ticks in the past: history is emitted first, at `speedup`.
    pub history_ticks: u32,
    /// How fast history is caught up (0 = at once); live ticks then follow real time.
    pub speedup: f64,
    /// Stop after this many ticks (history included).
    pub max_ticks: Option<u64>,
}

impl Default for SyntheticConfig {
    /// Seed 42, 5-minute ticks, no history, until stopped.
    fn default() -> Self {
        Self {
            seed: 42,
            interval: Duration::from_secs(300),
            history_ticks: 0,
            speedup: 1.0,
            max_ticks: None,
        }
    }
}

/// One coin's walk.
#[derive(Clone, Debug)]
struct Walk {
    coin: CoinProfile,
    price: f64,
    turbulent: bool,
    /// `(tick time, price)` of the last 24 h, for the 24 h and 1 h fields.
    history: VecDeque<(DateTime<Utc>, f64)>,
}

/// A seeded market of random walks.
#[derive(Clone, Debug)]
pub struct Market {
    rng: StdRng,
    interval: Duration,
    walks: Vec<Walk>,
}

impl Market {
    /// A market of `coins` stepping every `interval`, seeded with `seed`.
    pub fn new(seed: u64, coins: &[String], interval: Duration) -> Self {
        let walks = coins
            .iter()
            .map(|id| {
                let coin = profile(id);
                Walk {
                    price: coin.price,
                    coin,
                    turbulent: false,
                    history: VecDeque::new(),
                }
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            interval,
            walks,
        }
    }

    /// Steps every coin once and returns one event per coin for tick time `at`.
    pub fn tick(
        &mut self,
        at: DateTime<Utc>,
        vs_currency: &str,
        ts_ingest: DateTime<Utc>,
    ) -> Vec<PriceEvent> {
        let days = self.interval.as_secs_f64() / SECONDS_PER_DAY;
        let years = days / DAYS_PER_YEAR;
        let mut lags = Vec::with_capacity(self.walks.len());
        let mut turnovers = Vec::with_capacity(self.walks.len());
        for walk in &mut self.walks {
            let rng = &mut self.rng;
            let switch_rate = if walk.turbulent {
                TURBULENCE_END_PER_DAY
            } else {
                TURBULENCE_ONSET_PER_DAY
            };
            if rng.random::<f64>() < probability(switch_rate, days) {
                walk.turbulent = !walk.turbulent;
            }
            let regime = usize::from(walk.turbulent);
            let sigma = walk.coin.volatility * [1.0, TURBULENT_VOLATILITY][regime];
            let diffusion = sigma * years.sqrt() * normal(rng);
            let jump_size = JUMP_SIZE * normal(rng);
            let jumped = rng.random::<f64>() < probability(JUMPS_PER_DAY[regime], days);
            let log_return =
                -0.5 * sigma * sigma * years + diffusion + if jumped { jump_size } else { 0.0 };
            walk.price *= log_return.exp();
            walk.history.push_back((at, walk.price));
            while walk
                .history
                .front()
                .is_some_and(|(t, _)| *t < at - TimeDelta::hours(24))
            {
                walk.history.pop_front();
            }
            lags.push(rng.random_range(0..MAX_UPDATE_LAG_MS));
            turnovers.push(0.02 + 0.04 * rng.random::<f64>() * [1.0, 2.0][regime]);
        }
        let mut by_cap: Vec<usize> = (0..self.walks.len()).collect();
        by_cap.sort_by(|a, b| {
            let cap = |i: &usize| self.walks[*i].price * self.walks[*i].coin.circulating_supply;
            cap(b).total_cmp(&cap(a))
        });
        let mut events: Vec<PriceEvent> = self
            .walks
            .iter()
            .zip(lags.iter().zip(&turnovers))
            .map(|(walk, (lag, turnover))| {
                walk.event(
                    at - TimeDelta::milliseconds(*lag),
                    vs_currency,
                    ts_ingest,
                    *turnover,
                )
            })
            .collect();
        for (rank, index) in by_cap.into_iter().enumerate() {
            events[index].market_cap_rank = u32::try_from(rank + 1).ok();
        }
        events
    }
}

impl Walk {
    fn event(
        &self,
        ts_event: DateTime<Utc>,
        vs_currency: &str,
        ts_ingest: DateTime<Utc>,
        turnover: f64,
    ) -> PriceEvent {
        let coin = &self.coin;
        let mut event = PriceEvent::new(
            Source::Synthetic,
            &coin.id,
            &coin.symbol,
            vs_currency,
            self.price,
            ts_event,
            ts_ingest,
        );
        let prices = self.history.iter().map(|(_, price)| *price);
        let open_24h = self.history.front().map_or(self.price, |(_, p)| *p);
        let hour_ago = self.history.back().map(|(t, _)| *t - TimeDelta::hours(1));
        let open_1h = self
            .history
            .iter()
            .find(|(t, _)| Some(*t) >= hour_ago)
            .map_or(self.price, |(_, p)| *p);
        let market_cap = self.price * coin.circulating_supply;
        let change_24h = self.price - open_24h;
        let percent_24h = change_24h / open_24h * 100.0;
        event.market_cap = Some(market_cap);
        event.fully_diluted_valuation =
            Some(self.price * coin.max_supply.unwrap_or(coin.circulating_supply));
        event.total_volume = Some(market_cap * turnover);
        event.high_24h = prices.clone().reduce(f64::max);
        event.low_24h = prices.reduce(f64::min);
        event.price_change_24h = Some(change_24h);
        event.price_change_percentage_24h = Some(percent_24h);
        event.market_cap_change_24h = Some(change_24h * coin.circulating_supply);
        event.market_cap_change_percentage_24h = Some(percent_24h);
        event.circulating_supply = Some(coin.circulating_supply);
        event.total_supply = Some(coin.max_supply.unwrap_or(coin.circulating_supply));
        event.max_supply = coin.max_supply;
        event.price_change_percentage_1h_in_currency = Some((self.price / open_1h - 1.0) * 100.0);
        event.price_change_percentage_24h_in_currency = Some(percent_24h);
        event
    }
}

/// The probability of at least one event of a Poisson process of `rate` per day in `days`.
fn probability(rate: f64, days: f64) -> f64 {
    1.0 - (-rate * days).exp()
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Emits ticks from `history_ticks` intervals ago: the past at the speed-up, then in real
/// time, until `max_ticks` or shutdown.
pub(crate) async fn run<S: EventSink>(
    config: &SyntheticConfig,
    vs_currency: &str,
    coins: &[String],
    out: Output<'_, S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Stats, ProducerError> {
    let schedule = Schedule::new(config.interval)?;
    let step = TimeDelta::from_std(schedule.interval())
        .map_err(|e| ProducerError::Config(e.to_string()))?;
    let now = Utc::now();
    let first =
        schedule.at_or_before(now) - step * i32::try_from(config.history_ticks).unwrap_or(i32::MAX);
    let pacer = Pacer::new(config.speedup, now, first).never_ahead_of_data();
    let mut market = Market::new(config.seed, coins, schedule.interval());
    let mut stats = Stats::default();
    let mut sent = SentRows::default();
    tracing::info!(seed = config.seed, first = %crate::event::format_ts(first), "synthetic market");
    let mut at = first;
    while config.max_ticks.is_none_or(|max| stats.batches < max) {
        if !wait_until(pacer.release_at(at), &mut shutdown).await {
            break;
        }
        let now = Utc::now();
        let events = market.tick(at, vs_currency, now);
        let rows = events
            .iter()
            .map(|event| profile_row(&event.coin_id, &event.symbol, now, Source::Synthetic))
            .collect();
        let records = events.iter().map(event_record).collect();
        stats.add_batch(out.send(rows, records, &mut sent).await);
        at += step;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::DEFAULT_COINS;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn coins() -> Vec<String> {
        DEFAULT_COINS.iter().map(|c| c.to_string()).collect()
    }

    fn prices(seed: u64, ticks: usize) -> Vec<Vec<f64>> {
        let mut market = Market::new(seed, &coins(), FIVE_MINUTES);
        let start: DateTime<Utc> = "2025-07-25T00:00:00Z".parse().unwrap();
        (0..ticks)
            .map(|k| {
                let at = start + TimeDelta::minutes(5 * k as i64);
                market.tick(at, "usd", at).iter().map(|e| e.price).collect()
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_walk_and_another_seed_another() {
        assert_eq!(prices(1, 50), prices(1, 50));
        assert_ne!(prices(1, 50), prices(2, 50));
    }

    #[test]
    fn walks_start_near_realistic_prices_and_stay_positive() {
        let walk = prices(3, 2_000);
        assert!(
            (walk[0][0] / 110_000.0 - 1.0).abs() < 0.05,
            "{}",
            walk[0][0]
        );
        assert!(walk.iter().flatten().all(|p| p.is_finite() && *p > 0.0));
    }

    #[test]
    fn volatility_switches_regimes_and_prices_jump() {
        // ~69 days of bitcoin at 5-minute steps.
        let series: Vec<f64> = prices(11, 20_000).iter().map(|tick| tick[0]).collect();
        let returns: Vec<f64> = series.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let calm_sigma = 0.45 * (300.0 / (SECONDS_PER_DAY * DAYS_PER_YEAR)).sqrt();
        // Daily realised volatility: calm days and turbulent days differ clearly.
        let daily: Vec<f64> = returns
            .chunks(288)
            .map(|day| (day.iter().map(|r| r * r).sum::<f64>() / day.len() as f64).sqrt())
            .collect();
        let (low, high) = daily
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(high > 2.0 * low, "daily volatility {low}..{high}");
        // Moves of 15 calm sigmas (5 turbulent ones) come from jumps.
        let jumps = returns
            .iter()
            .filter(|r| r.abs() > 15.0 * calm_sigma)
            .count();
        assert!((5..200).contains(&jumps), "{jumps} jumps");
    }

    #[test]
    fn derived_fields_are_consistent() {
        let mut market = Market::new(5, &coins(), FIVE_MINUTES);
        let start: DateTime<Utc> = "2025-07-25T00:00:00Z".parse().unwrap();
        let mut last = Vec::new();
        for k in 0..300 {
            let at = start + TimeDelta::minutes(5 * k);
            last = market.tick(at, "usd", at);
        }
        let mut ranks: Vec<u32> = last.iter().filter_map(|e| e.market_cap_rank).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (1..=10).collect::<Vec<u32>>());
        for event in &last {
            let (low, high) = (event.low_24h.unwrap(), event.high_24h.unwrap());
            assert!(low <= event.price && event.price <= high, "{event:?}");
            assert!(event.ts_event.as_str() <= "2025-07-26T00:55:00.000Z");
            assert_eq!(event.source, Source::Synthetic);
        }
    }
}
