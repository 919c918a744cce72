//! The HTTP side: one `reqwest` client (built by [`OAuthService::http_client_builder`], so rustls
//! with the `ring` provider, the same proxy decision as the sign-in traffic with loopback servers
//! always reached directly, and no redirects, so a bearer never follows one), requests with the MCP headers, and answers
//! read as a bounded JSON body or as an SSE stream (`sse-stream`, the parser of the official Rust
//! SDK's transports), each message at most [`MAX_MESSAGE_BYTES`].

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use context_harness_providers::{AccessToken, OAuthService, tls_trust_failure, unresolved_host};
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::budget::{Budget, Held};
use super::jsonrpc::MAX_MESSAGE_BYTES;

/// `Accept` of every POST (MCP Streamable HTTP: the client MUST list both).
const ACCEPT_POST: &str = "application/json, text/event-stream";

/// An upstream failure, for a JSON-RPC error response. Holds no secret (reqwest errors are shown
/// without their URL; URLs here carry no token anyway).
#[derive(Debug, Clone)]
pub(crate) struct UpstreamError {
    pub(crate) message: String,
    /// The stable code: `network_error`, `timeout` or `message_too_large`.
    pub(crate) code: &'static str,
    /// What to do about it (`data.hint` of the JSON-RPC error), when there is advice.
    pub(crate) hint: Option<String>,
    /// The answer's body broke off after its head: on the 2026-07-28 wire the request is re-issued.
    pub(crate) broke_off: bool,
}

impl UpstreamError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
            hint: None,
            broke_off: false,
        }
    }

    /// An answer whose body broke off after its head (see [`Self::broke_off`]).
    pub(crate) fn broken(message: impl Into<String>) -> Self {
        Self {
            broke_off: true,
            ..Self::new("network_error", message)
        }
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error, host: &str) -> Self {
        // An untrusted certificate says so and names SSL_CERT_FILE / SSL_CERT_DIR, as the sign-in
        // traffic does; the message carries the hint too, since many clients show only the message.
        let whom = format!("the MCP server at {host}");
        // A host name that does not resolve says so too (not "cannot connect").
        if let Some(err) = tls_trust_failure(e, &whom).or_else(|| unresolved_host(e, &whom)) {
            let hint = err.hint().map(str::to_owned);
            let message = match &hint {
                Some(hint) => format!("{err}; {hint}"),
                None => err.to_string(),
            };
            return Self {
                message,
                code: "network_error",
                hint,
                broke_off: false,
            };
        }
        if e.is_connect() {
            // Also a connect timeout: the server is unreachable, not slow to answer.
            Self::new(
                "network_error",
                format!("cannot connect to the MCP server at {host}"),
            )
        } else if e.is_timeout() {
            Self::new(
                "timeout",
                format!("the MCP server at {host} did not answer in time"),
            )
        } else {
            Self::new(
                "network_error",
                format!(
                    "the connection to the MCP server at {host} broke or its answer was unreadable"
                ),
            )
        }
    }

    fn too_large() -> Self {
        Self::new(
            "message_too_large",
            format!(
                "the server sent a message over {} MiB",
                MAX_MESSAGE_BYTES / (1024 * 1024)
            ),
        )
    }
}

/// The session headers of a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionHeaders {
    /// `Mcp-Session-Id`.
    pub(crate) session_id: Option<String>,
    /// `MCP-Protocol-Version` (after the negotiation).
    pub(crate) protocol_version: Option<String>,
}

/// The client and the headers every request carries.
pub(crate) struct Upstream {
    client: reqwest::Client,
    extra: HeaderMap,
}

impl Upstream {
    /// Builds the client with `service`'s setup (proxies from its environment, loopback direct, TLS,
    /// connect timeout, no redirects). `extra` are the `--header` values (marked sensitive: they may
    /// be keys).
    pub(crate) fn new(service: &OAuthService, extra: HeaderMap) -> Result<Self, crate::Error> {
        let client = service
            .http_client_builder()
            .build()
            .map_err(crate::Error::Http)?;
        Ok(Self { client, extra })
    }

    /// A request with the bearer, the `--header` values and the session headers.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
        bearer: Option<&AccessToken>,
        session: &SessionHeaders,
    ) -> reqwest::RequestBuilder {
        let mut headers = self.extra.clone();
        if let Some(token) = bearer
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
        {
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Some(id) = session.session_id.as_deref()
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert(HeaderName::from_static("mcp-session-id"), value);
        }
        if let Some(version) = session.protocol_version.as_deref()
            && let Ok(value) = HeaderValue::from_str(version)
        {
            headers.insert(HeaderName::from_static("mcp-protocol-version"), value);
        }
        self.client.request(method, url.clone()).headers(headers)
    }

    /// A POST of one message.
    pub(crate) fn post(
        &self,
        url: &Url,
        bearer: Option<&AccessToken>,
        session: &SessionHeaders,
        body: &str,
    ) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, url, bearer, session)
            .header(header::ACCEPT, ACCEPT_POST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    }
}

/// The `Mcp-Session-Id` of an answer.
pub(crate) fn session_id(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 1024)
        .map(str::to_owned)
}

/// The media type of an answer, lowercased, without parameters.
pub(crate) fn media_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a whole body as UTF-8 text, at most [`MAX_MESSAGE_BYTES`].
pub(crate) async fn read_body(
    response: reqwest::Response,
    host: &str,
) -> Result<String, UpstreamError> {
    read_body_max(response, host, MAX_MESSAGE_BYTES).await
}

/// [`read_body`] of a message for the host: each chunk is charged to the bridge's [`Budget`] as it
/// arrives (a spent budget stops the reading), and the message keeps the charge.
pub(crate) async fn read_message(
    response: reqwest::Response,
    host: &str,
) -> Result<(String, Held), UpstreamError> {
    let mut held = Held::default();
    let expected = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(expected.min(MAX_MESSAGE_BYTES));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let mut error = UpstreamError::from_reqwest(&e, host);
            error.broke_off = !e.is_timeout();
            error
        })?;
        if body.len().saturating_add(chunk.len()) > MAX_MESSAGE_BYTES {
            return Err(UpstreamError::too_large());
        }
        Budget::global().charge(&mut held, chunk.len()).await;
        body.extend_from_slice(&chunk);
    }
    let body = String::from_utf8(body)
        .map_err(|_| UpstreamError::new("network_error", "the server's answer is not UTF-8"))?;
    Ok((body, held))
}

/// Reads a whole body as UTF-8 text, at most `max` bytes.
async fn read_body_max(
    response: reqwest::Response,
    host: &str,
    max: usize,
) -> Result<String, UpstreamError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let mut error = UpstreamError::from_reqwest(&e, host);
            error.broke_off = !e.is_timeout();
            error
        })?;
        if body.len().saturating_add(chunk.len()) > max {
            return Err(UpstreamError::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map_err(|_| UpstreamError::new("network_error", "the server's answer is not UTF-8"))
}

/// One SSE event.
#[derive(Debug)]
pub(crate) struct Event {
    /// The `event` field (`None` means `message`).
    pub(crate) event: Option<String>,
    pub(crate) data: String,
    pub(crate) id: Option<String>,
    /// The `retry` field, in milliseconds.
    pub(crate) retry: Option<u64>,
    /// The bytes read for it, charged to the bridge's [`Budget`] until this is dropped (or the
    /// charge is passed on with the message to stdout).
    pub(crate) held: Held,
}

type Events = Pin<Box<dyn Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Send>>;

/// An SSE answer being read.
pub(crate) struct EventStream {
    events: Events,
    /// Bytes received since the last event: the size limit of one event.
    pending: Arc<AtomicUsize>,
    /// The charge of the bytes received since the last event.
    held: Arc<Mutex<Held>>,
    host: String,
}

impl EventStream {
    pub(crate) fn new(response: reqwest::Response, host: &str) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pending);
        let held = Arc::new(Mutex::new(Held::default()));
        let charged = Arc::clone(&held);
        let bytes = response
            .bytes_stream()
            .map_err(std::io::Error::other)
            .and_then(move |chunk: bytes::Bytes| {
                let total = counter
                    .fetch_add(chunk.len(), Ordering::Relaxed)
                    .saturating_add(chunk.len());
                let charged = Arc::clone(&charged);
                async move {
                    // Over the limit plus one read's worth: one event is too large.
                    if total > MAX_MESSAGE_BYTES.saturating_add(64 * 1024) {
                        return Err(std::io::Error::other("message too large"));
                    }
                    // Charged before the parser holds it: a spent budget stops the reading here.
                    let mut held = charged
                        .lock()
                        .map(|mut h| std::mem::take(&mut *h))
                        .unwrap_or_default();
                    Budget::global().charge(&mut held, chunk.len()).await;
                    if let Ok(mut h) = charged.lock() {
                        h.merge(held);
                    }
                    Ok(chunk)
                }
            });
        Self {
            events: Box::pin(sse_stream::SseByteStream::new(bytes)),
            pending,
            held,
            host: host.to_owned(),
        }
    }

    /// The next event with data; `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Option<Result<Event, UpstreamError>> {
        loop {
            let item = self.events.next().await?;
            self.pending.store(0, Ordering::Relaxed);
            let held = self
                .held
                .lock()
                .map(|mut h| std::mem::take(&mut *h))
                .unwrap_or_default();
            match item {
                Ok(sse) => {
                    let Some(data) = sse.data else {
                        // A block with only an id or a retry (a priming event): nothing to forward,
                        // but its id counts for a resumption.
                        if sse.id.is_some() || sse.retry.is_some() {
                            return Some(Ok(Event {
                                event: sse.event,
                                data: String::new(),
                                id: sse.id,
                                retry: sse.retry,
                                held,
                            }));
                        }
                        continue;
                    };
                    if data.len() > MAX_MESSAGE_BYTES {
                        return Some(Err(UpstreamError::too_large()));
                    }
                    return Some(Ok(Event {
                        event: sse.event,
                        data,
                        id: sse.id,
                        retry: sse.retry,
                        held,
                    }));
                }
                Err(sse_stream::Error::Body(e)) if e.to_string() == "message too large" => {
                    return Some(Err(UpstreamError::too_large()));
                }
                Err(_) => {
                    return Some(Err(UpstreamError::broken(format!(
                        "the event stream from {} broke off",
                        self.host
                    ))));
                }
            }
        }
    }
}
