//! `mcp proxy <url>` on the MCP 2026-07-28 wire, end to end, against a real 2026-07-28 server: the
//! official TypeScript SDK v2 (`@modelcontextprotocol/server`, `tests/mcp-servers/server2026.mjs`), whose
//! `createMcpHandler` refuses a request without `MCP-Protocol-Version`, or whose `Mcp-Method`, `Mcp-Name` or
//! `Mcp-Param-*` headers are missing or do not match the body. The host side is this test: requests carry
//! `params._meta` with the protocol version, client info and capabilities, and no `initialize` is sent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use context_harness_test_support::{ServerLog, TestServer};

use crate::proxy::{Proxy, text_of};
use crate::util::{Home, http, repo_root, require};

const VERSION: &str = "2026-07-28";

fn script() -> PathBuf {
    repo_root().join("tests/mcp-servers/server2026.mjs")
}

/// node, and the SDK v2 server package (`cargo xtask test` installs it).
fn require_v2_server() -> bool {
    require(
        repo_root()
            .join("tests/mcp-servers/node_modules/@modelcontextprotocol/server")
            .is_dir(),
        "tests/mcp-servers/node_modules (@modelcontextprotocol/server)",
    )
}

/// The SDK v2 server on a loopback port, stopped on drop.
struct Server2026 {
    _server: TestServer,
    url: String,
}

impl Server2026 {
    fn start() -> Self {
        let server = TestServer::start(&script(), &[], &[], None, ServerLog::Discard)
            .unwrap_or_else(|e| panic!("{e}"));
        let url = server.ready_str("url").unwrap_or_else(|e| panic!("{e}"));
        Self {
            _server: server,
            url,
        }
    }

    fn base(&self) -> &str {
        self.url.trim_end_matches("/mcp")
    }

    fn stats(&self) -> Value {
        let (status, body) = http("GET", &format!("{}/test/stats", self.base()), &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats json")
    }

    /// The next `n` tools/call answers are cut off before their response.
    fn break_calls(&self, n: u32) {
        let (status, body) = http(
            "POST",
            &format!("{}/test/break?n={n}", self.base()),
            &[],
            "",
        );
        assert_eq!(status, 200, "{body}");
    }
}

/// `params` with the 2026-07-28 `_meta` envelope (and `extra` entries in `_meta`).
fn with_meta(mut params: Value, version: &str, extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "proxy-2026-test", "version": "1.0.0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    if let (Some(meta), Some(extra)) = (meta.as_object_mut(), extra.as_object()) {
        meta.extend(extra.clone());
    }
    params["_meta"] = meta;
    params
}

/// A 2026-07-28 request and its answer (notifications before it skipped).
fn call(proxy: &mut Proxy, id: i64, method: &str, params: Value) -> Value {
    proxy.call(id, method, with_meta(params, VERSION, json!({})))
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// The POSTs the server saw for `method`.
fn posts<'a>(stats: &'a Value, method: &str) -> Vec<&'a Value> {
    stats["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .filter(|p| p["method"] == method)
        .collect()
}

/// discover → list → call, each with the headers the SDK checks; invalid tools left out; a tool
/// name that is not ASCII in the Base64 sentinel form; `x-mcp-header` parameters (nested, not ASCII)
/// mirrored; progress relayed; version negotiation answered with the server's own error.
#[test]
fn proxy_speaks_2026_07_28_to_the_typescript_sdk_v2_server() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);

    let discover = call(&mut proxy, 1, "server/discover", json!({}));
    let versions = discover["result"]["supportedVersions"].as_array();
    assert!(
        versions.is_some_and(|v| v.iter().any(|v| v == VERSION)),
        "{discover}"
    );

    let list = call(&mut proxy, 2, "tools/list", json!({}));
    let names = tool_names(&list);
    for name in ["echo", "route", "héllo", "progress", "slow"] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {list}");
    }
    assert!(
        !names.iter().any(|n| n == "bad"),
        "the tool with an invalid x-mcp-header reached the host: {list}"
    );
    // Only the tools array changed: the rest of the result came as the server wrote it.
    assert_eq!(list["result"]["resultType"], "complete", "{list}");
    assert_eq!(list["result"]["cacheScope"], "private", "{list}");

    let echo = call(
        &mut proxy,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "héllo\nworld"}}),
    );
    assert_eq!(text_of(&echo), "héllo\nworld");
    let route = call(
        &mut proxy,
        4,
        "tools/call",
        json!({"name": "route", "arguments": {"region": "Hello, 世界", "tenant": {"id": 42}, "query": "q"}}),
    );
    assert_eq!(text_of(&route), "routed Hello, 世界 42", "{route}");
    let unicode = call(&mut proxy, 5, "tools/call", json!({"name": "héllo"}));
    assert_eq!(text_of(&unicode), "bonjour", "{unicode}");

    // The invalid tool is refused by the bridge itself.
    let bad = call(
        &mut proxy,
        6,
        "tools/call",
        json!({"name": "bad", "arguments": {"data": {}}}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert_eq!(bad["error"]["data"]["code"], "invalid_tool", "{bad}");

    // Progress notifications on the answer stream come before the answer.
    proxy.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": with_meta(
        json!({"name": "progress", "arguments": {"steps": 2}}), VERSION, json!({"progressToken": "p7"}))}));
    let mut progress = 0;
    let answer = loop {
        let message = proxy.recv();
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "p7", "{message}");
            progress += 1;
        } else {
            break message;
        }
    };
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(text_of(&answer), "done");
    assert_eq!(progress, 2);

    // A version the server does not speak: its UnsupportedProtocolVersion error, to this request.
    let old = proxy.call(
        8,
        "tools/list",
        with_meta(json!({}), "1999-01-01", json!({})),
    );
    assert_eq!(old["error"]["code"], -32022, "{old}");
    let supported = old["error"]["data"]["supported"].as_array();
    assert!(
        supported.is_some_and(|v| v.iter().any(|v| v == VERSION)),
        "{old}"
    );

    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");

    let stats = server.stats();
    assert_eq!(stats["calls"].get("bad"), None, "{stats}");
    assert_eq!(
        stats["other_methods"],
        json!([]),
        "no GET or DELETE: {stats}"
    );
    for post in stats["posts"].as_array().expect("posts") {
        let headers = &post["headers"];
        assert_eq!(headers["mcp-protocol-version"], post["version"], "{post}");
        assert_eq!(headers["mcp-method"], post["method"], "{post}");
        assert!(headers.get("mcp-session-id").is_none(), "{post}");
    }
    let calls = posts(&stats, "tools/call");
    let header_of = |name: &str, header: &str| {
        calls
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["headers"][header].clone())
            .unwrap_or_else(|| panic!("no call of {name}: {stats}"))
    };
    assert_eq!(header_of("héllo", "mcp-name"), "=?base64?aMOpbGxv?=");
    assert_eq!(header_of("route", "mcp-name"), "route");
    assert_eq!(
        header_of("route", "mcp-param-region"),
        "=?base64?SGVsbG8sIOS4lueVjA==?="
    );
    assert_eq!(header_of("route", "mcp-param-tenant"), "42");
    assert_eq!(header_of("echo", "mcp-param-region"), Value::Null);
}

/// A call to an `x-mcp-header` tool before any tools/list: the server refuses it (HeaderMismatch),
/// the bridge lists the tools itself and calls once more, with the header.
#[test]
fn proxy_lists_the_tools_after_a_header_mismatch_and_calls_again() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    let route = call(
        &mut proxy,
        1,
        "tools/call",
        json!({"name": "route", "arguments": {"region": "eu"}}),
    );
    assert_eq!(text_of(&route), "routed eu -", "{route}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    let stats = server.stats();
    let calls = posts(&stats, "tools/call");
    assert_eq!(calls.len(), 2, "{stats}");
    assert_eq!(calls[0]["headers"].get("mcp-param-region"), None);
    assert_eq!(calls[1]["headers"]["mcp-param-region"], "eu");
    let lists = posts(&stats, "tools/list");
    assert_eq!(lists.len(), 1, "{stats}");
    assert!(
        lists[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("context-harness-")),
        "the bridge's own tools/list has an id of its own: {stats}"
    );
    assert_eq!(stats["calls"]["route"], 1, "{stats}");
}

/// An answer stream that breaks off before the response: the request is re-issued with a new id and
/// the answer reaches the host with its own id; a stream that keeps breaking ends in an error after
/// two re-issues.
#[test]
fn proxy_reissues_a_request_whose_answer_stream_broke_off() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    server.break_calls(1);
    let echo = call(
        &mut proxy,
        41,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "again"}}),
    );
    assert_eq!(echo["id"], 41, "{echo}");
    assert_eq!(text_of(&echo), "again");

    server.break_calls(5);
    let broken = call(
        &mut proxy,
        42,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "lost"}}),
    );
    assert_eq!(broken["id"], 42, "{broken}");
    assert_eq!(broken["error"]["code"], -32000, "{broken}");

    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    let stats = server.stats();
    assert_eq!(stats["broken"], 4, "one, then three: {stats}");
    let ids: Vec<&Value> = posts(&stats, "tools/call")
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids.len(), 5, "{stats}");
    assert_eq!(ids[0], 41);
    assert_eq!(ids[2], 42);
    for reissued in [ids[1], ids[3], ids[4]] {
        assert!(
            reissued
                .as_str()
                .is_some_and(|id| id.starts_with("context-harness-")),
            "{stats}"
        );
    }
    assert_ne!(ids[3], ids[4], "each re-issue has a new id: {stats}");
}

/// `notifications/cancelled` from the host closes that request's answer stream (the HTTP
/// cancellation signal): the server sees the request cancelled, and no answer comes for it.
#[test]
fn proxy_cancels_a_request_by_closing_its_answer_stream() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.send(
        &json!({"jsonrpc": "2.0", "id": "s", "method": "tools/call", "params": with_meta(
        json!({"name": "slow"}), VERSION, json!({"progressToken": "ps"}))}),
    );
    // The progress notification says the answer stream is open.
    let first = proxy.recv();
    assert_eq!(first["method"], "notifications/progress", "{first}");
    proxy.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "s", "reason": "test"}}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stats()["cancelled"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the server never saw the cancellation"
        );
        std::thread::yield_now();
    }
    let echo = call(
        &mut proxy,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "after"}}),
    );
    assert_eq!(text_of(&echo), "after", "{echo}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        rest.is_empty(),
        "no answer to the cancelled request: {rest:?}"
    );
    let stats = server.stats();
    assert!(
        posts(&stats, "notifications/cancelled").is_empty(),
        "not forwarded: {stats}"
    );
}

/// `subscriptions/listen` (the 2026-07-28 replacement of the GET stream): its stream stays open and
/// relays the acknowledgment and the change notifications, tagged with the host's listen id; the host
/// ends it with `notifications/cancelled`, and no answer comes for it.
#[test]
fn proxy_relays_a_subscriptions_listen_stream() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.send(&json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": with_meta(json!({"notifications": {"toolsListChanged": true}}), VERSION, json!({}))}));
    let ack = proxy.recv();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    let subscription = "io.modelcontextprotocol/subscriptionId";
    assert_eq!(ack["params"]["_meta"][subscription], "listen-1", "{ack}");
    let (status, body) = http("POST", &format!("{}/test/notify", server.base()), &[], "");
    assert_eq!(status, 200, "{body}");
    let changed = proxy.recv();
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(changed["params"]["_meta"][subscription], "listen-1");
    // Other requests go on beside the open stream.
    let echo = call(
        &mut proxy,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "beside"}}),
    );
    assert_eq!(text_of(&echo), "beside", "{echo}");
    proxy.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "listen-1"}}),
    );
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
}

/// The same server through the same bridge on the 2025 wire (the SDK's stateless fallback): the
/// host's `initialize` decides, and no 2026-07-28 header is sent.
#[test]
fn proxy_keeps_the_2025_wire_with_the_same_server() {
    if !require_v2_server() {
        return;
    }
    let server = Server2026::start();
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    let echo = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "old"}}),
    );
    assert_eq!(text_of(&echo), "old", "{echo}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let stats = server.stats();
    for post in stats["posts"].as_array().expect("posts") {
        assert!(post["headers"].get("mcp-method").is_none(), "{post}");
    }
}
