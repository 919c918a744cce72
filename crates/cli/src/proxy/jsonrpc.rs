//! The little of JSON-RPC 2.0 the bridge reads: what kind of message a line is, its `id`, and the error
//! responses the bridge writes itself. Messages are forwarded as the bytes that came in; nothing here
//! rewrites them (JSON-RPC 2.0 §4, §5; MCP "Base Protocol").

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The largest message accepted in either direction (a line on stdin, a JSON answer, one SSE event).
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC "Parse error": a line on stdin that is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid Request": a message over [`MAX_MESSAGE_BYTES`].
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// The server could not be reached or answered something that is not a JSON-RPC answer (5xx, HTML,
/// a reset, a timeout). Implementation-defined server error range (JSON-RPC 2.0 §5.1).
pub(crate) const UPSTREAM_ERROR: i64 = -32000;
/// The server needs a sign-in that the bridge could not complete: the message says what to run.
pub(crate) const AUTH_REQUIRED: i64 = -32003;

/// What a message is, as far as the bridge cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A request: it has a `method` and an `id`; it gets exactly one response.
    Request { id: Value, method: String },
    /// A notification: a `method` and no `id`.
    Notification { method: String },
    /// A response (`result` or `error`) to a request of the other side.
    Response { id: Value },
    /// Anything else that is JSON (a batch, an unknown shape): forwarded unchanged.
    Other,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// Classifies `text`; `None` when it is not JSON at all.
pub(crate) fn classify(text: &str) -> Option<Kind> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return serde_json::from_str::<IgnoredAny>(text)
            .ok()
            .map(|_| Kind::Other);
    }
    let probe: Probe = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(_) => {
            // An object with fields of unexpected types is still JSON: forward it unchanged.
            return serde_json::from_str::<IgnoredAny>(text)
                .ok()
                .map(|_| Kind::Other);
        }
    };
    let id = probe.id.filter(|id| !id.is_null());
    Some(match (probe.method, id) {
        (Some(method), Some(id)) => Kind::Request { id, method },
        (Some(method), None) => Kind::Notification { method },
        (None, Some(id)) if probe.result.is_some() || probe.error.is_some() => {
            Kind::Response { id }
        }
        _ => Kind::Other,
    })
}

/// The `id` of a response message (`result` or `error`), if `text` is one.
pub(crate) fn response_id(text: &str) -> Option<Value> {
    match classify(text)? {
        Kind::Response { id } => Some(id),
        _ => None,
    }
}

/// `result.protocolVersion` of an `initialize` answer.
pub(crate) fn protocol_version(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        result: Option<InitResult>,
    }
    #[derive(Deserialize)]
    struct InitResult {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    let answer: Answer = serde_json::from_str(text).ok()?;
    answer.result?.protocol_version
}

/// One line for stdout: the message as it came, with raw line breaks (which valid JSON can only have
/// as whitespace between tokens; inside strings they are escaped) turned into spaces.
pub(crate) fn one_line(text: &str) -> String {
    let text = text.trim();
    if text.contains(['\n', '\r']) {
        text.replace(['\n', '\r'], " ")
    } else {
        text.to_owned()
    }
}

/// An error response to request `id` (JSON-RPC 2.0 §5.1), with a stable `data.code` (the
/// [`ErrorCode`](context_harness_providers::ErrorCode) name or a bridge code) and, when known, a hint.
pub(crate) fn error_response(
    id: &Value,
    code: i64,
    message: &str,
    data_code: &str,
    hint: Option<&str>,
) -> String {
    let mut data = serde_json::json!({ "code": data_code });
    if let Some(hint) = hint {
        data["hint"] = Value::from(hint);
    }
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message, "data": data },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_four_shapes() {
        let req = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(
            classify(req),
            Some(Kind::Request {
                id: Value::from(1),
                method: "tools/list".to_owned()
            })
        );
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(
            classify(note),
            Some(Kind::Notification {
                method: "notifications/initialized".to_owned()
            })
        );
        let answer = r#"{"jsonrpc":"2.0","id":"a","result":{}}"#;
        assert_eq!(
            classify(answer),
            Some(Kind::Response {
                id: Value::from("a")
            })
        );
        assert_eq!(classify(r#"[{"jsonrpc":"2.0"}]"#), Some(Kind::Other));
        assert_eq!(classify(r#"{"method":5}"#), Some(Kind::Other));
        assert_eq!(classify("not json"), None);
        assert_eq!(classify(r#"{"id":1,"method":"x""#), None);
    }

    #[test]
    fn one_line_keeps_escaped_newlines_and_drops_raw_ones() {
        let text = "{\n  \"a\": \"x\\ny\"\n}\n";
        let line = one_line(text);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["a"], "x\ny");
    }

    #[test]
    fn protocol_version_of_an_initialize_answer() {
        let text = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2099-01-01","capabilities":{}}}"#;
        assert_eq!(protocol_version(text).as_deref(), Some("2099-01-01"));
        assert_eq!(protocol_version(r#"{"error":{}}"#), None);
    }

    #[test]
    fn error_response_is_json_rpc() {
        let text = error_response(
            &Value::from(7),
            AUTH_REQUIRED,
            "m",
            "auth_required",
            Some("h"),
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], AUTH_REQUIRED);
        assert_eq!(v["error"]["data"]["hint"], "h");
    }
}
