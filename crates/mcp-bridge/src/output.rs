//! The stdout side of `mcp proxy`: one queue of whole lines, bounded in bytes by the
//! [`Budget`] (each message holds its charge until it is written), one copy of each message, and
//! the book of the host's requests waiting for an answer, which gives each request exactly one
//! response: the server's, or the bridge's error when the request timed out (a late answer is
//! then dropped).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Bridge;
use super::budget::{Budget, Held};
use super::jsonrpc::{self, Kind};
use super::upstream::Event;

/// However long progress notifications keep a request going, it gets its answer or an error at
/// most this many request timeouts after it was read.
pub(crate) const MAX_PROGRESS_FACTOR: u32 = 10;

/// The room in the queue for lines without a charge of their own (the bridge's error responses,
/// small messages that came in the same read as the one before), in bytes: 1 MiB (a larger line
/// waits for all of it). Held apart from the reading [`Budget`], so a task that holds a charge
/// there and waits for room here waits only for stdout.
pub(crate) const OWN_BYTES: usize = 1024 * 1024;

/// Requests answered (by the server or the bridge) whose ids are remembered, so that a second or
/// late answer is dropped.
const CLOSED_KEPT: usize = 1024;

/// A line for stdout with the bytes it holds.
pub(crate) struct Queued {
    line: String,
    _held: Held,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No answer yet; the bridge answers with an error at this instant.
    Waiting(Instant),
    /// Its answer is queued for stdout.
    Answered,
    /// The host cancelled it (`notifications/cancelled`): no answer is due.
    Cancelled,
}

/// How a request's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered,
    Cancelled,
    TimedOut,
}

struct Pending {
    state: watch::Sender<State>,
    token: Option<String>,
    timeout: Duration,
    /// The latest deadline progress can push it to.
    cap: Instant,
}

#[derive(Default)]
struct Requests {
    /// By id (its JSON text).
    pending: HashMap<String, Pending>,
    /// Progress token (JSON text) → request id.
    tokens: HashMap<String, String>,
    /// Requests answered, timed out or cancelled, oldest first.
    closed: VecDeque<String>,
    closed_set: HashSet<String>,
}

impl Requests {
    fn remove(&mut self, key: &str) -> Option<Pending> {
        let pending = self.pending.remove(key)?;
        if let Some(token) = &pending.token {
            self.tokens.remove(token);
        }
        Some(pending)
    }

    fn close(&mut self, key: &str) {
        if self.closed_set.insert(key.to_owned()) {
            self.closed.push_back(key.to_owned());
        }
        while self.closed.len() > CLOSED_KEPT {
            if let Some(old) = self.closed.pop_front() {
                self.closed_set.remove(&old);
            }
        }
    }
}

struct Inner {
    tx: mpsc::UnboundedSender<Queued>,
    requests: Mutex<Requests>,
    /// The room for lines without a charge ([`OWN_BYTES`]).
    own: Budget,
}

/// The queue to stdout (cheap to clone).
#[derive(Clone)]
pub(crate) struct Output {
    inner: Arc<Inner>,
}

impl Output {
    /// The queue and its receiving end (for [`write_lines`]); lines without a charge of their own
    /// wait for room in `own_bytes`.
    pub(crate) fn new(own_bytes: usize) -> (Self, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            tx,
            requests: Mutex::new(Requests::default()),
            own: Budget::new(own_bytes),
        });
        (Self { inner }, rx)
    }

    /// Queues a message of the server (`kind` is what [`jsonrpc::classify`] made of it) with the
    /// bytes it holds since it was read. The answer to a request marks it answered; a late answer
    /// to one the bridge answered already is dropped; a progress notification restarts the clock
    /// of the request it is about.
    pub(crate) async fn relay(&self, line: String, kind: &Kind, held: Held) {
        let held = if held.bytes() == 0 && !held.overdrawn() {
            // A message that came in the same chunk as the one before it: its bytes were counted
            // with that one; the queue counts it now.
            self.inner.own.reserve(line.len()).await
        } else {
            held
        };
        self.push(line, kind, held);
    }

    /// Queues a line without a charge of its own (an error response of the bridge), once there is
    /// room for it in [`OWN_BYTES`].
    pub(crate) async fn send(&self, line: String) {
        let held = self.inner.own.reserve(line.len()).await;
        let kind = jsonrpc::classify(&line).unwrap_or(Kind::Other);
        self.push(line, &kind, held);
    }

    fn push(&self, line: String, kind: &Kind, held: Held) {
        let Ok(mut requests) = self.inner.requests.lock() else {
            return;
        };
        match kind {
            Kind::Response { id } => {
                let key = id.to_string();
                if let Some(pending) = requests.remove(&key) {
                    pending.state.send_replace(State::Answered);
                    // One answer per request: a second one (another stream's copy, or the
                    // bridge's error once the exchange ends) is dropped.
                    requests.close(&key);
                } else if requests.closed_set.contains(&key) {
                    tracing::info!(id = %key, "an answer to a request answered, timed out or cancelled already; dropped");
                    return;
                }
            }
            Kind::Notification { method } if method == "notifications/progress" => {
                if let Some(key) = jsonrpc::progress_of(&line)
                    .and_then(|token| requests.tokens.get(&token).cloned())
                    && let Some(pending) = requests.pending.get(&key)
                {
                    let deadline = Instant::now()
                        .checked_add(pending.timeout)
                        .map_or(pending.cap, |d| d.min(pending.cap));
                    pending.state.send_replace(State::Waiting(deadline));
                }
            }
            _ => {}
        }
        let _ = self.inner.tx.send(Queued { line, _held: held });
    }

    /// Starts the clock of request `id` (its progress token, if any, may restart it): `None` when
    /// a request with that id is waiting already.
    pub(crate) fn track_request(
        &self,
        id: &Value,
        token: Option<String>,
        timeout: Duration,
    ) -> Option<Ticket> {
        let key = id.to_string();
        let now = Instant::now();
        let deadline = now.checked_add(timeout).unwrap_or(now);
        let cap = now
            .checked_add(timeout.saturating_mul(MAX_PROGRESS_FACTOR))
            .unwrap_or(deadline);
        let mut requests = self.inner.requests.lock().ok()?;
        if requests.pending.contains_key(&key) {
            return None;
        }
        // An id used again (against the specification) is this request's from now on.
        if requests.closed_set.remove(&key) {
            requests.closed.retain(|k| *k != key);
        }
        let (state, rx) = watch::channel(State::Waiting(deadline));
        if let Some(token) = &token {
            requests.tokens.insert(token.clone(), key.clone());
        }
        requests.pending.insert(
            key.clone(),
            Pending {
                state,
                token,
                timeout,
                cap,
            },
        );
        Some(Ticket {
            key,
            rx,
            output: self.clone(),
        })
    }

    /// Whether request `id` still waits for its answer (not answered, cancelled or timed out).
    pub(crate) fn waiting(&self, id: &Value) -> bool {
        self.inner
            .requests
            .lock()
            .is_ok_and(|requests| requests.pending.contains_key(&id.to_string()))
    }

    /// The host cancelled request `key` (JSON text of its id): no answer is due any more.
    pub(crate) fn cancel(&self, key: &str) {
        if let Ok(mut requests) = self.inner.requests.lock()
            && let Some(pending) = requests.remove(key)
        {
            pending.state.send_replace(State::Cancelled);
            requests.close(key);
        }
    }

    /// Gives the request of `ticket` another full timeout (the bridge is renewing its token).
    fn extend(&self, key: &str) {
        if let Ok(requests) = self.inner.requests.lock()
            && let Some(pending) = requests.pending.get(key)
        {
            let now = Instant::now();
            pending.state.send_replace(State::Waiting(
                now.checked_add(pending.timeout).unwrap_or(now),
            ));
        }
    }

    /// Answers the request of `ticket` with `error` unless its answer was queued meanwhile;
    /// `true` when the error went.
    pub(crate) async fn time_out(&self, ticket: &Ticket, error: String) -> bool {
        let held = self.inner.own.reserve(error.len()).await;
        let Ok(mut requests) = self.inner.requests.lock() else {
            return false;
        };
        if requests.remove(&ticket.key).is_none() {
            return false;
        }
        requests.close(&ticket.key);
        let _ = self.inner.tx.send(Queued {
            line: error,
            _held: held,
        });
        true
    }
}

impl Bridge {
    /// Relays one SSE event's message to stdout (non-`message` events and non-JSON data are
    /// dropped with a note), its data moved, not copied, with the bytes it holds; returns what it
    /// relayed.
    pub(super) async fn relay(&self, event: &mut Event) -> Option<Kind> {
        if event.data.is_empty() || event.event.as_deref().is_some_and(|e| e != "message") {
            return None;
        }
        let Some(kind) = jsonrpc::classify(&event.data) else {
            tracing::warn!("the server sent an event that is not JSON; dropped");
            return None;
        };
        let line = jsonrpc::into_one_line(std::mem::take(&mut event.data));
        self.out
            .relay(line, &kind, std::mem::take(&mut event.held))
            .await;
        Some(kind)
    }
}

/// A request waiting for its answer; dropping it forgets the request.
pub(crate) struct Ticket {
    key: String,
    rx: watch::Receiver<State>,
    output: Output,
}

impl Ticket {
    /// Waits until the request is answered or cancelled, or its deadline passes; a deadline that
    /// passes while `renewing()` (a refresh or sign-in of the token, bounded by its own timeout)
    /// gives it another full timeout. Cancel-safe.
    pub(crate) async fn wait(&mut self, renewing: impl Fn() -> bool) -> Outcome {
        loop {
            let state = *self.rx.borrow_and_update();
            let deadline = match state {
                State::Answered => return Outcome::Answered,
                State::Cancelled => return Outcome::Cancelled,
                State::Waiting(deadline) => deadline,
            };
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        // Forgotten (timed out by another path): nothing more will come.
                        return Outcome::TimedOut;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if !renewing() {
                        return Outcome::TimedOut;
                    }
                    self.output.extend(&self.key);
                }
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut requests) = self.output.inner.requests.lock() {
            requests.remove(&self.key);
        }
    }
}

/// Writes each queued line to `stdout`, in order, then gives back its bytes. A host that stops
/// reading stops this; the queue then fills the budget and everything else waits.
pub(crate) async fn write_lines(
    mut rx: mpsc::UnboundedReceiver<Queued>,
    mut stdout: impl AsyncWrite + Unpin,
) {
    let mut broken = false;
    while let Some(queued) = rx.recv().await {
        if broken {
            // The host is gone; keep draining so nothing waits.
            continue;
        }
        let Queued { mut line, _held } = queued;
        // One write for the usual small line; a large one is not copied to add its line break.
        let separate = line.capacity() == line.len() && line.len() > 64 * 1024;
        if !separate {
            line.push('\n');
        }
        let written = async {
            stdout.write_all(line.as_bytes()).await?;
            if separate {
                stdout.write_all(b"\n").await?;
            }
            stdout.flush().await
        };
        broken = written.await.is_err();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(out: &Output, id: Value, token: Option<&str>, timeout: Duration) -> Ticket {
        let Some(ticket) = out.track_request(&id, token.map(str::to_owned), timeout) else {
            panic!("no ticket for {id}");
        };
        ticket
    }

    fn response(id: i64) -> (String, Kind) {
        (
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#),
            Kind::Response { id: id.into() },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_gets_one_response() {
        let (out, mut rx) = Output::new(1 << 20);
        let timeout = Duration::from_secs(5);
        let mut one = track(&out, 1.into(), None, timeout);
        assert!(
            out.track_request(&1.into(), None, timeout).is_none(),
            "a second request with id 1"
        );
        let (line, kind) = response(1);
        out.relay(line, &kind, Held::default()).await;
        assert_eq!(one.wait(|| false).await, Outcome::Answered);
        assert!(rx.try_recv().is_ok());

        // Timed out: the bridge's error goes, the late answer does not.
        let mut two = track(&out, 2.into(), None, timeout);
        assert_eq!(two.wait(|| false).await, Outcome::TimedOut);
        assert!(out.time_out(&two, "error".to_owned()).await);
        let (line, kind) = response(2);
        out.relay(line, &kind, Held::default()).await;
        assert_eq!(rx.try_recv().map(|q| q.line).ok().as_deref(), Some("error"));
        assert!(rx.try_recv().is_err(), "the late answer was dropped");

        // Answered just before the timeout went: no error.
        let three = track(&out, 3.into(), None, timeout);
        let (line, kind) = response(3);
        out.relay(line, &kind, Held::default()).await;
        assert!(!out.time_out(&three, "error".to_owned()).await);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock_up_to_a_cap() {
        let (out, _rx) = Output::new(1 << 20);
        let timeout = Duration::from_secs(10);
        let start = Instant::now();
        let mut ticket = track(&out, 7.into(), Some("\"t\""), timeout);
        let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#;
        let kind = Kind::Notification {
            method: "notifications/progress".to_owned(),
        };
        loop {
            tokio::select! {
                outcome = ticket.wait(|| false) => {
                    assert_eq!(outcome, Outcome::TimedOut);
                    break;
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    out.relay(progress.to_owned(), &kind, Held::default()).await;
                }
            }
        }
        let waited = start.elapsed();
        assert!(
            waited >= timeout * MAX_PROGRESS_FACTOR
                && waited <= timeout * (MAX_PROGRESS_FACTOR + 1),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_extends_and_a_cancel_ends_the_wait() {
        let (out, _rx) = Output::new(1 << 20);
        let timeout = Duration::from_secs(10);
        let start = Instant::now();
        let mut ticket = track(&out, "a".into(), None, timeout);
        let renewals = std::cell::Cell::new(2u32);
        let outcome = ticket
            .wait(|| {
                let left = renewals.get();
                renewals.set(left.saturating_sub(1));
                left > 0
            })
            .await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert_eq!(start.elapsed(), timeout * 3);
        let mut other = track(&out, "b".into(), None, timeout);
        out.cancel("\"b\"");
        assert_eq!(other.wait(|| false).await, Outcome::Cancelled);
    }
}
