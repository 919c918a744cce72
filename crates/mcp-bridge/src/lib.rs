//! A bridge between the MCP stdio transport (one JSON-RPC message per line on stdin/stdout) and a
//! remote MCP server's HTTP transports, signed in and refreshed with the tokens of an
//! [`OAuthService`]: the engine of `context-harness mcp proxy <url>`, as a library a program runs
//! under its own app identity (its own [`OAuthService`]: client, token store, providers, and its own
//! name in messages and hints, [`SignInSettings`]).
//!
//! ```no_run
//! use context_harness_mcp_bridge::{BridgeConfig, run_stdio};
//! use context_harness_providers::OAuthService;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let service = OAuthService::builder().build()?;
//! let mut config = BridgeConfig::new("https://mcp.example.com/mcp")?;
//! config.sign_in.program = "my-agent".to_owned();
//! config.sign_in.sign_in_command = "my-agent login".to_owned();
//! // Serves stdin/stdout until stdin ends or SIGTERM/SIGINT comes; the session is then closed.
//! run_stdio(service, config)?;
//! # Ok(())
//! # }
//! ```
//!
//! Transports: Streamable HTTP (MCP 2025-03-26 and later, and the 2026-07-28 wire), or the legacy
//! HTTP+SSE transport (2024-11-05). How the bridge behaves:
//!
//! - Messages pass through as they came: only `id`, `method` and the `initialize` answer's
//!   `protocolVersion` are read. Nothing but JSON-RPC lines reaches stdout.
//! - Each message is POSTed with `Accept: application/json, text/event-stream`; a JSON answer is one
//!   line, each SSE `message` event one line. `Mcp-Session-Id` (from the `initialize` answer) and
//!   `MCP-Protocol-Version` (after the negotiation) go on every later request.
//! - Order: a message is POSTed once the server has accepted the earlier `initialize` (its whole
//!   answer), notifications and responses (their answer head is in; at most
//!   2 s); requests do not hold back what follows, so several are in flight at
//!   once. At most 64 messages wait or run, their bytes within a byte budget;
//!   stdin is read no further meanwhile. Lines that are not JSON-RPC messages are
//!   answered (-32700, -32600), never forwarded.
//! - After `notifications/initialized`, the GET stream carries server-initiated messages (405: not
//!   offered); it is resumed with `Last-Event-ID` after a drop.
//! - 401 and 403 on any request, stream or endpoint: one recovery (refresh, sign-in,
//!   step-up or give up, bounded) and the bearer only where its audience covers. 404 on a request
//!   with a session id → a new session (the client's `initialize`
//!   and `notifications/initialized` replayed), then the message once more. 400/404/405 to the
//!   `initialize` POST → the legacy transport.
//! - Every failure of a request becomes a JSON-RPC error response to it, and so does no answer
//!   within [`BridgeConfig::request_timeout`]. Input EOF (after the answers in flight, for at most
//!   2 s) or SIGTERM/SIGINT → `DELETE` of the session (405 ignored), and [`run`] returns.

// A sign-in's URL and its outcome are for the user, on stderr: stdout is the JSON-RPC channel.
#![allow(clippy::print_stderr)]

mod auth;
mod authorized;
mod budget;
mod error;
mod headers;
mod jsonrpc;
mod legacy;
mod modern;
mod output;
mod redirect;
mod resume;
mod sign_in;
mod stdio;
mod tool_headers;
mod upstream;
mod wire2026;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::OAuthService;
use context_harness_providers::protocol::Exchange;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, oneshot};
use url::Url;

use auth::Auth;
pub use error::Error;
pub use headers::{extra_headers, parse_header, parse_header_env};
use jsonrpc::Kind;
use sign_in::AuthFailure;
pub use sign_in::{Browser, SignInSettings};
use stdio::serve;
use upstream::{EventStream, SessionHeaders, Upstream, UpstreamError};

/// Messages read from stdin and not yet answered (or accepted), at most.
const MAX_IN_FLIGHT: usize = 64;

/// GET stream reconnections in a row without an event before it is given up.
const MAX_GET_FAILURES: u32 = 5;

/// The default [`BridgeConfig::request_timeout`]: 120 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What the bridge connects to and how: the server, the extra headers, the request timeout and the
/// sign-in it may start. Built with [`BridgeConfig::new`], then adjusted field by field.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// The MCP server URL as given (the key of its stored tokens, as for `mcp auth <url>`).
    server: String,
    /// The same, parsed (http or https).
    url: Url,
    /// Extra headers on every request to the server (RFC 9110 §5), e.g. from [`extra_headers`];
    /// mark secret values sensitive ([`reqwest::header::HeaderValue::set_sensitive`]): they are
    /// never logged. The headers the bridge sets itself are replaced by its own.
    pub headers: HeaderMap,
    /// How long a request may wait for its answer; then the client gets a JSON-RPC error
    /// (`data.code` `timeout`) and the server `notifications/cancelled`. A progress notification
    /// for the request restarts the clock, up to 10 times this in all; time spent signing in does
    /// not count. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// The sign-in the bridge starts when the server refuses the token and a refresh does not help.
    pub sign_in: SignInSettings,
}

impl BridgeConfig {
    /// A configuration for the MCP server at `server` (an `http` or `https` URL; surrounding
    /// whitespace is ignored), with no extra header, the default timeout and sign-in settings.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `server` is not an http(s) URL.
    pub fn new(server: &str) -> Result<Self, Error> {
        let server = server.trim();
        // Shown without its user info: a password typed into the URL is never repeated.
        let shown = context_harness_providers::terminal_text(
            &context_harness_providers::protocol::without_user_info(server),
        );
        let url = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Error::config(
                    format!("`{shown}` is not an http(s) MCP server URL"),
                    "give the server's URL, e.g. https://mcp.example.com/mcp",
                )
            })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                format!("`{shown}` has user info (`user:password@`): not a usable MCP server URL"),
                "give the server's URL without user info; credentials go through the sign-in, or --header-file / --header-env",
            ));
        }
        Ok(Self {
            server: server.to_owned(),
            url,
            headers: HeaderMap::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            sign_in: SignInSettings::default(),
        })
    }

    /// The server URL, parsed.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Runs the bridge on this process's stdin and stdout, on a runtime of its own (current thread),
/// until stdin ends or SIGTERM/SIGINT comes; the session is closed then. Blocks; call it from
/// outside any async runtime (inside one, use [`run`]).
///
/// # Errors
///
/// When the async runtime or the HTTP client cannot be built. Failures after the start are
/// JSON-RPC error responses to the requests they hit, never an `Err`.
pub fn run_stdio(service: OAuthService, config: BridgeConfig) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(run(
        service,
        config,
        tokio::io::stdin(),
        tokio::io::stdout(),
    ));
    // The stdin reader may still be blocked in a read; do not wait for it.
    runtime.shutdown_background();
    result
}

/// Runs the bridge on `input` (JSON-RPC messages, one a line) and `output` (the answers and the
/// server's messages, one a line, nothing else) until `input` ends or SIGTERM/SIGINT comes; the
/// session is closed then (at most 5 s in all). Needs a tokio runtime with time and I/O enabled.
///
/// # Errors
///
/// When the HTTP client cannot be built ([`OAuthService::http_client_builder`]). Failures after
/// the start are JSON-RPC error responses to the requests they hit, never an `Err`.
pub async fn run<R, W>(
    service: OAuthService,
    config: BridgeConfig,
    input: R,
    output: W,
) -> Result<(), Error>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let BridgeConfig {
        server,
        url,
        headers,
        request_timeout,
        sign_in,
    } = config;
    let upstream = Upstream::new(&service, headers)?;
    let (out, out_rx) = output::Output::new(output::OWN_BYTES);
    let writer = tokio::spawn(output::write_lines(out_rx, output));
    let bridge = Arc::new(Bridge {
        host: url.host_str().unwrap_or("server").to_owned(),
        auth: Auth::new(service, server, sign_in),
        url,
        upstream,
        out,
        session: Mutex::new(Session::default()),
        reinit: tokio::sync::Mutex::new(()),
        get_stream: Mutex::new(None),
        legacy: Mutex::new(None),
        tools: tool_headers::ToolCache::default(),
        modern: Mutex::new(None),
        cancels: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    serve(Arc::clone(&bridge), input, request_timeout).await;
    bridge.stop_get_stream();
    drop(bridge);
    // A host that stopped reading gets no more.
    let _ = tokio::time::timeout(stdio::FLUSH_WAIT, writer).await;
    Ok(())
}

/// `text` with every line through the one terminal sanitiser (control, format and bidi characters
/// replaced), lines kept apart, each at most 2000 characters.
fn safe_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| context_harness_providers::terminal_text_max(line, 2000))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The session state (Streamable HTTP).
#[derive(Debug, Clone, Default)]
struct Session {
    headers: SessionHeaders,
    /// Bumped for every new session (a 404 then starts at most one).
    generation: u64,
    /// The client's `initialize` and `notifications/initialized`, replayed for a new session.
    initialize: Option<String>,
    initialized: Option<String>,
}

/// Why a message failed: becomes the JSON-RPC error response to a request.
enum Fail {
    Auth(AuthFailure),
    Upstream(UpstreamError),
    /// The bridge refuses the request itself (it is never sent).
    Request {
        code: i64,
        message: String,
        /// The stable `data.code`.
        data_code: &'static str,
    },
}

impl From<AuthFailure> for Fail {
    fn from(f: AuthFailure) -> Self {
        Self::Auth(f)
    }
}

impl From<UpstreamError> for Fail {
    fn from(e: UpstreamError) -> Self {
        Self::Upstream(e)
    }
}

struct Bridge {
    url: Url,
    host: String,
    upstream: Upstream,
    auth: Auth,
    out: output::Output,
    session: Mutex<Session>,
    /// Held while a new session is started after a 404.
    reinit: tokio::sync::Mutex<()>,
    get_stream: Mutex<Option<tokio::task::AbortHandle>>,
    /// Set once the server turned out to speak the legacy HTTP+SSE transport.
    legacy: Mutex<Option<Arc<legacy::Legacy>>>,
    /// The `x-mcp-header` reading of the tools listed so far (2026-07-28 wire).
    tools: tool_headers::ToolCache,
    /// The protocol version of the host's latest 2026-07-28 request ([`modern`]).
    modern: Mutex<Option<String>>,
    /// The 2026-07-28 requests in flight, by id (JSON text): `notifications/cancelled` closes them.
    cancels: Mutex<HashMap<String, Arc<Notify>>>,
    /// The next id of a request of the bridge's own (a re-issue, a `tools/list` walk).
    next_id: AtomicU64,
}

/// The wire a message of the host goes on ([`Bridge::route`]).
enum Route {
    /// A request of the 2026-07-28 wire.
    Modern(wire2026::ModernRequest),
    /// A notification or response after 2026-07-28 requests: the version they carry.
    ModernOther(String),
    /// The 2025 wire (sessions; or the legacy HTTP+SSE transport once found).
    Legacy,
}

/// Marks the message as accepted by the server: the next one may go.
fn release(accepted: &mut Option<oneshot::Sender<()>>) {
    if let Some(tx) = accepted.take() {
        let _ = tx.send(());
    }
}

impl Bridge {
    async fn send_out(&self, line: String) {
        self.out.send(line).await;
    }

    fn session(&self) -> Session {
        self.session.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn legacy(&self) -> Option<Arc<legacy::Legacy>> {
        self.legacy.lock().ok().and_then(|l| l.clone())
    }

    /// Forwards one message; a failed request gets its error response.
    async fn handle(self: Arc<Self>, text: String, kind: Kind, accepted: oneshot::Sender<()>) {
        tracing::debug!(message = ?kind, "forwarding a message");
        let mut accepted = Some(accepted);
        let result = match self.route(&text, &kind) {
            Route::Modern(request) => {
                // Requests do not hold back later messages.
                release(&mut accepted);
                self.forward_modern(&text, &request).await
            }
            Route::ModernOther(version) => self.forward_modern_other(&text, &kind, &version).await,
            Route::Legacy => match self.legacy() {
                Some(legacy) => {
                    release(&mut accepted);
                    legacy.post(&self, &text).await
                }
                None => Arc::clone(&self).forward(&text, &kind, &mut accepted).await,
            },
        };
        release(&mut accepted);
        let Err(fail) = result else { return };
        let (code, message, data_code, hint) = match &fail {
            Fail::Auth(f) => (
                jsonrpc::AUTH_REQUIRED,
                f.message.clone(),
                f.code,
                Some(f.hint.clone()),
            ),
            Fail::Upstream(e) => (
                jsonrpc::UPSTREAM_ERROR,
                e.message.clone(),
                e.code,
                e.hint.clone(),
            ),
            Fail::Request {
                code,
                message,
                data_code,
            } => (*code, message.clone(), *data_code, None),
        };
        match &kind {
            Kind::Request { id, method } => {
                tracing::info!(%method, error = %message, "answering the request with an error");
                self.send_out(jsonrpc::error_response(
                    id,
                    code,
                    &message,
                    data_code,
                    hint.as_deref(),
                ))
                .await;
            }
            _ => tracing::warn!(error = %message, "a message could not be delivered to the server"),
        }
    }

    /// Which wire a message of the host goes on: a request carrying the 2026-07-28 `_meta`
    /// version goes on that wire; so do notifications and responses once the host sent such a
    /// request and no `initialize`; everything else as before.
    fn route(&self, text: &str, kind: &Kind) -> Route {
        match kind {
            Kind::Request { .. } => {
                wire2026::modern_request(text).map_or(Route::Legacy, Route::Modern)
            }
            Kind::Notification { .. } | Kind::Response { .. }
                if self.session().initialize.is_none() && self.legacy().is_none() =>
            {
                self.modern_version()
                    .map_or(Route::Legacy, Route::ModernOther)
            }
            _ => Route::Legacy,
        }
    }

    /// Streamable HTTP: POSTs one message and relays its answer.
    async fn forward(
        self: Arc<Self>,
        text: &str,
        kind: &Kind,
        accepted: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), Fail> {
        let is_initialize = matches!(kind, Kind::Request { method, .. } if method == "initialize");
        // Accepted once the GET stream it opens is in place (or given up): a server request sent
        // there while the host's next request runs is not lost.
        let is_initialized =
            matches!(kind, Kind::Notification { method } if method == "notifications/initialized");
        if matches!(kind, Kind::Request { .. }) && !is_initialize {
            // Requests do not hold back later messages.
            release(accepted);
        }
        let mut resent = false;
        let (response, generation) = loop {
            let session = self.session();
            let headers = if is_initialize {
                SessionHeaders::default()
            } else {
                session.headers.clone()
            };
            let response = self.post_authorized(&self.url, text, &headers).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND && headers.session_id.is_some() && !resent {
                // The session is gone: a new one, then this message once more.
                resent = true;
                drop(response);
                self.new_session(session.generation).await?;
                continue;
            }
            if is_initialize && matches!(status.as_u16(), 400 | 404 | 405) {
                // Decided by the status alone (MCP "Backwards Compatibility").
                drop(response);
                tracing::info!(%status, "the server does not take POSTs here; trying the legacy HTTP+SSE transport");
                let legacy = legacy::Legacy::connect(&self).await?;
                if let Ok(mut slot) = self.legacy.lock() {
                    *slot = Some(Arc::clone(&legacy));
                }
                release(accepted);
                return legacy.post(&self, text).await;
            }
            break (response, session.generation);
        };
        let status = response.status();
        if !status.is_success() {
            let media = upstream::media_type(&response);
            return Err(Fail::Upstream(self.status_error(status, &media)));
        }
        let new_session_id = upstream::session_id(&response);
        if !is_initialize && !is_initialized {
            release(accepted);
        }
        let request_id = match kind {
            Kind::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let media = upstream::media_type(&response);
        // The answer came (and, for `initialize`, the version it names).
        let mut answer: Option<Option<String>> = None;
        if status == StatusCode::ACCEPTED || request_id.is_none() && media.is_empty() {
            // A notification or a response: accepted, nothing to relay.
        } else if media == "text/event-stream" {
            answer = self
                .relay_answer_stream(response, request_id.as_ref(), is_initialize)
                .await?;
        } else if media == "application/json" {
            let (body, held) = upstream::read_message(response, &self.host).await?;
            let Some(body_kind) = jsonrpc::classify(&body) else {
                return Err(Fail::Upstream(UpstreamError::new(
                    "network_error",
                    format!(
                        "the MCP server at {} answered with a body that is not JSON",
                        self.host
                    ),
                )));
            };
            if request_id.is_some()
                && !matches!(&body_kind, Kind::Response { id } if request_id.as_ref() == Some(id))
            {
                // Relaying it would leave the request unanswered and show the client an answer
                // to an id it may never have asked.
                return Err(Fail::Upstream(UpstreamError::new(
                    "network_error",
                    format!(
                        "the MCP server at {} answered with a response to another request",
                        self.host
                    ),
                )));
            }
            answer = Some(
                is_initialize
                    .then(|| jsonrpc::protocol_version(&body))
                    .flatten(),
            );
            self.out
                .relay(jsonrpc::into_one_line(body), &body_kind, held)
                .await;
        } else if request_id.is_some() {
            return Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                format!(
                    "the MCP server at {} answered with {}, not JSON-RPC",
                    self.host,
                    if media.is_empty() {
                        "no content type"
                    } else {
                        &media
                    }
                ),
            )));
        }
        if request_id.is_some() && answer.is_none() {
            return Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                format!(
                    "the MCP server at {} ended its answer without a response",
                    self.host
                ),
            )));
        }
        if is_initialize {
            let protocol_version = answer.flatten();
            if let Ok(mut session) = self.session.lock() {
                session.headers = SessionHeaders {
                    session_id: new_session_id,
                    protocol_version,
                };
                session.generation = session.generation.wrapping_add(1);
                session.initialize = Some(text.to_owned());
                session.initialized = None;
            }
            self.stop_get_stream();
        }
        if is_initialized {
            let generation = {
                let Ok(mut session) = self.session.lock() else {
                    return Ok(());
                };
                session.initialized = Some(text.to_owned());
                session.generation
            };
            self.start_get_stream(generation, accepted.take());
        }
        let _ = generation;
        Ok(())
    }

    /// Starts a new session after a 404, once for all the requests that saw `generation` fail:
    /// the client's `initialize` (its answer kept from the client) and `notifications/initialized`.
    async fn new_session(self: &Arc<Self>, generation: u64) -> Result<(), Fail> {
        let _guard = self.reinit.lock().await;
        let session = self.session();
        if session.generation != generation {
            return Ok(());
        }
        let Some(initialize) = session.initialize.clone() else {
            return Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                "the server ended the session before it was initialized",
            )));
        };
        tracing::info!("the server ended the session (404); starting a new one");
        self.stop_get_stream();
        let response = self
            .post_authorized(&self.url, &initialize, &SessionHeaders::default())
            .await?;
        if !response.status().is_success() {
            return Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                format!(
                    "starting a new session failed: HTTP {}",
                    response.status().as_u16()
                ),
            )));
        }
        let session_id = upstream::session_id(&response);
        let init_id = jsonrpc::classify(&initialize).and_then(|k| match k {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        });
        let answer = if upstream::media_type(&response) == "text/event-stream" {
            let mut events = EventStream::new(response, &self.host);
            let mut answer = None;
            while let Some(event) = events.next().await {
                let event = event?;
                if jsonrpc::response_id(&event.data).is_some()
                    && jsonrpc::response_id(&event.data) == init_id
                {
                    answer = Some(event.data);
                    break;
                }
            }
            answer
        } else {
            Some(upstream::read_body(response, &self.host).await?)
        };
        let headers = SessionHeaders {
            session_id,
            protocol_version: answer.as_deref().and_then(jsonrpc::protocol_version),
        };
        if let Some(initialized) = &session.initialized {
            let response = self
                .post_authorized(&self.url, initialized, &headers)
                .await?;
            if !response.status().is_success() {
                tracing::warn!(status = %response.status(), "the new session refused notifications/initialized");
            }
        }
        let generation = {
            let Ok(mut current) = self.session.lock() else {
                return Ok(());
            };
            current.headers = headers;
            current.generation = current.generation.wrapping_add(1);
            current.generation
        };
        if session.initialized.is_some() {
            self.start_get_stream(generation, None);
        }
        Ok(())
    }

    fn stop_get_stream(&self) {
        if let Some(handle) = self.get_stream.lock().ok().and_then(|mut h| h.take()) {
            handle.abort();
        }
    }

    /// Opens the GET stream; `ready` is released once its first answer is in (or it is given up).
    fn start_get_stream(self: &Arc<Self>, generation: u64, ready: Option<oneshot::Sender<()>>) {
        let task = tokio::spawn(Arc::clone(self).get_stream(generation, ready));
        if let Ok(mut slot) = self.get_stream.lock()
            && let Some(old) = slot.replace(task.abort_handle())
        {
            old.abort();
        }
    }

    /// The GET stream for server-initiated messages, resumed with `Last-Event-ID` after a drop,
    /// after the server's `retry` ([`resume::Cursor`]).
    async fn get_stream(self: Arc<Self>, generation: u64, mut ready: Option<oneshot::Sender<()>>) {
        let mut cursor = resume::Cursor::default();
        let mut failures = 0u32;
        // One exchange for the stream's whole life: one refresh at most, never a sign-in or a
        // step-up (no request waits on it), so a server alternating 401 and a short stream ends it.
        let mut exchange = Exchange::background();
        loop {
            let session = self.session();
            if session.generation != generation {
                return;
            }
            let sent = self
                .send_authorized(&mut exchange, &self.url, |token| {
                    let request = self
                        .upstream
                        .request(reqwest::Method::GET, &self.url, token, &session.headers)
                        .header(reqwest::header::ACCEPT, "text/event-stream");
                    match &cursor.last_event_id {
                        Some(id) => request.header("last-event-id", id),
                        None => request,
                    }
                })
                .await;
            release(&mut ready);
            let outcome = match sent {
                Ok(response) => match response.status() {
                    StatusCode::METHOD_NOT_ALLOWED => {
                        tracing::debug!("the server offers no GET stream (405)");
                        return;
                    }
                    status
                        if status.is_success()
                            && upstream::media_type(&response) == "text/event-stream" =>
                    {
                        let mut events = EventStream::new(response, &self.host);
                        let mut got_any = false;
                        while let Some(Ok(mut event)) = events.next().await {
                            got_any = true;
                            cursor.note(&event);
                            self.relay(&mut event).await;
                        }
                        got_any
                    }
                    status => {
                        tracing::debug!(%status, "the GET stream was refused");
                        if matches!(status.as_u16(), 400 | 404) {
                            return;
                        }
                        false
                    }
                },
                Err(Fail::Auth(failure)) => {
                    tracing::info!(
                        error = %failure.message,
                        "the server refuses the GET stream ({}); no server-initiated messages",
                        exchange.refused().map_or(0, |s| s.code())
                    );
                    return;
                }
                Err(Fail::Upstream(e)) => {
                    tracing::debug!(error = %e.message, "the GET stream failed");
                    false
                }
                Err(Fail::Request { .. }) => return,
            };
            if outcome {
                failures = 0;
            } else {
                failures = failures.saturating_add(1);
                if failures > MAX_GET_FAILURES {
                    tracing::warn!("giving up the GET stream for server notifications");
                    return;
                }
            }
            tracing::debug!(
                resume = cursor.last_event_id.is_some(),
                "reconnecting the GET stream"
            );
            // The server's `retry` first, longer after failures in a row (bounded above).
            tokio::time::sleep(cursor.delay().saturating_mul(failures.max(1))).await;
        }
    }

    /// Ends the session: `DELETE` with the session id (405: the server does not allow it).
    async fn close(&self) {
        self.stop_get_stream();
        if let Some(legacy) = self.legacy() {
            legacy.close();
            return;
        }
        let session = self.session();
        if session.headers.session_id.is_none() {
            return;
        }
        // Never a sign-in on the way out: the token in hand, if any.
        let token = self.auth.in_hand_for(&self.url);
        let mut request = self.upstream.request(
            reqwest::Method::DELETE,
            &self.url,
            token.as_ref(),
            &session.headers,
        );
        if let (Some(token), Some(key)) = (&token, self.auth.dpop_key()) {
            match self.with_dpop(request, &key, token) {
                Ok(signed) => request = signed,
                Err(_) => return,
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), self.send_following(request)).await {
            Ok(Ok(response)) => {
                tracing::debug!(status = %response.status(), "session deleted");
            }
            Ok(Err(Fail::Upstream(e))) => tracing::debug!(error = %e.message, "DELETE failed"),
            Ok(Err(_)) => tracing::debug!("DELETE failed"),
            Err(_) => tracing::debug!("DELETE timed out"),
        }
    }
}
