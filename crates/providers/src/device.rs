//! RFC 8628 device authorization grant: start, show the user code, poll.
//!
//! The poller takes a [`DeviceClock`] so its timing (interval, `slow_down`, expiry, back-off) is
//! tested without waiting; [`TokioClock`] is the real one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use context_harness_tokens::{self as tokens, OAuthTokens, ResponseError};
use serde_json::{Map, Value};

use crate::discovery::printable;
use crate::error::{Error, ErrorCode, Result};

/// The poll interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest wait between polls after transport errors (exponential back-off cap).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The shortest poll interval honoured (a server's `0` or a missing value never means "poll in a
/// loop").
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest poll interval honoured, from the device authorization answer or a `slow_down`: 5
/// minutes. A larger server value (up to `i64::MAX` seconds has been seen from a hostile server) is
/// clamped to it, so no time computation can overflow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(300);

/// The longest device-code lifetime honoured (`expires_in`): 1 hour. RFC 8628 servers use 5 to 30
/// minutes; a larger value is clamped to it. The caller's timeout bounds the wait further.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(3600);

/// A server-supplied number of seconds as a duration within `[min, max]`.
fn clamp_secs(secs: u64, min: Duration, max: Duration) -> Duration {
    Duration::from_secs(secs).clamp(min, max)
}

/// The device-code grant type.
pub const GRANT_TYPE: &str = crate::registration::DEVICE_CODE_GRANT;

/// A device code: secret (it redeems the grant), redacted `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCode(String);

impl DeviceCode {
    /// Wraps a device code.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The code itself; send it only to the token endpoint.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCode(<redacted>)")
    }
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The code the poller redeems (secret).
    pub device_code: DeviceCode,
    /// The code the user types at [`verification_uri`](Self::verification_uri) (shown by design).
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the user code filled in, if the server gives one.
    pub verification_uri_complete: Option<String>,
    /// How long the codes are valid, clamped to at most [`MAX_EXPIRES_IN`].
    pub expires_in: Duration,
    /// The minimum time between polls, clamped to [`MIN_INTERVAL`]`..=`[`MAX_INTERVAL`].
    pub interval: Duration,
}

impl DeviceAuthorization {
    /// Parses a device authorization response object (accepts GitHub's `verification_url` and
    /// numeric strings). `expires_in` and `interval` are clamped to [`MAX_EXPIRES_IN`] and
    /// [`MIN_INTERVAL`]`..=`[`MAX_INTERVAL`]; the strings are kept as sent (print them through
    /// [`terminal_text`](crate::terminal_text)).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] naming the missing or malformed field.
    pub fn from_object(object: &Map<String, Value>) -> Result<Self> {
        let string = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let seconds = |key: &str| match object.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let missing = |key: &str| {
            Error::new(
                ErrorCode::AuthFailed,
                format!("the device authorization response has no `{key}`"),
            )
        };
        let device_code = string("device_code").ok_or_else(|| missing("device_code"))?;
        let user_code = string("user_code").ok_or_else(|| missing("user_code"))?;
        let verification_uri = string("verification_uri")
            .or_else(|| string("verification_url"))
            .ok_or_else(|| missing("verification_uri"))?;
        for uri in
            std::iter::once(&verification_uri).chain(string("verification_uri_complete").as_ref())
        {
            if !(uri.starts_with("https://") || uri.starts_with("http://")) {
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    format!("the verification URI `{}` is not http(s)", printable(uri)),
                ));
            }
        }
        let expires_in = seconds("expires_in").ok_or_else(|| missing("expires_in"))?;
        let interval = seconds("interval")
            .filter(|s| *s > 0)
            .map_or(DEFAULT_INTERVAL, |s| {
                clamp_secs(s, MIN_INTERVAL, MAX_INTERVAL)
            });
        Ok(Self {
            device_code: DeviceCode(device_code),
            user_code,
            verification_uri,
            verification_uri_complete: string("verification_uri_complete"),
            expires_in: clamp_secs(expires_in, Duration::ZERO, MAX_EXPIRES_IN),
            interval,
        })
    }
}

/// Time for the poller: monotonic now and sleeping. Inject a fake one in tests.
pub trait DeviceClock: Send + Sync {
    /// Monotonic time.
    fn now(&self) -> Instant;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock (tokio's timer).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl DeviceClock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The outcome of one poll of the token endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum PollOutcome {
    /// Tokens were issued.
    Tokens(OAuthTokens),
    /// An OAuth error (`authorization_pending`, `slow_down`, `access_denied`, …) with the server's
    /// `interval` if it sent one (GitHub does with `slow_down`), clamped like the answer's.
    OAuthError {
        /// The error code.
        error: String,
        /// The server's new interval, if any.
        interval: Option<Duration>,
    },
    /// A connection failure or timeout: back off and retry until the codes expire.
    Transport(Error),
    /// Any other failure: stop.
    Fatal(Error),
}

impl PollOutcome {
    /// Classifies a token-endpoint answer.
    pub fn from_response(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        sent_at: SystemTime,
    ) -> Self {
        let object = match tokens::parse_response_object(status, content_type, body) {
            Ok(object) => object,
            Err(ResponseError::OAuth { error, .. }) => {
                // Read the interval separately: parse_response_object's error does not carry it.
                let interval = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("interval").and_then(Value::as_u64))
                    .map(|s| clamp_secs(s, MIN_INTERVAL, MAX_INTERVAL));
                return Self::OAuthError { error, interval };
            }
            Err(e) if e.status().is_some_and(|s| s >= 500) => {
                return Self::Transport(
                    Error::new(
                        ErrorCode::NetworkError,
                        format!("polling the token endpoint: {e}"),
                    )
                    .with_hint(crate::error::SERVER_TROUBLE_HINT),
                );
            }
            Err(e) => {
                return Self::Fatal(Error::new(
                    ErrorCode::AuthFailed,
                    format!("polling the token endpoint: {e}"),
                ));
            }
        };
        match OAuthTokens::from_response_object(object, sent_at) {
            Ok(t) => Self::Tokens(t),
            Err(e) => Self::Fatal(Error::new(
                ErrorCode::AuthFailed,
                format!("polling the token endpoint: {e}"),
            )),
        }
    }
}

/// Polls until the user approves, denies, or the codes expire (RFC 8628 §3.4–3.5).
///
/// Waits `interval` before every poll; `authorization_pending` continues; `slow_down` adds 5 s for
/// this and every later poll (or uses the server's `interval` if larger), never beyond
/// [`MAX_INTERVAL`]; `access_denied` →
/// [`ErrorCode::AuthCancelled`]; `expired_token`/`token_expired`/`invalid_grant`, or the local
/// deadline → [`ErrorCode::Timeout`]; transport errors back off exponentially (capped at 60 s).
///
/// # Errors
///
/// As above, plus [`ErrorCode::AuthFailed`] for any other server error.
pub async fn poll_until_done<F, Fut>(
    clock: &dyn DeviceClock,
    authorization: &DeviceAuthorization,
    mut poll: F,
) -> Result<OAuthTokens>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PollOutcome>,
{
    let started = clock.now();
    // Checked: `expires_in` is clamped by the parser, but the struct's fields are public.
    let deadline = started
        .checked_add(authorization.expires_in.min(MAX_EXPIRES_IN))
        .unwrap_or(started);
    let mut interval = authorization.interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
    let mut backoff: Option<Duration> = None;
    let expired = || {
        Error::new(
            ErrorCode::Timeout,
            "the device code expired before the sign-in was approved",
        )
        .with_hint("run the sign-in again and enter the code before it expires")
    };
    loop {
        let wait = backoff.unwrap_or(interval);
        if clock.now().checked_add(wait).is_none_or(|t| t > deadline) {
            // Waiting would pass the deadline: the code cannot be redeemed any more.
            let remaining = deadline.saturating_duration_since(clock.now());
            clock.sleep(remaining).await;
            return Err(expired());
        }
        clock.sleep(wait).await;
        match poll().await {
            PollOutcome::Tokens(tokens) => return Ok(tokens),
            PollOutcome::OAuthError {
                error,
                interval: server_interval,
            } => {
                backoff = None;
                match error.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => {
                        interval = interval.saturating_add(SLOW_DOWN_STEP);
                        if let Some(server) = server_interval {
                            interval = interval.max(server);
                        }
                        interval = interval.min(MAX_INTERVAL);
                        tracing::debug!(interval_s = interval.as_secs(), "device flow: slow_down");
                    }
                    "access_denied" => {
                        return Err(Error::new(
                            ErrorCode::AuthCancelled,
                            "the device sign-in was denied",
                        )
                        .with_oauth("access_denied", None, 400));
                    }
                    "expired_token" | "token_expired" | "invalid_grant" => {
                        return Err(expired().with_oauth(printable(&error), None, 400));
                    }
                    other => {
                        let code = printable(other);
                        return Err(Error::new(
                            ErrorCode::AuthFailed,
                            format!("the device sign-in failed: the server answered `{code}`"),
                        )
                        .with_oauth(code, None, 400));
                    }
                }
            }
            PollOutcome::Transport(e) => {
                let next = backoff
                    .unwrap_or(interval)
                    .saturating_mul(2)
                    .min(MAX_BACKOFF.max(interval));
                tracing::debug!(error = %e, backoff_s = next.as_secs(), "device flow: poll failed; backing off");
                backoff = Some(next);
            }
            PollOutcome::Fatal(e) => return Err(e),
        }
    }
}

/// A callback shown the user code and verification URI (the CLI prints them).
pub type DevicePrompt = Arc<dyn Fn(&DeviceAuthorization) + Send + Sync>;

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    /// A clock that advances instantly and records every sleep and poll time.
    struct FakeClock {
        base: Instant,
        offset: Mutex<Duration>,
        sleeps: Mutex<Vec<Duration>>,
    }

    impl FakeClock {
        fn new() -> Self {
            Self {
                base: Instant::now(),
                offset: Mutex::new(Duration::ZERO),
                sleeps: Mutex::new(Vec::new()),
            }
        }
        fn elapsed(&self) -> Duration {
            self.offset.lock().map(|o| *o).unwrap_or_default()
        }
        fn sleeps(&self) -> Vec<Duration> {
            self.sleeps.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    impl DeviceClock for FakeClock {
        fn now(&self) -> Instant {
            self.base + self.elapsed()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            if let Ok(mut o) = self.offset.lock() {
                *o += d;
            }
            if let Ok(mut s) = self.sleeps.lock() {
                s.push(d);
            }
            Box::pin(async {})
        }
    }

    fn auth(expires: u64, interval: Option<u64>) -> DeviceAuthorization {
        let mut object = serde_json::json!({
            "device_code": "dc-secret", "user_code": "ABCD-EFGH",
            "verification_uri": "https://as.example/device", "expires_in": expires,
        });
        if let (Some(i), Some(map)) = (interval, object.as_object_mut()) {
            map.insert("interval".into(), i.into());
        }
        object
            .as_object()
            .map(DeviceAuthorization::from_object)
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("bad fixture"))
    }

    fn err(e: &str) -> PollOutcome {
        PollOutcome::OAuthError {
            error: e.to_owned(),
            interval: None,
        }
    }

    fn tokens() -> PollOutcome {
        PollOutcome::from_response(
            200,
            Some("application/json"),
            br#"{"access_token":"at","token_type":"Bearer"}"#,
            SystemTime::now(),
        )
    }

    fn run(
        authorization: &DeviceAuthorization,
        script: Vec<PollOutcome>,
    ) -> (Result<OAuthTokens>, Vec<Duration>, Vec<Duration>) {
        let clock = FakeClock::new();
        let script = Mutex::new(VecDeque::from(script));
        let polls = Mutex::new(Vec::new());
        let result = futures_lite_block_on(poll_until_done(&clock, authorization, || {
            if let Ok(mut p) = polls.lock() {
                p.push(clock.elapsed());
            }
            let next = script
                .lock()
                .ok()
                .and_then(|mut s| s.pop_front())
                .unwrap_or_else(|| err("authorization_pending"));
            async move { next }
        }));
        let polls = polls.lock().map(|p| p.clone()).unwrap_or_default();
        (result, clock.sleeps(), polls)
    }

    fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(f)
    }

    #[test]
    fn parses_the_response_and_defaults_the_interval() {
        let a = auth(600, None);
        assert_eq!(a.interval, DEFAULT_INTERVAL);
        assert_eq!(a.expires_in, Duration::from_secs(600));
        assert!(!format!("{a:?}").contains("dc-secret"));
        let github: Map<String, Value> = serde_json::from_str(
            r#"{"device_code":"d","user_code":"U","verification_url":"https://github.com/login/device","expires_in":"900","interval":"5"}"#,
        )
        .unwrap_or_default();
        let a = DeviceAuthorization::from_object(&github).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.verification_uri, "https://github.com/login/device");
        assert_eq!(a.expires_in, Duration::from_secs(900));
        let bad: Map<String, Value> = serde_json::from_str(
            r#"{"device_code":"d","user_code":"U","verification_uri":"javascript:x","expires_in":9}"#,
        )
        .unwrap_or_default();
        assert!(DeviceAuthorization::from_object(&bad).is_err());
    }

    #[test]
    fn waits_the_default_interval_between_polls() {
        let (result, sleeps, polls) = run(
            &auth(600, None),
            vec![
                err("authorization_pending"),
                err("authorization_pending"),
                tokens(),
            ],
        );
        assert!(result.is_ok());
        assert_eq!(sleeps, vec![Duration::from_secs(5); 3]);
        assert_eq!(polls, [5, 10, 15].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn slow_down_adds_five_seconds_for_every_later_poll() {
        let (result, sleeps, _) = run(
            &auth(600, Some(2)),
            vec![
                err("slow_down"),
                err("authorization_pending"),
                err("slow_down"),
                tokens(),
            ],
        );
        assert!(result.is_ok());
        assert_eq!(sleeps, [2, 7, 7, 12].map(Duration::from_secs).to_vec());
        // The server's larger interval wins (GitHub sends one).
        let (_, sleeps, _) = run(
            &auth(600, Some(5)),
            vec![
                PollOutcome::OAuthError {
                    error: "slow_down".into(),
                    interval: Some(Duration::from_secs(30)),
                },
                tokens(),
            ],
        );
        assert_eq!(sleeps, [5, 30].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn no_two_polls_closer_than_the_interval() {
        let script = (0..20)
            .map(|i| {
                if i % 3 == 0 {
                    err("slow_down")
                } else {
                    err("authorization_pending")
                }
            })
            .chain(std::iter::once(tokens()))
            .collect();
        let (_, _, polls) = run(&auth(100_000, Some(1)), script);
        let mut interval = Duration::from_secs(1);
        for (i, pair) in polls.windows(2).enumerate() {
            if i % 3 == 0 {
                interval += SLOW_DOWN_STEP;
            }
            assert!(pair[1] - pair[0] >= interval, "poll {i}: {:?}", pair);
        }
    }

    #[test]
    fn terminal_errors() {
        let table = [
            ("access_denied", ErrorCode::AuthCancelled),
            ("expired_token", ErrorCode::Timeout),
            ("token_expired", ErrorCode::Timeout),
            ("invalid_grant", ErrorCode::Timeout),
            ("device_flow_disabled", ErrorCode::AuthFailed),
            ("incorrect_client_credentials", ErrorCode::AuthFailed),
            ("unsupported_grant_type", ErrorCode::AuthFailed),
        ];
        for (code, want) in table {
            let (result, _, polls) = run(
                &auth(600, Some(1)),
                vec![err("authorization_pending"), err(code)],
            );
            assert_eq!(result.err().map(|e| e.code()), Some(want), "{code}");
            assert_eq!(polls.len(), 2, "{code}");
        }
    }

    #[test]
    fn local_deadline_stops_polling() {
        let (result, _, polls) = run(&auth(12, Some(5)), vec![]);
        assert_eq!(result.err().map(|e| e.code()), Some(ErrorCode::Timeout));
        assert_eq!(polls, [5, 10].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn transport_errors_back_off_exponentially() {
        let transport = || PollOutcome::Transport(Error::new(ErrorCode::NetworkError, "reset"));
        let (result, sleeps, _) = run(
            &auth(100_000, Some(5)),
            vec![
                transport(),
                transport(),
                transport(),
                transport(),
                err("authorization_pending"),
                tokens(),
            ],
        );
        assert!(result.is_ok());
        assert_eq!(
            sleeps,
            [5, 10, 20, 40, 60, 5].map(Duration::from_secs).to_vec()
        );
    }

    /// The reported crash: `interval: i64::MAX` aborted with "overflow when adding duration to
    /// instant". Now the interval is clamped and the poller ends at the (clamped) deadline.
    #[test]
    fn hostile_durations_do_not_overflow() {
        let huge = 9_223_372_036_854_775_807_u64;
        let a = auth(huge, Some(huge));
        assert_eq!((a.interval, a.expires_in), (MAX_INTERVAL, MAX_EXPIRES_IN));
        let (result, sleeps, polls) = run(&a, vec![]);
        assert_eq!(result.err().map(|e| e.code()), Some(ErrorCode::Timeout));
        assert_eq!(polls.len(), 12, "every 300 s until the 3600 s deadline");
        assert!(sleeps.iter().all(|s| *s <= MAX_INTERVAL));
        // slow_down with a huge server interval, and transport back-off: still bounded.
        let slow = || PollOutcome::OAuthError {
            error: "slow_down".into(),
            interval: Some(Duration::MAX),
        };
        let transport = || PollOutcome::Transport(Error::new(ErrorCode::NetworkError, "reset"));
        let mut fields = auth(600, Some(5));
        fields.interval = Duration::MAX;
        fields.expires_in = Duration::MAX;
        let (result, sleeps, _) = run(&fields, vec![slow(), transport(), transport(), tokens()]);
        assert!(result.is_ok());
        assert!(sleeps.iter().all(|s| *s <= MAX_INTERVAL), "{sleeps:?}");
        // A huge `interval` in a poll answer is clamped too.
        match PollOutcome::from_response(
            400,
            None,
            br#"{"error":"slow_down","interval":18446744073709551615}"#,
            SystemTime::now(),
        ) {
            PollOutcome::OAuthError { interval, .. } => assert_eq!(interval, Some(MAX_INTERVAL)),
            other => panic!("{other:?}"),
        }
        // Zero means the default, tiny values the minimum.
        assert_eq!(auth(600, Some(0)).interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn http_200_errors_and_5xx_are_classified() {
        match PollOutcome::from_response(
            200,
            Some("application/json"),
            br#"{"error":"authorization_pending"}"#,
            SystemTime::now(),
        ) {
            PollOutcome::OAuthError { error, .. } => assert_eq!(error, "authorization_pending"),
            other => panic!("{other:?}"),
        }
        match PollOutcome::from_response(
            400,
            None,
            br#"{"error":"slow_down","interval":10}"#,
            SystemTime::now(),
        ) {
            PollOutcome::OAuthError { interval, .. } => {
                assert_eq!(interval, Some(Duration::from_secs(10)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            PollOutcome::from_response(502, Some("text/plain"), b"bad gateway", SystemTime::now()),
            PollOutcome::Transport(_)
        ));
        assert!(matches!(
            PollOutcome::from_response(200, Some("text/html"), b"<html>", SystemTime::now()),
            PollOutcome::Fatal(_)
        ));
    }
}
