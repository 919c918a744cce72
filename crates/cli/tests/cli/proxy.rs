//! `mcp proxy <url>` end to end, against real MCP servers built with the official TypeScript SDK
//! (`tests/mcp-servers/server.mjs`: `StreamableHTTPServerTransport` with sessions, the GET stream and
//! the SDK's event store; the legacy `SSEServerTransport`; `requireBearerAuth` checking tokens of the
//! local oidc-provider by introspection). The client side is this test, speaking the stdio transport
//! to the binary: every stdout line must be a JSON-RPC message.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{AuthServer, Home, browser_script, http, repo_root, require, require_server};

fn mcp_servers_dir() -> PathBuf {
    repo_root().join("tests/mcp-servers")
}

/// node, and the SDK servers' packages (`cargo xtask test` installs them).
pub(crate) fn require_mcp_servers() -> bool {
    require_server()
        && require(
            mcp_servers_dir()
                .join("node_modules/@modelcontextprotocol/sdk")
                .is_dir(),
            "tests/mcp-servers/node_modules",
        )
}

/// A TypeScript-SDK MCP server on a loopback port (started by `context-harness-test-support`), stopped
/// on drop.
pub(crate) struct McpServer {
    _server: context_harness_test_support::McpServer,
    pub(crate) url: String,
    legacy_url: String,
}

impl McpServer {
    fn start(env: &[(&str, &str)]) -> Self {
        let server = context_harness_test_support::McpServer::start(
            &repo_root(),
            env,
            context_harness_test_support::ServerLog::Inherit,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self {
            url: server.url().to_owned(),
            legacy_url: server
                .ready_str("legacy_url")
                .unwrap_or_else(|e| panic!("{e}")),
            _server: server,
        }
    }

    fn base(&self) -> &str {
        self.url.trim_end_matches("/mcp")
    }

    pub(crate) fn stats(&self) -> Value {
        let (status, body) = http("GET", &format!("{}/test/stats", self.base()), &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats json")
    }

    fn hook(&self, name: &str) -> Value {
        let (status, body) = http("POST", &format!("{}/test/{name}", self.base()), &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("hook json")
    }
}

/// The binary as a stdio MCP server for a test (shared with `proxy_python.rs`).
pub(crate) struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proxy {
    pub(crate) fn spawn(home: &Home, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec!["-vv", "mcp", "proxy", url, "--port", "0"];
        if !extra.contains(&"--timeout") {
            args.extend_from_slice(&["--timeout", "30"]);
        }
        args.extend_from_slice(extra);
        let mut child = home
            .cmd(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the proxy");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
        }
    }

    pub(crate) fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to the proxy");
        stdin.flush().expect("flush");
    }

    /// Writes `bytes` to the bridge's stdin as they are (no line break added) and flushes.
    fn send_raw(&mut self, bytes: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(bytes.as_bytes())
            .expect("write to the proxy");
        stdin.flush().expect("flush");
    }

    /// The next stdout line, which must be a JSON-RPC 2.0 message.
    pub(crate) fn recv_within(&self, within: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(within).ok()?;
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout holds a line that is not JSON ({e}): {line:?}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC: {line}");
        Some(value)
    }

    /// The next message; no answer within 60 s fails the test with the bridge's stderr (it runs
    /// with `-v`), so a hang says where it hung.
    pub(crate) fn recv(&mut self) -> Value {
        if let Some(message) = self.recv_within(Duration::from_secs(60)) {
            return message;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        panic!("no answer within 60 s; the bridge's stderr:\n{stderr}");
    }

    /// Sends a request and returns its response (server notifications before it are skipped).
    pub(crate) fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.recv();
            if message["id"] == id {
                return message;
            }
        }
    }

    pub(crate) fn initialize(&mut self) -> Value {
        let answer = self.call(
            1,
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "proxy-test-client", "version": "9.9.9", "x-extra": true},
            }),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        answer
    }

    /// Closes stdin and waits: the exit code, the stdout lines left, stderr.
    pub(crate) fn finish(mut self) -> (i32, Vec<Value>, String) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        let mut rest = Vec::new();
        while let Some(v) = self.recv_within(Duration::from_millis(100)) {
            rest.push(v);
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), rest, stderr)
    }
}

pub(crate) fn text_of(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {answer}"))
}

/// A message that reaches stdin in two pieces is one message: here the first half of request 3
/// arrives with request 2, and its end only after the answer to 2 (so the bridge finishes other work
/// while it holds half a line). Nothing is lost or reordered.
#[test]
fn proxy_reassembles_a_message_written_in_pieces() {
    if !require_mcp_servers() {
        return;
    }
    let server = McpServer::start(&[]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    let second = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"whole"}}});
    let third = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"in two pieces"}}}).to_string();
    let (head, tail) = third.split_at(third.len() / 2);
    proxy.send_raw(&format!("{second}\n{head}"));
    let answer = proxy.recv();
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(text_of(&answer), "whole");
    proxy.send_raw(&format!("{tail}\n"));
    let answer = proxy.recv();
    assert_eq!(answer["id"], 3, "{answer}");
    assert_eq!(text_of(&answer), "in two pieces");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
}

/// initialize → tools/list → tools/call, with SSE answers (the SDK's default) and JSON answers.
#[test]
fn proxy_round_trips_with_sse_and_json_answers() {
    if !require_mcp_servers() {
        return;
    }
    for json_answers in ["0", "1"] {
        let server = McpServer::start(&[("MCP_JSON", json_answers)]);
        let home = Home::new();
        let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
        let init = proxy.initialize();
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
        let list = proxy.call(2, "tools/list", json!({}));
        let names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(names.contains(&"echo"), "{list}");
        let call = proxy.call(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "héllo\nworld"}}),
        );
        assert_eq!(text_of(&call), "héllo\nworld");
        // Two requests in flight at once both come back.
        proxy.send(&json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}));
        proxy.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{"a":3,"b":4}}}));
        let mut seen = [proxy.recv(), proxy.recv()];
        seen.sort_by_key(|v| v["id"].as_i64());
        assert_eq!(text_of(&seen[0]), "3");
        assert_eq!(text_of(&seen[1]), "7");

        let (code, rest, stderr) = proxy.finish();
        assert_eq!(code, 0, "{stderr}");
        assert!(rest.is_empty(), "{rest:?}");
        let stats = server.stats();
        assert_eq!(
            stats["deletes"], 1,
            "stdin EOF deletes the session: {stats}"
        );
        // The client's clientInfo reached the server unchanged.
        assert_eq!(
            stats["client_infos"][0],
            json!({"name": "proxy-test-client", "version": "9.9.9", "x-extra": true})
        );
        // Every request after initialize carried the negotiated version.
        let versions = stats["protocol_versions"].as_array().expect("versions");
        assert!(!versions.is_empty());
        assert!(versions.iter().all(|v| v == "2025-06-18"), "{stats}");
        assert_eq!(stats["initialize"], 1);
    }
}

/// Server-initiated messages come through the GET stream, which is resumed with Last-Event-ID.
#[test]
fn proxy_relays_the_get_stream_and_resumes_it() {
    if !require_mcp_servers() {
        return;
    }
    let server = McpServer::start(&[]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    let is_list_changed = |v: &Value| v["method"] == "notifications/tools/list_changed";
    // The notification is sent while the GET stream may still be opening: ask until one arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = false;
    while !got && Instant::now() < deadline {
        server.hook("notify");
        got = proxy
            .recv_within(Duration::from_millis(500))
            .is_some_and(|v| is_list_changed(&v));
    }
    assert!(got, "no notification through the GET stream");
    let cut = server.hook("cut-streams");
    assert_eq!(cut["cut"], 1, "{cut}");
    // Sent while the stream is down: the server stores it; the resumed stream replays it.
    server.hook("notify");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut replayed = false;
    while !replayed && Instant::now() < deadline {
        replayed = proxy
            .recv_within(Duration::from_millis(500))
            .is_some_and(|v| is_list_changed(&v));
    }
    assert!(replayed, "no notification after the stream was cut");
    let stats = server.stats();
    assert!(
        !stats["last_event_ids"].as_array().expect("ids").is_empty(),
        "the GET stream was resumed with Last-Event-ID: {stats}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// A 404 on a request with a session id: a new session (initialize replayed), the request resent.
#[test]
fn proxy_starts_a_new_session_after_404() {
    if !require_mcp_servers() {
        return;
    }
    let server = McpServer::start(&[]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    assert_eq!(server.hook("drop-sessions")["dropped"], 1);
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "again"}}),
    );
    assert_eq!(text_of(&call), "again");
    let stats = server.stats();
    assert_eq!(stats["initialize"], 2, "{stats}");
    assert!(stats["not_found"].as_u64() >= Some(1), "{stats}");
    // The replayed initialize's answer did not reach the client: only the call's answer came.
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.iter().all(|v| v["id"] != 1), "{rest:?}");
}

/// A server with only the legacy HTTP+SSE transport: POST answered 404, the GET stream then used.
#[test]
fn proxy_falls_back_to_the_legacy_sse_transport() {
    if !require_mcp_servers() {
        return;
    }
    let server = McpServer::start(&[]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &server.legacy_url, &[], &[]);
    let init = proxy.initialize();
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "legacy"}}),
    );
    assert_eq!(text_of(&call), "legacy");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let stats = server.stats();
    assert_eq!(stats["legacy_gets"], 1, "{stats}");
    assert!(stats["legacy_posts"].as_u64() >= Some(3), "{stats}");
}

/// Upstream failures become error responses to the request: a server that is gone.
#[test]
fn proxy_answers_upstream_failures_with_json_rpc_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &format!("http://127.0.0.1:{port}/mcp"), &[], &[]);
    let answer = proxy.call(7, "tools/list", json!({}));
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "network_error", "{answer}");
    // A line that is not JSON gets a parse error, and the bridge goes on.
    proxy
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"this is not json\n")
        .expect("write");
    let parse = proxy.recv();
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// A stub proxy: records the first line of every connection (a `CONNECT` or an absolute-form
/// request), answers 502 and closes. It never forwards anything.
fn recording_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let _ = BufReader::new(&mut stream).read_line(&mut line);
            log.lock().expect("log").push(line.trim().to_owned());
            let _ = stream.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

/// `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` (both spellings) set and `NO_PROXY` empty: the proxy
/// still reaches the loopback SDK server directly, as the sign-in traffic does (loopback is never proxied),
/// and the stub proxy sees nothing.
#[test]
fn proxy_never_sends_loopback_traffic_to_a_proxy() {
    if !require_mcp_servers() {
        return;
    }
    let (proxy_url, seen) = recording_proxy();
    let server = McpServer::start(&[]);
    let home = Home::new();
    let mut env: Vec<(&str, &str)> = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .into_iter()
        .chain(["http_proxy", "https_proxy", "all_proxy"])
        .map(|name| (name, proxy_url.as_str()))
        .collect();
    env.extend([("NO_PROXY", ""), ("no_proxy", "")]);
    // `localhost` as well as 127.0.0.1.
    let localhost = server.url.replace("127.0.0.1", "localhost");
    for url in [server.url.as_str(), localhost.as_str()] {
        let mut proxy = Proxy::spawn(&home, url, &[], &env);
        let init = proxy.initialize();
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
        let call = proxy.call(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "direct"}}),
        );
        assert_eq!(text_of(&call), "direct");
        let (code, _, stderr) = proxy.finish();
        assert_eq!(code, 0, "{stderr}");
    }
    assert_eq!(server.stats()["initialize"], 2);
    assert!(
        seen.lock().expect("log").is_empty(),
        "the proxy saw {:?}",
        seen.lock().expect("log")
    );
}

/// An MCP server whose certificate is issued by a private CA (a **local HTTPS stub** reproducing
/// a corporate CA; it answers `initialize` like a server without sessions): the request gets a
/// JSON-RPC error saying the certificate is not trusted and naming `SSL_CERT_FILE`, in the message
/// and in `data.hint`; with `SSL_CERT_FILE` naming the CA the same request succeeds.
#[test]
fn proxy_names_ssl_cert_file_when_the_server_certificate_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pki) = crate::tls_stub::private_ca(dir.path()) else {
        return;
    };
    let base = crate::tls_stub::https_stub(&pki.cert, &pki.key, |method, _, body| {
        let answer = |status: &str, json: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            )
        };
        match method {
            "POST" if body.contains(r#""method":"initialize""#) => answer(
                "200 OK",
                r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"private-ca-stub","version":"1"}}}"#,
            ),
            "POST" => answer("202 Accepted", ""),
            _ => answer("405 Method Not Allowed", ""),
        }
    });
    let url = format!("{base}/mcp");
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &url, &[], &[]);
    let answer = proxy.call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "network_error", "{answer}");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("certificate"), "{answer}");
    assert!(message.contains("not trusted"), "{answer}");
    assert!(message.contains("SSL_CERT_FILE"), "{answer}");
    let hint = answer["error"]["data"]["hint"].as_str().expect("hint");
    assert!(
        hint.contains("SSL_CERT_FILE") && hint.contains("SSL_CERT_DIR"),
        "{answer}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");

    let ca = pki.ca.display().to_string();
    let mut proxy = Proxy::spawn(&home, &url, &[], &[("SSL_CERT_FILE", &ca)]);
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "private-ca-stub",
        "{init}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// Starts the oidc-provider and an SDK server protected by it, and signs in with `mcp auth <url>`.
pub(crate) fn signed_in(
    as_env: &[(&str, &str)],
    mcp_env: &[(&str, &str)],
) -> (AuthServer, McpServer, Home) {
    let auth = AuthServer::start(as_env);
    let mut env = vec![("MCP_ISSUER", auth.issuer.as_str())];
    env.extend_from_slice(mcp_env);
    let server = McpServer::start(&env);
    let home = Home::new();
    let run = home.run_env(
        &["mcp", "auth", &server.url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    run.expect_code(0);
    (auth, server, home)
}

/// With stored tokens: forwarded with the bearer, no discovery, no 401.
#[test]
fn proxy_uses_the_stored_tokens() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server, home) = signed_in(&[("AS_AUTO_APPROVE", "1")], &[]);
    let before = auth.stats();
    let unauthorized = server.stats()["unauthorized"].clone();
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "with a token"}}),
    );
    assert_eq!(text_of(&call), "with a token");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let stats = server.stats();
    assert_eq!(stats["unauthorized"], unauthorized, "{stats}");
    assert_eq!(stats["last_authorization_scheme"], "Bearer");
    // Start-up read the store only: no discovery, no token request.
    let after = auth.stats();
    assert_eq!(before["well_known"], after["well_known"], "{after}");
    assert_eq!(before["token_requests"], after["token_requests"], "{after}");
    // The token never reached stdout or stderr.
    let token = home.run(&["mcp", "token", &server.url]);
    assert!(!stderr.contains(token.stdout.trim()));
}

/// A token revoked at the server: 401 → refresh → the request retried; no error reaches the client.
/// Then a token that expires mid-session (10 s lifetime): refreshed on time, every answer a success.
#[test]
fn proxy_refreshes_after_401_and_on_expiry() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server, home) = signed_in(&[("AS_AUTO_APPROVE", "1")], &[]);
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    // The bridge opens its GET stream after `notifications/initialized`, concurrently with what follows;
    // revoking before that stream is open would make its 401 count too. Wait until the server has it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stats()["gets"].as_u64().unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "the GET stream never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let unauthorized = server.stats()["unauthorized"].as_u64().unwrap_or(0);
    server.hook("revoke-tokens");
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "after revocation"}}),
    );
    assert_eq!(text_of(&call), "after revocation", "{call}");
    assert_eq!(
        server.stats()["unauthorized"].as_u64(),
        Some(unauthorized + 1)
    );
    assert_eq!(auth.stats()["refresh_requests"], 1);

    // From now on tokens live 10 s: revoke once more so the bridge gets one, then keep calling
    // until it has refreshed on its own, without a 401 (its margin is half the lifetime, 5 s —
    // wide enough that a loaded machine never sends a token that expires on the way).
    let (status, answer) = http(
        "POST",
        &format!("{}/test/control", auth.issuer),
        &[("Content-Type", "application/json")],
        r#"{"access_token_ttl":10}"#,
    );
    assert_eq!(status, 200, "{answer}");
    server.hook("revoke-tokens");
    // Refreshes the server saw that no 401 caused.
    let unprompted = || {
        let refreshes = auth.stats()["refresh_requests"].as_u64().unwrap_or(0);
        let refused = server.stats()["unauthorized"].as_u64().unwrap_or(0) - unauthorized;
        refreshes.saturating_sub(refused)
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut id = 10;
    while unprompted() < 1 && Instant::now() < deadline {
        id += 1;
        let answer = proxy.call(
            id,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "tick"}}),
        );
        assert_eq!(
            text_of(&answer),
            "tick",
            "an error reached the client: {answer}"
        );
    }
    assert!(
        unprompted() >= 1,
        "the bridge refreshed the expiring token before the server refused it: {}",
        auth.stats()
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// 403 insufficient_scope → a sign-in for the union of scopes → the call retried once.
#[test]
fn proxy_steps_up_on_insufficient_scope() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server, home) =
        signed_in(&[("AS_AUTO_APPROVE", "1")], &[("MCP_STEP_UP_TOOL", "add")]);
    let before = auth.stats()["authorization_code_requests"].clone();
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    proxy.initialize();
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "add", "arguments": {"a": 20, "b": 22}}),
    );
    assert_eq!(text_of(&call), "42", "{call}");
    assert_eq!(server.stats()["forbidden"], 1);
    assert_eq!(
        auth.stats()["authorization_code_requests"].as_u64(),
        before.as_u64().map(|n| n + 1)
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let token = home.run(&["mcp", "token", &server.url, "--json"]);
    token.expect_code(0);
}

/// No tokens at all: the first request starts the sign-in (URL on stderr), then goes through.
#[test]
fn proxy_signs_in_on_first_use() {
    if !require_mcp_servers() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let server = McpServer::start(&[("MCP_ISSUER", auth.issuer.as_str())]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    let init = proxy.initialize();
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("/auth?"), "the URL is on stderr: {stderr}");
    assert_eq!(stderr.matches("needs a sign-in").count(), 1, "{stderr}");
    // Shared with the other commands.
    home.run(&["mcp", "status", &server.url]).expect_code(0);
}

/// Sign-in impossible (the user refuses): every request, the initialize included, gets a JSON-RPC
/// error naming `context-harness mcp auth <url>`; one browser opening only; exit 0 at EOF.
#[test]
fn proxy_reports_an_impossible_sign_in_as_json_rpc_errors() {
    if !require_mcp_servers() {
        return;
    }
    let auth = AuthServer::start(&[("AS_DENY", "1")]);
    let server = McpServer::start(&[("MCP_ISSUER", auth.issuer.as_str())]);
    let home = Home::new();
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    let fix = format!("context-harness mcp auth {}", server.url);
    let init = proxy.initialize();
    assert_eq!(init["error"]["code"], -32003, "{init}");
    let message = init["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&fix), "{init}");
    let later = proxy.call(2, "tools/list", json!({}));
    assert!(
        later["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&fix),
        "{later}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("needs a sign-in;").count(), 1, "{stderr}");
}

/// `BROWSER` naming a text browser (w3m here: a script that would write to its stdout and leave a
/// mark) is never started by the bridge, whose stdin and stdout are the JSON-RPC channel: the URL
/// goes to stderr with the reason, and stdout holds only JSON-RPC.
#[test]
fn proxy_never_starts_a_text_browser() {
    if !require_mcp_servers() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let server = McpServer::start(&[("MCP_ISSUER", auth.issuer.as_str())]);
    let home = Home::new();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let mark = home.path().join("w3m-ran");
    let w3m = bin.join("w3m");
    std::fs::write(
        &w3m,
        format!(
            "#!/bin/sh\necho 'not JSON-RPC'\ntouch '{}'\n",
            mark.display()
        ),
    )
    .expect("w3m script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w3m, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let browser = format!("{} %s", w3m.display());
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &["--timeout", "2"],
        &[("BROWSER", browser.as_str())],
    );
    // The sign-in cannot finish (nobody opens the URL): the client gets the error that names the fix.
    let init = proxy.initialize();
    assert_eq!(init["error"]["code"], -32003, "{init}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.iter().all(|m| m["jsonrpc"] == "2.0"), "{rest:?}");
    assert!(!mark.exists(), "the text browser was started");
    assert!(stderr.contains("BROWSER names a text browser"), "{stderr}");
}

/// A quirky MCP server (a local stub: no SDK server answers this way): every POST gets `post_403`
/// (HTTP 403 with that `WWW-Authenticate`, or none) except an `initialize` when `post_403` is
/// `None`, which gets a JSON answer; GET `/mcp` gets a bare 403; the metadata URLs 404. Returns its
/// URL and the paths of the requests it saw (`METHOD /path`).
fn forbidding_server(
    post_403: Option<&'static str>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            log.lock().expect("log").push(format!("{method} {path}"));
            let body = String::from_utf8_lossy(&body);
            let answer = match (method, path, post_403) {
                ("POST", "/mcp", Some(challenge)) => {
                    format!("HTTP/1.1 403 Forbidden\r\n{challenge}Content-Length: 0\r\n")
                }
                ("POST", "/mcp", None) if body.contains("\"initialize\"") => {
                    let json = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"stub","version":"1"}}}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\n\r\n{json}",
                        json.len()
                    )
                }
                ("POST", "/mcp", None) => {
                    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n".to_owned()
                }
                ("GET", "/mcp", _) => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n".to_owned(),
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_owned(),
            };
            let answer = if answer.contains("\r\n\r\n") {
                answer
            } else {
                format!("{answer}\r\n")
            };
            let _ = stream.write_all(
                answer
                    .replacen("\r\n", "\r\nConnection: close\r\n", 1)
                    .as_bytes(),
            );
        }
    });
    (url, seen)
}

/// 403s that no step-up fixes are authorization errors (`auth_failed`, -32003, hint naming
/// `mcp auth <url>`), never `network_error`, and open no browser: a plain 403; a 403
/// `insufficient_scope` with an empty `scope` and no protected-resource metadata to name one (the
/// bridge looked for it, then says to run `mcp auth <url> --scope <scope>`).
#[test]
fn proxy_answers_403s_without_a_usable_scope_as_authorization_errors() {
    let cases = [
        (
            "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"\"\r\n",
            "--scope <scope>",
            "insufficient_scope",
        ),
        ("", "", "HTTP 403 Forbidden"),
        (
            "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
            "",
            "HTTP 403 Forbidden, invalid_token",
        ),
    ];
    for (challenge, hint_tail, says) in cases {
        let (url, seen) = forbidding_server(Some(challenge));
        let home = Home::new();
        let mut proxy = Proxy::spawn(&home, &url, &[], &[]);
        let fix = format!("context-harness mcp auth {url}");
        for id in [1, 2] {
            let answer = proxy.call(id, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
            assert_eq!(answer["error"]["code"], -32003, "{answer}");
            assert_eq!(answer["error"]["data"]["code"], "auth_failed", "{answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says) && message.contains(&fix), "{answer}");
            assert_eq!(
                answer["error"]["data"]["hint"],
                format!("{fix} {hint_tail}").trim_end(),
                "{answer}"
            );
        }
        let (code, rest, stderr) = proxy.finish();
        assert_eq!(code, 0, "{stderr}");
        assert!(rest.is_empty(), "{rest:?}");
        assert!(!stderr.contains("needs a sign-in"), "{stderr}");
        let seen = seen.lock().expect("seen").clone();
        let metadata = seen
            .iter()
            .filter(|r| r.contains("/.well-known/oauth-protected-resource"))
            .count();
        if challenge.contains("insufficient_scope") {
            assert!(metadata >= 1, "the metadata was looked for: {seen:?}");
        } else {
            assert_eq!(metadata, 0, "{seen:?}");
        }
    }
}

/// A 403 on the GET stream (no step-up from a stream no request waits on) ends it: the bridge says
/// so and does not reconnect (one GET).
#[test]
fn proxy_stops_the_get_stream_on_a_403() {
    let (url, seen) = forbidding_server(None);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &url, &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "stub", "{init}");
    let gets = || {
        seen.lock()
            .expect("seen")
            .iter()
            .filter(|r| *r == "GET /mcp")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while gets() < 1 {
        assert!(Instant::now() < deadline, "the GET stream never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(gets(), 1, "{:?}", seen.lock().expect("seen"));
    assert!(stderr.contains("refuses the GET stream (403)"), "{stderr}");
}

/// A small local **stub reproducing a hostile MCP server** (no SDK server answers a request with a
/// response to another id): every POST gets `application/json` with `answer` as the body.
fn hostile_json_server(answer: &'static str) -> String {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

/// Red-team finding: a JSON answer to a request that is a response to *another* id was relayed as
/// the answer, so the client's request never got one (it waited forever) and the client saw a
/// response to an id it never asked. Now the request gets an error response and the stray
/// answer is dropped.
#[test]
fn proxy_answers_a_request_whose_json_answer_names_another_id() {
    let url = hostile_json_server(r#"{"jsonrpc":"2.0","id":999,"result":{"forged":true}}"#);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &url, &[], &[]);
    proxy.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}));
    let answer = proxy
        .recv_within(Duration::from_secs(30))
        .expect("an answer to request 5");
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "network_error", "{answer}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "nothing else reaches the client: {rest:?}");
}

/// Red-team finding: a server that refuses every token, even one from a fresh sign-in (a resource
/// or audience misconfiguration), made the bridge open a browser for a new sign-in on *every*
/// request. After one sign-in whose token is refused at once, later requests get the error without
/// another browser (a sign-in done meanwhile with `mcp auth` is still picked up from the store).
#[test]
fn proxy_opens_no_browser_storm_for_a_server_that_refuses_every_token() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server, home) = signed_in(&[("AS_AUTO_APPROVE", "1")], &[]);
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    proxy.initialize();
    server.hook("refuse-all");
    let before = auth.stats()["authorization_code_requests"]
        .as_u64()
        .unwrap_or(0);
    for id in 2..5 {
        let answer = proxy.call(id, "tools/list", json!({}));
        assert_eq!(answer["error"]["code"], -32003, "{answer}");
    }
    let after = auth.stats()["authorization_code_requests"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(after, before + 1, "one sign-in, not one per request");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
}
