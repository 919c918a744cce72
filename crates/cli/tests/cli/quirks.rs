//! Real servers' sign-in answers, handled as their users expect (issue 21), through the binary:
//!
//! - a dynamic registration that the server refuses without a `scope` gets one; a refusal shows the
//!   server's own reason without `-v`;
//! - `--port 0` registers the port the listener actually has (a server comparing redirect URIs
//!   exactly accepts it), and a later `--port 0` sign-in reuses that registration;
//! - a token endpoint answering HTTP 200 with GitHub's `bad_refresh_token` is a refused refresh:
//!   exit 7, "sign in again", and `mcp status` says so;
//! - tokens nested as Slack documents them (`authed_user`) are read through `token_path` in
//!   `providers.toml`, never guessed;
//! - a zero or negative `expires_in` is stored as already expired, with an honest message.
//!
//! The server is a small local **stub reproducing those documented behaviours** (no real server is
//! reachable from the tests, and the repository's oidc-provider behaves otherwise): an MCP endpoint
//! that answers 401, its RFC 9728 and RFC 8414 metadata, RFC 7591 registration, an authorization
//! endpoint that redirects straight back (the browser is `tests/browser/follow.mjs`) and a token
//! endpoint with canned answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::util::{Home, browser_script, require};

/// What the stub does beyond the plain protocol.
#[derive(Clone, Default)]
struct Quirks {
    /// `/register` refuses a request without `scope` (`invalid_client_metadata`).
    registration_needs_scope: bool,
    /// `/register` refuses every request, with this `error_description`.
    registration_closed: Option<String>,
    /// The token endpoint's answer to the authorization code grant (HTTP 200).
    code_answer: Value,
    /// Its answer to the refresh grant (HTTP 200, whatever it holds: GitHub answers errors so).
    refresh_answer: Value,
}

/// One request the stub received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Redirect URIs registered so far; `/authorize` compares exactly against them.
    registered: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    fn start(quirks: Quirks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let registered = Arc::new(Mutex::new(Vec::new()));
        let (base2, seen2, registered2) =
            (base.clone(), Arc::clone(&seen), Arc::clone(&registered));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (base, seen, registered, quirks) = (
                    base2.clone(),
                    Arc::clone(&seen2),
                    Arc::clone(&registered2),
                    quirks.clone(),
                );
                std::thread::spawn(move || serve(stream, &base, &seen, &registered, &quirks));
            }
        });
        Self {
            base,
            seen,
            registered,
        }
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn requests(&self, method: &str, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }

    /// A home whose `providers.toml` has `[providers.<name>]` on this stub, plus `extra` lines.
    fn provider_home(&self, name: &str, extra: &str) -> Home {
        let home = Home::new();
        std::fs::write(
            home.path().join("providers.toml"),
            format!(
                "[providers.{name}]\nauth_url = \"{b}/authorize\"\ntoken_url = \"{b}/token\"\n\
                 client_id = \"stub-app\"\nredirect_host = \"127.0.0.1\"\nports = [0]\n{extra}\n",
                b = self.base
            ),
        )
        .expect("providers.toml");
        home
    }
}

fn serve(
    mut stream: TcpStream,
    base: &str,
    seen: &Mutex<Vec<Seen>>,
    registered: &Mutex<Vec<String>>,
    quirks: &Quirks,
) {
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
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    seen.lock().expect("seen").push(Seen {
        method,
        path: path.to_owned(),
        body: body.clone(),
    });
    let json_answer =
        |status: &str, value: &Value| (status.to_owned(), String::new(), value.to_string());
    let (status, headers, answer) = match path {
        "/mcp" => (
            "401 Unauthorized".to_owned(),
            format!(
                "WWW-Authenticate: Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"\r\n"
            ),
            "{}".to_owned(),
        ),
        "/.well-known/oauth-protected-resource/mcp" => json_answer(
            "200 OK",
            &json!({
                "resource": format!("{base}/mcp"),
                "authorization_servers": [base],
                "scopes_supported": ["mcp:read"],
            }),
        ),
        "/.well-known/oauth-authorization-server" => json_answer(
            "200 OK",
            &json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["mcp:read"],
                "authorization_response_iss_parameter_supported": true,
            }),
        ),
        "/register" => register(&body, registered, quirks),
        "/authorize" => authorize(query, base, registered),
        "/token" => {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            let refresh = form
                .iter()
                .any(|(k, v)| k == "grant_type" && v == "refresh_token");
            let answer = if refresh {
                &quirks.refresh_answer
            } else {
                &quirks.code_answer
            };
            json_answer("200 OK", answer)
        }
        _ => json_answer("404 Not Found", &json!({})),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// RFC 7591 registration, with the quirks that refuse it.
fn register(
    body: &str,
    registered: &Mutex<Vec<String>>,
    quirks: &Quirks,
) -> (String, String, String) {
    let request: Value = serde_json::from_str(body).unwrap_or_default();
    let refuse = |description: &str| {
        (
            "400 Bad Request".to_owned(),
            String::new(),
            json!({"error": "invalid_client_metadata", "error_description": description})
                .to_string(),
        )
    };
    if let Some(description) = &quirks.registration_closed {
        return refuse(description);
    }
    if quirks.registration_needs_scope && request["scope"].as_str().is_none_or(str::is_empty) {
        return refuse("scope is required: name the scopes this client will request");
    }
    let uris: Vec<String> = request["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    registered.lock().expect("registered").extend(uris.clone());
    let answer = json!({
        "client_id": "stub-client",
        "redirect_uris": uris,
        "grant_types": request["grant_types"],
        "token_endpoint_auth_method": "none",
        "scope": request["scope"],
    });
    ("201 Created".to_owned(), String::new(), answer.to_string())
}

/// The authorization endpoint: straight back to the redirect URI with a code, when that URI is
/// registered exactly (or the client is a configured provider's, which registers nothing).
fn authorize(query: &str, base: &str, registered: &Mutex<Vec<String>>) -> (String, String, String) {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let redirect_uri = get("redirect_uri");
    let dynamic = get("client_id") == "stub-client";
    if dynamic
        && !registered
            .lock()
            .expect("registered")
            .contains(&redirect_uri)
    {
        return (
            "400 Bad Request".to_owned(),
            String::new(),
            json!({"error": "invalid_request", "error_description": "redirect_uri is not registered"})
                .to_string(),
        );
    }
    let location = format!(
        "{redirect_uri}?code=stub-code&state={}&iss={}",
        url::form_urlencoded::byte_serialize(get("state").as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(base.as_bytes()).collect::<String>()
    );
    (
        "302 Found".to_owned(),
        format!("Location: {location}\r\n"),
        String::new(),
    )
}

fn node_present() -> bool {
    require(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node",
    )
}

fn auth(home: &Home, target: &str) -> crate::util::Run {
    home.run_env(
        &["mcp", "auth", target, "--port", "0", "--timeout", "30"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
}

fn tokens_answer() -> Value {
    json!({"access_token": "stub-access", "token_type": "Bearer", "expires_in": 3600,
           "refresh_token": "stub-refresh"})
}

/// A server that refuses a registration without `scope` gets the scope the sign-in asks for (the
/// metadata's `scopes_supported`); with `--port 0` the registration names the port the listener
/// has, which a server comparing redirect URIs exactly accepts; a second `--port 0` sign-in reuses
/// that registration.
#[test]
fn registration_sends_the_scope_and_the_port_actually_listened_on() {
    if !node_present() {
        return;
    }
    let stub = Stub::start(Quirks {
        registration_needs_scope: true,
        code_answer: tokens_answer(),
        ..Quirks::default()
    });
    let home = Home::new();
    let url = stub.mcp_url();
    for round in 0..2 {
        let run = auth(&home, &url);
        run.expect_code(0);
        assert_eq!(stub.requests("POST", "/register").len(), 1, "round {round}");
    }
    let registration: Value =
        serde_json::from_str(&stub.requests("POST", "/register")[0].body).expect("json");
    assert_eq!(registration["scope"], "mcp:read", "{registration}");
    // Both authorization requests went to a registered redirect URI (the stub refuses others).
    assert_eq!(stub.requests("GET", "/authorize").len(), 2);
    assert_eq!(stub.requests("POST", "/token").len(), 2);
    let registered = stub.registered.lock().expect("registered").clone();
    assert_eq!(registered.len(), 4, "{registered:?}");
    home.run(&["mcp", "token", &url]).expect_code(0);
}

/// A refused registration says why, in the server's words (sanitised), without `-v`.
#[test]
fn a_refused_registration_shows_the_servers_reason() {
    let stub = Stub::start(Quirks {
        registration_closed: Some(
            "self-service registration is closed\u{1b}[2J; ask the administrator for a client id"
                .to_owned(),
        ),
        ..Quirks::default()
    });
    let home = Home::new();
    let run = auth(&home, &stub.mcp_url());
    run.expect_code(4);
    assert!(
        run.stderr.contains("self-service registration is closed"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("ask the administrator"), "{run:#?}");
    assert!(!run.stderr.contains('\u{1b}'), "{run:#?}");
}

/// GitHub answers a dead refresh token with HTTP 200 and `bad_refresh_token`: like
/// `invalid_grant`, a refused refresh (exit 7, "sign in again"), and `mcp status` says so.
#[test]
fn a_200_bad_refresh_token_is_a_refused_refresh() {
    if !node_present() {
        return;
    }
    let stub = Stub::start(Quirks {
        code_answer: json!({"access_token": "gho_stub", "token_type": "bearer",
            "expires_in": 28800, "refresh_token": "ghr_stub", "refresh_token_expires_in": 15_897_600,
            "scope": ""}),
        refresh_answer: json!({"error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/oauth"}),
        ..Quirks::default()
    });
    let home = stub.provider_home("ghstub", "");
    auth(&home, "ghstub").expect_code(0);
    home.backdate("ghstub", 30_000.0);
    let token = home.run(&["mcp", "token", "ghstub"]);
    token.expect_code(7);
    assert!(token.stderr.contains("bad_refresh_token"), "{token:#?}");
    assert!(token.stderr.contains("sign in again"), "{token:#?}");
    assert!(token.stdout.is_empty());
    let status = home.run(&["mcp", "status", "ghstub", "--json"]);
    status.expect_code(7);
    assert_eq!(
        status.json()["providers"][0]["status"],
        "token_refresh_failed",
        "{status:#?}"
    );
    // The refusal is remembered: no second refresh request with the dead token.
    home.run(&["mcp", "token", "ghstub"]).expect_code(7);
    assert_eq!(
        stub.requests("POST", "/token").len(),
        2,
        "one exchange and one refresh"
    );
}

/// Slack's `oauth.v2.access` puts a user's tokens under `authed_user`: read there with
/// `token_path = "authed_user"`; without the option the answer's top level is read (and holds no
/// access token here), never a guess.
#[test]
fn nested_tokens_are_read_where_token_path_says() {
    if !node_present() {
        return;
    }
    let slack = json!({"ok": true, "app_id": "A0KRD7HC3",
        "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-user-token",
            "token_type": "user", "refresh_token": "xoxe-1-refresh", "expires_in": 43_200},
        "team": {"id": "T9TK3CUKW", "name": "Slack Softwares"}, "enterprise": null,
        "is_enterprise_install": false});
    let stub = Stub::start(Quirks {
        code_answer: slack,
        ..Quirks::default()
    });
    let home = stub.provider_home("slackstub", "token_path = \"authed_user\"");
    auth(&home, "slackstub").expect_code(0);
    let token = home.run(&["mcp", "token", "slackstub"]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "xoxp-user-token");
    let stored = home.tokens("slackstub");
    assert_eq!(stored["refresh_token"], "xoxe-1-refresh");
    assert_eq!(stored["expires_in"], 43_200);
    assert_eq!(stored["scope"], "chat:write");

    let plain = stub.provider_home("slackplain", "");
    let run = auth(&plain, "slackplain");
    run.expect_code(4);
    assert!(run.stderr.contains("no access_token"), "{run:#?}");
    plain.run(&["mcp", "token", "slackplain"]).expect_code(3);

    let bad = stub.provider_home("slackbad", "token_path = \"authed user\"");
    let run = bad.run(&["mcp", "status", "slackbad"]);
    run.expect_code(13);
    assert!(run.stderr.contains("token_path"), "{run:#?}");
}

/// `expires_in` 0 or negative: the sign-in is kept, the token stored as already expired, and the
/// user told so; with a refresh token it is refreshed on first use, without one `mcp token` says
/// it has expired.
#[test]
fn a_token_born_expired_is_kept_and_said() {
    if !node_present() {
        return;
    }
    let stub = Stub::start(Quirks {
        code_answer: json!({"access_token": "born-expired", "token_type": "Bearer",
            "expires_in": -30, "refresh_token": "stub-refresh"}),
        refresh_answer: json!({"access_token": "refreshed", "token_type": "Bearer",
            "expires_in": 3600}),
        ..Quirks::default()
    });
    let home = stub.provider_home("expstub", "");
    let run = auth(&home, "expstub");
    run.expect_code(0);
    assert!(run.stderr.contains("already expired"), "{run:#?}");
    assert!(
        run.stderr.contains("refreshed when it is first used"),
        "{run:#?}"
    );
    assert_eq!(home.tokens("expstub")["expires_in"], 0);
    let status = home.run(&["mcp", "status", "expstub", "--json"]);
    assert_eq!(status.json()["providers"][0]["status"], "token_expired");
    let token = home.run(&["mcp", "token", "expstub"]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "refreshed");

    let stub = Stub::start(Quirks {
        code_answer: json!({"access_token": "born-expired", "expires_in": 0}),
        ..Quirks::default()
    });
    let home = stub.provider_home("expstub", "");
    let run = auth(&home, "expstub");
    run.expect_code(0);
    assert!(run.stderr.contains("cannot be renewed"), "{run:#?}");
    let token = home.run(&["mcp", "token", "expstub"]);
    token.expect_code(6);
    assert!(token.stdout.is_empty());
}

/// A token file that does not parse is what a sign-in replaces: reading the stored tokens before
/// it (to share another process's sign-in) does not stop it.
#[test]
fn a_sign_in_replaces_a_token_file_that_does_not_parse() {
    if !node_present() {
        return;
    }
    let stub = Stub::start(Quirks {
        code_answer: tokens_answer(),
        ..Quirks::default()
    });
    let home = stub.provider_home("corrupt", "");
    let tokens = home.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens dir");
    std::fs::write(tokens.join("corrupt.json"), "{not json").expect("garbage");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = |path: &std::path::Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        private(&tokens, 0o700);
        private(&tokens.join("corrupt.json"), 0o600);
    }
    home.run(&["mcp", "token", "corrupt"]).expect_code(12);
    auth(&home, "corrupt").expect_code(0);
    let token = home.run(&["mcp", "token", "corrupt"]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), "stub-access");
}
