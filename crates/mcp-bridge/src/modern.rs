//! `mcp proxy` on the MCP 2026-07-28 wire (stateless Streamable HTTP): what the host sends decides.
//! A request whose `params._meta` carries `io.modelcontextprotocol/protocolVersion` is POSTed on its
//! own, with no session, with the headers of [`wire2026::request_headers`] (and `Mcp-Param-*` from
//! the tool schemas the [`ToolCache`](super::tool_headers::ToolCache) read from earlier `tools/list`
//! answers); its answer (a JSON body, or the events of an SSE stream up to the response) is relayed.
//!
//! - A `tools/list` answer loses the tools whose `x-mcp-header` annotations are invalid; a call to
//!   such a tool is refused (`-32602`) without reaching the server.
//! - A refused POST whose body is a JSON-RPC error (400 `UnsupportedProtocolVersion` with its
//!   `supported` list, 400 `HeaderMismatch`, 404 "Method not found", …) is that request's answer,
//!   relayed with the host's id: the host picks another version and retries ("Protocol Version
//!   Negotiation"). A `HeaderMismatch` to a `tools/call` first makes the bridge list the tools itself
//!   (the schema may have changed) and send the call once more ("Client Behavior").
//! - An answer stream that breaks off before the response is re-issued as a new request with a new
//!   id, at most [`MAX_REISSUES`] times; the answer goes to the host with its own id. Not
//!   `subscriptions/listen`: its stream ending is answered with an error, and the host listens again
//!   (its notifications carry the listen request's id).
//! - `notifications/cancelled` from the host closes the answer stream of that request (the HTTP
//!   cancellation signal, "Cancellation") and is not forwarded; no answer is relayed for it. Other
//!   notifications are POSTed with `MCP-Protocol-Version` and `Mcp-Method`; responses of the host are
//!   not sent (the client MUST NOT send responses on this wire).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::Notify;

use super::budget::Held;
use super::tool_headers::ToolHeaders;
use super::upstream::{self, EventStream, SessionHeaders, UpstreamError};
use super::wire2026::{self, HEADER_MISMATCH, ModernRequest};
use super::{Bridge, Fail, jsonrpc};

/// Re-issues of one request whose answer stream broke off, at most.
pub(super) const MAX_REISSUES: u32 = 2;
/// Pages of the bridge's own `tools/list` walk after a `HeaderMismatch`, at most.
const MAX_TOOL_PAGES: usize = 10;
/// JSON-RPC "Invalid params": a call to a tool the bridge refused.
const INVALID_PARAMS: i64 = -32602;

/// How one POST of a request ended.
enum Outcome {
    /// The answer went to the host.
    Answered,
    /// The server refused it with a JSON-RPC error: the answer for the host, and whether it is a
    /// `HeaderMismatch`.
    Refused { line: String, header_mismatch: bool },
    /// The answer stream broke off before the response.
    Broken(UpstreamError),
}

impl Bridge {
    /// The protocol version of the host's latest 2026-07-28 request, if it sent one.
    pub(super) fn modern_version(&self) -> Option<String> {
        self.modern.lock().ok().and_then(|v| v.clone())
    }

    /// A fresh request id of the bridge's own (JSON text).
    fn fresh_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("\"context-harness-{n}\"")
    }

    /// Forwards a request of the 2026-07-28 wire and relays its answer (see the module
    /// documentation). Returns without an answer when the host cancels it.
    pub(super) async fn forward_modern(
        self: &Arc<Self>,
        text: &str,
        request: &ModernRequest,
    ) -> Result<(), Fail> {
        if let Ok(mut version) = self.modern.lock() {
            *version = Some(request.version.clone());
        }
        let key = request.id.to_string();
        let cancel = Arc::new(Notify::new());
        if let Ok(mut cancels) = self.cancels.lock() {
            cancels.insert(key.clone(), Arc::clone(&cancel));
        }
        let result = tokio::select! {
            result = self.modern_exchange(text, request) => result,
            () = cancel.notified() => {
                tracing::debug!(method = %request.method, "the host cancelled the request; its answer stream is closed");
                Ok(())
            }
        };
        if let Ok(mut cancels) = self.cancels.lock()
            && cancels.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cancel))
        {
            cancels.remove(&key);
        }
        result
    }

    async fn modern_exchange(&self, text: &str, request: &ModernRequest) -> Result<(), Fail> {
        let mut body = Cow::Borrowed(text);
        let mut sent_id = request.id.clone();
        let mut reissues = 0u32;
        let mut listed = false;
        loop {
            let headers = self.modern_headers(text, request)?;
            let response = self
                .post_authorized_with(&self.url, &body, &SessionHeaders::default(), &headers)
                .await?;
            match self.modern_answer(response, request, &sent_id).await? {
                Outcome::Answered => return Ok(()),
                Outcome::Refused {
                    header_mismatch: true,
                    ..
                } if request.method == "tools/call" && !listed => {
                    listed = true;
                    tracing::info!(
                        "the server refused the call's headers (HeaderMismatch); listing the tools again, then calling once more"
                    );
                    self.list_tools(request).await;
                }
                Outcome::Refused { line, .. } => {
                    self.send_out(line).await;
                    return Ok(());
                }
                Outcome::Broken(error) => {
                    if request.method == "subscriptions/listen" || reissues >= MAX_REISSUES {
                        return Err(Fail::Upstream(error));
                    }
                    reissues = reissues.saturating_add(1);
                    let id = self.fresh_id();
                    let (Some(reissued), Ok(new_id)) = (
                        wire2026::with_id(text, &id),
                        serde_json::from_str::<Value>(&id),
                    ) else {
                        return Err(Fail::Upstream(error));
                    };
                    tracing::info!(
                        attempt = reissues,
                        method = %request.method,
                        "the answer stream broke off before the response; re-issuing the request with a new id"
                    );
                    body = Cow::Owned(reissued);
                    sent_id = new_id;
                }
            }
        }
    }

    /// The headers of a request's POST; a call to a tool with invalid annotations is refused.
    fn modern_headers(&self, text: &str, request: &ModernRequest) -> Result<HeaderMap, Fail> {
        let mut params = Vec::new();
        if request.method == "tools/call"
            && let Some(name) = &request.name
            && let Some(tool) = self.tools.get(name)
        {
            match &*tool {
                ToolHeaders::Valid(declarations) => {
                    params = wire2026::param_headers(text, declarations);
                }
                ToolHeaders::Invalid(reason) => {
                    return Err(Fail::Request {
                        code: INVALID_PARAMS,
                        message: format!(
                            "the MCP server's tool `{}` is not called: {}",
                            context_harness_providers::terminal_text_max(name, 128),
                            context_harness_providers::terminal_text_max(reason, 300)
                        ),
                        data_code: "invalid_tool",
                    });
                }
            }
        }
        wire2026::request_headers(request, &params).map_err(|message| Fail::Request {
            code: jsonrpc::INVALID_REQUEST,
            message,
            data_code: "invalid_request",
        })
    }

    /// Reads the answer to the POST of `request` (sent with `sent_id`) and relays it.
    async fn modern_answer(
        &self,
        response: reqwest::Response,
        request: &ModernRequest,
        sent_id: &Value,
    ) -> Result<Outcome, Fail> {
        let status = response.status();
        let media = upstream::media_type(&response);
        if !status.is_success() {
            // A refusal's body is small; one that cannot be read is no JSON-RPC error.
            let body = upstream::read_body(response, &self.host)
                .await
                .unwrap_or_default();
            if let Some(error) = wire2026::server_error(&body, sent_id, &request.raw_id) {
                tracing::info!(status = status.as_u16(), code = error.code, method = %request.method, "the server refused the request");
                return Ok(Outcome::Refused {
                    line: error.line,
                    header_mismatch: error.code == HEADER_MISMATCH,
                });
            }
            return Err(Fail::Upstream(self.status_error(status, &media)));
        }
        if status == StatusCode::ACCEPTED || media.is_empty() && status == StatusCode::OK {
            return Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                format!(
                    "the MCP server at {} accepted the request without answering it",
                    self.host
                ),
            )));
        }
        match media.as_str() {
            "text/event-stream" => {
                let mut events = EventStream::new(response, &self.host);
                while let Some(event) = events.next().await {
                    let mut event = match event {
                        Ok(event) => event,
                        Err(error) if error.broke_off => return Ok(Outcome::Broken(error)),
                        Err(error) => return Err(Fail::Upstream(error)),
                    };
                    if event.data.is_empty()
                        || event.event.as_deref().is_some_and(|e| e != "message")
                    {
                        continue;
                    }
                    match jsonrpc::response_id(&event.data) {
                        Some(id) if &id == sent_id => {
                            let (data, held) = (
                                std::mem::take(&mut event.data),
                                std::mem::take(&mut event.held),
                            );
                            self.relay_answer(request, sent_id, data, held).await?;
                            return Ok(Outcome::Answered);
                        }
                        Some(_) => {
                            tracing::debug!("an answer to another request on the stream; dropped");
                        }
                        None => {
                            self.relay(&mut event).await;
                        }
                    }
                }
                Ok(Outcome::Broken(UpstreamError::broken(format!(
                    "the answer stream from the MCP server at {} ended before the response",
                    self.host
                ))))
            }
            "application/json" => {
                let (body, held) = match upstream::read_message(response, &self.host).await {
                    Ok(message) => message,
                    Err(error) if error.broke_off => return Ok(Outcome::Broken(error)),
                    Err(error) => return Err(Fail::Upstream(error)),
                };
                if jsonrpc::response_id(&body).as_ref() != Some(sent_id) {
                    return Err(Fail::Upstream(UpstreamError::new(
                        "network_error",
                        format!(
                            "the MCP server at {} answered with something that is not the response to the request",
                            self.host
                        ),
                    )));
                }
                self.relay_answer(request, sent_id, body, held).await?;
                Ok(Outcome::Answered)
            }
            other => Err(Fail::Upstream(UpstreamError::new(
                "network_error",
                format!(
                    "the MCP server at {} answered with {other}, not JSON-RPC",
                    self.host
                ),
            ))),
        }
    }

    /// Relays the response: a `tools/list` answer without invalid tools, the host's id put back
    /// after a re-issue; with the charge of the bytes read for it (`held`).
    async fn relay_answer(
        &self,
        request: &ModernRequest,
        sent_id: &Value,
        data: String,
        held: Held,
    ) -> Result<(), Fail> {
        let mut line = jsonrpc::into_one_line(data);
        if request.method == "tools/list"
            && let Some(filtered) = self.tools.read_tools_list(&line)
        {
            line = filtered;
        }
        if sent_id != &request.id {
            line = wire2026::with_id(&line, &request.raw_id).ok_or_else(|| {
                Fail::Upstream(UpstreamError::new(
                    "network_error",
                    "the answer to a re-issued request could not be given the host's id",
                ))
            })?;
        }
        let kind = jsonrpc::Kind::Response {
            id: request.id.clone(),
        };
        self.out.relay(line, &kind, held).await;
        Ok(())
    }

    /// "Error POSTing": the server answered with a status that is neither a result nor a
    /// JSON-RPC error.
    pub(super) fn status_error(&self, status: StatusCode, media: &str) -> UpstreamError {
        UpstreamError::new(
            "network_error",
            format!(
                "the MCP server at {} answered HTTP {}{}",
                self.host,
                status.as_u16(),
                if media.is_empty() {
                    String::new()
                } else {
                    format!(" ({media})")
                }
            ),
        )
    }

    /// The bridge's own `tools/list` walk with the host's envelope, read into the tool cache only
    /// (nothing goes to the host). Failures are logged: the call is then sent once more as it is.
    async fn list_tools(&self, request: &ModernRequest) {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_TOOL_PAGES {
            let body = wire2026::tools_list_request(
                &self.fresh_id(),
                &request.envelope,
                cursor.as_deref(),
            );
            let Some(list) = wire2026::modern_request(&body) else {
                return;
            };
            let Ok(headers) = wire2026::request_headers(&list, &[]) else {
                return;
            };
            let answer = match self
                .post_authorized_with(&self.url, &body, &SessionHeaders::default(), &headers)
                .await
            {
                Ok(response) if response.status().is_success() => {
                    self.read_answer(response, &list.id).await
                }
                Ok(response) => {
                    tracing::debug!(status = %response.status(), "the server refused the bridge's tools/list");
                    None
                }
                Err(_) => None,
            };
            let Some(answer) = answer else {
                tracing::info!("the bridge's own tools/list got no answer");
                return;
            };
            self.tools.read_tools_list(&answer);
            cursor = wire2026::next_cursor(&answer);
            if cursor.is_none() {
                return;
            }
        }
    }

    /// The response to `id` in an answer (JSON or SSE), read without relaying anything.
    async fn read_answer(&self, response: reqwest::Response, id: &Value) -> Option<String> {
        if upstream::media_type(&response) == "text/event-stream" {
            let mut events = EventStream::new(response, &self.host);
            while let Some(Ok(event)) = events.next().await {
                if jsonrpc::response_id(&event.data).as_ref() == Some(id) {
                    return Some(event.data);
                }
            }
            return None;
        }
        let body = upstream::read_body(response, &self.host).await.ok()?;
        (jsonrpc::response_id(&body).as_ref() == Some(id)).then_some(body)
    }

    /// A notification or response of the host on the 2026-07-28 wire (see the module
    /// documentation).
    pub(super) async fn forward_modern_other(
        &self,
        text: &str,
        kind: &jsonrpc::Kind,
        version: &str,
    ) -> Result<(), Fail> {
        let jsonrpc::Kind::Notification { method } = kind else {
            tracing::warn!(
                "the host answered a server request; the 2026-07-28 wire carries no responses of the client, so it is dropped"
            );
            return Ok(());
        };
        if method == "notifications/cancelled" {
            let cancel = wire2026::cancelled_request(text).and_then(|id| {
                self.cancels
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&id.to_string()).cloned())
            });
            match cancel {
                Some(cancel) => cancel.notify_one(),
                None => tracing::debug!("a cancellation of no request in flight; dropped"),
            }
            return Ok(());
        }
        let headers = wire2026::notification_headers(version, method);
        let response = self
            .post_authorized_with(&self.url, text, &SessionHeaders::default(), &headers)
            .await?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(%status, "the server refused a notification");
        }
        Ok(())
    }
}
