//! A hostile authorization server against the binary: hostile numbers and terminal escapes.
//!
//! The server here is a small local **stub reproducing a hostile server**: no real authorization
//! server sends an `interval` of `i64::MAX` or terminal escape sequences in its answers, so the
//! repository's oidc-provider cannot play this part.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::util::Home;

/// Escape sequences and bidi controls a hostile server puts in its text.
const OSC52: &str = "\u{1b}]52;c;ZXZpbA==\u{7}";
const OSC8: &str = "\u{1b}]8;;https://evil.example/\u{1b}\\";
const CLEAR: &str = "\u{1b}[2J";
const RLO: &str = "\u{202E}";

/// What must never reach the terminal.
fn assert_clean(what: &str, text: &str) {
    for bad in [
        '\u{1b}', '\u{7}', '\u{9b}', '\u{9d}', '\u{202E}', '\u{2066}', '\u{200B}',
    ] {
        assert!(
            !text.contains(bad),
            "{what} contains {:?}:\n{text}",
            bad.escape_unicode().to_string()
        );
    }
}

/// The stub: answers by path with the bodies given; records nothing else.
struct Stub {
    url: String,
}

impl Stub {
    fn start(routes: Vec<(&'static str, u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let routes = Arc::new(Mutex::new(routes));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
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
                let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                let answer = routes
                    .lock()
                    .expect("routes")
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map(|(_, s, b)| (*s, b.clone()));
                let (status, body) = answer.unwrap_or((404, "{}".to_owned()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url }
    }
}

fn home_for(stub: &Stub) -> Home {
    let home = Home::new();
    let url = &stub.url;
    std::fs::write(
        home.path().join("providers.toml"),
        format!(
            r#"[providers.hostile]
display_name = "Hostile{CLEAR}"
auth_url = "{url}/auth"
token_url = "{url}/token"
device_auth_url = "{url}/device"
client_id = "cli"
scopes = ["read"]
"#
        )
        .replace('\u{1b}', "\\u001b"),
    )
    .expect("write providers.toml");
    home
}

fn device_answer(interval: &str) -> String {
    serde_json::json!({
        "device_code": "dc",
        "user_code": format!("AB{OSC52}CD{RLO}EF"),
        "verification_uri": format!("{}/device{OSC8}", "https://as.example"),
        "verification_uri_complete": format!("https://as.example/device?c=1{CLEAR}"),
        "expires_in": 9_223_372_036_854_775_807_i64,
        "interval": serde_json::from_str::<serde_json::Value>(interval).expect("number"),
    })
    .to_string()
}

/// The reported crash: `"interval": 9223372036854775807` aborted the process (SIGABRT, exit 134).
/// Now the interval is clamped: the sign-in ends at the caller's timeout with exit 10, no signal,
/// and the hostile `user_code` / `verification_uri(_complete)` reach stderr without their escapes.
#[test]
fn huge_device_interval_ends_in_a_clean_timeout() {
    let stub = Stub::start(vec![
        ("/device", 200, device_answer("9223372036854775807")),
        (
            "/token",
            400,
            r#"{"error":"authorization_pending"}"#.to_owned(),
        ),
    ]);
    let home = home_for(&stub);
    let run = home.run(&["mcp", "auth", "hostile", "--device", "--timeout", "2"]);
    assert_eq!(run.code, 10, "a clean timeout, not a signal: {run:#?}");
    assert!(run.stderr.contains("not approved within 2 s"), "{run:#?}");
    // The code is still shown (minus the escapes), so the user can read it.
    assert!(run.stderr.contains("AB"), "{run:#?}");
    assert!(run.stderr.contains("https://as.example/device"), "{run:#?}");
    assert_clean("stderr", &run.stderr);
    assert_clean("stdout", &run.stdout);
}

/// A token answer with hostile scopes and a hostile display name: the sign-in succeeds, and neither
/// `auth` nor `status` prints an escape; the stored scope keeps only valid scope tokens.
#[test]
fn hostile_scope_and_names_are_sanitised() {
    let token = serde_json::json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
        "scope": format!("read {OSC52} write{RLO}x {CLEAR} {OSC8} ok:1"),
    })
    .to_string();
    let stub = Stub::start(vec![
        ("/device", 200, device_answer("1")),
        ("/token", 200, token),
    ]);
    let home = home_for(&stub);
    let run = home.run(&["mcp", "auth", "hostile", "--device", "--timeout", "30"]);
    run.expect_code(0);
    assert_clean("auth stderr", &run.stderr);
    assert_clean("auth stdout", &run.stdout);
    assert!(run.stderr.contains("scopes: read ok:1"), "{run:#?}");
    let stored = home.tokens("hostile");
    assert_eq!(stored["scope"], "read ok:1");
    let status = home.run(&["mcp", "status", "hostile"]);
    assert_clean("status stdout", &status.stdout);
    assert_clean("status stderr", &status.stderr);
    assert!(status.stdout.contains("Hostile"), "{status:#?}");
    let providers = home.run(&["mcp", "providers"]);
    assert_clean("providers stdout", &providers.stdout);
}

/// An error answer whose `error_description` and `error` carry escapes and bidi overrides: the
/// error report (with `-v`, which shows the server's description) stays clean.
#[test]
fn hostile_error_description_is_sanitised() {
    let error = serde_json::json!({
        "error": format!("invalid_scope{CLEAR}"),
        "error_description": format!("{OSC8}click here{OSC52} {RLO}txet{CLEAR}"),
        "error_uri": format!("https://as.example/{OSC8}"),
    })
    .to_string();
    let stub = Stub::start(vec![("/device", 400, error)]);
    let home = home_for(&stub);
    let run = home.run(&["-v", "mcp", "auth", "hostile", "--device", "--timeout", "5"]);
    assert!(run.code > 0 && run.code < 128, "{run:#?}");
    assert_clean("stderr", &run.stderr);
    assert_clean("stdout", &run.stdout);
}

/// Reserved parameters in `providers.toml`: refused at load with exit 13, the
/// message naming the file, the table and the parameter. No server is needed: loading fails first.
#[test]
fn reserved_parameters_in_providers_toml_are_refused() {
    let cases = [
        (
            "[providers.acme]\nauth_url = \"https://a.example/authorize?redirect_uri=https://evil.example/cb\"\ntoken_url = \"https://a.example/token\"\nclient_id = \"c\"\n",
            "providers.acme.auth_url: parameter `redirect_uri`",
        ),
        (
            "[providers.acme]\nauth_url = \"https://a.example/authorize\"\ntoken_url = \"https://a.example/token\"\nclient_id = \"c\"\nextra_auth_params = { code_challenge_method = \"plain\" }\n",
            "providers.acme.extra_auth_params: parameter `code_challenge_method`",
        ),
    ];
    for (toml, needle) in cases {
        let home = Home::new();
        std::fs::write(home.path().join("providers.toml"), toml).expect("write");
        for args in [&["mcp", "auth", "acme"][..], &["mcp", "providers"][..]] {
            let run = home.run(args);
            run.expect_code(13);
            assert!(run.stderr.contains("providers.toml:"), "{run:#?}");
            assert!(run.stderr.contains(needle), "{run:#?}");
        }
    }
}
