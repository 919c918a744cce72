//! Binding the loopback listener and waiting for the one callback.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use context_harness_pkce::State;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::config::{CallbackConfig, RedirectHost};
use crate::error::{Error, PortAttempt, Result};
use crate::page::{self, Body};
use crate::response::{CallbackResponse, Rejection, Verdict, evaluate};

/// Largest request head (request line plus headers) accepted, in bytes. Browsers send well
/// under 4 KiB plus the URL; larger heads get 431. (hyper's minimum buffer is 8 KiB.)
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most request headers accepted; browsers send about 20.
const MAX_HEADERS: usize = 64;
/// How long the connection that delivered the result may take to finish sending its page
/// after [`CallbackServer::wait`] has its answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (for example out of file descriptors), so the loop does not
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Longest header-read timeout applied (larger configured values are clamped to it).
const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3600);
/// Stands in for a timeout too large to add to the clock (about 30 years).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);
/// Fresh ephemeral ports tried when the IPv6 half of a system-chosen port is taken.
const EPHEMERAL_TRIES: usize = 16;

/// A loopback HTTP/1 listener bound and ready for one authorization response.
///
/// Bind it before opening the browser, so the redirect URI is known and the port is held; then
/// [`wait`](Self::wait) for the response. Dropping it (or returning from `wait`) closes the
/// listening sockets, freeing the port.
#[derive(Debug)]
pub struct CallbackServer {
    listeners: Vec<TcpListener>,
    port: u16,
    redirect_uri: String,
    busy: Vec<PortAttempt>,
    config: CallbackConfig,
}

impl CallbackServer {
    /// Binds the first usable port of `config.ports` on loopback.
    ///
    /// For each port it binds `127.0.0.1:port` and `[::1]:port`. If either address is held by
    /// someone else the port counts as busy and the next one is tried: a browser resolving
    /// `localhost` to `::1` must not hand the code to another program. A host without IPv6 (or
    /// without IPv4) loopback gets a listener on the family it has, as long as the advertised
    /// host is reachable there ([`RedirectHost::Ipv4`] needs IPv4, [`RedirectHost::Ipv6`]
    /// needs IPv6). Port `0` takes an ephemeral port.
    ///
    /// # Errors
    ///
    /// [`Error::AllPortsBusy`] naming each port tried and the error that made it unusable;
    /// [`Error::InvalidConfig`] for an unusable `config`; [`Error::Io`] if a bound socket cannot
    /// be handed to the tokio runtime (for example outside a runtime).
    pub async fn bind(config: CallbackConfig) -> Result<Self> {
        config.validate()?;
        let mut busy = Vec::new();
        for &port in &config.ports {
            match bind_port(port, config.host, &bind_std) {
                Ok(bound) => {
                    let mut listeners = Vec::with_capacity(2);
                    for listener in bound.listeners {
                        listener.set_nonblocking(true)?;
                        listeners.push(TcpListener::from_std(listener)?);
                    }
                    let redirect_uri = config.redirect_uri_for(bound.port);
                    tracing::info!(
                        port = bound.port,
                        ipv6 = listeners.len() == 2,
                        skipped = busy.len(),
                        "callback listener bound on loopback"
                    );
                    return Ok(Self {
                        listeners,
                        port: bound.port,
                        redirect_uri,
                        busy,
                        config,
                    });
                }
                Err(mut attempts) => {
                    for attempt in &attempts {
                        tracing::debug!(
                            port = attempt.port,
                            address = %attempt.address,
                            error = %attempt.error,
                            "callback port unusable"
                        );
                    }
                    busy.append(&mut attempts);
                }
            }
        }
        Err(Error::AllPortsBusy { attempts: busy })
    }

    /// The redirect URI to send in the authorization request, e.g.
    /// `http://localhost:8080/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The loopback addresses listened on: `127.0.0.1:port`, and `[::1]:port` where the host
    /// has IPv6.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The ports tried before the bound one and why each was unusable (empty when the first
    /// port was free). Useful to warn that the redirect URI for a fallback port must be
    /// registered too.
    pub fn skipped_ports(&self) -> &[PortAttempt] {
        &self.busy
    }

    /// Serves the redirect path until one valid authorization response arrives or the timeout
    /// passes, then closes the listener.
    ///
    /// - `GET {path}` with the expected `state` ends the wait: the browser gets a "you can
    ///   close this tab" page (sent before this returns, within a bounded grace period) and
    ///   the caller gets the code, or the server's error.
    /// - A missing or wrong `state` (an old tab, or a forged request), a repeated parameter or
    ///   an unreadable query gets a 400 page and the wait **goes on**: a stray request must not
    ///   end the sign-in the user is doing.
    /// - `POST {path}` with an `application/x-www-form-urlencoded` body (`response_mode=form_post`)
    ///   is read (up to [`MAX_FORM_BODY`], else 413) and judged exactly like a `GET`'s query; a
    ///   `POST` with another content type gets 415.
    /// - Other paths get 404 and other methods 405; the wait goes on.
    ///
    /// The timeout counts from this call.
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`] for `error=access_denied`, [`Error::Authorization`] for another
    /// `error`, [`Error::InvalidCallback`] for a response with the right state but no code,
    /// and [`Error::Timeout`] (saying whether a state mismatch was seen) when time runs out.
    pub async fn wait(self, expected_state: &State) -> Result<CallbackResponse> {
        let Self {
            listeners, config, ..
        } = self;
        let (result_tx, mut result_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            expected: expected_state.clone(),
            path: config.path.clone(),
            mismatch_seen: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            result_tx,
        });
        // Clamped so that no configuration can overflow a deadline inside hyper or tokio.
        let header_read_timeout = config.header_read_timeout.min(MAX_HEADER_READ_TIMEOUT);
        let builder = Arc::new(http1_builder(header_read_timeout));
        // A connection that never finishes (a slow reader of the response) is cut off here.
        let connection_deadline = header_read_timeout
            .saturating_mul(2)
            .saturating_add(SHUTDOWN_GRACE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // Each listener has its own connection slots, so one family's clients cannot starve the
        // other's; see `Slots::admit` for what happens when a listener's slots are full.
        let mut slots: Vec<Slots> = listeners
            .iter()
            .map(|_| Slots::new(config.max_connections))
            .collect();
        let mut next_listener = 0usize;
        let mut connections = JoinSet::new();
        let mut next_id: u64 = 0;
        let now = Instant::now();
        let deadline = now
            .checked_add(config.timeout)
            .unwrap_or_else(|| now + FAR_FUTURE);

        let finished = loop {
            tokio::select! {
                biased;
                Some(finished) = result_rx.recv() => break Some(finished),
                () = sleep_until(deadline) => break None,
                Some(joined) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(panic = e.is_panic(), "callback connection task failed");
                    }
                }
                accepted = accept(&listeners, &mut next_listener) => match accepted {
                    Ok((stream, peer, index)) => {
                        next_id += 1;
                        let Some(slot) = slots.get_mut(index).and_then(Slots::admit) else {
                            tracing::debug!(
                                connection = next_id,
                                "every connection on this listener is mid-request; closing the new one"
                            );
                            continue;
                        };
                        tracing::trace!(connection = next_id, %peer, "connection accepted");
                        connections.spawn(serve_connection(
                            stream,
                            next_id,
                            Arc::clone(&shared),
                            Arc::clone(&builder),
                            shutdown_rx.clone(),
                            slot,
                            connection_deadline,
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a callback connection failed");
                        sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        };
        // The port is free again from here on, whatever the outcome.
        drop(listeners);
        shared.finished.store(true, Ordering::SeqCst);
        let _ = shutdown_tx.send(true);

        // A result that raced the deadline still wins: its page already told the browser so.
        let finished = finished.or_else(|| result_rx.try_recv().ok());
        let Some((winner, result)) = finished else {
            let state_mismatch_seen = shared.mismatch_seen.load(Ordering::SeqCst);
            tracing::info!(state_mismatch_seen, "timed out waiting for the callback");
            connections.shutdown().await;
            return Err(Error::Timeout {
                state_mismatch_seen,
            });
        };
        // Let the browser receive its page before the runtime may go away; bounded.
        let flushed = timeout(SHUTDOWN_GRACE, async {
            while let Some(joined) = connections.join_next().await {
                if matches!(joined, Ok(id) if id == winner) {
                    break;
                }
            }
        })
        .await;
        if flushed.is_err() {
            tracing::debug!("the result page was not fully sent within the grace period");
        }
        connections.shutdown().await;
        match &result {
            Ok(_) => tracing::info!("authorization response received"),
            Err(e) => tracing::info!(error = %e, "authorization server returned an error"),
        }
        result
    }
}

/// State shared by the connection handlers of one [`CallbackServer::wait`].
struct Shared {
    expected: State,
    path: String,
    mismatch_seen: AtomicBool,
    finished: AtomicBool,
    result_tx: mpsc::Sender<(u64, Result<CallbackResponse>)>,
}

fn http1_builder(header_read_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(false)
        .half_close(false)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
}

/// Waits for a connection on any listener and returns it with the listener's index.
///
/// Every listener is polled on every wake-up (so each has its waker registered: they accept
/// concurrently), starting after the one that accepted last, so a listener that always has a
/// connection ready cannot keep the other from being served.
async fn accept(
    listeners: &[TcpListener],
    next: &mut usize,
) -> io::Result<(TcpStream, SocketAddr, usize)> {
    let count = listeners.len();
    poll_fn(|cx| {
        for offset in 0..count {
            let index = (*next + offset) % count;
            if let Some(listener) = listeners.get(index)
                && let Poll::Ready(accepted) = listener.poll_accept(cx)
            {
                *next = (index + 1) % count;
                return Poll::Ready(accepted.map(|(stream, peer)| (stream, peer, index)));
            }
        }
        Poll::Pending
    })
    .await
}

/// One served connection, as its listener's [`Slots`] sees it.
#[derive(Default)]
struct Slot {
    /// A complete request arrived (the head, and a `POST`'s form body): the connection is doing
    /// real work.
    head_seen: AtomicBool,
    /// The connection task has ended.
    done: AtomicBool,
    /// Asks a connection that has sent nothing usable yet to close.
    evict: Notify,
}

/// Marks its slot done when the connection task ends, however it ends.
struct SlotGuard(Arc<Slot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
    }
}

/// The connections of one listener, oldest first, at most `max` at a time.
struct Slots {
    live: VecDeque<Arc<Slot>>,
    max: usize,
}

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            live: VecDeque::new(),
            max,
        }
    }

    /// A slot for a new connection. When the listener is full, the oldest connection that has
    /// not sent a complete request head yet (an idle or slowloris client) is evicted to make
    /// room: a browser sends its request right after connecting, so idle connections cannot
    /// keep a valid callback waiting for the header timeout. `None` when every connection is
    /// mid-request (the new one is then closed).
    fn admit(&mut self) -> Option<SlotGuard> {
        self.live.retain(|slot| !slot.done.load(Ordering::SeqCst));
        if self.live.len() >= self.max {
            let victim = self
                .live
                .iter()
                .position(|slot| !slot.head_seen.load(Ordering::SeqCst))?;
            if let Some(slot) = self.live.remove(victim) {
                tracing::debug!("connection limit reached: closing the oldest idle connection");
                slot.evict.notify_one();
            }
        }
        let slot = Arc::new(Slot::default());
        self.live.push_back(Arc::clone(&slot));
        Some(SlotGuard(slot))
    }
}

async fn serve_connection(
    stream: TcpStream,
    id: u64,
    shared: Arc<Shared>,
    builder: Arc<http1::Builder>,
    mut shutdown: watch::Receiver<bool>,
    slot: SlotGuard,
    deadline: Duration,
) -> u64 {
    let _ = stream.set_nodelay(true);
    let seen = Arc::clone(&slot.0);
    let service = service_fn(move |request: Request<Incoming>| {
        // A POST is doing real work only once its form body is in: until then it may be a
        // slowloris trickling the body, which must stay evictable like a half-sent head.
        if request.method() != Method::POST {
            seen.head_seen.store(true, Ordering::SeqCst);
        }
        let shared = Arc::clone(&shared);
        let seen = Arc::clone(&seen);
        async move { Ok::<_, Infallible>(handle(&shared, id, request, &seen).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let served = timeout(deadline, async {
        let mut connection = std::pin::pin!(connection);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => break served,
                () = slot.0.evict.notified(), if !slot.0.head_seen.load(Ordering::SeqCst) => {
                    tracing::trace!(connection = id, "idle connection evicted");
                    break Ok(());
                }
                _ = shutdown.changed(), if !shutting_down => {
                    shutting_down = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    })
    .await;
    match served {
        Ok(Ok(())) => tracing::trace!(connection = id, "connection closed"),
        Ok(Err(e)) => {
            tracing::trace!(connection = id, error = %e, "connection ended with an error")
        }
        Err(_) => tracing::debug!(connection = id, "connection cut off at its deadline"),
    }
    id
}

/// The largest `response_mode=form_post` body read (16 KiB; a code, a state and an `iss` are a
/// few hundred bytes). Larger bodies get 413.
pub const MAX_FORM_BODY: usize = 16 * 1024;

/// The parameters of a callback: the query of a `GET`, or the form body of a `POST`
/// (`response_mode=form_post`, OAuth 2.0 Form Post Response Mode). `Err` is the page to answer.
async fn callback_params(
    id: u64,
    request: Request<Incoming>,
) -> Result<Option<String>, Response<Body>> {
    if request.method() == Method::GET {
        return Ok(request.uri().query().map(str::to_owned));
    }
    if request.method() != Method::POST {
        tracing::debug!(connection = id, "request with another method: 405");
        return Err(page::method_not_allowed());
    }
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    let form = header(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .is_some_and(|mt| {
            mt.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        tracing::debug!(connection = id, "POST without a form body: 415");
        return Err(page::unsupported_media_type());
    }
    let declared = header(hyper::header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FORM_BODY as u64) {
        tracing::debug!(connection = id, "form body over the limit: 413");
        return Err(page::payload_too_large());
    }
    let body = match Limited::new(request.into_body(), MAX_FORM_BODY)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::debug!(connection = id, "form body over the limit: 413");
            return Err(page::payload_too_large());
        }
        Err(_) => {
            return Err(page::rejected(Rejection::Malformed(
                "the form body could not be read",
            )));
        }
    };
    match String::from_utf8(body.to_vec()) {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(page::rejected(Rejection::Malformed(
            "the form body is not UTF-8",
        ))),
    }
}

/// Answers one request. Never logs the query or the form body: they hold the code and the state.
async fn handle(
    shared: &Shared,
    id: u64,
    request: Request<Incoming>,
    slot: &Slot,
) -> Response<Body> {
    if request.uri().path() != shared.path {
        slot.head_seen.store(true, Ordering::SeqCst);
        tracing::debug!(connection = id, "request for another path: 404");
        return page::not_found();
    }
    let params = callback_params(id, request).await;
    slot.head_seen.store(true, Ordering::SeqCst);
    let params = match params {
        Ok(params) => params,
        Err(page) => return page,
    };
    if shared.finished.load(Ordering::SeqCst) {
        tracing::debug!(connection = id, "callback after the flow finished: 400");
        return page::already_completed();
    }
    // Exactly the same checks for a query and a form body (state, `iss`, single use).
    match evaluate(params.as_deref(), &shared.expected) {
        Verdict::Reject(rejection) => {
            if rejection == Rejection::StateMismatch {
                shared.mismatch_seen.store(true, Ordering::SeqCst);
                tracing::warn!(
                    connection = id,
                    "callback with a missing or wrong state ignored (possible CSRF or an old \
                     browser tab); still waiting"
                );
            } else if let Rejection::Malformed(reason) = rejection {
                tracing::warn!(
                    connection = id,
                    reason,
                    "unreadable callback ignored; still waiting"
                );
            }
            page::rejected(rejection)
        }
        Verdict::Complete(result) => {
            if shared.finished.swap(true, Ordering::SeqCst) {
                return page::already_completed();
            }
            let response = page::outcome(&result);
            // Capacity 1 and only the first completion gets here, so this cannot be full.
            if shared.result_tx.try_send((id, result)).is_err() {
                tracing::error!(connection = id, "callback result could not be delivered");
            }
            response
        }
    }
}

/// The listening sockets of one port.
struct Bound<L> {
    port: u16,
    listeners: Vec<L>,
}

fn bind_std(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
}

/// Binds `port` on both loopback addresses with `bind` (a parameter so tests can simulate a
/// host without one family). Returns why the port is unusable otherwise.
fn bind_port<L, F>(port: u16, host: RedirectHost, bind: &F) -> Result<Bound<L>, Vec<PortAttempt>>
where
    L: LocalAddr,
    F: Fn(SocketAddr) -> io::Result<L>,
{
    let mut last = Vec::new();
    // Only an ephemeral request is retried: the system picks another port each time.
    let tries = if port == 0 { EPHEMERAL_TRIES } else { 1 };
    for _ in 0..tries {
        match bind_pair(port, host, bind) {
            Ok(bound) => return Ok(bound),
            Err(attempts) => last = attempts,
        }
    }
    Err(last)
}

fn bind_pair<L, F>(port: u16, host: RedirectHost, bind: &F) -> Result<Bound<L>, Vec<PortAttempt>>
where
    L: LocalAddr,
    F: Fn(SocketAddr) -> io::Result<L>,
{
    let mut absent = Vec::new();
    let v4_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (v4, port) = match bind(v4_addr).and_then(|l| Ok((l.local_port()?, l))) {
        Ok((bound_port, listener)) => (Some(listener), bound_port),
        Err(error) if family_absent(&error) && host != RedirectHost::Ipv4 => {
            absent.push(attempt(v4_addr, error));
            (None, port)
        }
        Err(error) => return Err(vec![attempt(v4_addr, error)]),
    };
    let v6_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let v6 = match bind(v6_addr).and_then(|l| Ok((l.local_port()?, l))) {
        Ok((bound_port, listener)) => {
            if v4.is_none() {
                return Ok(Bound {
                    port: bound_port,
                    listeners: vec![listener],
                });
            }
            Some(listener)
        }
        Err(error) if family_absent(&error) && host != RedirectHost::Ipv6 => {
            absent.push(attempt(v6_addr, error));
            None
        }
        Err(error) => return Err(vec![attempt(v6_addr, error)]),
    };
    let listeners: Vec<L> = v4.into_iter().chain(v6).collect();
    if listeners.is_empty() {
        return Err(absent);
    }
    Ok(Bound { port, listeners })
}

fn attempt(address: SocketAddr, error: io::Error) -> PortAttempt {
    PortAttempt {
        port: address.port(),
        address,
        error,
    }
}

/// Whether a bind error means the host lacks that address family (no IPv6 loopback, say), as
/// opposed to the address being held or refused.
fn family_absent(error: &io::Error) -> bool {
    /// `EAFNOSUPPORT` where this crate knows its number.
    const EAFNOSUPPORT: Option<i32> = if cfg!(any(target_os = "linux", target_os = "android")) {
        Some(97)
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        Some(47)
    } else if cfg!(windows) {
        Some(10047)
    } else {
        None
    };
    matches!(
        error.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || (EAFNOSUPPORT.is_some() && error.raw_os_error() == EAFNOSUPPORT)
}

/// The one thing binding needs from a listener (a trait so tests can use fakes).
trait LocalAddr {
    fn local_port(&self) -> io::Result<u16>;
}

impl LocalAddr for std::net::TcpListener {
    fn local_port(&self) -> io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A fake listener: binding succeeds unless the family is listed as missing or busy.
    struct Fake(u16);
    impl LocalAddr for Fake {
        fn local_port(&self) -> io::Result<u16> {
            Ok(self.0)
        }
    }

    fn binder(no_v4: bool, no_v6: bool, busy_v6: bool) -> impl Fn(SocketAddr) -> io::Result<Fake> {
        move |addr| {
            let port = if addr.port() == 0 { 40000 } else { addr.port() };
            match addr {
                SocketAddr::V4(_) if no_v4 => Err(io::ErrorKind::AddrNotAvailable.into()),
                SocketAddr::V6(_) if no_v6 => Err(io::ErrorKind::AddrNotAvailable.into()),
                SocketAddr::V6(_) if busy_v6 => Err(io::ErrorKind::AddrInUse.into()),
                _ => Ok(Fake(port)),
            }
        }
    }

    #[test]
    fn both_families_when_present() {
        let bound = bind_port(8080, RedirectHost::Localhost, &binder(false, false, false));
        assert!(matches!(bound, Ok(Bound { port: 8080, ref listeners }) if listeners.len() == 2));
        let bound = bind_port(0, RedirectHost::Localhost, &binder(false, false, false));
        assert!(matches!(bound, Ok(Bound { port: 40000, ref listeners }) if listeners.len() == 2));
    }

    #[test]
    fn ipv4_only_host() {
        for host in [RedirectHost::Localhost, RedirectHost::Ipv4] {
            let bound = bind_port(8080, host, &binder(false, true, false));
            assert!(
                matches!(bound, Ok(Bound { port: 8080, ref listeners }) if listeners.len() == 1)
            );
        }
        // `[::1]` advertised but not available: unusable.
        let bound = bind_port(8080, RedirectHost::Ipv6, &binder(false, true, false));
        assert!(matches!(bound, Err(ref a) if a.len() == 1 && a[0].address.is_ipv6()));
    }

    #[test]
    fn ipv6_only_host() {
        let bound = bind_port(8080, RedirectHost::Localhost, &binder(true, false, false));
        assert!(matches!(bound, Ok(Bound { port: 8080, ref listeners }) if listeners.len() == 1));
        let bound = bind_port(0, RedirectHost::Ipv6, &binder(true, false, false));
        assert!(matches!(bound, Ok(Bound { port: 40000, ref listeners }) if listeners.len() == 1));
        let bound = bind_port(8080, RedirectHost::Ipv4, &binder(true, false, false));
        assert!(matches!(bound, Err(ref a) if a.len() == 1 && a[0].address.is_ipv4()));
    }

    #[test]
    fn no_loopback_at_all() {
        let bound = bind_port(8080, RedirectHost::Localhost, &binder(true, true, false));
        assert!(matches!(bound, Err(ref a) if a.len() == 2));
    }

    #[test]
    fn v6_held_means_busy() {
        let bound = bind_port(8080, RedirectHost::Localhost, &binder(false, false, true));
        assert!(matches!(bound, Err(ref a) if a.len() == 1
            && a[0].address == SocketAddr::from((Ipv6Addr::LOCALHOST, 8080))
            && a[0].error.kind() == io::ErrorKind::AddrInUse));
    }
}
