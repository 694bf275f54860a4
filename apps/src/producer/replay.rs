//! Replay mode: re-publishes a recorded file, paced at a speed-up, for demos and backfills.
//!
//! Two formats (docs/PRODUCER.md "Replay files"):
//!
//! - **JSON lines** (`.jsonl`, or any other extension): one `/coins/markets` response per line,
//!   i.e. a JSON array of items, exactly what `--record-to` writes. Items are mapped like live
//!   ones, with `source: replay`. A line's data time is its latest `last_updated`.
//! - **CSV** (`.csv`): OHLCV bars. The first line is a header naming the columns, in any order;
//!   `coin_id`, `timestamp` and `close` are required, `symbol` is optional (else the coin's
//!   known symbol, else its id), any other column (`open`, `high`, `low`, `volume`, …) is
//!   ignored: the contract has no bar fields, and a bar's volume is not a 24 h volume.
//!   `timestamp` is RFC 3339 or Unix epoch milliseconds and becomes `ts_event`; `close`
//!   becomes `price`. Fields are split at commas (no quoting). Consecutive rows with the same
//!   timestamp form one batch.
//!
//! Each batch also writes the reference rows of its coins that changed (`crypto.coins`,
//! [`super::reference`]): from the items of a JSON line, from the coins' static profiles for
//! bars.
//!
//! Blank lines are skipped; a line that cannot be read is reported with its number and
//! skipped, never fatal. The file is read with blocking I/O line by line: local reads are
//! short next to producing.
//!
//! ```
//! use apps::producer::replay::{Batch, ReplayFormat, ReplayReader};
//!
//! let csv = "coin_id,timestamp,open,high,low,close,volume\n\
//!            bitcoin,2025-07-25T14:55:00Z,1,1,1,117000.5,10\n\
//!            ethereum,2025-07-25T14:55:00Z,1,1,1,3700,10\n\
//!            bitcoin,yesterday,1,1,1,117001,10\n";
//! let mut reader = ReplayReader::new(csv.as_bytes(), ReplayFormat::Csv);
//! let malformed = reader.next().unwrap().unwrap_err();
//! assert_eq!(malformed.to_string(), "line 4: timestamp `yesterday` is neither RFC 3339 nor epoch milliseconds");
//! let batch = reader.next().unwrap().unwrap();
//! let Batch::Bars(bars) = &batch.batch else { panic!() };
//! assert_eq!((bars.len(), bars[0].symbol.as_str(), bars[1].close), (2, "btc", 3700.0));
//! assert!(reader.next().is_none());
//! ```

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::coins::profile;
use super::mapping::{map_response, normalise_ts};
use super::reference::{profile_row, SentRows};
use super::schedule::Pacer;
use super::sink::{EventSink, OutRecord};
use super::{event_record, wait_until, Output, ProducerError, Stats};
use crate::event::{PriceEvent, Source};

/// Replay file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    /// One `/coins/markets` response (JSON array) per line.
    JsonLines,
    /// OHLCV bars with a header line.
    Csv,
}

impl ReplayFormat {
    /// `Csv` for a `.csv` file, `JsonLines` otherwise.
    pub fn of_path(path: &Path) -> Self {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => ReplayFormat::Csv,
            _ => ReplayFormat::JsonLines,
        }
    }
}

impl FromStr for ReplayFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "jsonl" | "json-lines" | "json" => Ok(ReplayFormat::JsonLines),
            "csv" => Ok(ReplayFormat::Csv),
            other => Err(format!("expected jsonl or csv, got `{other}`")),
        }
    }
}

/// Replay-mode settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayConfig {
    /// The recording.
    pub path: PathBuf,
    /// Its format; `None` picks by extension ([`ReplayFormat::of_path`]).
    pub format: Option<ReplayFormat>,
    /// How much faster than recorded time to go; 0 = as fast as possible.
    pub speedup: f64,
    /// Stop after this many batches (lines of responses, groups of bars).
    pub max_batches: Option<u64>,
}

/// One bar of a CSV file, reduced to what the contract can carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Record key.
    pub coin_id: String,
    /// Ticker.
    pub symbol: String,
    /// Bar time: the event time.
    pub timestamp: DateTime<Utc>,
    /// Close: the price.
    pub close: f64,
}

/// What one batch holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// One recorded response.
    Response(Vec<Value>),
    /// Consecutive bars with the same timestamp.
    Bars(Vec<Bar>),
}

/// A batch and the line it starts at.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayBatch {
    /// 1-based line number.
    pub line: usize,
    /// Its content.
    pub batch: Batch,
}

impl ReplayBatch {
    /// Its data time: the bars' timestamp, or the latest `last_updated` of the response
    /// (`None` for an empty response or one without readable times).
    pub fn data_time(&self) -> Option<DateTime<Utc>> {
        match &self.batch {
            Batch::Bars(bars) => bars.first().map(|bar| bar.timestamp),
            Batch::Response(items) => items
                .iter()
                .filter_map(|item| item.get("last_updated")?.as_str().and_then(parse_rfc3339))
                .max(),
        }
    }
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Malformed {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Positions of the CSV columns the replay uses.
#[derive(Clone, Copy, Debug)]
struct Columns {
    coin_id: usize,
    timestamp: usize,
    close: usize,
    symbol: Option<usize>,
    count: usize,
}

/// Reads batches from a recording; malformed lines come out as `Err` in file order (a CSV
/// error shows up before the group of bars it interrupted).
pub struct ReplayReader<R> {
    lines: std::iter::Enumerate<std::io::Split<R>>,
    format: ReplayFormat,
    columns: Option<Columns>,
    group: Option<(usize, Vec<Bar>)>,
    done: bool,
}

impl<R: BufRead> ReplayReader<R> {
    /// A reader of `input` in `format`.
    pub fn new(input: R, format: ReplayFormat) -> Self {
        Self {
            lines: input.split(b'\n').enumerate(),
            format,
            columns: None,
            group: None,
            done: false,
        }
    }

    fn line(&mut self, line: usize, text: &str) -> Result<Option<ReplayBatch>, Malformed> {
        let malformed = |reason: String| Malformed { line, reason };
        match self.format {
            ReplayFormat::JsonLines => match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => Ok(Some(ReplayBatch {
                    line,
                    batch: Batch::Response(items),
                })),
                Ok(_) => Err(malformed(
                    "not a JSON array (a /coins/markets response)".into(),
                )),
                Err(error) => Err(malformed(format!("not JSON: {error}"))),
            },
            ReplayFormat::Csv => {
                let Some(columns) = self.columns else {
                    return match header(text) {
                        Ok(columns) => {
                            self.columns = Some(columns);
                            Ok(None)
                        }
                        Err(reason) => {
                            // Without a header no row can be read: stop here.
                            self.done = true;
                            Err(malformed(reason))
                        }
                    };
                };
                let bar = row(&columns, text).map_err(malformed)?;
                match &mut self.group {
                    Some((_, bars)) if bars[0].timestamp == bar.timestamp => {
                        bars.push(bar);
                        Ok(None)
                    }
                    _ => {
                        Ok(self
                            .group
                            .replace((line, vec![bar]))
                            .map(|(line, bars)| ReplayBatch {
                                line,
                                batch: Batch::Bars(bars),
                            }))
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for ReplayReader<R> {
    type Item = Result<ReplayBatch, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((index, read)) = self.lines.next() else {
                break;
            };
            let line = index + 1;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.done = true;
                    return Some(Err(Malformed {
                        line,
                        reason: format!("read error, replay stops: {error}"),
                    }));
                }
            };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                return Some(Err(Malformed {
                    line,
                    reason: "not UTF-8".into(),
                }));
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match self.line(line, text) {
                Ok(None) => continue,
                Ok(Some(batch)) => return Some(Ok(batch)),
                Err(malformed) => return Some(Err(malformed)),
            }
        }
        self.group.take().map(|(line, bars)| {
            Ok(ReplayBatch {
                line,
                batch: Batch::Bars(bars),
            })
        })
    }
}

fn header(text: &str) -> Result<Columns, String> {
    let names: Vec<String> = text
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let find = |wanted: &str| names.iter().position(|name| name == wanted);
    let required = |wanted: &str| {
        find(wanted).ok_or_else(|| {
            format!("the CSV header must name coin_id, timestamp and close; `{wanted}` is missing")
        })
    };
    Ok(Columns {
        coin_id: required("coin_id")?,
        timestamp: required("timestamp")?,
        close: required("close")?,
        symbol: find("symbol"),
        count: names.len(),
    })
}

fn row(columns: &Columns, text: &str) -> Result<Bar, String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    if fields.len() != columns.count {
        return Err(format!(
            "{} fields where the header names {}",
            fields.len(),
            columns.count
        ));
    }
    let coin_id = fields[columns.coin_id];
    if coin_id.is_empty() {
        return Err("empty coin_id".into());
    }
    let stamp = fields[columns.timestamp];
    let timestamp = parse_rfc3339(stamp)
        .or_else(|| {
            stamp
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
        })
        .ok_or_else(|| format!("timestamp `{stamp}` is neither RFC 3339 nor epoch milliseconds"))?;
    let close = fields[columns.close];
    let close = close
        .parse::<f64>()
        .ok()
        .filter(|price| price.is_finite() && *price > 0.0)
        .ok_or_else(|| format!("close `{close}` is not a positive number"))?;
    let symbol = columns
        .symbol
        .map(|index| fields[index])
        .filter(|symbol| !symbol.is_empty())
        .map_or_else(|| profile(coin_id).symbol, str::to_string);
    Ok(Bar {
        coin_id: coin_id.to_string(),
        symbol,
        timestamp,
        close,
    })
}

fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    normalise_ts(text)?.parse().ok()
}

/// Replays the file at the configured pace until its end, `max_batches` or shutdown.
pub(crate) async fn run<S: EventSink>(
    config: &ReplayConfig,
    vs_currency: &str,
    out: Output<'_, S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Stats, ProducerError> {
    let file = std::fs::File::open(&config.path).map_err(|source| ProducerError::ReplayFile {
        path: config.path.clone(),
        source,
    })?;
    let format = config
        .format
        .unwrap_or_else(|| ReplayFormat::of_path(&config.path));
    tracing::info!(path = %config.path.display(), ?format, speedup = config.speedup, "replaying");
    let mut stats = Stats::default();
    let mut sent = SentRows::default();
    let mut pacer: Option<Pacer> = None;
    for read in ReplayReader::new(std::io::BufReader::new(file), format) {
        let batch = match read {
            Ok(batch) => batch,
            Err(malformed) => {
                tracing::warn!(path = %config.path.display(), %malformed, "skipping a replay line");
                out.metrics.malformed_line();
                stats.malformed_lines += 1;
                continue;
            }
        };
        let release = batch.data_time().map(|data_time| {
            pacer
                .get_or_insert_with(|| Pacer::new(config.speedup, Utc::now(), data_time))
                .release_at(data_time)
        });
        if !wait_until(release.unwrap_or_else(Utc::now), &mut shutdown).await {
            break;
        }
        let (rows, events) = match batch.batch {
            Batch::Response(items) => out.records(map_response(
                &items,
                vs_currency,
                Utc::now(),
                Source::Replay,
            )),
            Batch::Bars(bars) => bar_records(&bars, vs_currency),
        };
        stats.add_batch(out.send(rows, events, &mut sent).await);
        if config.max_batches.is_some_and(|max| stats.batches >= max) {
            break;
        }
    }
    Ok(stats)
}

/// The reference rows (from the coins' profiles) and the event records of a batch of bars.
fn bar_records(bars: &[Bar], vs_currency: &str) -> (Vec<Value>, Vec<OutRecord>) {
    let now = Utc::now();
    let rows = bars
        .iter()
        .map(|bar| profile_row(&bar.coin_id, &bar.symbol, now, Source::Replay))
        .collect();
    let events = bars
        .iter()
        .map(|bar| {
            event_record(&PriceEvent::new(
                Source::Replay,
                &bar.coin_id,
                &bar.symbol,
                vs_currency,
                bar.close,
                bar.timestamp,
                now,
            ))
        })
        .collect();
    (rows, events)
}

#[cfg(test)]
mod tests {
    use streamlib::serdes::Serde;

    use super::*;
    use crate::producer::metrics::ProducerMetrics;
    use crate::producer::sink::Destination;
    use crate::reference::{contract_serde, CoinReference};

    fn read(text: &str, format: ReplayFormat) -> Vec<Result<ReplayBatch, Malformed>> {
        ReplayReader::new(text.as_bytes(), format).collect()
    }

    #[test]
    fn json_lines_hold_one_response_each() {
        let text = "[{\"id\":\"bitcoin\",\"last_updated\":\"2025-07-25T14:55:01.000Z\"},\
                    {\"id\":\"sui\",\"last_updated\":\"2025-07-25T14:55:09.5Z\"}]\n\n[]\n";
        let batches = read(text, ReplayFormat::JsonLines);
        assert_eq!(batches.len(), 2);
        let first = batches[0].as_ref().unwrap();
        assert_eq!(first.line, 1);
        assert_eq!(
            first.data_time(),
            Some("2025-07-25T14:55:09.500Z".parse().unwrap())
        );
        let empty = batches[1].as_ref().unwrap();
        assert_eq!((empty.line, empty.data_time()), (3, None));
    }

    #[test]
    fn malformed_json_lines_are_reported_with_their_numbers_and_skipped() {
        let text = "[]\n{\"id\":\"bitcoin\"}\nnot json\n[]\n";
        let results = read(text, ReplayFormat::JsonLines);
        let errors: Vec<usize> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|m| m.line))
            .collect();
        assert_eq!(errors, [2, 3]);
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        let invalid_utf8: &[u8] = b"[]\n\xff\xfe\n[]\n";
        let results: Vec<_> = ReplayReader::new(invalid_utf8, ReplayFormat::JsonLines).collect();
        assert_eq!(
            results[1],
            Err(Malformed {
                line: 2,
                reason: "not UTF-8".into()
            })
        );
        assert!(results[2].is_ok());
    }

    #[test]
    fn csv_bars_group_by_timestamp_in_any_column_order() {
        let text = "Timestamp, close, coin_id, symbol\n\
                    1753455300000,117000,bitcoin,\n\
                    1753455300000,0.2,dogecoin,DOGE\n\
                    2025-07-25T15:00:00Z,117100,bitcoin,btc\n";
        let batches: Vec<ReplayBatch> = read(text, ReplayFormat::Csv)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(batches.len(), 2);
        let Batch::Bars(first) = &batches[0].batch else {
            panic!("bars expected")
        };
        assert_eq!(batches[0].line, 2);
        assert_eq!(first[0].symbol, "btc");
        assert_eq!(first[1].symbol, "DOGE");
        assert_eq!(
            first[0].timestamp,
            "2025-07-25T14:55:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(batches[1].line, 4);
    }

    #[test]
    fn malformed_csv_rows_are_reported_and_skipped() {
        let text = "coin_id,timestamp,close\n\
                    bitcoin,2025-07-25T14:55:00Z\n\
                    ,2025-07-25T14:55:00Z,1\n\
                    bitcoin,2025-07-25T14:55:00Z,-3\n\
                    bitcoin,2025-07-25T14:55:00Z,117000\n";
        let results = read(text, ReplayFormat::Csv);
        let reasons: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(
            reasons,
            [
                "line 2: 2 fields where the header names 3",
                "line 3: empty coin_id",
                "line 4: close `-3` is not a positive number"
            ]
        );
        assert!(results[3].is_ok());
    }

    #[test]
    fn a_csv_without_the_required_columns_stops_at_the_header() {
        let results = read("coin,ts,price\nbitcoin,1,2\n", ReplayFormat::Csv);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].as_ref().unwrap_err().line, 1);
    }

    async fn replay(
        name: &str,
        text: &str,
    ) -> (Stats, Vec<PriceEvent>, Vec<CoinReference>, ProducerMetrics) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let config = ReplayConfig {
            path,
            format: None,
            speedup: 0.0,
            max_batches: None,
        };
        let sink = crate::producer::sink::MemorySink::default();
        let metrics = ProducerMetrics::default();
        let out = Output {
            sink: &sink,
            metrics: &metrics,
        };
        let (_stop, shutdown) = watch::channel(false);
        let stats = run(&config, "usd", out, shutdown).await.unwrap();
        let values = |destination| {
            sink.records_to(destination)
                .iter()
                .map(|r| r.value.clone())
                .collect::<Vec<_>>()
        };
        let events = values(Destination::Prices)
            .iter()
            .map(|v| serde_json::from_slice(v).unwrap())
            .collect();
        let rows = values(Destination::Coins)
            .iter()
            .map(|v| contract_serde().deserialize("crypto.coins", v).unwrap())
            .collect();
        (stats, events, rows, metrics)
    }

    #[tokio::test]
    async fn a_csv_replay_produces_replay_events_and_counts_bad_lines() {
        let text = "coin_id,timestamp,close\n\
                    bitcoin,2025-07-25T14:55:00Z,117000\n\
                    bitcoin,not-a-time,1\n\
                    bitcoin,2025-07-25T15:00:00Z,117100\n";
        let (stats, events, rows, metrics) = replay("bars.csv", text).await;
        assert_eq!(
            (stats.batches, stats.produced, stats.malformed_lines),
            (2, 2, 1)
        );
        let registry = streamlib::metrics::MetricsRegistry::default();
        metrics.register(&registry);
        assert!(registry
            .encode()
            .contains("\ncrypto_producer_replay_malformed_lines_total 1\n"));
        assert_eq!(events[1].ts_event, "2025-07-25T15:00:00.000Z");
        assert_eq!(
            (events[1].price, events[1].source),
            (117100.0, Source::Replay)
        );
        assert_eq!(events[1].symbol, "btc");
        // Bars carry no name or rank: the profile's, once (the second batch changes nothing).
        assert_eq!(stats.reference_rows, 1);
        assert_eq!(
            (
                rows[0].name.as_str(),
                rows[0].market_cap_rank,
                rows[0].source
            ),
            ("Bitcoin", Some(1), Source::Replay)
        );
    }

    #[tokio::test]
    async fn a_json_lines_replay_maps_items_like_live_ones() {
        let text = "[{\"id\":\"sui\",\"symbol\":\"sui\",\"current_price\":\"3.5\",\
                    \"last_updated\":\"2025-07-25T14:55:09.5Z\"}]\n[oops\n[]\n\
                    [{\"id\":\"sui\",\"symbol\":\"sui\",\"name\":\"Sui\",\"current_price\":3.6,\
                    \"market_cap_rank\":17,\"last_updated\":\"2025-07-25T15:00:00Z\"}]\n";
        let (stats, events, rows, metrics) = replay("polls.jsonl", text).await;
        assert_eq!((stats.produced, stats.malformed_lines), (2, 1));
        assert_eq!(events[0].price, 3.5);
        assert_eq!(events[0].ts_event, "2025-07-25T14:55:09.500Z");
        assert_eq!(events[0].source, Source::Replay);
        // The item's own name and rank, not the profile's; the first item has no name: its row
        // is refused (counted), the event still goes.
        assert_eq!(metrics.refused_rows("name"), 1);
        assert_eq!(stats.reference_rows, 1);
        assert_eq!(
            (
                rows[0].name.as_str(),
                rows[0].market_cap_rank,
                rows[0].source
            ),
            ("Sui", Some(17), Source::Replay)
        );
        assert_eq!(
            rows[0].ts_event, events[1].ts_ingest,
            "read when re-published"
        );
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(
            ReplayFormat::of_path(Path::new("bars.CSV")),
            ReplayFormat::Csv
        );
        assert_eq!(
            ReplayFormat::of_path(Path::new("polls.jsonl")),
            ReplayFormat::JsonLines
        );
    }
}
