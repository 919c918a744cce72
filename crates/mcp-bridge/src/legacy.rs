//! The legacy HTTP+SSE transport (MCP 2024-11-05), for servers that refuse the `initialize` POST with
//! 400, 404 or 405 (MCP 2025-03-26 "Backwards Compatibility"): a GET on the server URL opens an SSE
//! stream whose first event, `endpoint`, names the URL to POST messages to; every answer comes on
//! that stream. The endpoint must be on the server's origin, and — while a token is held — inside
//! the token's audience (the bearer goes there).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use context_harness_providers::protocol::Exchange;
use serde_json::Value;
use url::Url;

use super::upstream::{EventStream, SessionHeaders, UpstreamError};
use super::{Bridge, Fail, jsonrpc};

/// A connected legacy session.
pub(super) struct Legacy {
    endpoint: Url,
    /// Requests posted and not answered yet (their ids as JSON text).
    pending: Arc<Mutex<Option<HashSet<String>>>>,
    task: tokio::task::AbortHandle,
}

fn broken(message: impl Into<String>) -> Fail {
    Fail::Upstream(UpstreamError::new("network_error", message))
}

impl Legacy {
    /// Opens the stream and reads the `endpoint` event.
    pub(super) async fn connect(bridge: &Arc<Bridge>) -> Result<Arc<Self>, Fail> {
        let mut exchange = Exchange::request();
        let response = bridge
            .send_authorized(&mut exchange, &bridge.url, |token| {
                bridge
                    .upstream
                    .request(
                        reqwest::Method::GET,
                        &bridge.url,
                        token,
                        &SessionHeaders::default(),
                    )
                    .header(reqwest::header::ACCEPT, "text/event-stream")
            })
            .await?;
        if !response.status().is_success()
            || super::upstream::media_type(&response) != "text/event-stream"
        {
            return Err(broken(format!(
                "the MCP server at {} speaks neither Streamable HTTP nor HTTP+SSE (GET answered HTTP {})",
                bridge.host,
                response.status().as_u16()
            )));
        }
        let mut events = EventStream::new(response, &bridge.host);
        let endpoint = loop {
            match events.next().await {
                Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                    break event.data;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Fail::Upstream(e)),
                None => return Err(broken("the SSE stream ended before naming its endpoint")),
            }
        };
        let endpoint = bridge
            .url
            .join(endpoint.trim())
            .ok()
            .filter(|u| u.origin() == bridge.url.origin())
            .ok_or_else(|| broken("the SSE endpoint is not on the server's origin; refused"))?;
        if bridge.auth.holds_token() && !bridge.auth.covers(&endpoint) {
            // The bearer never goes there (RFC 9728 §3.3: the audience covers it, or not).
            return Err(Fail::Auth(bridge.auth.outside_audience(&endpoint)));
        }
        tracing::info!(
            path = endpoint.path(),
            "connected with the legacy HTTP+SSE transport"
        );
        let pending: Arc<Mutex<Option<HashSet<String>>>> =
            Arc::new(Mutex::new(Some(HashSet::new())));
        let relay_pending = Arc::clone(&pending);
        let relay = Arc::clone(bridge);
        let task = tokio::spawn(async move {
            while let Some(Ok(mut event)) = events.next().await {
                if let Some(jsonrpc::Kind::Response { id }) = relay.relay(&mut event).await
                    && let Ok(mut pending) = relay_pending.lock()
                    && let Some(set) = pending.as_mut()
                {
                    set.remove(&id.to_string());
                }
            }
            // The stream is gone: every request still waiting gets an error.
            let left = relay_pending
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .unwrap_or_default();
            for id in left {
                let id: Value = serde_json::from_str(&id).unwrap_or(Value::Null);
                relay
                    .send_out(jsonrpc::error_response(
                        &id,
                        jsonrpc::UPSTREAM_ERROR,
                        &format!("the SSE stream from {} ended before the answer", relay.host),
                        "network_error",
                        None,
                    ))
                    .await;
            }
        });
        Ok(Arc::new(Self {
            endpoint,
            pending,
            task: task.abort_handle(),
        }))
    }

    /// POSTs one message to the endpoint; the answer comes on the stream.
    pub(super) async fn post(&self, bridge: &Bridge, text: &str) -> Result<(), Fail> {
        let id = match jsonrpc::classify(text) {
            Some(jsonrpc::Kind::Request { id, .. }) => Some(id.to_string()),
            _ => None,
        };
        if let Some(id) = &id {
            let Ok(mut pending) = self.pending.lock() else {
                return Err(broken("internal state poisoned"));
            };
            match pending.as_mut() {
                Some(set) => {
                    set.insert(id.clone());
                }
                None => return Err(broken("the SSE stream from the server has ended")),
            }
        }
        let result = bridge
            .post_authorized(&self.endpoint, text, &SessionHeaders::default())
            .await
            .and_then(|response| {
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(broken(format!(
                        "the MCP server at {} answered HTTP {}",
                        bridge.host,
                        response.status().as_u16()
                    )))
                }
            });
        if result.is_err()
            && let Some(id) = &id
            && let Ok(mut pending) = self.pending.lock()
            && let Some(set) = pending.as_mut()
        {
            set.remove(id);
        }
        result
    }

    /// Closes the stream.
    pub(super) fn close(&self) {
        self.task.abort();
    }
}
