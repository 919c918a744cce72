//! `mcp proxy`'s one authorization recovery (issue 20, "Authorization once") against **small local
//! stubs reproducing hostile MCP servers** — no SDK server misbehaves this way. Each stub is a real
//! protected resource for the sign-in (a 401 with `resource_metadata`, RFC 9728 metadata naming the
//! local oidc-provider), signed in to with `mcp auth <url>`; then it turns hostile:
//!
//! - a GET stream alternating 401 and a short stream: at most one refresh (the token requests are
//!   counted at the oidc-provider), then the stream ends;
//! - a 403 `insufficient_scope` naming a new invented scope on every request: at most one browser
//!   (counted by a browser stand-in), then errors naming `mcp auth <url> --scope …`;
//! - a legacy SSE `endpoint` on another path of the same origin: refused, and the bearer never goes
//!   there (while an endpoint inside the token's audience gets it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::proxy::Proxy;
use crate::util::{AuthServer, Home, browser_script, require_server};

/// One request a stub saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query.
    path: String,
    /// The `Authorization` header was there.
    bearer: bool,
    body: String,
}

impl Seen {
    fn rpc(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["method"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn id(&self) -> Value {
        serde_json::from_str::<Value>(&self.body).map_or(Value::Null, |v| v["id"].clone())
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

/// A raw HTTP/1.1 stub on loopback (one thread per connection, one request per connection). Its
/// own part: the 401 to a POST without a token and the RFC 9728 metadata for `/mcp`, so
/// `mcp auth <url>` signs in at `issuer`; every other request goes to the test's handler.
struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Stub {
    fn start(
        issuer: &str,
        handler: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, stopped, issuer, base2) = (
            Arc::clone(&seen),
            Arc::clone(&stop),
            issuer.to_owned(),
            base.clone(),
        );
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (log, handler, issuer, base) = (
                    Arc::clone(&log),
                    Arc::clone(&handler),
                    issuer.clone(),
                    base2.clone(),
                );
                std::thread::spawn(move || serve_one(stream, &log, &*handler, &issuer, &base));
            }
        });
        Self { base, seen, stop }
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    fn count(&self, what: impl Fn(&Seen) -> bool) -> usize {
        self.seen().iter().filter(|s| what(s)).count()
    }

    /// Waits (at most 30 s) until `enough` holds.
    fn wait_for(&self, what: &str, enough: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !enough(&self.seen()) {
            assert!(
                Instant::now() < deadline,
                "the stub never saw {what}: {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    mut stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    handler: &Handler,
    issuer: &str,
    base: &str,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let (mut length, mut bearer) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("authorization") {
                bearer = true;
            }
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let mut parts = line.split_whitespace();
    let seen = Seen {
        method: parts.next().unwrap_or_default().to_owned(),
        path: parts.next().unwrap_or_default().to_owned(),
        bearer,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().expect("log").push(seen.clone());
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/.well-known/oauth-protected-resource/mcp") => {
            let document = json!({
                "resource": format!("{base}/mcp"),
                "authorization_servers": [issuer],
                "scopes_supported": ["mcp:tools"],
            });
            respond(
                &mut stream,
                "200 OK",
                "Content-Type: application/json\r\n",
                &document.to_string(),
            );
        }
        ("POST", "/mcp") if !seen.bearer => respond(
            &mut stream,
            "401 Unauthorized",
            &format!("WWW-Authenticate: Bearer resource_metadata=\"{metadata}\"\r\n"),
            "",
        ),
        _ => handler(&seen, &mut stream),
    }
}

/// A whole answer, then the connection closes.
fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// The usual answers of a 2025 server: `initialize` (with a session), 202 for notifications,
/// an empty `tools/list`. `false` for anything else.
fn basics(seen: &Seen, stream: &mut TcpStream) -> bool {
    if seen.method != "POST" {
        return false;
    }
    match seen.rpc().as_str() {
        "initialize" => {
            let answer = json!({"jsonrpc": "2.0", "id": seen.id(), "result": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "stub", "version": "1"}}});
            respond(
                stream,
                "200 OK",
                "Content-Type: application/json\r\nMcp-Session-Id: s1\r\n",
                &answer.to_string(),
            );
        }
        "tools/list" => {
            let answer = json!({"jsonrpc": "2.0", "id": seen.id(), "result": {"tools": []}});
            respond(
                stream,
                "200 OK",
                "Content-Type: application/json\r\n",
                &answer.to_string(),
            );
        }
        method if method.starts_with("notifications/") => {
            respond(stream, "202 Accepted", "", "");
        }
        _ => return false,
    }
    true
}

/// The oidc-provider (auto-approving) and `mcp auth <stub>` done in a new home.
fn signed_in(stub: &Stub) -> Home {
    let home = Home::new();
    home.run_env(
        &["mcp", "auth", &stub.url(), "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    home
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

/// Hostile stub: the GET stream alternates a 401 and a short stream (one event, `retry: 100`, then
/// closed). Before, each 401 refreshed the token again (96 refresh-token rotations in 10 s); now
/// the stream refreshes once in its life, and the next 401 ends it. Requests still go through.
#[test]
fn a_get_stream_alternating_401_and_short_streams_refreshes_once() {
    if !require_server() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&gets);
    let stub = Stub::start(&auth.issuer, move |seen, stream| {
        if basics(seen, stream) {
            return;
        }
        if seen.method == "GET" && seen.path == "/mcp" {
            if counter.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                respond(
                    stream,
                    "401 Unauthorized",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
                    "",
                );
            } else {
                let event = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"short"}}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nretry: 100\nid: 1\ndata: {event}\n\n"
                );
            }
            return;
        }
        respond(stream, "404 Not Found", "", "");
    });
    let home = signed_in(&stub);
    let before = auth.stats();
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "stub", "{init}");
    // 401 → refresh → a short stream → 401: the end.
    stub.wait_for("three GETs", |seen| {
        seen.iter()
            .filter(|s| s.method == "GET" && s.path == "/mcp")
            .count()
            >= 3
    });
    // At `retry: 100` a loop would have sent many more GETs by now; none comes.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert_eq!(gets.load(Ordering::SeqCst), 3, "{:?}", stub.seen());
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = proxy.call(2, "tools/list", json!({}));
    assert!(list["result"]["tools"].is_array(), "{list}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let after = auth.stats();
    assert_eq!(
        count(&after, "refresh_requests") - count(&before, "refresh_requests"),
        1,
        "one refresh: {after}"
    );
    assert_eq!(
        count(&after, "token_requests") - count(&before, "token_requests"),
        1,
        "{after}"
    );
    assert!(
        stderr.contains("the server refuses the GET stream (401)"),
        "{stderr}"
    );
}

/// A `BROWSER` stand-in that counts its openings in `log` and completes the sign-in with
/// follow.mjs.
fn counting_browser(dir: &Path, log: &Path) -> String {
    let script = dir.join("count-browser.sh");
    let follow = browser_script("follow.mjs");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho opened >> '{}'\nexec {follow} \"$@\"\n",
            log.display()
        ),
    )
    .expect("browser script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    script.display().to_string()
}

fn openings(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |s| s.lines().count())
}

/// Hostile stub: every `tools/call` gets a 403 `insufficient_scope` naming a scope it never named
/// before. Before, each new name opened a browser for a step-up; now one step-up per token, then
/// every call gets an `auth_failed` error naming `mcp auth <url> --scope …`.
#[test]
fn invented_scopes_open_one_browser_at_most() {
    if !require_server() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let invented = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&invented);
    let stub = Stub::start(&auth.issuer, move |seen, stream| {
        if basics(seen, stream) {
            return;
        }
        if seen.rpc() == "tools/call" {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            respond(
                stream,
                "403 Forbidden",
                &format!(
                    "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"invented:{n}\"\r\n"
                ),
                "",
            );
            return;
        }
        respond(stream, "405 Method Not Allowed", "", "");
    });
    let home = signed_in(&stub);
    let log = home.path().join("browser-openings");
    let browser = counting_browser(home.path(), &log);
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[("BROWSER", browser.as_str())]);
    proxy.initialize();
    let fix = format!("context-harness mcp auth {} --scope", stub.url());
    for id in 2..7 {
        let answer = proxy.call(
            id,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        );
        assert_eq!(answer["error"]["code"], -32003, "{answer}");
        assert_eq!(answer["error"]["data"]["code"], "auth_failed", "{answer}");
        let hint = answer["error"]["data"]["hint"].as_str().unwrap_or_default();
        assert!(hint.starts_with(&fix), "{answer}");
        assert!(
            hint.contains("--scope invented:0"),
            "the step-up's scope: {answer}"
        );
    }
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        invented.load(Ordering::SeqCst) >= 6,
        "every call was refused with a new scope"
    );
    assert_eq!(openings(&log), 1, "one browser at most: {stderr}");
}

/// The stub of the legacy HTTP+SSE transport: `initialize` POSTs to `/mcp` get 404 (so the bridge
/// falls back), GET `/mcp` opens the stream naming `endpoint`; a POST there is answered on the
/// stream. Returns the stub.
fn legacy_stub(issuer: &str, endpoint: &'static str) -> Stub {
    let sse: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
    Stub::start(issuer, move |seen, stream| {
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/mcp") => respond(stream, "404 Not Found", "", ""),
            ("GET", "/mcp") => {
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nevent: endpoint\ndata: {endpoint}\n\n"
                );
                let _ = stream.flush();
                *sse.lock().expect("sse") = stream.try_clone().ok();
            }
            ("POST", path) if path == endpoint => {
                respond(stream, "202 Accepted", "", "");
                let answer = match seen.rpc().as_str() {
                    "initialize" => json!({"jsonrpc": "2.0", "id": seen.id(), "result": {
                        "protocolVersion": "2024-11-05", "capabilities": {}, "serverInfo": {"name": "legacy-stub", "version": "1"}}}),
                    _ => return,
                };
                if let Some(sse) = sse.lock().expect("sse").as_mut() {
                    let _ = write!(sse, "event: message\ndata: {answer}\n\n");
                    let _ = sse.flush();
                }
            }
            _ => respond(stream, "404 Not Found", "", ""),
        }
    })
}

/// Hostile stub: the legacy transport's `endpoint` names another path of the same origin, outside
/// the token's audience (`<stub>/mcp`). Before, the bearer went there; now the bridge refuses the
/// endpoint with an error saying so, and nothing is sent there. An endpoint inside the audience
/// (`/mcp/messages`) is used, with the bearer.
#[test]
fn a_legacy_endpoint_outside_the_audience_gets_no_bearer() {
    if !require_server() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = legacy_stub(&auth.issuer, "/other/messages?sessionId=1");
    let home = signed_in(&stub);
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["error"]["code"], -32003, "{init}");
    assert_eq!(init["error"]["data"]["code"], "auth_failed", "{init}");
    let message = init["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/other/messages") && message.contains("outside the audience"),
        "{init}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stub.count(|s| s.method == "GET" && s.path == "/mcp" && s.bearer) >= 1,
        "the stream was opened with the token: {:?}",
        stub.seen()
    );
    assert_eq!(
        stub.count(|s| s.path.starts_with("/other")),
        0,
        "nothing went to the endpoint outside the audience: {:?}",
        stub.seen()
    );

    // Inside the audience: the same transport works, with the bearer.
    let inside = legacy_stub(&auth.issuer, "/mcp/messages");
    let home = signed_in(&inside);
    let mut proxy = Proxy::spawn(&home, &inside.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "legacy-stub",
        "{init}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        inside.count(|s| s.path == "/mcp/messages" && s.bearer) >= 1,
        "{:?}",
        inside.seen()
    );
}
