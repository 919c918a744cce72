//! Waiting out transient token-endpoint answers: HTTP 429 (RFC 6585 §4), HTTP 503 and the OAuth
//! error `temporarily_unavailable` (RFC 6749 §5.2 / §4.1.2.1) mean "try again later", never a
//! refusal. The wait is the server's `Retry-After` (seconds or an HTTP-date, RFC 9110 §10.2.3),
//! capped at [`MAX_RETRY_WAIT`], else a bounded exponential back-off with jitter.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::device::DeviceClock;
use crate::error::{Error, ErrorCode};
use crate::http::RawResponse;

/// The longest single wait between two attempts; a longer `Retry-After` is cut to this.
pub(crate) const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// How long a refresh keeps retrying transient answers in total (the documented bound for
/// refresh; sign-in uses its `--timeout`).
pub(crate) const REFRESH_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// The first back-off step when the server gives no `Retry-After` (then 2×, 4×, … up to
/// [`MAX_RETRY_WAIT`], each with up to 50 % jitter off).
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// A transient answer: wait and try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transient {
    /// The HTTP status of the answer.
    pub(crate) status: u16,
    /// Whether the body named the OAuth error `temporarily_unavailable`.
    pub(crate) temporarily_unavailable: bool,
    /// The server's `Retry-After`, as a wait from now (a date in the past is zero).
    pub(crate) retry_after: Option<Duration>,
}

/// Whether `raw` is a transient answer (429, 503, or an OAuth `temporarily_unavailable` with any
/// status); `now` turns an HTTP-date `Retry-After` into a wait.
pub(crate) fn transient(raw: &RawResponse, now: SystemTime) -> Option<Transient> {
    let temporarily_unavailable = serde_json::from_slice::<Value>(&raw.body)
        .ok()
        .is_some_and(|v| v.get("error").and_then(Value::as_str) == Some("temporarily_unavailable"));
    if !(matches!(raw.status, 429 | 503) || temporarily_unavailable) {
        return None;
    }
    Some(Transient {
        status: raw.status,
        temporarily_unavailable,
        retry_after: raw
            .retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, now)),
    })
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (IMF-fixdate, or the obsolete
/// RFC 850 and asctime forms), RFC 9110 §10.2.3. `None` for anything else. A huge number of
/// seconds saturates; a date in the past is a zero wait.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The waits between attempts: the server's `Retry-After` when it gives one, else exponential
/// back-off with jitter; every wait at most [`MAX_RETRY_WAIT`].
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The wait before the next attempt.
    pub(crate) fn next_wait(&mut self, retry_after: Option<Duration>) -> Duration {
        let wait = match retry_after {
            Some(wait) => wait,
            None => {
                let full = BACKOFF_BASE
                    .checked_mul(2u32.saturating_pow(self.attempt))
                    .unwrap_or(MAX_RETRY_WAIT)
                    .min(MAX_RETRY_WAIT);
                // Up to half of it off, so clients told to wait at the same time do not come back
                // at the same time.
                let half = u64::try_from(full.as_millis() / 2).unwrap_or(0);
                full.saturating_sub(Duration::from_millis(random_below(half.saturating_add(1))))
            }
        };
        self.attempt = self.attempt.saturating_add(1);
        wait.min(MAX_RETRY_WAIT)
    }
}

/// A random number below `bound` (`0` when `bound` is 0). Jitter needs no cryptographic quality:
/// std's per-process random hash keys, mixed with the clock, are enough.
fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() % bound
}

/// How [`send_until_settled`] waits out transient answers.
pub(crate) struct Patience<'a> {
    /// The clock that tells the time and sleeps (the real one, or a test's).
    pub(crate) clock: &'a dyn DeviceClock,
    /// No wait may end after this.
    pub(crate) deadline: Instant,
    /// The shortest wait between two attempts (e.g. the device-flow poll interval).
    pub(crate) min_wait: Duration,
    /// What was being done, for the error after the last transient answer (see [`gave_up`]).
    pub(crate) what: &'static str,
    /// Put before the log line of each wait, e.g. `"device flow: "`.
    pub(crate) log_prefix: &'static str,
}

impl<'a> Patience<'a> {
    /// The patience of one token-endpoint request (refresh, grant renewal, token exchange):
    /// transient answers are retried for `budget` from now, with no minimum wait and no log
    /// prefix. A budget past what an `Instant` can hold is a year: longer than anyone waits.
    pub(crate) fn within(clock: &'a dyn DeviceClock, budget: Duration, what: &'static str) -> Self {
        let now = clock.now();
        Self {
            clock,
            deadline: now
                .checked_add(budget)
                .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
                .unwrap_or(now),
            min_wait: Duration::ZERO,
            what,
            log_prefix: "",
        }
    }
}

/// Sends one token-endpoint request with `send`, again after each transient answer (see
/// [`transient`]) for as long as the next wait ends by `patience.deadline`; returns the first
/// answer that is not transient and when it was sent. An error of `send` is returned at once; when
/// the next wait would overrun the deadline, [`gave_up`]'s error, turned into `E` by `stop`.
pub(crate) async fn send_until_settled<E, Fut>(
    patience: &Patience<'_>,
    mut send: impl FnMut() -> Fut,
    stop: impl FnOnce(Error) -> E,
) -> Result<(RawResponse, SystemTime), E>
where
    Fut: Future<Output = Result<RawResponse, E>>,
{
    let mut backoff = Backoff::default();
    loop {
        let sent_at = SystemTime::now();
        let raw = send().await?;
        let Some(transient) = transient(&raw, SystemTime::now()) else {
            return Ok((raw, sent_at));
        };
        let wait = backoff
            .next_wait(transient.retry_after)
            .max(patience.min_wait);
        let ends = patience.clock.now().checked_add(wait);
        if ends.is_none_or(|ends| ends > patience.deadline) {
            return Err(stop(gave_up(patience.what, &transient)));
        }
        tracing::info!(
            status = transient.status,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "{}the token endpoint asked to try again later; waiting",
            patience.log_prefix
        );
        patience.clock.sleep(wait).await;
    }
}

/// The error after the last transient answer: `network_error` naming the status.
pub(crate) fn gave_up(what: &str, transient: &Transient) -> Error {
    let why = match transient.status {
        429 => "is rate-limiting requests".to_owned(),
        503 => "is temporarily unavailable".to_owned(),
        status => format!("is temporarily unavailable (temporarily_unavailable, HTTP {status})"),
    };
    let mut err = Error::new(
        ErrorCode::NetworkError,
        format!(
            "{what}: the token endpoint {why} (HTTP {}) and still was after waiting",
            transient.status
        ),
    )
    .with_hint("retry later; the stored tokens are unchanged")
    .with_status(transient.status);
    if transient.temporarily_unavailable {
        err = err.with_oauth("temporarily_unavailable", None, transient.status);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, retry_after: Option<&str>, body: &str) -> RawResponse {
        RawResponse {
            status,
            content_type: Some("application/json".to_owned()),
            retry_after: retry_after.map(str::to_owned),
            www_authenticate: Vec::new(),
            dpop_nonce: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn transient_answers() {
        let now = SystemTime::now();
        let t = transient(&raw(429, Some("2"), "slow down"), now);
        assert_eq!(
            t,
            Some(Transient {
                status: 429,
                temporarily_unavailable: false,
                retry_after: Some(Duration::from_secs(2))
            })
        );
        let t = transient(
            &raw(429, None, r#"{"error":"temporarily_unavailable"}"#),
            now,
        );
        assert!(t.is_some_and(|t| t.temporarily_unavailable && t.retry_after.is_none()));
        assert!(transient(&raw(503, None, ""), now).is_some());
        // A 400 carrying temporarily_unavailable (RFC 6749 §5.2 allows any 4xx) is transient too.
        assert!(
            transient(
                &raw(400, None, r#"{"error":"temporarily_unavailable"}"#),
                now
            )
            .is_some()
        );
        // Refusals and other server faults are not.
        for (status, body) in [
            (400, r#"{"error":"invalid_grant"}"#),
            (401, r#"{"error":"invalid_client"}"#),
            (500, "internal server error"),
            (502, ""),
            (200, r#"{"access_token":"a","token_type":"Bearer"}"#),
        ] {
            assert!(
                transient(&raw(status, Some("1"), body), now).is_none(),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let p = |v: &str| parse_retry_after(v, now);
        assert_eq!(p("0"), Some(Duration::ZERO));
        assert_eq!(p(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(p("99999999999999999999999"), Some(Duration::MAX));
        // IMF-fixdate, RFC 850 and asctime (RFC 9110 §5.6.7).
        assert_eq!(
            p("Sun, 06 Nov 1994 08:49:40 GMT"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p("Sunday, 06-Nov-94 08:49:42 GMT"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(p("Sun Nov  6 08:49:47 1994"), Some(Duration::from_secs(10)));
        // In the past: no wait.
        assert_eq!(p("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 32 Nov 1994 08:49:40 GMT",
            "0x10",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_is_bounded_grows_and_honours_retry_after() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait(None)).collect();
        for (i, w) in waits.iter().enumerate() {
            let full = (BACKOFF_BASE * 2u32.pow(u32::try_from(i).unwrap_or(0))).min(MAX_RETRY_WAIT);
            assert!(*w <= full && *w >= full / 2, "attempt {i}: {w:?}");
        }
        assert!(waits.iter().all(|w| *w <= MAX_RETRY_WAIT));
        let mut b = Backoff::default();
        assert_eq!(
            b.next_wait(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(b.next_wait(Some(Duration::from_secs(3600))), MAX_RETRY_WAIT);
        assert_eq!(b.next_wait(Some(Duration::MAX)), MAX_RETRY_WAIT);
        assert_eq!(random_below(0), 0);
        assert!((0..100).all(|_| random_below(3) < 3));
    }

    #[test]
    fn giving_up_is_a_network_error_naming_the_status() {
        for (status, body, needle) in [
            (429, "", "HTTP 429"),
            (503, "", "HTTP 503"),
            (
                400,
                r#"{"error":"temporarily_unavailable"}"#,
                "temporarily_unavailable",
            ),
        ] {
            let t = transient(&raw(status, None, body), SystemTime::now());
            let Some(t) = t else {
                panic!("{status} is transient")
            };
            let e = gave_up("refreshing the token", &t);
            assert_eq!(e.code(), ErrorCode::NetworkError);
            assert_eq!(e.http_status(), Some(status));
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.hint().is_some());
        }
    }
}
