//! A small local **stub reproducing a hostile MCP server and its authorization server** (shared
//! with the CLI's tests): no real server puts terminal escape sequences, bidi overrides or C1
//! controls into its metadata, registration answers, error descriptions, `WWW-Authenticate` values
//! and response headers, so neither the repository's oidc-provider nor the SDK servers can play
//! this part. Plain `std` threads: one connection at a time is enough, every answer closes it.
//!
//! It serves, on `http://127.0.0.1:<port>` (its issuer is [`issuer`], on the same origin):
//! - `/mcp`: 401 with a hostile `WWW-Authenticate` and headers, or (with [`Mode::OpenMcp`]) a
//!   JSON-RPC error with a hostile message in an SSE stream whose event ids and names are hostile;
//! - the RFC 9728 and RFC 8414 metadata, with hostile optional fields (and a hostile second
//!   authorization server, which is never used);
//! - `/register` (RFC 7591), `/authorize` (a 302 back to the redirect URI) and `/token`, as
//!   [`Mode`] says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// OSC 52: writes the clipboard.
pub(crate) const OSC52: &str = "\u{1b}]52;c;ZXZpbA==\u{7}";
/// Clears the screen.
pub(crate) const CLEAR: &str = "\u{1b}[2J";
/// Sets the window title.
pub(crate) const TITLE: &str = "\u{1b}]0;pwned\u{7}";
/// A link whose target differs from its text.
pub(crate) const OSC8: &str = "\u{1b}]8;;https://evil.example/\u{1b}\\";
/// Right-to-left override.
pub(crate) const RLO: &str = "\u{202E}";
/// The 8-bit CSI (a C1 control).
pub(crate) const CSI: &str = "\u{9b}";

/// Every attack in one string.
pub(crate) fn hostile(prefix: &str) -> String {
    format!("{prefix}{OSC52}{CLEAR}{TITLE}{OSC8}{RLO}txet{CSI}31m\u{2066}\u{200B}")
}

/// What header values can carry (HTTP forbids ESC and BEL there, not UTF-8 `obs-text`).
pub(crate) fn hostile_header(prefix: &str) -> String {
    format!("{prefix}{RLO}txet{CSI}2J\u{2066}\u{200B}\u{FEFF}")
}

/// Fails when `text` holds a character that must never reach a terminal: ESC, BEL, a C1 control,
/// a bidi override, embedding or isolate, a zero-width or other format character.
#[track_caller]
pub(crate) fn assert_clean(what: &str, text: &str) {
    if let Some(bad) = text
        .chars()
        .find(|c| context_harness_providers::tokens::is_unsafe_for_terminal(*c) && *c != '\n')
    {
        panic!(
            "{what} contains {}:\n{}",
            bad.escape_unicode(),
            text.escape_debug()
        );
    }
}

/// What the stub answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// `/register` issues a client_id holding escape sequences.
    UnprintableClientId,
    /// `/register` refuses with a hostile `error` and `error_description`.
    RegistrationRefused,
    /// Registration succeeds; `/token` refuses the code with a hostile `error_description`.
    TokenRefused,
    /// `/mcp` needs no token and answers every request with a JSON-RPC error whose message is
    /// hostile, in an SSE stream with hostile event ids and names.
    OpenMcp,
}

/// The stub; stops accepting when the test process ends.
pub(crate) struct HostileServer {
    /// `http://127.0.0.1:<port>`, its issuer.
    pub(crate) base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl HostileServer {
    pub(crate) fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (base2, seen2) = (base.clone(), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (base, seen) = (base2.clone(), Arc::clone(&seen2));
                std::thread::spawn(move || serve(stream, &base, mode, &seen));
            }
        });
        Self { base, seen }
    }

    /// The MCP server's URL.
    pub(crate) fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// `METHOD /path` of every request so far.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, base: &str, mode: Mode, seen: &Mutex<Vec<String>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
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
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let path = target.split('?').next().unwrap_or("").to_owned();
    if let Ok(mut seen) = seen.lock() {
        seen.push(format!("{method} {path}"));
    }
    let answer = route(&method, &target, &path, &body, base, mode);
    write_answer(stream, answer);
}

/// Status, extra header lines (raw, may hold UTF-8), content type, body.
type Answer = (u16, Vec<String>, &'static str, Vec<u8>);

fn json_answer(status: u16, headers: Vec<String>, value: &Value) -> Answer {
    (
        status,
        headers,
        "application/json",
        value.to_string().into_bytes(),
    )
}

fn route(method: &str, target: &str, path: &str, body: &[u8], base: &str, mode: Mode) -> Answer {
    let hostile_headers = vec![
        format!("X-Hostile: {}", hostile_header("header")),
        format!("Server: {}", hostile_header("stub")),
    ];
    match (method, path) {
        ("POST", "/mcp") if mode == Mode::OpenMcp => mcp_error(body),
        ("GET", "/mcp") if mode == Mode::OpenMcp => (405, Vec::new(), "text/plain", Vec::new()),
        ("DELETE", "/mcp") => (405, Vec::new(), "text/plain", Vec::new()),
        (_, "/mcp") => {
            let mut headers = hostile_headers;
            headers.push(format!(
                "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"{}\", \
                 resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"read\"",
                hostile_header("expired")
            ));
            (
                401,
                headers,
                "application/json",
                json!({"error": hostile("unauthorized")})
                    .to_string()
                    .into_bytes(),
            )
        }
        ("GET", "/.well-known/oauth-protected-resource/mcp") => json_answer(
            200,
            hostile_headers,
            &json!({
                "resource": format!("{base}/mcp"),
                // The first is used: an issuer with a bidi override in its path (a URL parser
                // percent-encodes it, the issuer string keeps it). The second only reaches a
                // debug log.
                "authorization_servers": [issuer(base), format!("https://as.example/{}", hostile("as"))],
                "resource_name": hostile("MCP"),
                "resource_documentation": format!("https://docs.example/{}", hostile("d")),
                "scopes_supported": ["read", hostile("w")],
                "bearer_methods_supported": ["header"],
            }),
        ),
        ("GET", p) if p.starts_with("/.well-known/oauth-authorization-server/") => json_answer(
            200,
            hostile_headers,
            &json!({
                "issuer": issuer(base),
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "code_challenge_methods_supported": ["S256"],
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["read", hostile("s")],
                "service_documentation": format!("https://docs.example/{}", hostile("sd")),
                "op_policy_uri": hostile("policy"),
                "ui_locales_supported": [hostile("en")],
            }),
        ),
        ("POST", "/register") => register(mode, hostile_headers),
        ("GET", "/authorize") => authorize(target, base),
        ("POST", "/token") => json_answer(
            400,
            hostile_headers,
            &json!({
                "error": "invalid_grant",
                "error_description": hostile("the code"),
                "error_uri": format!("https://as.example/{}", hostile("e")),
            }),
        ),
        _ => (
            404,
            hostile_headers,
            "text/html",
            format!("<html>{}</html>", hostile("not found")).into_bytes(),
        ),
    }
}

fn register(mode: Mode, headers: Vec<String>) -> Answer {
    match mode {
        Mode::RegistrationRefused => json_answer(
            400,
            headers,
            &json!({
                "error": hostile("invalid_client_metadata"),
                "error_description": hostile("no"),
            }),
        ),
        Mode::UnprintableClientId => json_answer(
            201,
            headers,
            &json!({
                "client_id": hostile("client"),
                "client_id_issued_at": 1_700_000_000,
                "token_endpoint_auth_method": "none",
            }),
        ),
        Mode::TokenRefused | Mode::OpenMcp => json_answer(
            201,
            headers,
            &json!({
                "client_id": "printable-client",
                "token_endpoint_auth_method": "none",
                "client_name": hostile("name"),
                "software_id": hostile("sw"),
            }),
        ),
    }
}

/// The authorization server's issuer: the stub's origin and a path holding a bidi override.
pub(crate) fn issuer(base: &str) -> String {
    format!("{base}/t{RLO}x")
}

/// A 302 to the redirect URI with a code and the state, as an auto-approving server does.
fn authorize(target: &str, base: &str) -> Answer {
    let url = url::Url::parse(&format!("{base}{target}")).expect("authorize URL");
    let get = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut back = url::Url::parse(&get("redirect_uri")).expect("redirect_uri");
    back.query_pairs_mut()
        .append_pair("code", "the-code")
        .append_pair("state", &get("state"));
    (
        302,
        vec![format!("Location: {back}")],
        "text/plain",
        Vec::new(),
    )
}

/// A JSON-RPC error answer to the request in `body` (an SSE stream: a hostile event that is not a
/// message first, then the answer with a hostile event id); notifications get 202.
fn mcp_error(body: &[u8]) -> Answer {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(id) = request.get("id").cloned() else {
        return (202, Vec::new(), "text/plain", Vec::new());
    };
    let answer = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": -32601, "message": hostile("no such method"), "data": hostile("data")},
    });
    let stream = format!(
        "event: {}\ndata: {{}}\n\nid: {}\nevent: message\ndata: {answer}\n\n",
        hostile("ping"),
        hostile("e1").replace(['\n', '\r'], "")
    );
    (
        200,
        vec![format!("X-Hostile: {}", hostile_header("sse"))],
        "text/event-stream",
        stream.into_bytes(),
    )
}

fn write_answer(mut stream: TcpStream, (status, headers, content_type, body): Answer) {
    let mut head = format!(
        "HTTP/1.1 {status} Hostile\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(&header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}
