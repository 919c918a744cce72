//! SSE streams of the 2025 wire that close early (MCP 2025-11-25 "Resumability and Redelivery",
//! SEP-1699): a server may end the answer stream of a POST after a priming event (an `id` and a
//! `retry`), before the response, and replay what follows on a GET with `Last-Event-ID`.
//!
//! - The bridge waits the stream's `retry` delay (else [`DEFAULT_RETRY`]; kept within
//!   [`MIN_RETRY`]..=[`MAX_RETRY`]), then GETs the endpoint with `Last-Event-ID` and the session
//!   headers, and relays what comes until the response; at most [`MAX_RESUMES`] times per request
//!   (a GET that fails to connect counts too), and never once the request is answered on another
//!   stream, cancelled or timed out (so an answer is never relayed twice).
//! - A stream that named no event id is not resumable: its end without the response is an error.
//! - The standalone GET stream keeps its last event id and `retry` the same way ([`Cursor`]).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::upstream::{self, Event, EventStream, UpstreamError};
use super::{Bridge, Fail, jsonrpc};
use context_harness_providers::protocol::Exchange;

/// The delay before a resumption when the stream named no `retry`.
pub(super) const DEFAULT_RETRY: Duration = Duration::from_millis(500);
/// A `retry` below this is raised to it (no reconnection storm).
pub(super) const MIN_RETRY: Duration = Duration::from_millis(100);
/// A `retry` above this is lowered to it (no request parked for hours).
pub(super) const MAX_RETRY: Duration = Duration::from_secs(30);
/// Resumptions of one POST's answer stream, at most.
pub(super) const MAX_RESUMES: u32 = 5;
/// The longest event id kept for `Last-Event-ID`, in bytes.
const MAX_EVENT_ID: usize = 1024;

/// Where a stream stands for a reconnection: its last usable event id and its `retry`.
#[derive(Debug, Default, Clone)]
pub(super) struct Cursor {
    /// The last event id that can go back in a `Last-Event-ID` header.
    pub(super) last_event_id: Option<String>,
    /// The server's `retry`, bounded.
    pub(super) retry: Option<Duration>,
}

impl Cursor {
    /// Notes an event's `id` and `retry`. Only an id that can go back in a header is kept: one
    /// with control characters (or absurdly long) would make every reconnection fail to build.
    pub(super) fn note(&mut self, event: &Event) {
        if let Some(id) = &event.id
            && id.len() <= MAX_EVENT_ID
            && id.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        {
            self.last_event_id = Some(id.clone());
        }
        if let Some(ms) = event.retry {
            self.retry = Some(Duration::from_millis(ms).clamp(MIN_RETRY, MAX_RETRY));
        }
    }

    /// The wait before reconnecting.
    pub(super) fn delay(&self) -> Duration {
        self.retry.unwrap_or(DEFAULT_RETRY)
    }
}

/// How reading one stream ended.
enum End {
    /// The response to the request came (with the `initialize` answer's version).
    Answered(Option<String>),
    /// The stream ended (`None`) or broke off (`Some`) before it.
    Early(Option<UpstreamError>),
}

impl Bridge {
    /// Relays the SSE answer of a POST (2025 wire) until the response to `request_id`, resuming
    /// the stream after an early end (see the module documentation). `Some(version)` when the
    /// response came (`version`: the `protocolVersion` of an `initialize` answer), or when it was
    /// answered on another stream meanwhile; `None` when a stream without a request ended.
    ///
    /// # Errors
    ///
    /// [`Fail::Upstream`] when the stream broke off and cannot be resumed, the resumption was
    /// refused, or [`MAX_RESUMES`] ran out; [`Fail::Auth`] from the resumption's GET.
    pub(super) async fn relay_answer_stream(
        &self,
        response: reqwest::Response,
        request_id: Option<&Value>,
        is_initialize: bool,
    ) -> Result<Option<Option<String>>, Fail> {
        let mut cursor = Cursor::default();
        let mut events = EventStream::new(response, &self.host);
        let mut resumes = 0u32;
        loop {
            let early = match self
                .read_until_answer(&mut events, &mut cursor, request_id, is_initialize)
                .await?
            {
                End::Answered(version) => return Ok(Some(version)),
                End::Early(early) => early,
            };
            let Some(id) = request_id else {
                return early.map_or(Ok(None), |e| Err(Fail::Upstream(e)));
            };
            let Some(last_event_id) = cursor.last_event_id.clone() else {
                // Nothing to resume from.
                return early.map_or(Ok(None), |e| Err(Fail::Upstream(e)));
            };
            loop {
                if !self.out.waiting(id) {
                    tracing::debug!("the request was answered (or closed) meanwhile; not resuming");
                    return Ok(Some(None));
                }
                if resumes >= MAX_RESUMES {
                    return Err(Fail::Upstream(UpstreamError::new(
                        "network_error",
                        format!(
                            "the answer stream from the MCP server at {} ended before the response {MAX_RESUMES} times",
                            self.host
                        ),
                    )));
                }
                resumes = resumes.saturating_add(1);
                tracing::info!(
                    attempt = resumes,
                    delay_ms = u64::try_from(cursor.delay().as_millis()).unwrap_or(u64::MAX),
                    "the answer stream ended before the response; resuming it with Last-Event-ID"
                );
                tokio::time::sleep(cursor.delay()).await;
                if !self.out.waiting(id) {
                    return Ok(Some(None));
                }
                match self.resume_get(&last_event_id).await {
                    Ok(Ok(response)) => {
                        events = EventStream::new(response, &self.host);
                        break;
                    }
                    Ok(Err(refused)) => return Err(Fail::Upstream(refused)),
                    Err(Fail::Upstream(e)) => {
                        tracing::debug!(error = %e.message, "the resumption's GET failed; trying again");
                    }
                    Err(fail) => return Err(fail),
                }
            }
        }
    }

    /// Reads `events` until the response to `request_id`, relaying everything else.
    async fn read_until_answer(
        &self,
        events: &mut EventStream,
        cursor: &mut Cursor,
        request_id: Option<&Value>,
        is_initialize: bool,
    ) -> Result<End, Fail> {
        while let Some(event) = events.next().await {
            let mut event = match event {
                Ok(event) => event,
                Err(e) if e.broke_off => return Ok(End::Early(Some(e))),
                Err(e) => return Err(Fail::Upstream(e)),
            };
            cursor.note(&event);
            tracing::trace!(id = ?event.id, kind = ?event.event, response = ?jsonrpc::response_id(&event.data), "an event of the POST's stream (or its resumption)");
            let version = is_initialize
                .then(|| jsonrpc::protocol_version(&event.data))
                .flatten();
            if let Some(jsonrpc::Kind::Response { id }) = self.relay(&mut event).await
                && request_id == Some(&id)
            {
                // The server closes the stream after the answer; do not wait for it.
                return Ok(End::Answered(version));
            }
        }
        Ok(End::Early(None))
    }

    /// The GET that resumes a stream after `last_event_id` (one exchange: the request waits on
    /// it). The inner error: the server answered, with anything but an SSE stream (its status).
    async fn resume_get(
        &self,
        last_event_id: &str,
    ) -> Result<Result<reqwest::Response, UpstreamError>, Fail> {
        let session = self.session();
        let mut exchange = Exchange::request();
        let response = self
            .send_authorized(&mut exchange, &self.url, |token| {
                self.upstream
                    .request(reqwest::Method::GET, &self.url, token, &session.headers)
                    .header(reqwest::header::ACCEPT, "text/event-stream")
                    .header("last-event-id", last_event_id)
            })
            .await?;
        let status = response.status();
        let media = upstream::media_type(&response);
        if status.is_success() && media == "text/event-stream" {
            return Ok(Ok(response));
        }
        let mut error = self.status_error(status, &media);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            error.message = format!(
                "the MCP server at {} ended the answer stream early and offers no GET to resume it (HTTP 405)",
                self.host
            );
        }
        Ok(Err(error))
    }
}
