//! What a hostile authorization server of a *provider* (a `providers.toml` entry) can put into its
//! token answer, through the binary: a field named like the binding of an MCP server's tokens, and
//! an access token that carries terminal controls or a line break. The token endpoint is a small
//! local stub (no real server sends such answers), reached by the device flow so no browser is
//! needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use serde_json::{Value, json};

use crate::util::Home;

/// A provider's device and token endpoints on a loopback port: `/device` starts a device
/// authorization, `/token` answers every request with `token_answer`.
struct TokenStub {
    base: String,
}

impl TokenStub {
    fn start(token_answer: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let token_answer = token_answer.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(read_half) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read_half);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let answer = if path.starts_with("/device") {
                    json!({
                        "device_code": "dc", "user_code": "ABCD-EFGH",
                        "verification_uri": "http://127.0.0.1/verify",
                        "expires_in": 600, "interval": 1
                    })
                    .to_string()
                } else {
                    token_answer.clone()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Self { base }
    }

    /// A home whose `providers.toml` has `[providers.acme]` on this stub.
    fn home(&self) -> Home {
        let home = Home::new();
        std::fs::write(
            home.path().join("providers.toml"),
            format!(
                "[providers.acme]\nauth_url = \"{b}/auth\"\ntoken_url = \"{b}/token\"\n\
                 device_auth_url = \"{b}/device\"\nclient_id = \"acme-cli\"\n",
                b = self.base
            ),
        )
        .expect("providers.toml");
        home
    }
}

/// A provider's token endpoint cannot bind its tokens to an MCP server: an `mcp_server` field in
/// its answer (the name under which a server's sign-in records the server its tokens were issued
/// for) is not kept, so the tokens are never moved under the server's name nor sent to it.
#[test]
fn a_providers_token_answer_cannot_bind_its_tokens_to_an_mcp_server() {
    let victim = "https://victim.example/mcp";
    let stub = TokenStub::start(json!({
        "access_token": "forged-access-token", "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": "forged-refresh-token",
        "mcp_server": {
            "server_url": victim,
            "issuer": "https://evil.example",
            "token_endpoint": "https://evil.example/token"
        }
    }));
    let home = stub.home();
    home.run(&["mcp", "auth", "acme", "--device", "--timeout", "30"])
        .expect_code(0);
    assert!(
        home.tokens("acme").get("mcp_server").is_none(),
        "the server's binding field was stored: {}",
        home.tokens("acme")
    );
    // The provider's own token is its own; the server was never signed in to.
    let token = home.run(&["mcp", "token", "acme"]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "forged-access-token");
    let server = home.run(&["mcp", "token", victim]);
    server.expect_code(3);
    assert!(!server.stdout.contains("forged"), "{server:#?}");
    let status = home.run(&["mcp", "status", "--json"]);
    status.expect_code(0);
    assert!(!status.stdout.contains("victim"), "{status:#?}");
    let files: Vec<String> = std::fs::read_dir(home.path().join("tokens"))
        .expect("tokens dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(!files.iter().any(|f| f.starts_with('_')), "{files:?}");
}

/// Tokens already stored under a provider's name with a binding to a server whose old storage name
/// is another (written by a hostile provider before the answer's field was dropped, or planted)
/// are not an older version's server sign-in: they are never moved to that server.
#[test]
fn tokens_bound_to_a_server_whose_old_name_is_another_are_not_moved_to_it() {
    let victim = "https://victim.example/mcp";
    let stub = TokenStub::start(json!({"access_token": "unused"}));
    let home = stub.home();
    std::fs::create_dir_all(home.path().join("tokens")).expect("tokens dir");
    let planted = json!({
        "access_token": "forged-access-token", "token_type": "Bearer", "expires_in": 3600,
        "issued_at": now(),
        "mcp_server": {
            "server_url": victim,
            "issuer": "https://evil.example",
            "token_endpoint": "https://evil.example/token"
        }
    });
    std::fs::write(home.token_file("acme"), planted.to_string()).expect("plant");
    set_private(&home.token_file("acme"));
    // The provider's name holds them, bound elsewhere: refused (13), never printed.
    let token = home.run(&["mcp", "token", "acme"]);
    token.expect_code(13);
    assert!(!token.stdout.contains("forged"), "{token:#?}");
    // Listing (which moves an older version's records) moves nothing either.
    home.run(&["mcp", "status"]).expect_code(0);
    // The server was never signed in to.
    let server = home.run(&["mcp", "token", victim]);
    server.expect_code(3);
    assert!(!server.stdout.contains("forged"), "{server:#?}");
    assert!(home.token_file("acme").exists());
    assert!(!home.token_file("_victim.example-mcp").exists());
}

/// RFC 6749 Appendix A: an access token (and a refresh token) is printable ASCII. One that carries
/// an escape sequence or a line break is refused at the token endpoint, so `mcp token` never
/// prints it (on a terminal: a clipboard write, a new window title; in
/// `curl -H "Authorization: Bearer $(context-harness mcp token acme)"`: a second header).
#[test]
fn an_access_token_with_terminal_controls_or_a_line_break_is_refused() {
    for (field, value) in [
        ("access_token", "a\u{1b}]52;c;ZXZpbA==\u{7}b"),
        ("access_token", "a\r\nX-Injected: 1"),
        ("access_token", "caf\u{e9}\u{202e}"),
        ("refresh_token", "r\u{1b}[2J"),
    ] {
        let mut answer =
            json!({"access_token": "good", "token_type": "Bearer", "expires_in": 3600});
        answer[field] = Value::from(value);
        let stub = TokenStub::start(answer);
        let home = stub.home();
        let auth = home.run(&["mcp", "auth", "acme", "--device", "--timeout", "30"]);
        assert_eq!(auth.code, 4, "{field} {value:?}: {auth:#?}");
        assert!(auth.stderr.contains(field), "{auth:#?}");
        assert!(!home.token_file("acme").exists(), "{field} {value:?}");
        let token = home.run(&["mcp", "token", "acme"]);
        token.expect_code(3);
        assert!(token.stdout.is_empty(), "{token:#?}");
    }
}

/// A token file written before the answer was checked, holding such an access token, is not
/// printed either.
#[test]
fn a_stored_access_token_with_terminal_controls_is_not_printed() {
    let stub = TokenStub::start(json!({"access_token": "unused"}));
    let home = stub.home();
    std::fs::create_dir_all(home.path().join("tokens")).expect("tokens dir");
    let stored = json!({
        "access_token": "a\u{1b}]0;pwned\u{7}\r\nX-Injected: 1", "token_type": "Bearer",
        "expires_in": 3600, "issued_at": now()
    });
    std::fs::write(home.token_file("acme"), stored.to_string()).expect("plant");
    set_private(&home.token_file("acme"));
    for args in [
        vec!["mcp", "token", "acme"],
        vec!["mcp", "token", "acme", "--json"],
    ] {
        let out = home.run(&args);
        assert_ne!(out.code, 0, "{out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
        assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
    }
}

/// Now, in the token files' `issued_at` form (unix seconds).
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn set_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}
