//! The RFC 8628 device authorization grant, without I/O: the device authorization answer, the
//! classification of each token-endpoint poll, and [`DevicePoller`], the state machine that says
//! when to poll next (interval, `slow_down`, back-off, expiry) from the times it is given.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use context_harness_tokens::{self as tokens, OAuthTokens, ResponseError};
use serde_json::{Map, Value};

use crate::error::{ErrorKind, ProtocolError, Result, printable};

/// The device-code grant type (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

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
    /// [`terminal_text`](context_harness_tokens::terminal_text)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidResponse`] naming the missing or malformed field.
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
            ProtocolError::new(
                ErrorKind::InvalidResponse,
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
                return Err(ProtocolError::new(
                    ErrorKind::InvalidResponse,
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

/// Time for a device-flow poller: monotonic now and sleeping. The poll loop of an I/O crate takes
/// one so its timing is tested without waiting (a fake clock), while [`DevicePoller`] itself only
/// ever receives instants.
pub trait DeviceClock: Send + Sync {
    /// Monotonic time.
    fn now(&self) -> Instant;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The outcome of one poll of the token endpoint (RFC 8628 §3.4–3.5). `E` is the error type of
/// the crate doing the I/O (it must take a [`ProtocolError`]), so transport failures keep their
/// own errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum PollOutcome<E = ProtocolError> {
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
    /// A connection failure, a timeout or a server error (5xx): back off and retry until the codes
    /// expire.
    Transport(E),
    /// Any other failure: stop.
    Fatal(E),
}

impl<E: From<ProtocolError>> PollOutcome<E> {
    /// Classifies a token-endpoint answer: tokens, an OAuth error (whatever the status, RFC 8628
    /// servers such as GitHub's answer `authorization_pending` with HTTP 200), a 5xx as
    /// [`Transport`](Self::Transport) ([`ErrorKind::ServerError`]), anything else as
    /// [`Fatal`](Self::Fatal) ([`ErrorKind::InvalidResponse`]). `sent_at` is when the request was
    /// sent (the tokens' expiry counts from it).
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
                return Self::Transport(E::from(ProtocolError::new(
                    ErrorKind::ServerError,
                    format!("polling the token endpoint: {e}"),
                )));
            }
            Err(e) => {
                return Self::Fatal(E::from(ProtocolError::new(
                    ErrorKind::InvalidResponse,
                    format!("polling the token endpoint: {e}"),
                )));
            }
        };
        match OAuthTokens::from_response_object(object, sent_at) {
            Ok(t) => Self::Tokens(t),
            Err(e) => Self::Fatal(E::from(ProtocolError::new(
                ErrorKind::InvalidResponse,
                format!("polling the token endpoint: {e}"),
            ))),
        }
    }
}

/// When to poll next, from [`DevicePoller::next_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextPoll {
    /// Wait this long, then poll.
    After(Duration),
    /// Waiting would pass the codes' deadline: they cannot be redeemed any more. Wait `remaining`
    /// (until the deadline) and report [`DevicePoller::expired`].
    Expired {
        /// The time left until the deadline.
        remaining: Duration,
    },
}

/// What a poll's outcome means for the flow, from [`DevicePoller::on_outcome`].
#[derive(Debug)]
pub enum PollStep<E = ProtocolError> {
    /// Tokens were issued: done.
    Done(OAuthTokens),
    /// `authorization_pending`: poll again after the interval.
    Pending,
    /// `slow_down`: the interval is now `interval` for this and every later poll.
    SlowedDown {
        /// The new interval.
        interval: Duration,
    },
    /// A transport failure: the next poll waits `backoff` (doubled each time, capped).
    BackingOff {
        /// The failure.
        error: E,
        /// The wait before the next poll.
        backoff: Duration,
    },
    /// The flow failed: denied ([`ErrorKind::Denied`]), expired ([`ErrorKind::Expired`]), another
    /// server error ([`ErrorKind::InvalidResponse`]), or a fatal poll outcome.
    Failed(E),
}

/// The RFC 8628 §3.4–3.5 polling rules as a state machine with an injected clock: the caller asks
/// [`next_poll`](Self::next_poll) with the current instant, waits, polls, and feeds the outcome to
/// [`on_outcome`](Self::on_outcome).
///
/// Waits the interval before every poll; `authorization_pending` continues; `slow_down` adds
/// [`SLOW_DOWN_STEP`] for this and every later poll (or uses the server's `interval` if larger),
/// never beyond [`MAX_INTERVAL`]; `access_denied` fails with [`ErrorKind::Denied`];
/// `expired_token`/`token_expired`/`invalid_grant`, or the deadline, with [`ErrorKind::Expired`];
/// transport errors back off exponentially (capped at [`MAX_BACKOFF`], or the interval if larger).
/// No computation can overflow, whatever the (public) fields of the authorization hold.
///
/// ```
/// use std::time::{Duration, Instant};
/// use context_harness_protocol::{DeviceAuthorization, DevicePoller, NextPoll, PollOutcome, PollStep};
///
/// let answer = serde_json::json!({
///     "device_code": "dc", "user_code": "ABCD-EFGH",
///     "verification_uri": "https://as.example/device", "expires_in": 600, "interval": 5,
/// });
/// let authorization = DeviceAuthorization::from_object(answer.as_object().unwrap())?;
/// let start = Instant::now();
/// let mut poller = DevicePoller::new(&authorization, start);
/// assert_eq!(poller.next_poll(start), NextPoll::After(Duration::from_secs(5)));
/// let slow: PollOutcome = PollOutcome::OAuthError { error: "slow_down".into(), interval: None };
/// assert!(matches!(poller.on_outcome(slow), PollStep::SlowedDown { .. }));
/// assert_eq!(poller.next_poll(start), NextPoll::After(Duration::from_secs(10)));
/// # Ok::<(), context_harness_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DevicePoller {
    deadline: Instant,
    interval: Duration,
    backoff: Option<Duration>,
}

impl DevicePoller {
    /// A poller for `authorization`, whose codes were issued at `now`.
    pub fn new(authorization: &DeviceAuthorization, now: Instant) -> Self {
        // Checked: `expires_in` is clamped by the parser, but the struct's fields are public.
        let deadline = now
            .checked_add(authorization.expires_in.min(MAX_EXPIRES_IN))
            .unwrap_or(now);
        Self {
            deadline,
            interval: authorization.interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            backoff: None,
        }
    }

    /// The current interval between polls.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When to poll next, at `now`.
    pub fn next_poll(&self, now: Instant) -> NextPoll {
        let wait = self.backoff.unwrap_or(self.interval);
        if now.checked_add(wait).is_none_or(|t| t > self.deadline) {
            NextPoll::Expired {
                remaining: self.deadline.saturating_duration_since(now),
            }
        } else {
            NextPoll::After(wait)
        }
    }

    /// The error for codes that expired before the sign-in was approved ([`ErrorKind::Expired`]).
    pub fn expired() -> ProtocolError {
        ProtocolError::new(
            ErrorKind::Expired,
            "the device code expired before the sign-in was approved",
        )
    }

    /// Applies the outcome of a poll.
    pub fn on_outcome<E: From<ProtocolError>>(&mut self, outcome: PollOutcome<E>) -> PollStep<E> {
        match outcome {
            PollOutcome::Tokens(tokens) => PollStep::Done(tokens),
            PollOutcome::OAuthError {
                error,
                interval: server_interval,
            } => {
                self.backoff = None;
                match error.as_str() {
                    "authorization_pending" => PollStep::Pending,
                    "slow_down" => {
                        let mut interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                        if let Some(server) = server_interval {
                            interval = interval.max(server);
                        }
                        self.interval = interval.min(MAX_INTERVAL);
                        PollStep::SlowedDown {
                            interval: self.interval,
                        }
                    }
                    "access_denied" => PollStep::Failed(E::from(
                        ProtocolError::new(ErrorKind::Denied, "the device sign-in was denied")
                            .with_oauth("access_denied", None, 400),
                    )),
                    "expired_token" | "token_expired" | "invalid_grant" => PollStep::Failed(
                        E::from(Self::expired().with_oauth(printable(&error), None, 400)),
                    ),
                    other => {
                        let code = printable(other);
                        PollStep::Failed(E::from(
                            ProtocolError::new(
                                ErrorKind::InvalidResponse,
                                format!("the device sign-in failed: the server answered `{code}`"),
                            )
                            .with_oauth(code, None, 400),
                        ))
                    }
                }
            }
            PollOutcome::Transport(error) => {
                let backoff = self
                    .backoff
                    .unwrap_or(self.interval)
                    .saturating_mul(2)
                    .min(MAX_BACKOFF.max(self.interval));
                self.backoff = Some(backoff);
                PollStep::BackingOff { error, backoff }
            }
            PollOutcome::Fatal(error) => PollStep::Failed(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn authorization(expires: u64, interval: u64) -> DeviceAuthorization {
        DeviceAuthorization::from_object(&object(serde_json::json!({
            "device_code": "dc-secret", "user_code": "ABCD-EFGH",
            "verification_uri": "https://as.example/device",
            "expires_in": expires, "interval": interval,
        })))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Device authorization answers as servers send them, on-spec and off: (answer, expected
    /// `(verification_uri, expires_in, interval)` or the field an error names).
    #[test]
    fn device_authorization_quirks() {
        let ok = |uri: &str, expires: u64, interval: u64| {
            Ok::<_, &str>((uri.to_owned(), expires, interval))
        };
        let base = |extra: Value| {
            let mut answer = serde_json::json!({"device_code": "d", "user_code": "U"});
            if let (Some(map), Value::Object(extra)) = (answer.as_object_mut(), extra) {
                map.extend(extra);
            }
            answer
        };
        let table = [
            // RFC 8628 §3.2.
            (
                base(
                    serde_json::json!({"verification_uri": "https://as/device", "expires_in": 600, "interval": 7}),
                ),
                ok("https://as/device", 600, 7),
            ),
            // Google and GitHub: `verification_url`, numbers as strings.
            (
                base(
                    serde_json::json!({"verification_url": "https://www.google.com/device", "expires_in": "1800", "interval": "5"}),
                ),
                ok("https://www.google.com/device", 1800, 5),
            ),
            // `verification_uri` wins over `verification_url`; whitespace is trimmed.
            (
                base(
                    serde_json::json!({"verification_uri": " https://a/d ", "verification_url": "https://b/d", "expires_in": " 60 "}),
                ),
                ok("https://a/d", 60, 5),
            ),
            // No interval, or 0: the default 5 s; 1 s is the floor; huge values are clamped.
            (
                base(
                    serde_json::json!({"verification_uri": "https://a/d", "expires_in": 60, "interval": 0}),
                ),
                ok("https://a/d", 60, 5),
            ),
            (
                base(
                    serde_json::json!({"verification_uri": "https://a/d", "expires_in": 99_999_999, "interval": 99_999_999}),
                ),
                ok("https://a/d", 3600, 300),
            ),
            // A non-numeric interval counts as absent.
            (
                base(
                    serde_json::json!({"verification_uri": "https://a/d", "expires_in": 60, "interval": "soon"}),
                ),
                ok("https://a/d", 60, 5),
            ),
            (
                base(serde_json::json!({"verification_uri": "https://a/d"})),
                Err("expires_in"),
            ),
            (
                base(serde_json::json!({"verification_uri": "https://a/d", "expires_in": -1})),
                Err("expires_in"),
            ),
            (
                base(serde_json::json!({"verification_uri": "https://a/d", "expires_in": 1.5})),
                Err("expires_in"),
            ),
            (
                base(serde_json::json!({"expires_in": 60})),
                Err("verification_uri"),
            ),
            (
                base(
                    serde_json::json!({"verification_uri": "javascript:alert(1)", "expires_in": 60}),
                ),
                Err("not http(s)"),
            ),
            (
                base(
                    serde_json::json!({"verification_uri": "https://a/d", "verification_uri_complete": "file:///x", "expires_in": 60}),
                ),
                Err("not http(s)"),
            ),
            (
                serde_json::json!({"user_code": "U", "verification_uri": "https://a/d", "expires_in": 60}),
                Err("device_code"),
            ),
            (
                serde_json::json!({"device_code": "d", "user_code": "  ", "verification_uri": "https://a/d", "expires_in": 60}),
                Err("user_code"),
            ),
        ];
        for (answer, want) in table {
            let got = DeviceAuthorization::from_object(&object(answer.clone()))
                .map(|a| {
                    (
                        a.verification_uri,
                        a.expires_in.as_secs(),
                        a.interval.as_secs(),
                    )
                })
                .map_err(|e| {
                    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
                    e.to_string()
                });
            match (&got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, &want, "{answer}"),
                (Err(message), Err(field)) => {
                    assert!(message.contains(field), "{answer}: {message}")
                }
                (got, _) => panic!("{answer}: got {got:?}"),
            }
        }
    }

    #[test]
    fn the_device_code_is_redacted() {
        let a = authorization(600, 5);
        assert_eq!(a.device_code.secret(), "dc-secret");
        assert!(!format!("{a:?}").contains("dc-secret"));
    }

    /// Token-endpoint answers while polling: (status, body, expected class).
    #[test]
    fn poll_answers_are_classified() {
        let table: &[(u16, Option<&str>, &str, &str)] = &[
            (
                200,
                Some("application/json"),
                r#"{"access_token":"at","token_type":"Bearer"}"#,
                "tokens",
            ),
            // GitHub answers the pending state with HTTP 200.
            (
                200,
                Some("application/json"),
                r#"{"error":"authorization_pending"}"#,
                "authorization_pending",
            ),
            (
                400,
                Some("application/json"),
                r#"{"error":"slow_down","interval":10}"#,
                "slow_down",
            ),
            (400, None, r#"{"error":"expired_token"}"#, "expired_token"),
            (502, Some("text/plain"), "bad gateway", "transport"),
            (503, Some("text/html"), "<html>", "transport"),
            (200, Some("text/html"), "<html>", "fatal"),
            (
                200,
                Some("application/json"),
                r#"{"token_type":"Bearer"}"#,
                "fatal",
            ),
        ];
        for (status, content_type, body, want) in table {
            let got = match PollOutcome::<ProtocolError>::from_response(
                *status,
                *content_type,
                body.as_bytes(),
                SystemTime::now(),
            ) {
                PollOutcome::Tokens(_) => "tokens".to_owned(),
                PollOutcome::OAuthError { error, .. } => error,
                PollOutcome::Transport(e) => {
                    assert_eq!(e.kind(), ErrorKind::ServerError);
                    "transport".to_owned()
                }
                PollOutcome::Fatal(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
                    "fatal".to_owned()
                }
            };
            assert_eq!(got, *want, "{status} {body}");
        }
        match PollOutcome::<ProtocolError>::from_response(
            400,
            None,
            br#"{"error":"slow_down","interval":18446744073709551615}"#,
            SystemTime::now(),
        ) {
            PollOutcome::OAuthError { interval, .. } => assert_eq!(interval, Some(MAX_INTERVAL)),
            other => panic!("{other:?}"),
        }
    }

    fn oauth(error: &str, interval: Option<Duration>) -> PollOutcome {
        PollOutcome::OAuthError {
            error: error.to_owned(),
            interval,
        }
    }

    fn transport() -> PollOutcome {
        PollOutcome::Transport(ProtocolError::new(ErrorKind::ServerError, "reset"))
    }

    /// The state machine driven through a script, without any waiting: the waits it asks for.
    fn waits(authorization: &DeviceAuthorization, script: Vec<PollOutcome>) -> (Vec<u64>, String) {
        let start = Instant::now();
        let mut now = start;
        let mut poller = DevicePoller::new(authorization, start);
        let mut waits = Vec::new();
        let mut script = script.into_iter();
        loop {
            match poller.next_poll(now) {
                NextPoll::After(wait) => {
                    waits.push(wait.as_secs());
                    now += wait;
                }
                NextPoll::Expired { remaining } => {
                    now += remaining;
                    assert_eq!(now, start + authorization.expires_in.min(MAX_EXPIRES_IN));
                    return (waits, "expired".to_owned());
                }
            }
            let outcome = script
                .next()
                .unwrap_or_else(|| oauth("authorization_pending", None));
            match poller.on_outcome(outcome) {
                PollStep::Done(_) => return (waits, "done".to_owned()),
                PollStep::Failed(e) => return (waits, format!("{:?}", e.kind())),
                PollStep::Pending | PollStep::SlowedDown { .. } | PollStep::BackingOff { .. } => {}
            }
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

    #[test]
    fn polling_rules() {
        let secs = Duration::from_secs;
        let table: Vec<(DeviceAuthorization, Vec<PollOutcome>, Vec<u64>, &str)> = vec![
            (
                authorization(600, 5),
                vec![oauth("authorization_pending", None), tokens()],
                vec![5, 5],
                "done",
            ),
            // slow_down adds 5 s for every later poll; the server's larger interval wins.
            (
                authorization(600, 2),
                vec![
                    oauth("slow_down", None),
                    oauth("authorization_pending", None),
                    oauth("slow_down", None),
                    tokens(),
                ],
                vec![2, 7, 7, 12],
                "done",
            ),
            (
                authorization(600, 5),
                vec![oauth("slow_down", Some(secs(30))), tokens()],
                vec![5, 30],
                "done",
            ),
            (
                authorization(600, 5),
                vec![oauth("slow_down", Some(Duration::MAX)), tokens()],
                vec![5, 300],
                "done",
            ),
            // Transport failures back off exponentially up to 60 s; an answer resets the back-off.
            (
                authorization(100_000, 5),
                vec![
                    transport(),
                    transport(),
                    transport(),
                    transport(),
                    oauth("authorization_pending", None),
                    tokens(),
                ],
                vec![5, 10, 20, 40, 60, 5],
                "done",
            ),
            (
                authorization(600, 1),
                vec![oauth("access_denied", None)],
                vec![1],
                "Denied",
            ),
            (
                authorization(600, 1),
                vec![oauth("expired_token", None)],
                vec![1],
                "Expired",
            ),
            (
                authorization(600, 1),
                vec![oauth("token_expired", None)],
                vec![1],
                "Expired",
            ),
            (
                authorization(600, 1),
                vec![oauth("invalid_grant", None)],
                vec![1],
                "Expired",
            ),
            (
                authorization(600, 1),
                vec![oauth("device_flow_disabled", None)],
                vec![1],
                "InvalidResponse",
            ),
            // The deadline: no poll that would happen after it.
            (authorization(12, 5), vec![], vec![5, 5], "expired"),
            (
                authorization(99_999_999, 99_999_999),
                vec![],
                vec![300; 12],
                "expired",
            ),
        ];
        for (authorization, script, want_waits, want_end) in table {
            let (got_waits, end) = waits(&authorization, script);
            assert_eq!((got_waits, end.as_str()), (want_waits, want_end));
        }
        // Hostile values in the public fields: clamped, never an overflow.
        let mut fields = authorization(600, 5);
        fields.interval = Duration::MAX;
        fields.expires_in = Duration::MAX;
        let (got, end) = waits(&fields, vec![transport(), tokens()]);
        assert_eq!((got, end.as_str()), (vec![300, 300], "done"));
    }

    #[test]
    fn failures_carry_the_server_code() {
        let mut poller = DevicePoller::new(&authorization(600, 5), Instant::now());
        let PollStep::Failed(e) = poller.on_outcome(oauth("access_denied", None)) else {
            panic!("not a failure");
        };
        assert_eq!(
            (e.oauth_error(), e.http_status()),
            (Some("access_denied"), Some(400))
        );
        let PollStep::Failed(e) = poller.on_outcome(oauth("\u{1b}[2Jbad", None)) else {
            panic!("not a failure");
        };
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        assert!(e.oauth_error().is_some_and(|c| !c.contains('\u{1b}')));
    }
}
