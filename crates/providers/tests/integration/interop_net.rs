//! Off-spec token answers, proxies and loopback, untrusted TLS.
//!
//! The token answers come from a **small local stub** (std `TcpListener`, one thread) that
//! reproduces documented provider quirks (Twitch's `scope` array) and broken servers (an HTTP 200
//! that is not a token response). It is not any provider itself; the tests are offline. The proxy
//! test signs in against the real local oidc-provider through a stub "proxy" that only records
//! whether anyone connected. The TLS stub (`tls_stub.rs`) serves a certificate of a private CA made
//! at test time with the `openssl` command.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::storage::{FileStore, ProviderName, TokenStore, tokens_dir};
use context_harness_providers::{
    AuthenticateOptions, Environment, ErrorCode, HttpSettings, OAuthTokens,
};

use crate::mcp::start;
use crate::support::{Harness, HttpBrowser, captured_logs, service_for};
use crate::tls_stub::{https_stub, private_ca, read_request};

/// A token endpoint answer: status, content type, body.
type Answer = (u16, &'static str, String);

/// The quirky authorization server's answer to one request: `/authorize` sends the browser straight
/// back with a code; `/token` gives `answer`.
fn respond(method: &str, target: &str, answer: &Answer) -> String {
    let url = reqwest::Url::parse(&format!("http://stub{target}")).unwrap();
    match (method, url.path()) {
        ("GET", "/authorize") => {
            let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
            let mut back = reqwest::Url::parse(&q["redirect_uri"]).unwrap();
            back.query_pairs_mut()
                .append_pair("code", "stub-code-0123456789")
                .append_pair("state", &q["state"]);
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {back}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
        ("POST", "/token") => {
            let (status, ct, body) = answer;
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    }
}

/// Starts the plain-HTTP quirky stub; returns its base URL.
fn quirky_stub(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Some((method, target, _)) = read_request(&mut stream) else {
                continue;
            };
            let _ = stream.write_all(respond(&method, &target, &answer).as_bytes());
        }
    });
    base
}

fn stub_toml(base: &str) -> String {
    format!(
        r#"
[providers.quirky]
display_name = "Quirky (stub)"
auth_url = "{base}/authorize"
token_url = "{base}/token"
scopes = ["openid"]
client_id = "quirky-client"
ports = [0]
"#
    )
}

async fn sign_in_with(answer: Answer) -> Result<OAuthTokens, context_harness_providers::Error> {
    captured_logs();
    let base = quirky_stub(answer);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("providers.toml"), stub_toml(&base)).unwrap();
    let service = service_for(
        home.path(),
        Environment::empty(),
        HttpSettings::default(),
        HttpBrowser::default().opener(),
    );
    service
        .authenticate(
            "quirky",
            AuthenticateOptions::new().timeout(Duration::from_secs(20)),
        )
        .await
        .map(|outcome| outcome.tokens)
}

/// Twitch answers `scope` as a JSON array and `token_type` in lower case: one clear meaning, so the
/// sign-in succeeds with the scopes joined by spaces (before, exit 11 after the code was redeemed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitch_scope_array_signs_in() {
    let body = r#"{"access_token":"twitch-at-0123456789","token_type":"bearer","expires_in":14487,"refresh_token":"twitch-rt-0123456789","scope":["openid","user:read:email"]}"#;
    let tokens = sign_in_with((200, "application/json", body.to_owned()))
        .await
        .unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("openid user:read:email"));
    assert_eq!(tokens.scopes(), vec!["openid", "user:read:email"]);
    assert!(tokens.is_bearer());
    assert_eq!(tokens.expires_in, Some(14487));
}

/// An HTTP 200 whose body is not a token response is the server's fault: `auth_failed` with a hint
/// that says so, never "check your network connection and proxy settings". A 5xx answer stays a
/// `network_error` but its hint is about the server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_answers_blame_the_server_not_the_network() {
    let off_spec: [Answer; 4] = [
        (
            200,
            "application/json",
            r#"{"access_token":"at-0123456789","scope":[{"name":"openid"}]}"#.to_owned(),
        ),
        (200, "text/plain", "this is not a token".to_owned()),
        (200, "application/json", String::new()),
        (
            200,
            "application/json",
            r#"{"access_token":"at","expires_in":"soon"}"#.to_owned(),
        ),
    ];
    for answer in off_spec {
        let what = answer.2.clone();
        let err = sign_in_with(answer).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{what}: {err}");
        assert!(
            err.to_string().contains("is not a token response"),
            "{what}: {err}"
        );
        let hint = err.hint().unwrap();
        assert!(hint.contains("not your network"), "{what}: {hint}");
        assert!(!hint.contains("proxy settings"), "{what}: {hint}");
        assert_eq!(err.http_status(), Some(200));
    }

    let err = sign_in_with((502, "text/plain", "Bad Gateway".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert!(
        !err.hint().unwrap().contains("network connection"),
        "{:?}",
        err.hint()
    );
}

/// A stub proxy: accepts connections and records the first line of each request (a `CONNECT` or an
/// absolute-form `GET`), then closes. It never forwards anything.
fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let _ = BufReader::new(&mut stream).read_line(&mut line);
            log.lock().unwrap().push(line.trim().to_owned());
            let _ = stream.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

/// With `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` set and no `NO_PROXY`, a sign-in and a refresh with
/// the loopback oidc-provider go direct: the proxy sees nothing (the code and verifier never reach
/// it). A non-loopback destination still goes through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_never_proxied_other_hosts_are() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let (proxy, seen) = recording_proxy();
    let env = Environment::from_pairs([
        ("HTTP_PROXY", proxy.as_str()),
        ("HTTPS_PROXY", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
    ]);
    let remote = r#"
[providers.remote]
auth_url = "https://as.example.invalid/authorize"
token_url = "https://as.example.invalid/token"
client_id = "remote-client"
"#;
    let h = Harness::with(
        &server.issuer,
        "ch-public",
        env,
        HttpSettings::default(),
        remote,
    );
    let outcome = h
        .service
        .authenticate(
            "local",
            AuthenticateOptions::new().timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert!(outcome.tokens.refresh_token.is_some());
    h.service.refresh_tokens("local").await.unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "the proxy saw {:?}",
        seen.lock().unwrap()
    );

    // A stored token for the non-loopback provider: its refresh goes to the proxy (a CONNECT for
    // the https token endpoint), which refuses it.
    let store = FileStore::new(tokens_dir(h.home.path()));
    let mut tokens = outcome.tokens.clone();
    tokens.issued_at -= 1e6;
    store
        .save(&ProviderName::new("remote").unwrap(), &tokens)
        .unwrap();
    let err = h.service.refresh_tokens("remote").await.unwrap_err();
    assert!(
        matches!(err.code(), ErrorCode::NetworkError | ErrorCode::Timeout),
        "{err}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CONNECT as.example.invalid:443"),
        "{seen:?}"
    );
}

/// Starts an HTTPS token-endpoint stub with the certificate at `cert`/`key`; returns its base URL.
fn tls_stub(cert: &std::path::Path, key: &std::path::Path) -> String {
    https_stub(cert, key, |method, target, _| {
        let answer: Answer = (
            200,
            "application/json",
            r#"{"access_token":"tls-at-0123456789","token_type":"Bearer","expires_in":3600}"#
                .to_owned(),
        );
        respond(method, target, &answer)
    })
}

/// A server whose certificate the trust store does not accept: the error says the certificate is
/// not trusted and names SSL_CERT_FILE / SSL_CERT_DIR, not "check your network". (That
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` then make it work is tested through the CLI, which can set the
/// process environment the trust store reads: `ssl_cert_file_and_dir_make_a_private_ca_trusted` in
/// `crates/cli/tests/cli/interop.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_says_so_and_names_ssl_cert_file() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = private_ca(dir.path()) else {
        return;
    };
    let base = tls_stub(&pki.cert, &pki.key);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("providers.toml"), stub_toml(&base)).unwrap();
    let service = service_for(
        home.path(),
        Environment::empty(),
        HttpSettings::default(),
        HttpBrowser::default().opener(),
    );
    let tokens = OAuthTokens::from_json(
        r#"{"access_token":"old-at","token_type":"Bearer","expires_in":1,"refresh_token":"old-rt","scope":null,"issued_at":1}"#,
    )
    .unwrap();
    FileStore::new(tokens_dir(home.path()))
        .save(&ProviderName::new("quirky").unwrap(), &tokens)
        .unwrap();
    let err = service.refresh_tokens("quirky").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert!(
        err.to_string().contains("certificate") && err.to_string().contains("not trusted"),
        "{err}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("SSL_CERT_FILE") && hint.contains("SSL_CERT_DIR"),
        "{hint}"
    );
    // The stored tokens are untouched.
    assert!(
        FileStore::new(tokens_dir(home.path()))
            .load(&ProviderName::new("quirky").unwrap())
            .unwrap()
            .is_some()
    );
}
