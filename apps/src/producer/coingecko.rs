//! The CoinGecko `/coins/markets` request (REFERENCE.md §A): plan → host and key header, the
//! URL of one page, and one attempt classified for the retry policy.
//!
//! The API key travels in a header marked sensitive, never in the URL; [`ApiKey`]'s `Debug`
//! prints `***`, so no log line or error can show it.
//!
//! ```
//! use apps::producer::coingecko::{ApiKey, CoinGeckoApi, CoinGeckoClient, Plan};
//!
//! let api = CoinGeckoApi { plan: Plan::Demo, api_key: Some(ApiKey::new("CG-secret")), ..CoinGeckoApi::default() };
//! assert_eq!(format!("{:?}", api.api_key), "Some(***)");
//! let client = CoinGeckoClient::new(&api, std::time::Duration::from_secs(10)).unwrap();
//! let url = client.page_url("usd", &["bitcoin".to_string(), "sui".to_string()], 1);
//! assert_eq!(url.as_str(), "https://api.coingecko.com/api/v3/coins/markets?vs_currency=usd\
//!     &ids=bitcoin%2Csui&per_page=250&page=1&price_change_percentage=1h%2C24h%2C7d\
//!     &precision=full&sparkline=false");
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::Value;

use super::retry::{is_key_error, Failure};

/// CoinGecko API plans: they pick the host and the key header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Plan {
    /// Public API, no key, per-IP limits.
    #[default]
    Keyless,
    /// Demo key on the public host.
    Demo,
    /// Paid key on the pro host.
    Pro,
}

impl Plan {
    /// The API root of the plan.
    pub fn base_url(self) -> &'static str {
        match self {
            Plan::Keyless | Plan::Demo => "https://api.coingecko.com/api/v3",
            Plan::Pro => "https://pro-api.coingecko.com/api/v3",
        }
    }

    /// The header that carries the key, if the plan has one.
    pub fn key_header(self) -> Option<&'static str> {
        match self {
            Plan::Keyless => None,
            Plan::Demo => Some("x-cg-demo-api-key"),
            Plan::Pro => Some("x-cg-pro-api-key"),
        }
    }
}

impl FromStr for Plan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "keyless" | "public" | "" => Ok(Plan::Keyless),
            "demo" => Ok(Plan::Demo),
            "pro" => Ok(Plan::Pro),
            other => Err(format!("expected keyless, demo or pro, got `{other}`")),
        }
    }
}

/// An API key. Never printed: `Debug` shows `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where and how to call CoinGecko.
#[derive(Clone, Debug, PartialEq)]
pub struct CoinGeckoApi {
    /// The plan (host and key header).
    pub plan: Plan,
    /// API root overriding the plan's (tests point it at 127.0.0.1).
    pub base_url: Option<String>,
    /// The key; required by `demo` and `pro`, refused by `keyless`.
    pub api_key: Option<ApiKey>,
    /// Items per page, 1..=250.
    pub per_page: u32,
    /// Upper bound of the page loop, so a misbehaving server cannot keep it going.
    pub max_pages: u32,
}

impl Default for CoinGeckoApi {
    /// Keyless, the plan's host, 250 per page, at most 20 pages.
    fn default() -> Self {
        Self {
            plan: Plan::Keyless,
            base_url: None,
            api_key: None,
            per_page: 250,
            max_pages: 20,
        }
    }
}

/// A configuration the client cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum CoinGeckoError {
    /// The base URL does not parse or cannot have a path.
    #[error("invalid CoinGecko base URL `{0}`")]
    BaseUrl(String),
    /// `demo` or `pro` without a key.
    #[error("plan {0:?} needs an API key: set COINGECKO_API_KEY")]
    MissingKey(Plan),
    /// A key with the keyless plan, where it would not be sent.
    #[error("an API key is set but the plan is keyless: set COINGECKO_PLAN=demo or pro")]
    UnusedKey,
    /// The key cannot be sent as a header value (control characters).
    #[error("the API key is not a valid header value")]
    KeyNotAHeader,
    /// `per_page` outside 1..=250.
    #[error("per_page must be 1..=250, got {0}")]
    PerPage(u32),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A page as received: status (2xx) and the items of its JSON array.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// The array's elements.
    pub items: Vec<Value>,
}

/// Makes `/coins/markets` requests, one attempt at a time.
#[derive(Clone, Debug)]
pub struct CoinGeckoClient {
    http: reqwest::Client,
    markets_url: Url,
    key: Option<(HeaderName, HeaderValue)>,
    per_page: u32,
    max_pages: u32,
}

impl CoinGeckoClient {
    /// A client whose every request times out after `timeout` (connect, send and body).
    pub fn new(api: &CoinGeckoApi, timeout: Duration) -> Result<Self, CoinGeckoError> {
        if !(1..=250).contains(&api.per_page) {
            return Err(CoinGeckoError::PerPage(api.per_page));
        }
        let base = api.base_url.as_deref().unwrap_or(api.plan.base_url());
        let markets_url = Url::parse(&format!("{}/coins/markets", base.trim_end_matches('/')))
            .ok()
            .filter(|url| !url.cannot_be_a_base())
            .ok_or_else(|| CoinGeckoError::BaseUrl(base.to_string()))?;
        let key = match (api.plan.key_header(), &api.api_key) {
            (None, None) => None,
            (None, Some(_)) => return Err(CoinGeckoError::UnusedKey),
            (Some(_), None) => return Err(CoinGeckoError::MissingKey(api.plan)),
            (Some(header), Some(ApiKey(key))) => {
                let mut value =
                    HeaderValue::from_str(key).map_err(|_| CoinGeckoError::KeyNotAHeader)?;
                value.set_sensitive(true);
                Some((HeaderName::from_static(header), value))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!(
                "streamlib-crypto-producer/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(CoinGeckoError::Client)?;
        Ok(Self {
            http,
            markets_url,
            key,
            per_page: api.per_page,
            max_pages: api.max_pages.max(1),
        })
    }

    /// Items per page: a full page means another may follow.
    pub fn per_page(&self) -> u32 {
        self.per_page
    }

    /// The last page the loop may request.
    pub fn max_pages(&self) -> u32 {
        self.max_pages
    }

    /// The URL of page `page` (from 1) for `ids` quoted in `vs_currency`.
    pub fn page_url(&self, vs_currency: &str, ids: &[String], page: u32) -> Url {
        let mut url = self.markets_url.clone();
        url.query_pairs_mut()
            .append_pair("vs_currency", vs_currency)
            .append_pair("ids", &ids.join(","))
            .append_pair("per_page", &self.per_page.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("price_change_percentage", "1h,24h,7d")
            .append_pair("precision", "full")
            .append_pair("sparkline", "false");
        url
    }

    /// One attempt at one page: the items of a JSON array body, or how it failed.
    pub async fn fetch_page(
        &self,
        vs_currency: &str,
        ids: &[String],
        page: u32,
    ) -> Result<Page, Failure> {
        let mut request = self.http.get(self.page_url(vs_currency, ids, page));
        if let Some((name, value)) = &self.key {
            request = request.header(name.clone(), value.clone());
        }
        let response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let (retry_after, ratelimit_reset) = (header("retry-after"), header("x-ratelimit-reset"));
        let body = response.bytes().await.map_err(|e| classify(&e))?;
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                body = %String::from_utf8_lossy(&body[..body.len().min(200)]),
                page,
                "CoinGecko refused the request"
            );
            return Err(Failure::Status {
                status: status.as_u16(),
                retry_after,
                ratelimit_reset,
                key_error: is_key_error(&body),
            });
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(items)) => Ok(Page {
                status: status.as_u16(),
                items,
            }),
            _ => {
                tracing::warn!(
                    body = %String::from_utf8_lossy(&body[..body.len().min(200)]),
                    page,
                    "CoinGecko answered with something other than a JSON array"
                );
                Err(Failure::UnexpectedBody)
            }
        }
    }
}

fn classify(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Network
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(plan: Plan, key: Option<&str>) -> CoinGeckoApi {
        CoinGeckoApi {
            plan,
            api_key: key.map(ApiKey::new),
            ..CoinGeckoApi::default()
        }
    }

    #[test]
    fn the_plan_picks_host_and_header() {
        let pro = CoinGeckoClient::new(&api(Plan::Pro, Some("CG-SECRET")), Duration::from_secs(1))
            .unwrap();
        let url = pro.page_url("usd", &["bitcoin".into()], 2);
        assert!(url
            .as_str()
            .starts_with("https://pro-api.coingecko.com/api/v3/coins/markets?"));
        assert!(url.as_str().contains("&page=2&"));
        assert!(!url.as_str().contains("SECRET"));
        assert!(!format!("{pro:?}").contains("SECRET"));
        assert_eq!(pro.key.as_ref().unwrap().0.as_str(), "x-cg-pro-api-key");
        let demo =
            CoinGeckoClient::new(&api(Plan::Demo, Some("k")), Duration::from_secs(1)).unwrap();
        assert_eq!(demo.key.as_ref().unwrap().0.as_str(), "x-cg-demo-api-key");
        assert!(demo.key.as_ref().unwrap().1.is_sensitive());
        let keyless =
            CoinGeckoClient::new(&api(Plan::Keyless, None), Duration::from_secs(1)).unwrap();
        assert!(keyless.key.is_none());
    }

    #[test]
    fn keys_and_plans_must_agree() {
        let timeout = Duration::from_secs(1);
        assert!(matches!(
            CoinGeckoClient::new(&api(Plan::Demo, None), timeout),
            Err(CoinGeckoError::MissingKey(Plan::Demo))
        ));
        assert!(matches!(
            CoinGeckoClient::new(&api(Plan::Keyless, Some("k")), timeout),
            Err(CoinGeckoError::UnusedKey)
        ));
        assert!(matches!(
            CoinGeckoClient::new(&api(Plan::Pro, Some("bad\nkey")), timeout),
            Err(CoinGeckoError::KeyNotAHeader)
        ));
    }

    #[test]
    fn plans_parse_case_insensitively() {
        assert_eq!("PRO".parse::<Plan>(), Ok(Plan::Pro));
        assert_eq!("demo".parse::<Plan>(), Ok(Plan::Demo));
        assert!("gold".parse::<Plan>().is_err());
    }

    #[test]
    fn a_base_url_override_keeps_its_path() {
        let api = CoinGeckoApi {
            base_url: Some("http://127.0.0.1:9/api/v3/".into()),
            ..CoinGeckoApi::default()
        };
        let client = CoinGeckoClient::new(&api, Duration::from_secs(1)).unwrap();
        assert!(client
            .page_url("eur", &[], 1)
            .as_str()
            .starts_with("http://127.0.0.1:9/api/v3/coins/markets?vs_currency=eur&"));
        let bad = CoinGeckoApi {
            base_url: Some("not a url".into()),
            ..CoinGeckoApi::default()
        };
        assert!(matches!(
            CoinGeckoClient::new(&bad, Duration::from_secs(1)),
            Err(CoinGeckoError::BaseUrl(_))
        ));
    }
}
