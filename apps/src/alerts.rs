//! **alerts**: `crypto.prices.dedup` → `crypto.alerts` (contract `alert_event` 1.0). Rules,
//! configurable per coin ([`RulesConfig`]):
//! - `price_move`: |simple return| over a horizon ≥ threshold (a fraction);
//! - `zscore`: |z| of the latest log return against the window's earlier returns ≥ threshold;
//! - `volume_spike`: latest 24 h volume / median of the window's earlier volumes ≥ threshold;
//! - `stale_feed`: no event for a coin for `stale_after_minutes` of processing time (checked
//!   by a wall-clock punctuator).
//!
//! One alert per rule, coin and window per cooldown; severity is `critical` at twice the
//! threshold, else `warning`.
//!
//! Each alert is then left-joined with the coin's reference row (`crypto.coins`, read whole by
//! every instance as a global table, rows checked by their contract) so that its message names
//! the coin: `bitcoin (Bitcoin, BTC, rank 1) moved 8.00 % within 1h` ([`name_coin`]); a coin
//! without a row keeps the plain message. The alert goes to [`RECENT_STORE`] after the join,
//! so the store holds exactly what goes to the topic.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use streamlib::error::ProcessError;
use streamlib::prelude::*;
use streamlib::processor::PunctuatorId;
use streamlib::serdes::{JsonSchemaSerde, SerdeError};
use streamlib::state::KeyValueStore;

use crate::analytics::history::PriceHistory;
use crate::analytics::stats::{log_returns, median, z_score};
use crate::analytics::Horizon;
use crate::counters::Counters;
use crate::event::{format_millis, format_ts, parse_ts_millis, sha256_hex, PriceEvent};
use crate::metrics::{point, series, LOOKBACK_MS};
use crate::reference::{contract_serde, CoinReference};
use crate::topics::Topics;

/// Price history of the alert rules.
pub const HISTORY_STORE: &str = "alerts-history";
/// Last alert time per (rule, series, window), and last arrival per series.
pub const STATE_STORE: &str = "alerts-state";
/// The alerts of the last [`RECENT_KEEP_MS`] per series, keyed by [`recent_key`]: the alert
/// feed of interactive queries ([`crate::queries`]).
pub const RECENT_STORE: &str = "alerts-recent";
/// How long [`RECENT_STORE`] keeps an alert, by its event time (seven days).
pub const RECENT_KEEP_MS: i64 = 7 * 24 * 3_600_000;
/// The global store of the coin reference rows (`crypto.coins`), by `coin_id`.
pub const COINS_STORE: &str = "alerts-coins";
/// The longest `message` the alert contract allows, in characters.
const MESSAGE_MAX_CHARS: usize = 500;
/// How often the stale-feed check runs (wall clock).
const STALE_CHECK_EVERY_MS: i64 = 10_000;

/// A record of `crypto.alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // documented field by field in the JSON Schema
pub struct AlertEvent {
    pub schema_version: String,
    pub alert_id: String,
    pub rule: Rule,
    pub severity: Severity,
    pub coin_id: String,
    pub vs_currency: String,
    pub window: Option<Horizon>,
    pub observed: f64,
    pub threshold: f64,
    pub ts_event: String,
    pub ts_alert: String,
    pub message: String,
}

/// The alert rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Rule {
    PriceMove,
    Zscore,
    VolumeSpike,
    StaleFeed,
}

impl Rule {
    /// The contract's name of the rule (`price_move`, …).
    pub fn label(self) -> &'static str {
        match self {
            Rule::PriceMove => "price_move",
            Rule::Zscore => "zscore",
            Rule::VolumeSpike => "volume_spike",
            Rule::StaleFeed => "stale_feed",
        }
    }
}

/// How bad an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A threshold over a horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRule {
    /// Horizon looked at.
    pub window: Horizon,
    /// Alert when observed ≥ this.
    pub threshold: f64,
    /// Fewest earlier points the statistic needs (zscore, volume_spike).
    #[serde(default = "default_min_points")]
    pub min_points: usize,
}

fn default_min_points() -> usize {
    12
}

/// The rules of one coin; in an override, absent fields keep the defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinRules {
    /// Price-move rules (threshold: fraction, 0.05 = 5 %); `[]` disables.
    pub price_move: Option<Vec<WindowRule>>,
    /// z-score rule (threshold: |z|); `null` disables.
    pub zscore: Option<Option<WindowRule>>,
    /// Volume-spike rule (threshold: ratio to the median); `null` disables.
    pub volume_spike: Option<Option<WindowRule>>,
    /// Minutes without events before `stale_feed`; 0 disables.
    pub stale_after_minutes: Option<u64>,
    /// Minutes after an alert during which the same rule, coin and window stay quiet.
    pub cooldown_minutes: Option<u64>,
}

/// Effective rules of a coin.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// See [`CoinRules::price_move`].
    pub price_move: Vec<WindowRule>,
    /// See [`CoinRules::zscore`].
    pub zscore: Option<WindowRule>,
    /// See [`CoinRules::volume_spike`].
    pub volume_spike: Option<WindowRule>,
    /// See [`CoinRules::stale_after_minutes`].
    pub stale_after_minutes: u64,
    /// See [`CoinRules::cooldown_minutes`].
    pub cooldown_minutes: u64,
}

/// Defaults plus per-coin overrides, read from a JSON file (`--rules`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Overrides of the built-in defaults for every coin.
    #[serde(default)]
    pub default: CoinRules,
    /// Overrides per `coin_id`.
    #[serde(default)]
    pub coins: BTreeMap<String, CoinRules>,
}

impl RulesConfig {
    /// Reads a rules file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The rules in effect for `coin_id`.
    pub fn rules_for(&self, coin_id: &str) -> Rules {
        let builtin = Rules {
            price_move: vec![
                WindowRule {
                    window: Horizon::H1,
                    threshold: 0.05,
                    min_points: 0,
                },
                WindowRule {
                    window: Horizon::H24,
                    threshold: 0.10,
                    min_points: 0,
                },
            ],
            zscore: Some(WindowRule {
                window: Horizon::H24,
                threshold: 4.0,
                min_points: 12,
            }),
            volume_spike: Some(WindowRule {
                window: Horizon::H24,
                threshold: 3.0,
                min_points: 12,
            }),
            stale_after_minutes: 15,
            cooldown_minutes: 60,
        };
        let apply = |rules: Rules, o: &CoinRules| Rules {
            price_move: o.price_move.clone().unwrap_or(rules.price_move),
            zscore: o.zscore.clone().unwrap_or(rules.zscore),
            volume_spike: o.volume_spike.clone().unwrap_or(rules.volume_spike),
            stale_after_minutes: o.stale_after_minutes.unwrap_or(rules.stale_after_minutes),
            cooldown_minutes: o.cooldown_minutes.unwrap_or(rules.cooldown_minutes),
        };
        let rules = apply(builtin, &self.default);
        match self.coins.get(coin_id) {
            Some(coin) => apply(rules, coin),
            None => rules,
        }
    }
}

/// What a rule saw, before cooldown and formatting.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Rule that fired.
    pub rule: Rule,
    /// Horizon it looked at (`None` for stale_feed).
    pub window: Option<Horizon>,
    /// Observed value.
    pub observed: f64,
    /// Threshold it reached.
    pub threshold: f64,
}

/// The event-driven rules evaluated on `history` at the in-order event time `ts`.
pub fn evaluate(
    history: &PriceHistory<'_>,
    ts: i64,
    rules: &Rules,
) -> Result<Vec<Finding>, ProcessError> {
    let mut findings = Vec::new();
    for rule in &rules.price_move {
        let stats = history.stats(ts, rule.window.millis(), LOOKBACK_MS)?;
        if let Some(r) = stats.and_then(|s| s.simple_return) {
            if r.abs() >= rule.threshold {
                findings.push(Finding {
                    rule: Rule::PriceMove,
                    window: Some(rule.window),
                    observed: r.abs(),
                    threshold: rule.threshold,
                });
            }
        }
    }
    if let Some(rule) = &rules.zscore {
        let window = history.window(ts, rule.window.millis(), LOOKBACK_MS)?;
        let returns = log_returns(&window);
        if let Some((latest, earlier)) = returns.split_last() {
            if earlier.len() >= rule.min_points {
                if let Some(z) = z_score(*latest, earlier) {
                    if z.abs() >= rule.threshold {
                        findings.push(Finding {
                            rule: Rule::Zscore,
                            window: Some(rule.window),
                            observed: z.abs(),
                            threshold: rule.threshold,
                        });
                    }
                }
            }
        }
    }
    if let Some(rule) = &rules.volume_spike {
        let window = history.points(ts - rule.window.millis() + 1, ts)?;
        if let Some((latest, earlier)) = window.split_last() {
            let volumes: Vec<f64> = earlier.iter().filter_map(|p| p.volume).collect();
            if let (Some(volume), true) = (latest.volume, volumes.len() >= rule.min_points) {
                if let Some(m) = median(&volumes).filter(|m| *m > 0.0) {
                    let ratio = volume / m;
                    if ratio >= rule.threshold {
                        findings.push(Finding {
                            rule: Rule::VolumeSpike,
                            window: Some(rule.window),
                            observed: ratio,
                            threshold: rule.threshold,
                        });
                    }
                }
            }
        }
    }
    Ok(findings)
}

/// The alert record of `finding` for a coin whose relevant event time is `ts_event`.
pub fn alert(
    finding: &Finding,
    coin_id: &str,
    vs_currency: &str,
    ts_event: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> AlertEvent {
    let ts_event = format_millis(ts_event);
    let window = finding.window.map(Horizon::label).unwrap_or_default();
    let rule = finding.rule.label();
    let severity = if finding.observed >= 2.0 * finding.threshold {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let message = message(coin_id, finding.rule, finding.window, finding.observed);
    AlertEvent {
        schema_version: "1.0".into(),
        alert_id: sha256_hex(&format!(
            "{rule}|{coin_id}|{vs_currency}|{window}|{ts_event}"
        )),
        rule: finding.rule,
        severity,
        coin_id: coin_id.to_string(),
        vs_currency: vs_currency.to_string(),
        window: finding.window,
        observed: finding.observed,
        threshold: finding.threshold,
        ts_event,
        ts_alert: format_ts(now),
        message,
    }
}

/// The message of an alert about `subject` (the coin: its id, or its id and what its reference
/// row says of it).
fn message(subject: &str, rule: Rule, window: Option<Horizon>, observed: f64) -> String {
    let window = window.map(Horizon::label).unwrap_or_default();
    match rule {
        Rule::PriceMove => format!("{subject} moved {:.2} % within {window}", observed * 100.0),
        Rule::Zscore => format!(
            "{subject}: latest 5-minute return is {observed:.1} standard deviations from the \
             {window} mean"
        ),
        Rule::VolumeSpike => format!("{subject}: volume is {observed:.1}x the {window} median"),
        Rule::StaleFeed => format!("{subject}: no price event for {observed:.0} s"),
    }
}

/// `alert` with a message that names its coin as the coin's reference row `coin` does, after
/// the coin id it starts with: `bitcoin (Bitcoin, BTC, rank 1) moved 8.00 % within 1h`
/// (no rank for an unranked coin). Unchanged without a row, with a row of another coin, or
/// when the named message would be longer than the alert contract allows.
pub fn name_coin(alert: &AlertEvent, coin: Option<&CoinReference>) -> AlertEvent {
    let mut named = alert.clone();
    if let Some(coin) = coin.filter(|coin| coin.coin_id == alert.coin_id) {
        let rank = coin
            .market_cap_rank
            .map(|rank| format!(", rank {rank}"))
            .unwrap_or_default();
        let subject = format!(
            "{} ({}, {}{rank})",
            alert.coin_id,
            coin.name,
            coin.symbol.to_uppercase()
        );
        let text = message(&subject, alert.rule, alert.window, alert.observed);
        if text.chars().count() <= MESSAGE_MAX_CHARS {
            named.message = text;
        }
    }
    named
}

/// `coin_id|vs_currency|<ts_event ms, 13 digits>|alert_id`: a series' alerts sort by event
/// time in [`RECENT_STORE`].
pub fn recent_key(series: &str, ts_event: i64, alert_id: &str) -> String {
    format!("{series}|{:013}|{alert_id}", ts_event.max(0))
}

/// Keeps `alert` (of event time `ts_event`) in the recent-alerts store and forgets the series'
/// alerts older than [`RECENT_KEEP_MS`] before it.
fn remember(
    store: &mut dyn KeyValueStore,
    alert: &AlertEvent,
    ts_event: i64,
) -> Result<(), ProcessError> {
    let series = format!("{}|{}", alert.coin_id, alert.vs_currency);
    let value = serde_json::to_vec(alert)
        .map_err(|e| ProcessError::User(format!("encoding an alert: {e}")))?;
    store.put(
        recent_key(&series, ts_event, &alert.alert_id).as_bytes(),
        &value,
    )?;
    let expired = store.range(
        recent_key(&series, 0, "").as_bytes(),
        recent_key(&series, ts_event - RECENT_KEEP_MS, "").as_bytes(),
    )?;
    for (key, _) in expired {
        store.delete(&key)?;
    }
    Ok(())
}

fn cooldown_key(rule: Rule, series: &str, window: Option<Horizon>) -> Vec<u8> {
    format!(
        "c|{}|{series}|{}",
        rule.label(),
        window.map(Horizon::label).unwrap_or_default()
    )
    .into_bytes()
}

const ARRIVAL_PREFIX: &[u8] = b"a|";

/// `[arrival wall clock][ts_event]`, 8 bytes big-endian each.
fn encode_arrival(arrived: i64, ts_event: i64) -> Vec<u8> {
    [arrived.to_be_bytes(), ts_event.to_be_bytes()].concat()
}

fn decode_arrival(value: &[u8]) -> Result<(i64, i64), ProcessError> {
    let corrupt = || {
        ProcessError::State(streamlib::state::StateError::Corrupt {
            store: STATE_STORE.into(),
            reason: format!("arrival entry of {} bytes, expected 16", value.len()),
        })
    };
    let (arrived, ts_event) = value.split_at_checked(8).ok_or_else(corrupt)?;
    Ok((
        i64::from_be_bytes(arrived.try_into().map_err(|_| corrupt())?),
        i64::from_be_bytes(ts_event.try_into().map_err(|_| corrupt())?),
    ))
}

/// Whether the cooldown allows an alert at `now` (and if so, starts a new one).
fn cooled_down(
    state: &mut dyn KeyValueStore,
    key: &[u8],
    now: i64,
    cooldown_ms: i64,
) -> Result<bool, ProcessError> {
    let last = state
        .get(key)?
        .and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes);
    if last.is_some_and(|last| now < last + cooldown_ms) {
        return Ok(false);
    }
    state.put(key, &now.to_be_bytes())?;
    Ok(true)
}

struct Alerts {
    config: RulesConfig,
    counters: Counters,
}

impl Alerts {
    fn emit(
        &self,
        ctx: &mut ProcessorContext<'_, String, AlertEvent>,
        alert: AlertEvent,
        ts: i64,
    ) -> Result<(), ProcessError> {
        self.counters
            .inc("alerts_raised_total", &[("rule", alert.rule.label())]);
        tracing::info!(rule = alert.rule.label(), coin = %alert.coin_id, observed = alert.observed, "alert");
        ctx.forward(Record::new(alert.coin_id.clone(), alert, ts))
    }
}

impl Processor<String, PriceEvent, String, AlertEvent> for Alerts {
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, AlertEvent>,
    ) -> Result<(), ProcessError> {
        ctx.schedule(STALE_CHECK_EVERY_MS, PunctuationType::WallClockTime);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, PriceEvent>,
        ctx: &mut ProcessorContext<'_, String, AlertEvent>,
    ) -> Result<(), ProcessError> {
        let event = &record.value;
        let point = point(event)?;
        let series = series(event);
        let rules = self.config.rules_for(&event.coin_id);
        // Arrival (wall clock) and event time of the series' latest event, for stale_feed.
        let arrival = encode_arrival(ctx.wall_clock_time(), point.ts);
        let mut arrival_key = ARRIVAL_PREFIX.to_vec();
        arrival_key.extend_from_slice(series.as_bytes());
        ctx.key_value_store(STATE_STORE)?
            .put(&arrival_key, &arrival)?;

        let mut history = PriceHistory::new(ctx.key_value_store(HISTORY_STORE)?, series.clone());
        let previous = history.latest()?;
        history.add(point)?;
        if previous.is_some_and(|latest| point.ts <= latest) {
            return Ok(());
        }
        let findings = evaluate(&history, point.ts, &rules)?;
        history.trim(point.ts - Horizon::D7.millis() - LOOKBACK_MS)?;
        let cooldown_ms = rules.cooldown_minutes as i64 * 60_000;
        for finding in findings {
            let key = cooldown_key(finding.rule, &series, finding.window);
            if !cooled_down(
                ctx.key_value_store(STATE_STORE)?,
                &key,
                point.ts,
                cooldown_ms,
            )? {
                self.counters
                    .inc("alerts_suppressed_total", &[("rule", finding.rule.label())]);
                continue;
            }
            let alert = alert(
                &finding,
                &event.coin_id,
                &event.vs_currency,
                point.ts,
                chrono::Utc::now(),
            );
            self.emit(ctx, alert, point.ts)?;
        }
        Ok(())
    }

    fn punctuate(
        &mut self,
        _: PunctuatorId,
        now: i64,
        ctx: &mut ProcessorContext<'_, String, AlertEvent>,
    ) -> Result<(), ProcessError> {
        let arrivals = ctx
            .key_value_store(STATE_STORE)?
            .prefix_scan(ARRIVAL_PREFIX)?;
        for (key, value) in arrivals {
            let series = String::from_utf8_lossy(&key[ARRIVAL_PREFIX.len()..]).into_owned();
            let Some((coin_id, vs_currency)) = series.split_once('|') else {
                continue;
            };
            let (arrived, ts_event) = decode_arrival(&value)?;
            let rules = self.config.rules_for(coin_id);
            let limit_ms = rules.stale_after_minutes as i64 * 60_000;
            if limit_ms == 0 || now - arrived < limit_ms {
                continue;
            }
            let key = cooldown_key(Rule::StaleFeed, &series, None);
            if !cooled_down(
                ctx.key_value_store(STATE_STORE)?,
                &key,
                now,
                rules.cooldown_minutes as i64 * 60_000,
            )? {
                continue;
            }
            let finding = Finding {
                rule: Rule::StaleFeed,
                window: None,
                observed: (now - arrived) as f64 / 1000.0,
                threshold: limit_ms as f64 / 1000.0,
            };
            let alert = alert(
                &finding,
                coin_id,
                vs_currency,
                ts_event,
                chrono::DateTime::from_timestamp_millis(now).unwrap_or_default(),
            );
            self.emit(ctx, alert, now)?;
        }
        Ok(())
    }
}

/// Keeps each alert in [`RECENT_STORE`] and forwards it: placed after the join with the
/// reference rows, so the store holds exactly what goes to the topic.
struct Remember;

impl Processor<String, AlertEvent, String, AlertEvent> for Remember {
    fn process(
        &mut self,
        record: Record<String, AlertEvent>,
        ctx: &mut ProcessorContext<'_, String, AlertEvent>,
    ) -> Result<(), ProcessError> {
        let alert = &record.value;
        let ts_event = parse_ts_millis(&alert.ts_event).ok_or_else(|| {
            ProcessError::User(format!(
                "alert {} has a ts_event that is not RFC 3339: {}",
                alert.alert_id, alert.ts_event
            ))
        })?;
        remember(ctx.key_value_store(RECENT_STORE)?, alert, ts_event)?;
        ctx.forward(record)
    }
}

/// The serde of the reference rows: their contract's ([`contract_serde`]), counting every row
/// it refuses in `alerts_reference_rows_skipped_total{keyword}`. The global table asks it
/// before storing a row, so a refused row is skipped (and counted), never stored.
struct CheckedRows {
    contract: JsonSchemaSerde<CoinReference>,
    counters: Counters,
}

impl Serde<CoinReference> for CheckedRows {
    fn serialize(&self, topic: &str, row: &CoinReference) -> Result<Vec<u8>, SerdeError> {
        self.contract.serialize(topic, row)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<CoinReference, SerdeError> {
        self.contract.deserialize(topic, bytes).inspect_err(|error| {
            let keyword = match error {
                SerdeError::Schema(violation) => violation.rule.as_str(),
                _ => contract::rule::JSON_SYNTAX,
            };
            tracing::warn!(%topic, %error, "skipping a coin reference row its contract refuses");
            self.counters.inc(
                "alerts_reference_rows_skipped_total",
                &[("keyword", keyword)],
            );
        })
    }
}

/// The alerts topology with `config`, counting into `counters`.
pub fn topology(topics: &Topics, config: RulesConfig, counters: &Counters) -> Topology {
    let builder = StreamsBuilder::new();
    counters.describe("alerts_raised_total", "Alerts emitted, by rule");
    for rule in [
        Rule::PriceMove,
        Rule::Zscore,
        Rule::VolumeSpike,
        Rule::StaleFeed,
    ] {
        counters.add("alerts_raised_total", &[("rule", rule.label())], 0);
    }
    counters.describe(
        "alerts_suppressed_total",
        "Alerts not emitted because their rule was cooling down, by rule",
    );
    counters.describe(
        "alerts_reference_rows_skipped_total",
        "Rows of crypto.coins not stored because their contract refuses them, by keyword",
    );
    let coins = builder.global_table(
        &topics.coins,
        StringSerde,
        CheckedRows {
            contract: contract_serde(),
            counters: counters.clone(),
        },
        COINS_STORE,
    );
    let counters = counters.clone();
    let stream = crate::analytics::price_stream(&builder, &topics.dedup);
    stream.with_store(StoreSpec::new(HISTORY_STORE, StoreKind::KeyValue));
    stream.with_store(StoreSpec::new(STATE_STORE, StoreKind::KeyValue));
    stream.with_store(StoreSpec::new(RECENT_STORE, StoreKind::KeyValue));
    stream
        .process(
            move || Alerts {
                config: config.clone(),
                counters: counters.clone(),
            },
            &[HISTORY_STORE, STATE_STORE],
        )
        .left_join_global(
            &coins,
            |_, alert: &AlertEvent| alert.coin_id.clone(),
            JsonSerde::<AlertEvent>::new(),
            name_coin,
        )
        .process(|| Remember, &[RECENT_STORE])
        .to(&topics.alerts, StringSerde, JsonSerde::<AlertEvent>::new());
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn crash(coin_id: &str, observed: f64) -> AlertEvent {
        let finding = Finding {
            rule: Rule::Zscore,
            window: Some(Horizon::H24),
            observed,
            threshold: 4.0,
        };
        alert(&finding, coin_id, "usd", 0, chrono::Utc::now())
    }

    fn row(coin_id: &str, name: &str) -> CoinReference {
        let at = chrono::DateTime::UNIX_EPOCH;
        CoinReference::new(coin_id, "btc", name, Some(1), at, Source::Coingecko)
    }

    #[test]
    fn a_row_names_only_its_own_coin_and_only_within_the_contracts_length() {
        let plain = crash("bitcoin", 5.0);
        assert_eq!(name_coin(&plain, None), plain);
        let named = name_coin(&plain, Some(&row("bitcoin", "Bitcoin")));
        assert_eq!(
            named.message,
            "bitcoin (Bitcoin, BTC, rank 1): latest 5-minute return is 5.0 standard deviations \
             from the 24h mean"
        );
        assert_eq!(named.alert_id, plain.alert_id);
        // A row filed under another coin's key names nothing.
        assert_eq!(name_coin(&plain, Some(&row("ethereum", "Ethereum"))), plain);
        // A 128-character id, a 100-character name and a huge z-score: the named message would
        // be longer than the contract's 500 characters, so the plain one stays.
        let long_id = "x".repeat(128);
        let long = crash(&long_id, 1e250);
        assert!(long.message.chars().count() <= MESSAGE_MAX_CHARS);
        assert_eq!(
            name_coin(&long, Some(&row(&long_id, &"N".repeat(100)))),
            long
        );
    }
}
