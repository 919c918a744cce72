//! The little of JSON-RPC 2.0 the bridge reads: what kind of message a line is, its `id`, and the error
//! responses the bridge writes itself. Messages are forwarded as the bytes that came in; nothing here
//! rewrites them (JSON-RPC 2.0 §4, §5; MCP "Base Protocol").

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The largest message accepted in either direction (a line on stdin, a JSON answer, one SSE event).
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC "Parse error": a line on stdin that is not UTF-8 or not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid Request": a line on stdin that is JSON but not a JSON-RPC 2.0 message the
/// bridge may forward, or one over [`MAX_MESSAGE_BYTES`].
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
    /// Anything else that is JSON: from the host, a JSON-RPC batch (MCP 2025-03-26 only, see
    /// [`inbound`]); from the server, any other shape (relayed unchanged).
    Other,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

/// `true` for a member that is there, whatever its value (`"result": null` included), without
/// building the value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// `Some` for a member that is there, `Some(Value::Null)` for an explicit `null` (which serde's
/// `Option` would make `None`).
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
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
        (None, Some(id)) if probe.result || probe.error => Kind::Response { id },
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

/// [`one_line`] without a copy when the message is one line already (the usual case).
pub(crate) fn into_one_line(mut text: String) -> String {
    if text.contains(['\n', '\r']) {
        return one_line(&text);
    }
    let end = text.trim_end().len();
    text.truncate(end);
    let start = text.len().saturating_sub(text.trim_start().len());
    if start > 0 {
        text.drain(..start);
    }
    text
}

/// A line from the host (stdin), judged before anything is forwarded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// A JSON-RPC 2.0 message: forwarded as it came.
    Message(Kind),
    /// Never forwarded: the host gets this error response instead (JSON-RPC 2.0 §5.1).
    Refused {
        /// The request's `id` when it has a usable one, else `null` (JSON-RPC 2.0 §5).
        id: Value,
        /// [`PARSE_ERROR`] or [`INVALID_REQUEST`].
        code: i64,
        /// What is wrong with the line (the error's `message`).
        message: &'static str,
    },
}

/// The members of a message the bridge checks; `Some(Value::Null)` is an explicit `null`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "some")]
    jsonrpc: Option<Value>,
    #[serde(default, deserialize_with = "some")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "some")]
    method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

/// Judges one line from the host: a JSON-RPC 2.0 request (string or number `id`: MCP forbids
/// `null`), notification or response (exactly one of `result` and `error`) is a
/// [`Inbound::Message`]; text that is not JSON is refused with [`PARSE_ERROR`]; JSON that is no
/// such message (no `"jsonrpc": "2.0"`, a member of the wrong type, a duplicate member, a scalar)
/// with [`INVALID_REQUEST`]. A batch (an array) is a message ([`Kind::Other`]) only when
/// `batches` (MCP 2025-03-26, the one revision with JSON-RPC batching; 2025-06-18 removed it) and
/// not empty (JSON-RPC 2.0 §6).
pub(crate) fn inbound(text: &str, batches: bool) -> Inbound {
    let refused =
        |id: Value, code: i64, message: &'static str| Inbound::Refused { id, code, message };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Vec<IgnoredAny>>(text) {
            Err(_) => refused(Value::Null, PARSE_ERROR, "not JSON"),
            Ok(items) if items.is_empty() => {
                refused(Value::Null, INVALID_REQUEST, "an empty JSON-RPC batch")
            }
            Ok(_) if batches => Inbound::Message(Kind::Other),
            Ok(_) => refused(
                Value::Null,
                INVALID_REQUEST,
                "JSON-RPC batches are not part of the MCP revision in use",
            ),
        };
    }
    if !trimmed.starts_with('{') {
        return match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => refused(Value::Null, INVALID_REQUEST, "not a JSON-RPC message"),
            Err(_) => refused(Value::Null, PARSE_ERROR, "not JSON"),
        };
    }
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(e) if e.is_data() => {
            return refused(
                Value::Null,
                INVALID_REQUEST,
                "not a JSON-RPC message (a member is repeated or of the wrong type)",
            );
        }
        Err(_) => return refused(Value::Null, PARSE_ERROR, "not JSON"),
    };
    let usable = |id: &Option<Value>| match id {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    if envelope.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        let id = if envelope.method.is_some() {
            usable(&envelope.id)
        } else {
            Value::Null
        };
        return refused(
            id,
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 message (\"jsonrpc\": \"2.0\" is missing)",
        );
    }
    match (envelope.method, envelope.id) {
        (Some(Value::String(method)), None) => Inbound::Message(Kind::Notification { method }),
        (Some(Value::String(method)), Some(id @ (Value::String(_) | Value::Number(_)))) => {
            Inbound::Message(Kind::Request { id, method })
        }
        (Some(Value::String(_)), Some(_)) => refused(
            Value::Null,
            INVALID_REQUEST,
            "a request id must be a string or a number",
        ),
        (Some(_), id) => refused(usable(&id), INVALID_REQUEST, "the method must be a string"),
        (None, Some(id)) if envelope.result != envelope.error => {
            Inbound::Message(Kind::Response { id })
        }
        (None, _) => refused(
            Value::Null,
            INVALID_REQUEST,
            "neither a request, a notification nor a response",
        ),
    }
}

/// `params._meta.progressToken` of a request (MCP "Progress"), as JSON text.
pub(crate) fn progress_token(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Message {
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        token: Option<Value>,
    }
    let message: Message = serde_json::from_str(text).ok()?;
    let token = message.params?.meta?.token?;
    matches!(token, Value::String(_) | Value::Number(_)).then(|| token.to_string())
}

/// `params.progressToken` of a `notifications/progress`, as JSON text.
pub(crate) fn progress_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Message {
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "progressToken")]
        token: Option<Value>,
    }
    let message: Message = serde_json::from_str(text).ok()?;
    message.params?.token.map(|t| t.to_string())
}

/// `params.requestId` of a `notifications/cancelled`, as JSON text (the form of
/// `Value::to_string`, as request ids are kept).
pub(crate) fn cancelled_request(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Message {
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "requestId")]
        request_id: Option<Value>,
    }
    let message: Message = serde_json::from_str(text).ok()?;
    message.params?.request_id.map(|t| t.to_string())
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
    fn judges_lines_from_the_host() {
        let refused = |text: &str, batches: bool| match inbound(text, batches) {
            Inbound::Refused { id, code, .. } => Some((id, code)),
            Inbound::Message(_) => None,
        };
        let null = Value::Null;
        // Messages.
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"ping","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":1,"message":"m"}}"#,
        ] {
            assert_eq!(refused(ok, false), None, "{ok}");
        }
        assert_eq!(
            inbound(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, true),
            Inbound::Message(Kind::Other)
        );
        // Not JSON: -32700, id null.
        for bad in [
            "not json",
            r#"{"id":1,"method":"x""#,
            "[1,",
            r#"{"a":1} x"#,
            "\u{feff}{}",
        ] {
            assert_eq!(
                refused(bad, true),
                Some((null.clone(), PARSE_ERROR)),
                "{bad}"
            );
        }
        // JSON, not a message: -32600, with the id when the request has a usable one.
        let cases = [
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                null.clone(),
            ),
            ("[]", null.clone()),
            ("42", null.clone()),
            (r#""text""#, null.clone()),
            (r#"{"id":5,"method":"ping"}"#, Value::from(5)),
            (
                r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#,
                Value::from("x"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                null.clone(),
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
                null.clone(),
            ),
            (r#"{"jsonrpc":"2.0","id":6,"method":7}"#, Value::from(6)),
            (
                r#"{"jsonrpc":"2.0","id":6,"method":"a","method":"b"}"#,
                null.clone(),
            ),
            (r#"{"jsonrpc":"2.0","id":6}"#, null.clone()),
            (
                r#"{"jsonrpc":"2.0","id":6,"result":{},"error":{}}"#,
                null.clone(),
            ),
            (r#"{"jsonrpc":"2.0","result":{}}"#, null.clone()),
            (r#"{"jsonrpc":2,"id":8,"result":{}}"#, null.clone()),
        ];
        for (bad, id) in cases {
            assert_eq!(refused(bad, false), Some((id, INVALID_REQUEST)), "{bad}");
        }
        assert_eq!(refused("[]", true), Some((null, INVALID_REQUEST)));
    }

    #[test]
    fn reads_progress_tokens_and_cancelled_ids() {
        let request = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p1"}}}"#;
        assert_eq!(progress_token(request).as_deref(), Some("\"p1\""));
        let numeric =
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":7}}}"#;
        assert_eq!(progress_token(numeric).as_deref(), Some("7"));
        assert_eq!(
            progress_token(r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#),
            None
        );
        let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":2}}"#;
        assert_eq!(progress_of(progress).as_deref(), Some("\"p1\""));
        let cancel =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r"}}"#;
        assert_eq!(cancelled_request(cancel).as_deref(), Some("\"r\""));
    }

    #[test]
    fn into_one_line_moves_a_line_and_mends_the_rest() {
        let line = r#"  {"a":"x\ny"}  "#.to_owned();
        assert_eq!(into_one_line(line), r#"{"a":"x\ny"}"#);
        let text = "{\n  \"a\": 1\r\n}\n".to_owned();
        assert_eq!(into_one_line(text), "{   \"a\": 1  }");
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
