//! What the bridge reads and writes of the MCP 2026-07-28 wire (stateless Streamable HTTP,
//! `basic/transports/streamable-http`, `basic/versioning`): whether a request is one
//! (`params._meta["io.modelcontextprotocol/protocolVersion"]`), the headers of its POST
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`), the new id of a re-issued
//! request and the host's id put back in its answer, and a server's JSON-RPC error body turned into
//! the answer to the host. Pure functions; the exchanges are in `modern`.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::tool_headers::{self, Declaration};

/// The `_meta` key that makes a request one of the 2026-07-28 wire ("Request Metadata").
pub(crate) const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// The prefix of the `_meta` keys every 2026-07-28 request carries (version, client info,
/// capabilities).
const ENVELOPE_PREFIX: &str = "io.modelcontextprotocol/";
/// `HeaderMismatch`: headers missing or not matching the body ("Server Validation").
pub(crate) const HEADER_MISMATCH: i64 = -32020;

/// A request of the 2026-07-28 wire, as far as the bridge reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModernRequest {
    /// The host's id.
    pub(crate) id: Value,
    /// The host's id as it was written (put back into the answer of a re-issued request).
    pub(crate) raw_id: String,
    pub(crate) method: String,
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`: the `MCP-Protocol-Version` to send.
    pub(crate) version: String,
    /// The source of `Mcp-Name`: `params.name` (`tools/call`, `prompts/get`) or `params.uri`
    /// (`resources/read`), when a string.
    pub(crate) name: Option<String>,
    /// The `io.modelcontextprotocol/*` entries of `_meta`, for requests the bridge makes itself on
    /// the host's behalf (a `tools/list` after a `HeaderMismatch`).
    pub(crate) envelope: Map<String, Value>,
}

/// Reads `text` as a request of the 2026-07-28 wire: `None` when it is not a request, or carries no
/// string protocol version in `params._meta` (then it is not one).
pub(crate) fn modern_request(text: &str) -> Option<ModernRequest> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        method: Option<String>,
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Map<String, Value>>,
        name: Option<Value>,
        uri: Option<Value>,
    }
    let probe: Probe<'_> = serde_json::from_str(text).ok()?;
    let raw_id = probe.id?.get();
    let id: Value = serde_json::from_str(raw_id).ok()?;
    if id.is_null() {
        return None;
    }
    let method = probe.method?;
    let params = probe.params?;
    let meta = params.meta?;
    let version = meta.get(PROTOCOL_VERSION_KEY)?.as_str()?.to_owned();
    let name = match method.as_str() {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    }
    .and_then(|v| match v {
        Value::String(s) => Some(s),
        _ => None,
    });
    let envelope = meta
        .into_iter()
        .filter(|(key, _)| key.starts_with(ENVELOPE_PREFIX))
        .collect();
    Some(ModernRequest {
        id,
        raw_id: raw_id.to_owned(),
        method,
        version,
        name,
        envelope,
    })
}

/// `params.arguments` of a `tools/call` message (read only for a tool with `x-mcp-header`
/// parameters).
pub(crate) fn arguments(text: &str) -> Option<Value> {
    #[derive(Deserialize)]
    struct Call {
        params: Option<CallParams>,
    }
    #[derive(Deserialize)]
    struct CallParams {
        arguments: Option<Value>,
    }
    serde_json::from_str::<Call>(text).ok()?.params?.arguments
}

/// Why a request cannot be sent on the 2026-07-28 wire: its JSON-RPC error message.
pub(crate) type Unsendable = String;

/// The headers of a request's POST ("Standard Request Headers"): `MCP-Protocol-Version` (the
/// `_meta` version), `Mcp-Method`, `Mcp-Name` when the method has one (in the Base64 sentinel form
/// when it is not plain ASCII), and the `Mcp-Param-*` headers of `params` (from
/// [`tool_headers::param_headers`]).
pub(crate) fn request_headers(
    request: &ModernRequest,
    params: &[(String, String)],
) -> Result<HeaderMap, Unsendable> {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("mcp-protocol-version"),
        plain_value(&request.version).ok_or_else(|| {
            "the request's _meta protocol version cannot be sent as an MCP-Protocol-Version header"
                .to_owned()
        })?,
    );
    headers.insert(
        HeaderName::from_static("mcp-method"),
        plain_value(&request.method).ok_or_else(|| {
            "the request's method name cannot be sent as an Mcp-Method header".to_owned()
        })?,
    );
    if let Some(name) = &request.name
        && let Ok(value) = HeaderValue::from_str(&tool_headers::encode_value(name))
    {
        headers.insert(HeaderName::from_static("mcp-name"), value);
    }
    for (name, value) in params {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(format!("`{name}` cannot be sent as a header"));
        };
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The headers of a notification's POST: `MCP-Protocol-Version` (the version of the host's latest
/// 2026-07-28 request) and `Mcp-Method`. The revision defines no header rules for notifications;
/// these are what its requests carry.
pub(crate) fn notification_headers(version: &str, method: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = plain_value(version) {
        headers.insert(HeaderName::from_static("mcp-protocol-version"), value);
    }
    if let Some(value) = plain_value(method) {
        headers.insert(HeaderName::from_static("mcp-method"), value);
    }
    headers
}

/// `text` as a header value when it is visible ASCII with inner spaces.
fn plain_value(text: &str) -> Option<HeaderValue> {
    let plain = !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && text.bytes().all(|b| (0x20..=0x7e).contains(&b));
    plain.then(|| HeaderValue::from_str(text).ok()).flatten()
}

/// The `Mcp-Param-*` headers of a `tools/call` to a tool with these declarations.
pub(crate) fn param_headers(text: &str, declarations: &[Declaration]) -> Vec<(String, String)> {
    if declarations.is_empty() {
        return Vec::new();
    }
    tool_headers::param_headers(declarations, arguments(text).as_ref())
}

/// Where `part`, a slice borrowed from `text` (a `&RawValue` read from it), lies in `text`: its
/// start and end byte offsets. `None` when `part` is not inside `text`.
pub(crate) fn span_in(text: &str, part: &str) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (text.get(start..end)? == part).then_some((start, end))
}

/// `text` (one JSON-RPC message) with its top-level `id` replaced by `raw_id` (JSON text), every
/// other byte kept. `None` when it has no `id`, or more than one.
pub(crate) fn with_id(text: &str, raw_id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    let probe: Id<'_> = serde_json::from_str(text).ok()?;
    let (start, end) = span_in(text, probe.id.get())?;
    let mut out = String::with_capacity(text.len().saturating_add(raw_id.len()));
    out.push_str(text.get(..start)?);
    out.push_str(raw_id);
    out.push_str(text.get(end..)?);
    Some(out)
}

/// A server's JSON-RPC error in the body of a refused POST (a 400 `UnsupportedProtocolVersion`
/// or `HeaderMismatch`, a 404 "Method not found", …) addressed to `sent_id` (or to no id).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerError {
    /// The error's `code`.
    pub(crate) code: i64,
    /// The answer to the host: the server's `error` object as it came, with the host's id.
    pub(crate) line: String,
}

/// Reads `body` as a JSON-RPC error response to `sent_id` (or with a `null` or no `id`), and makes
/// it the answer to the host's request `raw_host_id`. `None` when it is anything else.
pub(crate) fn server_error(body: &str, sent_id: &Value, raw_host_id: &str) -> Option<ServerError> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(default)]
        id: Value,
        #[serde(borrow)]
        error: &'a RawValue,
        result: Option<serde::de::IgnoredAny>,
    }
    #[derive(Deserialize)]
    struct ErrorObject {
        code: i64,
        #[serde(rename = "message")]
        _message: String,
    }
    let body: Body<'_> = serde_json::from_str(body.trim()).ok()?;
    if body.result.is_some() || !(body.id.is_null() || &body.id == sent_id) {
        return None;
    }
    let error: ErrorObject = serde_json::from_str(body.error.get()).ok()?;
    Some(ServerError {
        code: error.code,
        line: format!(
            r#"{{"jsonrpc":"2.0","id":{raw_host_id},"error":{}}}"#,
            body.error.get()
        ),
    })
}

/// `params.requestId` of a `notifications/cancelled` message.
pub(crate) fn cancelled_request(text: &str) -> Option<Value> {
    #[derive(Deserialize)]
    struct Note {
        params: Option<NoteParams>,
    }
    #[derive(Deserialize)]
    struct NoteParams {
        #[serde(rename = "requestId")]
        request_id: Option<Value>,
    }
    serde_json::from_str::<Note>(text)
        .ok()?
        .params?
        .request_id
        .filter(|id| !id.is_null())
}

/// A `tools/list` request of the bridge's own, with id `raw_id` (JSON text), the host's envelope
/// and the page `cursor`.
pub(crate) fn tools_list_request(
    raw_id: &str,
    envelope: &Map<String, Value>,
    cursor: Option<&str>,
) -> String {
    let mut params = Map::new();
    params.insert("_meta".to_owned(), Value::Object(envelope.clone()));
    if let Some(cursor) = cursor {
        params.insert("cursor".to_owned(), Value::from(cursor));
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":{raw_id},"method":"tools/list","params":{}}}"#,
        Value::Object(params)
    )
}

/// `result.nextCursor` of a list answer.
pub(crate) fn next_cursor(answer: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        result: Option<Page>,
    }
    #[derive(Deserialize)]
    struct Page {
        #[serde(rename = "nextCursor")]
        next_cursor: Option<Value>,
    }
    match serde_json::from_str::<Answer>(answer)
        .ok()?
        .result?
        .next_cursor?
    {
        Value::String(cursor) => Some(cursor),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"h","version":"1"},"io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p"}"#;

    fn request(id: &str, method: &str, params: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
    }

    fn header(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[test]
    fn reads_a_modern_request_and_only_one() {
        let text = request(
            "\"a\"",
            "tools/call",
            &format!(r#"{{"name":"get_weather","arguments":{{"x":1}},"_meta":{META}}}"#),
        );
        let Some(req) = modern_request(&text) else {
            panic!("not read: {text}");
        };
        assert_eq!(req.id, json!("a"));
        assert_eq!(req.raw_id, "\"a\"");
        assert_eq!(req.method, "tools/call");
        assert_eq!(req.version, "2026-07-28");
        assert_eq!(req.name.as_deref(), Some("get_weather"));
        assert_eq!(req.envelope.len(), 3, "{:?}", req.envelope);
        assert!(!req.envelope.contains_key("progressToken"));

        let read = request(
            "7",
            "resources/read",
            &format!(r#"{{"uri":"file:///a b","_meta":{META}}}"#),
        );
        assert_eq!(
            modern_request(&read).and_then(|r| r.name).as_deref(),
            Some("file:///a b")
        );
        let list = request(
            "7",
            "tools/list",
            &format!(r#"{{"name":"x","_meta":{META}}}"#),
        );
        assert_eq!(modern_request(&list).map(|r| r.name), Some(None));

        // The 2025 wire, notifications, a version that is not a string: not modern.
        for text in [
            request("1", "initialize", r#"{"protocolVersion":"2025-11-25"}"#),
            request("1", "tools/list", r#"{"_meta":{"progressToken":1}}"#),
            request(
                "1",
                "tools/list",
                r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":5}}"#,
            ),
            request("null", "tools/list", &format!(r#"{{"_meta":{META}}}"#)),
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/x","params":{{"_meta":{META}}}}}"#
            ),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_owned(),
        ] {
            assert_eq!(modern_request(&text), None, "{text}");
        }
    }

    #[test]
    fn request_headers_follow_the_message() {
        let text = request(
            "1",
            "tools/call",
            &format!(r#"{{"name":"héllo","_meta":{META}}}"#),
        );
        let Some(req) = modern_request(&text) else {
            panic!("not read");
        };
        let params = vec![("Mcp-Param-Region".to_owned(), "us-west1".to_owned())];
        let Ok(headers) = request_headers(&req, &params) else {
            panic!("refused");
        };
        assert_eq!(
            header(&headers, "mcp-protocol-version").as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            header(&headers, "mcp-method").as_deref(),
            Some("tools/call")
        );
        assert_eq!(
            header(&headers, "mcp-name").as_deref(),
            Some("=?base64?aMOpbGxv?=")
        );
        assert_eq!(
            header(&headers, "mcp-param-region").as_deref(),
            Some("us-west1")
        );

        let mut odd = req;
        odd.version = "2026-07-28\r\nX: y".to_owned();
        assert!(request_headers(&odd, &[]).is_err());
        let notes = notification_headers("2026-07-28", "notifications/x");
        assert_eq!(
            header(&notes, "mcp-method").as_deref(),
            Some("notifications/x")
        );
        assert_eq!(
            header(&notes, "mcp-protocol-version").as_deref(),
            Some("2026-07-28")
        );
    }

    #[test]
    fn replaces_the_top_level_id_only() {
        let text =
            r#"{"jsonrpc":"2.0", "id" : 12 ,"method":"m","params":{"id":12,"s":"\"id\":12"}}"#;
        assert_eq!(
            with_id(text, r#""context-harness-1""#).as_deref(),
            Some(
                r#"{"jsonrpc":"2.0", "id" : "context-harness-1" ,"method":"m","params":{"id":12,"s":"\"id\":12"}}"#
            )
        );
        assert_eq!(with_id(r#"{"id":1,"id":2}"#, "3"), None);
        assert_eq!(with_id(r#"{"method":"m"}"#, "3"), None);
    }

    #[test]
    fn a_server_error_body_becomes_the_answer_to_the_host() {
        let sent = json!("context-harness-2");
        let body = r#"{"jsonrpc":"2.0","id":"context-harness-2","error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"]}}}"#;
        assert_eq!(
            server_error(body, &sent, "5"),
            Some(ServerError {
                code: -32022,
                line: r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"]}}}"#.to_owned()
            })
        );
        let no_id = r#"{"jsonrpc":"2.0","error":{"code":-32020,"message":"Missing header"}}"#;
        assert_eq!(
            server_error(no_id, &sent, "5").map(|e| e.code),
            Some(HEADER_MISMATCH)
        );
        for other in [
            r#"{"jsonrpc":"2.0","id":"other","error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":"context-harness-2","result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","error":{"message":"no code"}}"#,
            "Bad Request",
            "",
        ] {
            assert_eq!(server_error(other, &sent, "5"), None, "{other}");
        }
    }

    #[test]
    fn small_readers() {
        let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"r"}}"#;
        assert_eq!(cancelled_request(cancel), Some(json!("x")));
        assert_eq!(
            cancelled_request(r#"{"method":"notifications/cancelled"}"#),
            None
        );
        let envelope = modern_request(&request(
            "1",
            "tools/call",
            &format!(r#"{{"_meta":{META}}}"#),
        ))
        .map(|r| r.envelope)
        .unwrap_or_default();
        let list = tools_list_request(r#""ch-1""#, &envelope, Some("c2"));
        let Some(req) = modern_request(&list) else {
            panic!("not a modern request: {list}");
        };
        assert_eq!((req.id, req.method.as_str()), (json!("ch-1"), "tools/list"));
        let value: Value = serde_json::from_str(&list).unwrap_or_default();
        assert_eq!(value["params"]["cursor"], "c2");
        assert_eq!(
            next_cursor(r#"{"id":1,"result":{"tools":[],"nextCursor":"n"}}"#).as_deref(),
            Some("n")
        );
        assert_eq!(next_cursor(r#"{"id":1,"result":{"tools":[]}}"#), None);
        let call = request(
            "1",
            "tools/call",
            r#"{"name":"t","arguments":{"a":{"b":true}}}"#,
        );
        assert_eq!(arguments(&call), Some(json!({"a":{"b":true}})));
    }
}
