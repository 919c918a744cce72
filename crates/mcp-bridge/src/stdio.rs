//! The stdio side of `mcp proxy`: stdin read line by line and judged ([`jsonrpc::inbound`]: what
//! is not a JSON-RPC message is answered, never forwarded), each message dispatched to the
//! [`Bridge`] as an exchange bounded in time, and the end of the session.
//!
//! - **Backpressure.** A line is dispatched once one of [`MAX_IN_FLIGHT`] slots is free and its
//!   bytes fit in the [`Budget`]; meanwhile at most one more line is read (so an EOF right behind
//!   it is still seen).
//! - **Order.** A message waits for the server to accept the one before it (the status line of
//!   its POST) at most [`ORDER_WAIT`]; only the `initialize` answer is waited for in full (its
//!   own timeout bounds it). A server that never answers one message holds back no other.
//! - **Timeouts.** Every request the host sent gets exactly one response within the request
//!   timeout ([`Output::expect`](super::output::Output::expect)): the server's or an error
//!   (`data.code` `timeout`), after which the server gets `notifications/cancelled`. Time spent
//!   renewing the token (refresh, interactive sign-in: bounded by `--timeout`) does not count.
//!   Notifications and responses get the same bound; `subscriptions/listen` (2026-07-28), open
//!   by design until the host cancels it, none.
//! - **The end.** SIGTERM or SIGINT: the exchanges in flight are dropped, the session `DELETE`d
//!   (at most [`CLOSE_WAIT`]). stdin EOF: the same after the answers in flight, for at most
//!   [`EOF_GRACE`]. With the last flush of stdout ([`FLUSH_WAIT`]) the bridge exits within 5 s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;

use super::budget::{Budget, Held};
use super::jsonrpc::{self, Inbound, Kind, MAX_MESSAGE_BYTES};
use super::output::{Outcome, Ticket};
use super::{Bridge, MAX_IN_FLIGHT};

/// How long a message waits for the server to accept the one before it.
pub(super) const ORDER_WAIT: Duration = Duration::from_secs(2);
/// After stdin EOF, how long the answers in flight may still take.
const EOF_GRACE: Duration = Duration::from_secs(2);
/// The `DELETE` of the session at the end, at most.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The last lines to stdout at the end, at most (a host that stopped reading gets no more).
pub(super) const FLUSH_WAIT: Duration = Duration::from_millis(500);
/// The `notifications/cancelled` sent after a timeout, at most.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// The request of MCP 2026-07-28 that stays open for the server's notifications: no timeout.
const LISTEN: &str = "subscriptions/listen";
/// The revision with JSON-RPC batches (2025-06-18 removed them).
const BATCH_REVISION: &str = "2025-03-26";

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Signal,
}

/// A judged line from stdin.
enum Read {
    /// To forward.
    Message { line: String, kind: Kind },
    /// The host gets this error response instead.
    Reply(String),
}

type Admission = Pin<Box<dyn Future<Output = (Read, Option<OwnedSemaphorePermit>, Held)> + Send>>;

/// Reads `input` (stdin) and dispatches until it ends or a signal comes; returns once the session
/// is closed. `timeout` is the request timeout.
pub(super) async fn serve(bridge: Arc<Bridge>, input: impl AsyncRead + Unpin, timeout: Duration) {
    let mut stdin = LineReader::new(tokio::io::BufReader::with_capacity(64 * 1024, input));
    let mut signals = Signals::new();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut earlier: Option<Earlier> = None;
    let mut read: VecDeque<Read> = VecDeque::new();
    let mut admission: Option<Admission> = None;
    let end = loop {
        if admission.is_none()
            && let Some(next) = read.pop_front()
        {
            admission = Some(Box::pin(admit(next, Arc::clone(&slots))));
        }
        tokio::select! {
            biased;
            () = signals.recv() => break End::Signal,
            // Reap finished exchanges as they go so the set stays small.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            (next, permit, held) = async {
                match admission.as_mut() {
                    Some(admission) => admission.await,
                    None => std::future::pending().await,
                }
            }, if admission.is_some() => {
                admission = None;
                let Some(permit) = permit else { break End::Eof };
                let exchange = match next {
                    Read::Reply(reply) => reply_task(&bridge, reply),
                    Read::Message { line, kind } => {
                        dispatch(&bridge, line, kind, &mut earlier, timeout)
                    }
                };
                tasks.spawn(async move {
                    exchange.await;
                    drop((permit, held));
                });
            }
            line = stdin.next(), if read.is_empty() => match line {
                Ok(Some(line)) => read.extend(judge(line, &bridge)),
                Ok(None) => break End::Eof,
                Err(e) => {
                    tracing::info!(error = %e, "stdin failed; closing the session");
                    break End::Eof;
                }
            },
        }
    };
    shutdown(&bridge, tasks, signals, end).await;
}

/// Waits for a slot and for the line's bytes in the budget (cancel-safe).
async fn admit(next: Read, slots: Arc<Semaphore>) -> (Read, Option<OwnedSemaphorePermit>, Held) {
    let permit = slots.acquire_owned().await.ok();
    let held = match &next {
        Read::Message { line, .. } => Budget::global().reserve(line.len()).await,
        Read::Reply(_) => Held::default(),
    };
    (next, permit, held)
}

type Exchange = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Queues a reply of the bridge's own.
fn reply_task(bridge: &Arc<Bridge>, reply: String) -> Exchange {
    let bridge = Arc::clone(bridge);
    Box::pin(async move { bridge.out.send(reply).await })
}

/// An error response of the bridge to a line it does not forward.
fn refusal(id: &Value, code: i64, message: &str) -> String {
    let data_code = match code {
        jsonrpc::PARSE_ERROR => "parse_error",
        _ => "invalid_request",
    };
    jsonrpc::error_response(id, code, message, data_code, None)
}

/// What to do with one line of stdin: nothing (a blank line), forward it, or answer it.
fn judge(line: Line, bridge: &Bridge) -> Option<Read> {
    let bytes = match line {
        Line::TooLong => {
            return Some(Read::Reply(jsonrpc::error_response(
                &Value::Null,
                jsonrpc::INVALID_REQUEST,
                &format!(
                    "message over {} MiB refused",
                    MAX_MESSAGE_BYTES / (1024 * 1024)
                ),
                "message_too_large",
                None,
            )));
        }
        Line::Bytes(bytes) => bytes,
    };
    let Ok(line) = String::from_utf8(bytes) else {
        return Some(Read::Reply(refusal(
            &Value::Null,
            jsonrpc::PARSE_ERROR,
            "not UTF-8",
        )));
    };
    if line.trim().is_empty() {
        return None;
    }
    let batches = bridge.session().headers.protocol_version.as_deref() == Some(BATCH_REVISION);
    Some(match jsonrpc::inbound(&line, batches) {
        Inbound::Message(kind) => Read::Message { line, kind },
        Inbound::Refused { id, code, message } => {
            tracing::info!(code, reason = message, "a line from the host refused");
            Read::Reply(refusal(&id, code, message))
        }
    })
}

/// The acceptance of the message before, which the next one waits for.
struct Earlier {
    accepted: oneshot::Receiver<()>,
    /// `initialize`: waited for until it is done.
    in_full: bool,
}

impl Earlier {
    async fn wait(self) {
        if self.in_full {
            let _ = self.accepted.await;
        } else if tokio::time::timeout(ORDER_WAIT, self.accepted)
            .await
            .is_err()
        {
            tracing::debug!("the message before is not accepted yet; sending this one anyway");
        }
    }
}

/// Starts the exchange of one message: a request's clock starts now.
fn dispatch(
    bridge: &Arc<Bridge>,
    line: String,
    kind: Kind,
    earlier: &mut Option<Earlier>,
    timeout: Duration,
) -> Exchange {
    let mut ticket = None;
    match &kind {
        // Long-lived by design: ends when the host cancels it or the server ends its stream.
        Kind::Request { method, .. } if method == LISTEN => {}
        Kind::Request { id, .. } => {
            let token = line
                .contains("progressToken")
                .then(|| jsonrpc::progress_token(&line))
                .flatten();
            match bridge.out.track_request(id, token, timeout) {
                Some(t) => ticket = Some(t),
                None => {
                    return reply_task(
                        bridge,
                        refusal(
                            id,
                            jsonrpc::INVALID_REQUEST,
                            "a request with this id is still in flight",
                        ),
                    );
                }
            }
        }
        Kind::Notification { method } if method == "notifications/cancelled" => {
            if let Some(key) = jsonrpc::cancelled_request(&line) {
                bridge.out.cancel(&key);
            }
        }
        _ => {}
    }
    let in_full = matches!(&kind, Kind::Request { method, .. } if method == "initialize");
    let (accepted_tx, accepted_rx) = oneshot::channel();
    let before = earlier.replace(Earlier {
        accepted: accepted_rx,
        in_full,
    });
    let bridge = Arc::clone(bridge);
    Box::pin(async move {
        if let Some(before) = before {
            before.wait().await;
        }
        let listen = matches!(&kind, Kind::Request { method, .. } if method == LISTEN);
        match ticket {
            Some(ticket) => request(bridge, line, kind, accepted_tx, ticket, timeout).await,
            None if listen => bridge.handle(line, kind, accepted_tx).await,
            None => {
                let run = Arc::clone(&bridge).handle(line, kind, accepted_tx);
                if !bounded(run, timeout, &bridge).await {
                    tracing::warn!(
                        "the server did not take a message within {} s; given up",
                        timeout.as_secs()
                    );
                }
            }
        }
    })
}

/// Runs `run` for at most `timeout` (more while the token is being renewed); `false` when it was
/// cut short.
async fn bounded(run: impl Future<Output = ()>, timeout: Duration, bridge: &Bridge) -> bool {
    let mut run = std::pin::pin!(run);
    loop {
        match tokio::time::timeout(timeout, &mut run).await {
            Ok(()) => return true,
            Err(_) if bridge.auth.renewing() => {}
            Err(_) => return false,
        }
    }
}

/// The exchange of a request: its answer, or an error when the clock runs out (then
/// `notifications/cancelled` to the server, except for `initialize`, which must not be cancelled).
async fn request(
    bridge: Arc<Bridge>,
    line: String,
    kind: Kind,
    accepted: oneshot::Sender<()>,
    mut ticket: Ticket,
    timeout: Duration,
) {
    let Kind::Request { id, method } = kind.clone() else {
        return;
    };
    let mut run = Box::pin(Arc::clone(&bridge).handle(line, kind, accepted));
    let mut ran = false;
    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut run, if !ran => ran = true,
            outcome = ticket.wait(|| bridge.auth.renewing()) => break outcome,
        }
    };
    match outcome {
        // What the exchange does after the answer (a session to keep) it may finish.
        Outcome::Answered if !ran => {
            let _ = bounded(run, timeout, &bridge).await;
        }
        Outcome::Answered | Outcome::Cancelled => {}
        Outcome::TimedOut => {
            drop(run);
            tracing::info!(%method, "no answer within {} s; answering with an error", timeout.as_secs());
            let error = jsonrpc::error_response(
                &id,
                jsonrpc::UPSTREAM_ERROR,
                &format!(
                    "the MCP server at {} did not answer within {} s",
                    bridge.host,
                    timeout.as_secs()
                ),
                "timeout",
                Some("give slow tools more time with `--request-timeout SECS`"),
            );
            if bridge.out.time_out(&ticket, error).await && method != "initialize" {
                let note = serde_json::json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": id, "reason": "timed out in the bridge"},
                })
                .to_string();
                let kind = Kind::Notification {
                    method: "notifications/cancelled".to_owned(),
                };
                let (accepted, _) = oneshot::channel();
                let _ =
                    tokio::time::timeout(CANCEL_WAIT, bridge.handle(note, kind, accepted)).await;
            }
        }
    }
}

/// Ends the session: after stdin EOF the exchanges in flight get [`EOF_GRACE`]; then they are
/// dropped and the session is closed (at most [`CLOSE_WAIT`]). Another signal cuts either short.
async fn shutdown(bridge: &Bridge, mut tasks: JoinSet<()>, mut signals: Signals, end: End) {
    if end == End::Eof {
        tracing::debug!(in_flight = tasks.len(), "stdin ended");
        tokio::select! {
            () = async { while tasks.join_next().await.is_some() {} } => {}
            () = tokio::time::sleep(EOF_GRACE) => {
                tracing::info!(in_flight = tasks.len(), "stdin ended; dropping the exchanges still in flight");
            }
            () = signals.recv() => {}
        }
    } else {
        tracing::info!(
            in_flight = tasks.len(),
            "signal received; closing the session"
        );
    }
    tasks.abort_all();
    drop(tasks);
    tokio::select! {
        closed = tokio::time::timeout(CLOSE_WAIT, bridge.close()) => {
            if closed.is_err() {
                tracing::info!("the server did not take the DELETE of the session in time");
            }
        }
        () = signals.recv() => {}
    }
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Resolves on the next signal (cancel-safe).
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
                if let Some(signal) = signal
                    && signal.recv().await.is_some()
                {
                    return;
                }
                std::future::pending().await
            }
            let Self { term, int } = self;
            tokio::select! {
                () = one(term) => {}
                () = one(int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A line of stdin.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Without its line break; not checked yet.
    Bytes(Vec<u8>),
    /// Over [`MAX_MESSAGE_BYTES`]: skipped to its end.
    TooLong,
}

/// Lines of at most [`MAX_MESSAGE_BYTES`] from a reader; [`next`](Self::next) is cancel-safe (a
/// partly read line stays here), so the loop can wait on it beside other things.
struct LineReader<R> {
    reader: R,
    line: Vec<u8>,
    too_long: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            line: Vec::new(),
            too_long: false,
        }
    }

    /// The next line; `None` at the end.
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() && !self.too_long {
                    return Ok(None);
                }
                break;
            }
            let (used, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i.saturating_add(1), true),
                None => (available.len(), false),
            };
            if !self.too_long {
                if self.line.len().saturating_add(used) > MAX_MESSAGE_BYTES.saturating_add(1) {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(&available[..used]);
                }
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if std::mem::take(&mut self.too_long) {
            return Ok(Some(Line::TooLong));
        }
        let mut line = std::mem::take(&mut self.line);
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(Some(Line::Bytes(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_survive_a_cancelled_read() {
        let (mut host, bridge) = tokio::io::duplex(64);
        let mut lines = LineReader::new(tokio::io::BufReader::new(bridge));
        use tokio::io::AsyncWriteExt as _;
        host.write_all(b"{\"a\":").await.unwrap_or_default();
        // The half line is read, then the wait for the rest is dropped.
        let cut = tokio::time::timeout(Duration::from_millis(20), lines.next()).await;
        assert!(cut.is_err());
        host.write_all(b"1}\r\n\n\xff\n").await.unwrap_or_default();
        drop(host);
        let mut got = Vec::new();
        while let Ok(Some(line)) = lines.next().await {
            got.push(line);
        }
        assert_eq!(
            got,
            [
                Line::Bytes(b"{\"a\":1}".to_vec()),
                Line::Bytes(Vec::new()),
                Line::Bytes(vec![0xff]),
            ]
        );
    }
}
