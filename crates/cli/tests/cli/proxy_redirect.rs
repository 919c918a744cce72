//! `mcp proxy` and redirects of the MCP endpoint (issue 20, "Real servers"). The servers here are
//! small local **stubs reproducing a quirk of real servers** — Starlette-based MCP servers answer
//! `/mcp` with `307 Location: /mcp/` (`redirect_slashes`) — and **hostile ones** (a redirect to
//! another origin, a redirect out of the token's audience). Before, every redirect was an error
//! ("answered HTTP 307"); now a same-origin 307/308 is followed, with the bearer only inside the
//! token's audience, and a refused redirect is reported with its `Location`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn rpc(&self) -> String {
        self.json()["method"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream, &str) + Send + Sync;

/// A raw HTTP/1.1 stub on loopback (one thread per connection, one request per connection). With
/// an `issuer`, it is a protected resource too: a POST to `/mcp` without a token gets a 401 naming
/// its RFC 9728 metadata (resource `<base>/mcp`, that issuer), so `mcp auth <base>/mcp` signs in.
/// The handler gets the request and the stub's base URL.
struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Stub {
    fn start(
        issuer: Option<&str>,
        handler: impl Fn(&Seen, &mut TcpStream, &str) + Send + Sync + 'static,
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
            issuer.map(str::to_owned),
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
                std::thread::spawn(move || {
                    serve_one(stream, &log, &*handler, issuer.as_deref(), &base);
                });
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
    issuer: Option<&str>,
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
    if let Some(issuer) = issuer {
        let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/.well-known/oauth-protected-resource/mcp") => {
                let document = json!({
                    "resource": format!("{base}/mcp"),
                    "authorization_servers": [issuer],
                });
                respond(
                    &mut stream,
                    "200 OK",
                    "Content-Type: application/json\r\n",
                    &document.to_string(),
                );
                return;
            }
            ("POST", "/mcp") if !seen.bearer => {
                respond(
                    &mut stream,
                    "401 Unauthorized",
                    &format!("WWW-Authenticate: Bearer resource_metadata=\"{metadata}\"\r\n"),
                    "",
                );
                return;
            }
            _ => {}
        }
    }
    handler(&seen, &mut stream, base);
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

fn redirect(stream: &mut TcpStream, location: &str) {
    respond(
        stream,
        "307 Temporary Redirect",
        &format!("Location: {location}\r\n"),
        "",
    );
}

/// A 2025 server's answers: `initialize` (with a session), an empty `tools/list`, 202 for
/// notifications, 405 for the GET stream, 200 for `DELETE`.
fn server(seen: &Seen, stream: &mut TcpStream) {
    let id = seen.json()["id"].clone();
    match (seen.method.as_str(), seen.rpc().as_str()) {
        ("POST", "initialize") => {
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "redirected", "version": "1"}}});
            respond(
                stream,
                "200 OK",
                "Content-Type: application/json\r\nMcp-Session-Id: s1\r\n",
                &answer.to_string(),
            );
        }
        ("POST", "tools/list") => {
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}});
            respond(
                stream,
                "200 OK",
                "Content-Type: application/json\r\n",
                &answer.to_string(),
            );
        }
        ("POST", _) => respond(stream, "202 Accepted", "", ""),
        ("DELETE", _) => respond(stream, "200 OK", "", ""),
        _ => respond(stream, "405 Method Not Allowed", "", ""),
    }
}

/// Quirk stub (Starlette's `redirect_slashes`): every request to `/mcp` gets `307 → /mcp/`, where
/// the server is. The bridge follows for the POSTs, the GET stream and the `DELETE`.
#[test]
fn a_same_origin_redirect_of_the_endpoint_is_followed() {
    let stub = Stub::start(None, |seen, stream, _| match seen.path.as_str() {
        "/mcp" => redirect(stream, "/mcp/"),
        "/mcp/" => server(seen, stream),
        _ => respond(stream, "404 Not Found", "", ""),
    });
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "redirected", "{init}");
    let list = proxy.call(2, "tools/list", json!({}));
    assert_eq!(list["result"]["tools"], json!([]), "{list}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    for method in ["initialize", "notifications/initialized", "tools/list"] {
        assert_eq!(
            stub.count(|s| s.path == "/mcp/" && s.rpc() == method),
            1,
            "{method} reached /mcp/ once: {:?}",
            stub.seen()
        );
    }
    assert!(
        stub.count(|s| s.path == "/mcp/" && s.method == "DELETE") == 1,
        "the session was ended at /mcp/: {:?}",
        stub.seen()
    );
}

/// Hostile stub: `/mcp` redirects to another origin (a second stub) with a secret in the query.
/// The redirect is refused; the error names the `Location` without its query, and nothing reaches
/// the other origin.
#[test]
fn a_redirect_to_another_origin_is_refused_and_named() {
    let elsewhere = Stub::start(None, |seen, stream, _| server(seen, stream));
    let target = format!("{}/mcp?secret=hunter2", elsewhere.base);
    let stub = Stub::start(None, move |_, stream, _| redirect(stream, &target));
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["error"]["data"]["code"], "redirect_refused", "{init}");
    let message = init["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{}/mcp", elsewhere.base)) && message.contains("another origin"),
        "{init}"
    );
    assert!(
        !message.contains("hunter2"),
        "the query is not shown: {init}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

/// Hostile stub: a redirect loop on the same origin is followed a bounded number of times, then
/// refused.
#[test]
fn a_redirect_loop_is_bounded() {
    let stub = Stub::start(None, |_, stream, _| redirect(stream, "/mcp"));
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["error"]["data"]["code"], "redirect_refused", "{init}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    let posts = stub.count(|s| s.rpc() == "initialize");
    assert_eq!(
        posts, 4,
        "the initialize POST and 3 redirects followed, no more"
    );
}

/// Signed in to `<stub>/mcp` (the token's audience): `/mcp` → `/mcp/` is followed with the bearer
/// (inside the audience); a redirect of the same origin out of the audience (`/other/mcp`) is
/// refused, and the bearer never goes there.
#[test]
fn the_bearer_follows_a_redirect_only_inside_its_audience() {
    if !require_server() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = Stub::start(Some(&auth.issuer), |seen, stream, _| {
        match seen.path.as_str() {
            "/mcp" if seen.rpc() == "initialize" || seen.method != "POST" => {
                redirect(stream, "/mcp/");
            }
            // Later requests are sent elsewhere: out of the audience.
            "/mcp" => redirect(stream, "/other/mcp"),
            "/mcp/" | "/other/mcp" => server(seen, stream),
            _ => respond(stream, "404 Not Found", "", ""),
        }
    });
    let home = Home::new();
    home.run_env(
        &["mcp", "auth", &stub.url(), "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    let mut proxy = Proxy::spawn(&home, &stub.url(), &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "redirected", "{init}");
    let list = proxy.call(2, "tools/list", json!({}));
    assert_eq!(list["error"]["data"]["code"], "redirect_refused", "{list}");
    let message = list["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/other/mcp") && message.contains("audience"),
        "{list}"
    );
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stub.count(|s| s.path == "/mcp/" && s.rpc() == "initialize" && s.bearer) == 1,
        "initialize followed to /mcp/ with the bearer: {:?}",
        stub.seen()
    );
    assert_eq!(
        stub.count(|s| s.path.starts_with("/other")),
        0,
        "nothing went out of the audience: {:?}",
        stub.seen()
    );
}
