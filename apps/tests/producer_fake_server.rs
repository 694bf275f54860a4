//! The live producer against a fake CoinGecko on 127.0.0.1: each test scripts the replies, one
//! per request, and asserts what was produced, what was requested (path, query, key header)
//! and which retries the policy computed. Retry waits are not slept (the poller's `pause`
//! returns at once), so a `retry-after: 119` test asserts the 119 s delay without waiting it.
//!
//! The last tests produce to the real Kafka broker (`KAFKA_BOOTSTRAP`) and run the binary.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apps::producer::coingecko::{ApiKey, CoinGeckoApi, Plan};
use apps::producer::live::{PollFailure, PollReport, Poller};
use apps::producer::metrics::ProducerMetrics;
use apps::producer::retry::{Failure, GiveUp, RetryPolicy};
use apps::producer::sink::{Destination, EventSink, KafkaSink, MemorySink, OutRecord};
use apps::producer::{run, LiveConfig, Mode, ProducerConfig};
use apps::reference::{contract_serde, CoinReference};
use apps::topics::Topics;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use streamlib::serdes::{JsonSchemaSerde, Serde};
use streamlib::testing::{consume_until, create_topic, kafka_bootstrap, unique_topic};
use tokio::sync::watch;

const SECRET: &str = "CG-test-secret-key";

/// One scripted reply.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Option<Duration>,
}

impl Reply {
    fn json(body: Value) -> Self {
        Self::status(200, &body.to_string()).header("content-type", "application/json")
    }

    fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: None,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// A request the fake server received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    url: String,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
}

/// A CoinGecko stand-in serving scripted replies in order (500 once the script is used up).
struct FakeCoinGecko {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeCoinGecko {
    async fn start(replies: Vec<Reply>) -> Self {
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let (replies, log) = (replies.clone(), log.clone());
            async move {
                let url = reqwest::Url::parse(&format!("http://fake{}", request.uri())).unwrap();
                log.lock().unwrap().push(Seen {
                    path: url.path().to_string(),
                    url: request.uri().to_string(),
                    query: url.query_pairs().into_owned().collect(),
                    headers: request.headers().clone(),
                });
                let reply = replies.lock().unwrap().pop_front();
                let reply = reply.unwrap_or_else(|| Reply::status(500, "script exhausted"));
                if let Some(delay) = reply.delay {
                    tokio::time::sleep(delay).await;
                }
                let mut response = Response::builder().status(reply.status);
                for (name, value) in &reply.headers {
                    response = response.header(*name, value);
                }
                response.body(Body::from(reply.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base_url: format!("http://{addr}/api/v3"),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Tests read the computed delays instead of sleeping them.
fn no_pause(_: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(std::future::ready(()))
}

fn config(server: &FakeCoinGecko) -> LiveConfig {
    LiveConfig {
        api: CoinGeckoApi {
            base_url: Some(server.base_url.clone()),
            ..CoinGeckoApi::default()
        },
        retry: RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts: 4,
            request_timeout: Duration::from_secs(5),
        },
        pause: no_pause,
        ..LiveConfig::default()
    }
}

/// A recent CoinGecko item in the shape of REFERENCE.md §A.
fn coin(id: &str, symbol: &str, price: f64) -> Value {
    let updated =
        (Utc::now() - chrono::TimeDelta::seconds(42)).to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({"id": id, "symbol": symbol, "name": id, "image": "https://example.invalid/x.png",
        "current_price": price, "market_cap": price * 1e6, "market_cap_rank": 1,
        "fully_diluted_valuation": price * 2e6, "total_volume": 20154184933_u64, "high_24h": price * 1.01,
        "low_24h": price * 0.98, "price_change_24h": 2126.88, "price_change_percentage_24h": 3.12502,
        "market_cap_change_24h": 44287678051_u64, "market_cap_change_percentage_24h": 3.31157,
        "circulating_supply": 19675987, "total_supply": 21000000, "max_supply": 21000000,
        "ath": 73738, "ath_change_percentage": -4.77063, "ath_date": "2024-03-14T07:10:36.635Z",
        "atl": 67.81, "atl_change_percentage": 103455.83335, "atl_date": "2013-07-06T00:00:00.000Z",
        "roi": null, "last_updated": updated,
        "price_change_percentage_1h_in_currency": 0.1, "price_change_percentage_24h_in_currency": 3.1,
        "price_change_percentage_7d_in_currency": -2.5})
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

struct Polled {
    report: PollReport,
    /// The price events.
    records: Vec<OutRecord>,
    /// The coin reference rows, checked by their contract.
    rows: Vec<CoinReference>,
    metrics: ProducerMetrics,
}

impl Polled {
    /// The Prometheus text of the poll's metrics, registered alone.
    fn exposition(&self) -> String {
        let registry = streamlib::metrics::MetricsRegistry::default();
        self.metrics.register(&registry);
        registry.encode()
    }

    fn values(&self) -> Vec<Value> {
        self.records
            .iter()
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect()
    }

    fn keys(&self) -> Vec<&str> {
        self.records.iter().map(|r| r.key.as_str()).collect()
    }
}

async fn poll_with(config: LiveConfig, coins: &[&str]) -> Polled {
    let mut poller = Poller::new(&config, "usd", &ids(coins)).unwrap();
    let sink = MemorySink::default();
    let metrics = ProducerMetrics::default();
    let (_stop, mut shutdown) = watch::channel(false);
    let deadline = Instant::now() + Duration::from_secs(240);
    let report = poller.poll(deadline, &sink, &metrics, &mut shutdown).await;
    Polled {
        report,
        records: sink.records_to(Destination::Prices),
        rows: reference_rows(&sink),
        metrics,
    }
}

/// The reference rows `sink` got, each checked by its contract and keyed by its coin.
fn reference_rows(sink: &MemorySink) -> Vec<CoinReference> {
    sink.records_to(Destination::Coins)
        .iter()
        .map(|record| {
            let row = contract_serde()
                .deserialize("crypto.coins", &record.value)
                .unwrap();
            assert_eq!(record.key, row.coin_id);
            row
        })
        .collect()
}

/// One poll of `poller` into `sink`, with a minute to finish.
async fn poll_into<S: EventSink>(
    poller: &mut Poller,
    sink: &S,
    metrics: &ProducerMetrics,
) -> PollReport {
    let (_stop, mut shutdown) = watch::channel(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    poller.poll(deadline, sink, metrics, &mut shutdown).await
}

async fn poll(server: &FakeCoinGecko, coins: &[&str]) -> Polled {
    poll_with(config(server), coins).await
}

fn schema() -> JsonSchemaSerde<Value> {
    JsonSchemaSerde::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/event_crypto_price.schema.json"
    ))
    .unwrap()
}

fn assert_valid(values: &[Value]) {
    let schema = schema();
    for value in values {
        if let Err(error) = schema.validate(value) {
            panic!("{error}\n{value:#}");
        }
    }
}

fn status_failure(status: u16, key_error: bool) -> Failure {
    Failure::Status {
        status,
        retry_after: None,
        ratelimit_reset: None,
        key_error,
    }
}

#[tokio::test]
async fn a_normal_page_becomes_valid_keyed_events_from_one_request() {
    let server = FakeCoinGecko::start(vec![Reply::json(json!([
        coin("ethereum", "eth", 3500.5),
        coin("bitcoin", "btc", 70187.0)
    ]))])
    .await;
    let polled = poll(&server, &["bitcoin", "ethereum"]).await;

    assert_eq!(polled.report.failure, None);
    assert_eq!(polled.keys(), ["ethereum", "bitcoin"]);
    let values = polled.values();
    assert_valid(&values);
    assert_eq!(values[1]["price"], json!(70187.0));
    assert_eq!(values[1]["source"], json!("coingecko"));
    // Each coin's reference row from the same item, read when the answer arrived.
    assert_eq!(polled.report.reference_rows, 2);
    let rows: Vec<(&str, &str, &str, Option<u32>)> = polled
        .rows
        .iter()
        .map(|r| {
            (
                r.coin_id.as_str(),
                r.symbol.as_str(),
                r.name.as_str(),
                r.market_cap_rank,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("bitcoin", "btc", "bitcoin", Some(1)),
            ("ethereum", "eth", "ethereum", Some(1))
        ]
    );
    assert_eq!(polled.rows[0].ts_event, values[1]["ts_ingest"]);
    assert_eq!(polled.report.requests, 1);
    assert!(polled.report.missing_ids.is_empty());
    assert_eq!(polled.metrics.requests_with("200"), 1);

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v3/coins/markets");
    let query = &seen[0].query;
    assert_eq!(query["vs_currency"], "usd");
    assert_eq!(query["ids"], "bitcoin,ethereum");
    assert_eq!(
        (query["per_page"].as_str(), query["page"].as_str()),
        ("250", "1")
    );
    assert_eq!(query["price_change_percentage"], "1h,24h,7d");
    assert_eq!(query["precision"], "full");
    // Keyless: no key header at all.
    assert!(!seen[0].headers.contains_key("x-cg-demo-api-key"));
    assert!(!seen[0].headers.contains_key("x-cg-pro-api-key"));
}

#[tokio::test]
async fn the_key_goes_in_the_plans_header_and_never_in_the_url() {
    for (plan, header, other) in [
        (Plan::Demo, "x-cg-demo-api-key", "x-cg-pro-api-key"),
        (Plan::Pro, "x-cg-pro-api-key", "x-cg-demo-api-key"),
    ] {
        let server =
            FakeCoinGecko::start(vec![Reply::json(json!([coin("bitcoin", "btc", 1.0)]))]).await;
        let mut config = config(&server);
        config.api.plan = plan;
        config.api.api_key = Some(ApiKey::new(SECRET));
        let polled = poll_with(config, &["bitcoin"]).await;
        assert_eq!(polled.records.len(), 1);
        let seen = &server.seen()[0];
        assert_eq!(seen.headers[header], SECRET);
        assert!(!seen.headers.contains_key(other));
        assert!(!seen.url.contains(SECRET), "{}", seen.url);
    }
}

#[tokio::test]
async fn nulls_wherever_the_contract_allows_them_still_make_valid_events() {
    let mut item = coin("ethereum", "eth", 3500.0);
    for (name, value) in item.as_object_mut().unwrap() {
        if !["id", "symbol", "current_price", "last_updated"].contains(&name.as_str()) {
            *value = Value::Null;
        }
    }
    let server = FakeCoinGecko::start(vec![Reply::json(json!([item]))]).await;
    let polled = poll(&server, &["ethereum"]).await;
    let values = polled.values();
    assert_valid(&values);
    assert_eq!(values[0]["max_supply"], Value::Null);
    assert_eq!(values[0]["roi"], Value::Null);
    assert_eq!(polled.metrics.incomplete("price"), 0);
}

#[tokio::test]
async fn exponent_numbers_numeric_strings_and_unknown_fields_are_read() {
    // Raw text: serde_json's `json!` would not keep the exponent form.
    let mut item = coin("shiba-inu", "shib", 1.0);
    item["circulating_supply"] = json!("19675987");
    item["market_cap_rank"] = json!("12");
    item["brand_new_field"] = json!({"nested": [1, 2, 3]});
    let text = item
        .to_string()
        .replace("\"current_price\":1.0", "\"current_price\":6.88313e-7")
        .replace("\"total_volume\":20154184933", "\"total_volume\":1.5e3");
    assert!(text.contains("6.88313e-7") && text.contains("1.5e3"));
    let server = FakeCoinGecko::start(vec![Reply::status(200, &format!("[{text}]"))]).await;
    let polled = poll(&server, &["shiba-inu"]).await;
    let values = polled.values();
    assert_valid(&values);
    assert_eq!(values[0]["price"], json!(6.88313e-7));
    assert_eq!(values[0]["total_volume"], json!(1500.0));
    assert_eq!(values[0]["circulating_supply"], json!(19675987.0));
    assert_eq!(values[0]["market_cap_rank"], json!(12));
    assert!(values[0].get("brand_new_field").is_none());
}

#[tokio::test]
async fn an_empty_array_produces_nothing_and_reports_every_id_missing() {
    let server = FakeCoinGecko::start(vec![Reply::json(json!([]))]).await;
    let polled = poll(&server, &["bitcoin", "ethereum"]).await;
    assert!(polled.records.is_empty());
    assert_eq!(polled.report.failure, None);
    assert_eq!(polled.report.missing_ids, ["bitcoin", "ethereum"]);
    assert_eq!(polled.metrics.missing("bitcoin"), 1);
    assert_eq!(polled.report.requests, 1);
}

#[tokio::test]
async fn missing_ids_are_reported_without_failing_the_batch() {
    let server = FakeCoinGecko::start(vec![Reply::json(json!([
        coin("bitcoin", "btc", 70000.0),
        coin("sui", "sui", 3.5)
    ]))])
    .await;
    let polled = poll(&server, &["bitcoin", "renamed-coin", "sui"]).await;
    assert_eq!(polled.keys(), ["bitcoin", "sui"]);
    assert_eq!(polled.report.missing_ids, ["renamed-coin"]);
    assert_eq!(polled.metrics.missing("renamed-coin"), 1);
    assert_eq!(polled.metrics.missing("bitcoin"), 0);
    assert!(polled
        .exposition()
        .contains("crypto_producer_polls_total{outcome=\"ok\"} 1"));
}

#[tokio::test]
async fn an_item_without_a_price_is_produced_for_the_dead_letter_queue_and_counted() {
    let mut broken = coin("tron", "trx", 1.0);
    broken["current_price"] = Value::Null;
    let server = FakeCoinGecko::start(vec![Reply::json(json!([
        coin("bitcoin", "btc", 1.0),
        broken
    ]))])
    .await;
    let polled = poll(&server, &["bitcoin", "tron"]).await;
    assert_eq!(polled.keys(), ["bitcoin", "tron"]);
    let values = polled.values();
    assert_eq!(values[1]["price"], Value::Null);
    assert!(
        schema().validate(&values[1]).is_err(),
        "the validator must refuse it"
    );
    assert_valid(&values[..1]);
    assert_eq!(polled.metrics.incomplete("price"), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_waits_exactly_that_long() {
    let server = FakeCoinGecko::start(vec![
        Reply::status(
            429,
            r#"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}"#,
        )
        .header("retry-after", "119"),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(polled.report.delays, [Duration::from_secs(119)]);
    assert_eq!(polled.report.requests, 2);
    assert_eq!(server.seen().len(), 2);
    assert_eq!(polled.keys(), ["bitcoin"]);
    assert_eq!(polled.metrics.requests_with("429"), 1);
    assert_eq!(polled.metrics.retries(), 1);
}

#[tokio::test]
async fn a_429_with_x_ratelimit_reset_waits_until_the_reset() {
    let reset = (Utc::now() + chrono::TimeDelta::seconds(100)).format("%Y-%m-%d %H:%M:%S %z");
    let server = FakeCoinGecko::start(vec![
        Reply::status(429, "{}").header("x-ratelimit-reset", &reset.to_string()),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    // The header has whole seconds and time passes between writing and reading it.
    let delay = polled.report.delays[0];
    assert!(
        (Duration::from_secs(90)..=Duration::from_secs(100)).contains(&delay),
        "{delay:?}"
    );
    assert_eq!(polled.report.delays.len(), 1);
    assert_eq!(polled.records.len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_skips_the_tick_without_retrying() {
    let server =
        FakeCoinGecko::start(vec![Reply::status(429, "{}").header("retry-after", "600")]).await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(
        polled.report.failure,
        Some(PollFailure::GaveUp {
            page: 1,
            failure: Failure::Status {
                status: 429,
                retry_after: Some("600".into()),
                ratelimit_reset: None,
                key_error: false
            },
            reason: GiveUp::BudgetExhausted {
                wanted: Duration::from_secs(600)
            },
        })
    );
    assert_eq!(server.seen().len(), 1);
    assert!(polled.records.is_empty());
    assert!(polled
        .exposition()
        .contains("crypto_producer_polls_total{outcome=\"failed\"} 1"));
}

#[tokio::test]
async fn server_errors_back_off_exponentially_then_succeed() {
    let server = FakeCoinGecko::start(vec![
        Reply::status(500, "oops"),
        Reply::status(503, "<html>maintenance</html>"),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(polled.report.requests, 3);
    assert_eq!(polled.keys(), ["bitcoin"]);
    let [first, second] = polled.report.delays[..] else {
        panic!("two delays expected: {:?}", polled.report.delays)
    };
    // Equal jitter: half to all of a 20 ms, then 40 ms step.
    assert!(
        (Duration::from_millis(10)..=Duration::from_millis(20)).contains(&first),
        "{first:?}"
    );
    assert!(
        (Duration::from_millis(20)..=Duration::from_millis(40)).contains(&second),
        "{second:?}"
    );
    assert_eq!(polled.metrics.requests_with("500"), 1);
    assert_eq!(polled.metrics.requests_with("503"), 1);
    assert_eq!(polled.metrics.retries(), 2);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_configured_attempts() {
    let server = FakeCoinGecko::start(vec![Reply::status(503, ""); 6]).await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(server.seen().len(), 4);
    assert_eq!(polled.report.delays.len(), 3);
    assert!(matches!(
        polled.report.failure,
        Some(PollFailure::GaveUp {
            reason: GiveUp::AttemptsExhausted,
            ..
        })
    ));
    // An incomplete poll does not claim ids are missing.
    assert!(polled.report.missing_ids.is_empty());
}

#[tokio::test]
async fn an_html_403_from_the_cdn_is_retried_but_a_key_error_is_not() {
    let server = FakeCoinGecko::start(vec![
        Reply::status(
            403,
            "<!DOCTYPE html><html><body>Error 1020 Access denied</body></html>",
        )
        .header("content-type", "text/html"),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!((polled.report.requests, polled.records.len()), (2, 1));

    let server = FakeCoinGecko::start(vec![
        Reply::status(
            403,
            r#"{"status":{"error_code":10011,"error_message":"wrong host for this key"}}"#,
        ),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(server.seen().len(), 1);
    assert!(polled.records.is_empty());
    assert!(matches!(
        &polled.report.failure,
        Some(PollFailure::GaveUp { failure, reason: GiveUp::NotRetryable, .. })
            if *failure == status_failure(403, true)
    ));
}

#[tokio::test]
async fn a_400_or_401_is_not_retried() {
    for (status, body) in [
        (400, r#"{"error":"invalid vs_currency"}"#),
        (401, r#"{"status":{"error_code":10002}}"#),
    ] {
        let server = FakeCoinGecko::start(vec![
            Reply::status(status, body),
            Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
        ])
        .await;
        let polled = poll(&server, &["bitcoin"]).await;
        assert_eq!(server.seen().len(), 1, "{status}");
        assert!(polled.records.is_empty());
        assert!(polled.report.delays.is_empty());
        assert!(matches!(
            polled.report.failure,
            Some(PollFailure::GaveUp {
                reason: GiveUp::NotRetryable,
                ..
            })
        ));
        assert_eq!(polled.metrics.requests_with(&status.to_string()), 1);
    }
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = FakeCoinGecko::start(vec![
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])).delayed(Duration::from_secs(30)),
        Reply::json(json!([coin("bitcoin", "btc", 2.0)])),
    ])
    .await;
    let mut config = config(&server);
    config.retry.request_timeout = Duration::from_secs(1);
    let polled = poll_with(config, &["bitcoin"]).await;
    assert_eq!(server.seen().len(), 2);
    assert_eq!(polled.metrics.requests_with("timeout"), 1);
    assert_eq!(polled.report.delays.len(), 1);
    // Only the second answer is produced.
    assert_eq!(polled.values()[0]["price"], json!(2.0));
}

#[tokio::test]
async fn a_body_that_is_not_a_json_array_is_retried() {
    let server = FakeCoinGecko::start(vec![
        Reply::status(200, "<html>captcha</html>"),
        Reply::json(json!({"status": "weird"})),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let polled = poll(&server, &["bitcoin"]).await;
    assert_eq!(polled.metrics.requests_with("unexpected_body"), 2);
    assert_eq!(polled.records.len(), 1);
}

#[tokio::test]
async fn full_pages_make_the_poller_ask_for_the_next_one() {
    let server = FakeCoinGecko::start(vec![
        Reply::json(json!([
            coin("bitcoin", "btc", 1.0),
            coin("ethereum", "eth", 1.0)
        ])),
        Reply::json(json!([coin("sui", "sui", 1.0)])),
    ])
    .await;
    let mut config = config(&server);
    config.api.per_page = 2;
    let polled = poll_with(config, &["bitcoin", "ethereum", "sui"]).await;
    let pages: Vec<String> = server
        .seen()
        .iter()
        .map(|s| s.query["page"].clone())
        .collect();
    assert_eq!(pages, ["1", "2"]);
    assert!(server.seen().iter().all(|s| s.query["per_page"] == "2"));
    assert_eq!(polled.keys(), ["bitcoin", "ethereum", "sui"]);
    assert!(polled.report.missing_ids.is_empty());
}

#[tokio::test]
async fn the_run_loop_polls_records_and_stops_after_max_polls() {
    let server =
        FakeCoinGecko::start(vec![Reply::json(json!([coin("bitcoin", "btc", 1.0)]))]).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("polls.jsonl");
    let mut live = config(&server);
    live.poll_at_start = true;
    live.max_polls = Some(1);
    live.record_to = Some(recording.clone());
    let mut config = ProducerConfig::new(Mode::Live(live));
    config.coins = ids(&["bitcoin"]);
    let sink = MemorySink::default();
    let (_stop, shutdown) = watch::channel(false);
    let stats = run(
        config,
        &sink,
        Arc::new(ProducerMetrics::default()),
        shutdown,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            stats.batches,
            stats.produced,
            stats.reference_rows,
            stats.failed_polls
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(server.seen().len(), 1);
    // The recording is one JSON line holding the page: replayable as is.
    let recorded = std::fs::read_to_string(&recording).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 1);
    let page: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(page[0]["id"], json!("bitcoin"));
}

/// A poller sends a coin's reference row when the coin is first seen and again only when
/// CoinGecko says something new about it (here: a new rank), not at every poll.
#[tokio::test]
async fn reference_rows_go_out_only_when_a_coin_changes() {
    let page = |bitcoin_rank: u32| {
        let mut bitcoin = coin("bitcoin", "btc", 70000.0);
        bitcoin["market_cap_rank"] = bitcoin_rank.into();
        Reply::json(json!([bitcoin, coin("sui", "sui", 3.5)]))
    };
    let server = FakeCoinGecko::start(vec![page(1), page(1), page(2)]).await;
    let mut poller = Poller::new(&config(&server), "usd", &ids(&["bitcoin", "sui"])).unwrap();
    let sink = MemorySink::default();
    let metrics = ProducerMetrics::default();
    let mut rows_per_poll = Vec::new();
    for _ in 0..3 {
        let report = poll_into(&mut poller, &sink, &metrics).await;
        assert_eq!((report.delivered, report.failure), (2, None));
        rows_per_poll.push(report.reference_rows);
    }
    assert_eq!(rows_per_poll, [2, 0, 1]);
    let rows = reference_rows(&sink);
    let last = rows.last().unwrap();
    assert_eq!(
        (last.coin_id.as_str(), last.market_cap_rank),
        ("bitcoin", Some(2))
    );
    assert_eq!(sink.records_to(Destination::Prices).len(), 6);
    assert_eq!(metrics.reference_rows(), 3);
}

#[tokio::test]
async fn shutdown_cuts_a_backoff_wait_short() {
    let server = FakeCoinGecko::start(vec![
        Reply::status(429, "{}").header("retry-after", "119"),
        Reply::json(json!([coin("bitcoin", "btc", 1.0)])),
    ])
    .await;
    let mut config = config(&server);
    config.pause = apps::producer::live::sleep; // a real 119 s wait, unless cut short
    let mut poller = Poller::new(&config, "usd", &ids(&["bitcoin"])).unwrap();
    let (stop, mut shutdown) = watch::channel(false);
    stop.send_replace(true);
    let sink = MemorySink::default();
    let report = poller
        .poll(
            Instant::now() + Duration::from_secs(240),
            &sink,
            &ProducerMetrics::default(),
            &mut shutdown,
        )
        .await;
    assert_eq!(report.failure, Some(PollFailure::Shutdown));
    assert_eq!(report.delays, [Duration::from_secs(119)]);
    assert_eq!(server.seen().len(), 1);
    assert!(sink.records().is_empty());
}

#[tokio::test]
async fn metrics_are_served_on_the_metrics_endpoint() {
    let metrics = Arc::new(ProducerMetrics::default());
    metrics.request("429");
    metrics.produced(3);
    let (stop, shutdown) = watch::channel(false);
    let (addr, server) =
        apps::producer::metrics::serve("127.0.0.1:0".parse().unwrap(), metrics.clone(), shutdown)
            .await
            .unwrap();
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("crypto_producer_requests_total{status=\"429\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("crypto_producer_events_produced_total 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE crypto_producer_polls_total counter"));
    assert!(
        text.contains("\ncrypto_producer_last_success_timestamp_seconds 0\n"),
        "{text}"
    );
    stop.send_replace(true);
    server.await.unwrap();
}

/// Live poll → `KafkaSink` → the real broker: keyed, valid events arrive, and each coin's
/// reference row on the coins topic.
#[tokio::test]
async fn polled_events_reach_kafka_keyed_and_valid() {
    let bootstrap = kafka_bootstrap();
    let topics = Topics::prefixed(&format!("{}.", unique_topic("producer-live")));
    let topic = topics.raw.clone();
    // The helpers block on a runtime of their own: run them off this one.
    let (b, t) = (bootstrap.clone(), topics.clone());
    tokio::task::spawn_blocking(move || {
        create_topic(&b, &t.raw, 3);
        create_topic(&b, &t.coins, 3);
    })
    .await
    .unwrap();
    let server = FakeCoinGecko::start(vec![Reply::json(json!([
        coin("bitcoin", "btc", 70000.0),
        coin("ethereum", "eth", 3500.0),
        coin("sui", "sui", 3.5)
    ]))])
    .await;
    let sink = KafkaSink::new(
        &bootstrap,
        &topics,
        &BTreeMap::from([("linger.ms".into(), "5".into())]),
    )
    .unwrap();
    let mut poller = Poller::new(
        &config(&server),
        "usd",
        &ids(&["bitcoin", "ethereum", "sui"]),
    )
    .unwrap();
    let report = poll_into(&mut poller, &sink, &ProducerMetrics::default()).await;
    assert_eq!(
        (
            report.delivered,
            report.reference_rows,
            report.delivery_failures
        ),
        (3, 3, 0)
    );
    sink.flush().await.unwrap();

    let b = bootstrap.clone();
    let (consumed, rows) = tokio::task::spawn_blocking(move || {
        let read = |topic: &str| {
            consume_until(
                &b,
                topic,
                "read_committed",
                Duration::from_secs(60),
                |records| records.len() >= 3,
            )
        };
        (read(&topic), read(&topics.coins))
    })
    .await
    .unwrap();
    assert_eq!((consumed.len(), rows.len()), (3, 3));
    for record in &rows {
        let row = contract_serde()
            .deserialize("crypto.coins", record.value.as_ref().unwrap())
            .unwrap();
        assert_eq!(record.key, row.coin_id.as_bytes());
        assert_eq!(row.name, row.coin_id, "the fake's names are the ids");
    }
    let schema = schema();
    let mut keys = Vec::new();
    for record in &consumed {
        let value: Value = serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
        schema.validate(&value).unwrap();
        assert_eq!(record.key, value["coin_id"].as_str().unwrap().as_bytes());
        assert_eq!(
            record.partition,
            streamlib::partition::partition_for_key(&record.key, 3),
            "partitioned like Kafka's Java clients (murmur2)"
        );
        keys.push(String::from_utf8(record.key.clone()).unwrap());
    }
    keys.sort();
    assert_eq!(keys, ["bitcoin", "ethereum", "sui"]);
}

/// The binary: synthetic history to Kafka, then SIGTERM while it waits for the next tick;
/// it exits 0 with everything produced.
#[test]
fn the_binary_produces_synthetic_history_and_exits_cleanly_on_sigterm() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_topic("producer-bin");
    let coins_topic = format!("{topic}.coins");
    create_topic(&bootstrap, &topic, 3);
    create_topic(&bootstrap, &coins_topic, 3);
    let child = Command::new(env!("CARGO_BIN_EXE_producer"))
        .args([
            "--mode",
            "synthetic",
            "--history-ticks",
            "2",
            "--speedup",
            "0",
        ])
        .args(["--interval-secs", "3600", "--coins", "bitcoin,sui"])
        .args(["--bootstrap-servers", &bootstrap, "--topic", &topic])
        .args(["--coins-topic", &coins_topic])
        .env_remove("APP_CONFIG")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    // History (2 ticks) and the current tick: 3 × 2 coins; then it waits for the next hour.
    let consumed = consume_until(
        &bootstrap,
        &topic,
        "read_committed",
        Duration::from_secs(60),
        |r| r.len() >= 6,
    );
    assert_eq!(consumed.len(), 6);
    // One reference row per coin, from the static profiles: they do not change between ticks.
    let rows = consume_until(
        &bootstrap,
        &coins_topic,
        "read_committed",
        Duration::from_secs(60),
        |r| r.len() >= 2,
    );
    let mut names: Vec<(String, Option<u32>)> = rows
        .iter()
        .map(|record| {
            let row = contract_serde()
                .deserialize("crypto.coins", record.value.as_ref().unwrap())
                .unwrap();
            (row.name, row.market_cap_rank)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("Bitcoin".to_string(), Some(1)),
            ("Sui".to_string(), Some(17))
        ]
    );
    let exit = common::terminate(child);
    assert!(exit.success(), "{exit:?}");
    let schema = schema();
    for record in &consumed {
        let value: Value = serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
        schema.validate(&value).unwrap();
        assert_eq!(value["source"], json!("synthetic"));
    }
}
