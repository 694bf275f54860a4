//! When to retry a failed CoinGecko request, and after how long (REFERENCE.md §A).
//!
//! The policy is a pure function of what the failed attempt showed (status, headers, body
//! kind), the attempt number, the time left before the poll's deadline, the wall clock and a
//! jitter draw, so every rule is unit-tested without a server or a clock:
//!
//! - never retried: 400, 401, a 403 whose body names an API-key error, and other 4xx
//!   except 408 and 429;
//! - 429: wait what `retry-after` says (seconds or an HTTP-date), else until
//!   `x-ratelimit-reset` (`%Y-%m-%d %H:%M:%S %z`), else back off exponentially;
//! - 5xx, 408, any other 403 (e.g. a CDN's HTML page), timeouts, network errors and bodies
//!   that are not a JSON array: exponential backoff with jitter;
//! - a retry whose wait plus one more request would end after the deadline is not made: the
//!   tick is given up (and the next one polls afresh) rather than piling up behind it.
//!
//! ```
//! use std::time::Duration;
//! use apps::producer::retry::{Decision, Failure, RetryPolicy};
//!
//! let policy = RetryPolicy::default();
//! let now = chrono::Utc::now();
//! let limited = Failure::Status { status: 429, retry_after: Some("7".into()), ratelimit_reset: None, key_error: false };
//! let decision = policy.decide(&limited, 1, Duration::from_secs(200), now, 0.5);
//! assert_eq!(decision, Decision::Retry(Duration::from_secs(7)));
//! let bad = Failure::Status { status: 400, retry_after: None, ratelimit_reset: None, key_error: false };
//! assert!(matches!(policy.decide(&bad, 1, Duration::from_secs(200), now, 0.5), Decision::GiveUp(_)));
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// CoinGecko's error codes for a missing key (10002) and a key for the wrong host
/// (10010, 10011): retrying cannot help.
pub const KEY_ERROR_CODES: [i64; 3] = [10002, 10010, 10011];

/// How one attempt failed, reduced to what the policy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with a non-success status.
    Status {
        /// HTTP status code.
        status: u16,
        /// The `retry-after` header, as sent.
        retry_after: Option<String>,
        /// The `x-ratelimit-reset` header, as sent.
        ratelimit_reset: Option<String>,
        /// The body names an API-key error ([`KEY_ERROR_CODES`] or a message about the key).
        key_error: bool,
    },
    /// No complete answer within the request timeout.
    Timeout,
    /// Connection refused, reset, DNS failure, …
    Network,
    /// Status 2xx but the body is not a JSON array (an HTML page, an error object, garbage).
    UnexpectedBody,
}

impl Failure {
    /// Metric label: the status code, or `timeout`, `network`, `unexpected_body`.
    pub fn label(&self) -> String {
        match self {
            Failure::Status { status, .. } => status.to_string(),
            Failure::Timeout => "timeout".into(),
            Failure::Network => "network".into(),
            Failure::UnexpectedBody => "unexpected_body".into(),
        }
    }
}

/// Why no further attempt is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure is permanent for this request (400, 401, key error, other 4xx).
    NotRetryable,
    /// The configured number of attempts is used up.
    AttemptsExhausted,
    /// Waiting and trying again would end after the deadline; the tick is skipped.
    BudgetExhausted {
        /// The wait the rules asked for.
        wanted: Duration,
    },
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::NotRetryable => f.write_str("not retryable"),
            GiveUp::AttemptsExhausted => f.write_str("attempts exhausted"),
            GiveUp::BudgetExhausted { wanted } => write!(
                f,
                "a retry after {:.1} s would not finish before the next tick",
                wanted.as_secs_f64()
            ),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then make the next attempt.
    Retry(Duration),
    /// Stop; the poll fails.
    GiveUp(GiveUp),
}

/// Retry configuration. Every call counts against the plan's quota, failed ones too
/// (docs/DATA_SCOPE.md "Call budget"), so attempts are few and bounded.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// First backoff step; attempt `n` backs off up to `base_delay · 2^(n-1)`.
    pub base_delay: Duration,
    /// Cap of the exponential backoff (server-given waits are not capped: they are honoured or
    /// the tick is skipped).
    pub max_delay: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Time one attempt may take (the HTTP request timeout), reserved after each wait.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 2 s base, 60 s cap, 4 attempts, 10 s request timeout.
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_attempts: 4,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The decision after attempt number `attempt` (1-based) failed with `failure`, with
    /// `remaining` left before the deadline; `now` is the wall clock (for `x-ratelimit-reset`
    /// and HTTP-date `retry-after`) and `jitter` a uniform draw from `[0, 1)`.
    pub fn decide(
        &self,
        failure: &Failure,
        attempt: u32,
        remaining: Duration,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Decision {
        let wanted = match failure {
            Failure::Status {
                status: 429,
                retry_after,
                ratelimit_reset,
                ..
            } => retry_after
                .as_deref()
                .and_then(|value| parse_retry_after(value, now))
                .or_else(|| {
                    ratelimit_reset
                        .as_deref()
                        .and_then(|value| parse_ratelimit_reset(value, now))
                })
                .unwrap_or_else(|| self.backoff(attempt, jitter)),
            Failure::Status {
                status, key_error, ..
            } if !is_retryable_status(*status, *key_error) => {
                return Decision::GiveUp(GiveUp::NotRetryable)
            }
            _ => self.backoff(attempt, jitter),
        };
        if attempt >= self.max_attempts {
            return Decision::GiveUp(GiveUp::AttemptsExhausted);
        }
        if wanted.saturating_add(self.request_timeout) > remaining {
            return Decision::GiveUp(GiveUp::BudgetExhausted { wanted });
        }
        Decision::Retry(wanted)
    }

    /// Exponential backoff with "equal jitter": half of the step is fixed, half is random, so
    /// waits still grow while concurrent clients spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let step = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// 408 (request timeout), 429 (rate limit), 5xx, and a 403 that is not a key error (a CDN's
/// HTML page, code 1020) may pass on a later try; other 4xx will not.
pub fn is_retryable_status(status: u16, key_error: bool) -> bool {
    match status {
        408 | 429 => true,
        403 => !key_error,
        500..=599 => true,
        _ => false,
    }
}

/// `retry-after`: delay seconds (`119`) or an HTTP-date (`Fri, 25 Jul 2025 14:54:00 GMT`);
/// a date in the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|at| until(at.with_timezone(&Utc), now))
}

/// `x-ratelimit-reset: 2025-07-25 14:54:00 +0000` (`%Y-%m-%d %H:%M:%S %z`) as a wait from
/// `now`; a time in the past means "now".
pub fn parse_ratelimit_reset(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    DateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|at| until(at.with_timezone(&Utc), now))
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// Whether an error body names an API-key problem: a CoinGecko error code of
/// [`KEY_ERROR_CODES`] (top level or under `status`), or an error message about the key.
pub fn is_key_error(body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let status = json.get("status").unwrap_or(&json);
    let code = status.get("error_code").and_then(serde_json::Value::as_i64);
    if code.is_some_and(|code| KEY_ERROR_CODES.contains(&code)) {
        return true;
    }
    ["error_message", "error"].iter().any(|field| {
        status
            .get(*field)
            .or_else(|| json.get(*field))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|message| message.to_ascii_lowercase().contains("api key"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PLENTY: Duration = Duration::from_secs(240);

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 7, 25, 14, 52, 0).unwrap()
    }

    fn status(status: u16) -> Failure {
        Failure::Status {
            status,
            retry_after: None,
            ratelimit_reset: None,
            key_error: false,
        }
    }

    fn limited(retry_after: Option<&str>, reset: Option<&str>) -> Failure {
        Failure::Status {
            status: 429,
            retry_after: retry_after.map(str::to_string),
            ratelimit_reset: reset.map(str::to_string),
            key_error: false,
        }
    }

    fn decide(failure: &Failure, attempt: u32, remaining: Duration) -> Decision {
        RetryPolicy::default().decide(failure, attempt, remaining, now(), 0.5)
    }

    #[test]
    fn client_errors_are_never_retried() {
        for code in [400, 401, 404, 422] {
            assert_eq!(
                decide(&status(code), 1, PLENTY),
                Decision::GiveUp(GiveUp::NotRetryable),
                "{code}"
            );
        }
        let key_error = Failure::Status {
            status: 403,
            retry_after: None,
            ratelimit_reset: None,
            key_error: true,
        };
        assert_eq!(
            decide(&key_error, 1, PLENTY),
            Decision::GiveUp(GiveUp::NotRetryable)
        );
    }

    #[test]
    fn server_errors_timeouts_and_odd_bodies_back_off_exponentially() {
        for failure in [
            status(500),
            status(503),
            status(408),
            status(403),
            Failure::Timeout,
            Failure::Network,
            Failure::UnexpectedBody,
        ] {
            // Jitter 0.5: three quarters of the step. Steps 2 s, 4 s, 8 s.
            assert_eq!(
                decide(&failure, 1, PLENTY),
                Decision::Retry(Duration::from_millis(1500)),
                "{failure:?}"
            );
            assert_eq!(
                decide(&failure, 3, PLENTY),
                Decision::Retry(Duration::from_secs(6))
            );
        }
    }

    #[test]
    fn jitter_spans_half_to_all_of_the_step_and_the_step_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_secs(4));
        assert_eq!(policy.backoff(20, 1.0), Duration::from_secs(60));
        assert_eq!(policy.backoff(20, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_seconds_are_honoured_exactly() {
        assert_eq!(
            decide(&limited(Some("119"), None), 1, PLENTY),
            Decision::Retry(Duration::from_secs(119))
        );
    }

    #[test]
    fn retry_after_may_be_an_http_date() {
        let failure = limited(Some("Fri, 25 Jul 2025 14:52:30 GMT"), None);
        assert_eq!(
            decide(&failure, 1, PLENTY),
            Decision::Retry(Duration::from_secs(30))
        );
    }

    #[test]
    fn ratelimit_reset_is_used_when_retry_after_is_absent_or_unreadable() {
        let reset = Some("2025-07-25 14:54:00 +0000");
        assert_eq!(
            decide(&limited(None, reset), 1, PLENTY),
            Decision::Retry(Duration::from_secs(120))
        );
        assert_eq!(
            decide(&limited(Some("soon"), reset), 1, PLENTY),
            Decision::Retry(Duration::from_secs(120))
        );
        let past = Some("2025-07-25 14:00:00 +0000");
        assert_eq!(
            decide(&limited(None, past), 1, PLENTY),
            Decision::Retry(Duration::ZERO)
        );
    }

    #[test]
    fn a_bare_429_backs_off_exponentially() {
        assert_eq!(
            decide(&limited(None, None), 2, PLENTY),
            Decision::Retry(Duration::from_secs(3))
        );
    }

    #[test]
    fn a_wait_that_would_overrun_the_deadline_skips_the_tick() {
        // 119 s wait + 10 s request timeout > 120 s left.
        assert_eq!(
            decide(&limited(Some("119"), None), 1, Duration::from_secs(120)),
            Decision::GiveUp(GiveUp::BudgetExhausted {
                wanted: Duration::from_secs(119)
            })
        );
        assert_eq!(
            decide(&limited(Some("110"), None), 1, Duration::from_secs(120)),
            Decision::Retry(Duration::from_secs(110))
        );
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(
            decide(&status(503), 4, PLENTY),
            Decision::GiveUp(GiveUp::AttemptsExhausted)
        );
    }

    #[test]
    fn key_errors_are_recognised_in_coingecko_bodies() {
        assert!(is_key_error(
            br#"{"status":{"error_code":10002,"error_message":"..."}}"#
        ));
        assert!(is_key_error(br#"{"error_code":10011}"#));
        assert!(is_key_error(
            br#"{"status":{"error_message":"Invalid API Key"}}"#
        ));
        assert!(!is_key_error(b"<html><body>Access denied</body></html>"));
        assert!(!is_key_error(br#"{"error":"invalid vs_currency"}"#));
    }
}
