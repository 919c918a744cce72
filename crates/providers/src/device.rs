//! RFC 8628 device authorization grant: start, show the user code, poll.
//!
//! The rules (the answer's parsing, `slow_down`, back-off, expiry) are the sans-IO
//! [`context_harness_protocol`]'s [`DevicePoller`], re-exported here; this module runs it with a
//! [`DeviceClock`] so its timing is tested without waiting; [`TokioClock`] is the real one.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub(crate) use context_harness_protocol::{
    DeviceAuthorization, DeviceClock, DevicePoller, NextPoll, PollStep,
};
use context_harness_tokens::OAuthTokens;

use crate::error::{Error, Result};

/// The device-code grant type.
pub(crate) const GRANT_TYPE: &str = context_harness_protocol::DEVICE_CODE_GRANT;

/// The outcome of one poll of the token endpoint, with this crate's [`Error`] for transport and
/// fatal failures (see [`context_harness_protocol::PollOutcome`]).
pub(crate) type PollOutcome = context_harness_protocol::PollOutcome<Error>;

/// The real clock (tokio's timer).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokioClock;

impl DeviceClock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Polls until the user approves, denies, or the codes expire (RFC 8628 §3.4–3.5), sleeping on
/// `clock` as [`DevicePoller`] says.
///
/// Waits `interval` before every poll; `authorization_pending` continues; `slow_down` adds 5 s for
/// this and every later poll (or uses the server's `interval` if larger), never beyond
/// [`MAX_INTERVAL`]; `access_denied` →
/// [`ErrorCode::AuthCancelled`](crate::ErrorCode::AuthCancelled);
/// `expired_token`/`token_expired`/`invalid_grant`, or the local deadline →
/// [`ErrorCode::Timeout`](crate::ErrorCode::Timeout); transport errors back off exponentially
/// (capped at 60 s).
///
/// # Errors
///
/// As above, plus [`ErrorCode::AuthFailed`](crate::ErrorCode::AuthFailed) for any other server
/// error.
pub(crate) async fn poll_until_done<F, Fut>(
    clock: &dyn DeviceClock,
    authorization: &DeviceAuthorization,
    mut poll: F,
) -> Result<OAuthTokens>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PollOutcome>,
{
    let mut poller = DevicePoller::new(authorization, clock.now());
    loop {
        match poller.next_poll(clock.now()) {
            NextPoll::After(wait) => clock.sleep(wait).await,
            NextPoll::Expired { remaining } => {
                // Waiting would pass the deadline: the code cannot be redeemed any more.
                clock.sleep(remaining).await;
                return Err(DevicePoller::expired().into());
            }
        }
        match poller.on_outcome(poll().await) {
            PollStep::Done(tokens) => return Ok(tokens),
            PollStep::Pending => {}
            PollStep::SlowedDown { interval } => {
                tracing::debug!(interval_s = interval.as_secs(), "device flow: slow_down");
            }
            PollStep::BackingOff { error, backoff } => {
                tracing::debug!(error = %error, backoff_s = backoff.as_secs(), "device flow: poll failed; backing off");
            }
            PollStep::Failed(e) => return Err(e),
        }
    }
}

/// The driver against an instant clock. The polling rules themselves (intervals, `slow_down`,
/// back-off, clamping) and the parsing of answers are tested in `context-harness-protocol`
/// (`device.rs`); here, that [`poll_until_done`] waits as the rules say and maps the outcome to this
/// crate's errors.
#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::SystemTime;

    use context_harness_protocol::{MAX_EXPIRES_IN, MAX_INTERVAL, SLOW_DOWN_STEP};

    use super::*;
    use crate::ErrorCode;

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
        let at = context_harness_tokens::AccessToken::new("at");
        PollOutcome::Tokens(OAuthTokens::new(at, "Bearer", SystemTime::now()))
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
        let (result, sleeps, _) = run(&a, vec![slow(), transport(), transport(), tokens()]);
        assert!(result.is_ok());
        assert!(sleeps.iter().all(|s| *s <= MAX_INTERVAL), "{sleeps:?}");
    }
}
