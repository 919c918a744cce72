//! GitHub's quirks, against a tiny local stub (std `TcpListener`) that mimics GitHub's *documented*
//! behaviour — not GitHub itself (tests are offline): the token endpoint answers
//! `application/x-www-form-urlencoded` unless asked otherwise and may return errors with HTTP 200;
//! scopes come back comma-separated; revocation is `DELETE /applications/{client_id}/token` with
//! Basic auth and a JSON body, answering 204.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::{
    AuthenticateOptions, Environment, ErrorCode, HttpSettings, Revocation,
};

use crate::support::{HttpBrowser, captured_logs, service_for};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// How the stub's token endpoint answers.
#[derive(Clone, Copy)]
enum TokenMode {
    /// HTTP 200, form-encoded body, comma-separated scopes (GitHub without `Accept: application/json`).
    FormSuccess,
    /// HTTP 200 with an OAuth error in JSON (GitHub does this).
    ErrorWith200,
}

struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn start_stub(mode: TokenMode) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body).into_owned();
            let url = reqwest::Url::parse(&format!("http://stub{target}")).unwrap();
            log.lock().unwrap().push(Seen {
                method: method.clone(),
                path: url.path().to_owned(),
                headers,
                body,
            });
            let response = match (method.as_str(), url.path()) {
                ("GET", "/login/oauth/authorize") => {
                    let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
                    let mut back = reqwest::Url::parse(&q["redirect_uri"]).unwrap();
                    back.query_pairs_mut()
                        .append_pair("code", "gh-code-0123456789")
                        .append_pair("state", &q["state"]);
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {back}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                }
                ("POST", "/login/oauth/access_token") => {
                    let (ct, body) = match mode {
                        TokenMode::FormSuccess => (
                            "application/x-www-form-urlencoded; charset=utf-8",
                            "access_token=gho_stubAccessToken0123456789&scope=repo%2Cgist&token_type=bearer".to_owned(),
                        ),
                        TokenMode::ErrorWith200 => (
                            "application/json; charset=utf-8",
                            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}"#.to_owned(),
                        ),
                    };
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
                ("DELETE", path) if path.starts_with("/applications/") => {
                    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_owned()
                }
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Stub { base, seen }
}

fn providers_toml(base: &str) -> String {
    format!(
        r#"
[providers.ghstub]
display_name = "GitHub (stub)"
auth_url = "{base}/login/oauth/authorize"
token_url = "{base}/login/oauth/access_token"
revocation_url = "{base}/applications/{{client_id}}/token"
revocation_style = "github"
token_auth_method = "client_secret_post"
scopes = ["repo", "gist"]
client_id = "gh-client-id"
ports = [0]
"#
    )
}

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new().timeout(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_body_comma_scopes_and_rest_revocation() {
    captured_logs();
    let stub = start_stub(TokenMode::FormSuccess);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("providers.toml"),
        providers_toml(&stub.base),
    )
    .unwrap();
    let env = Environment::from_pairs([("GHSTUB_CLIENT_SECRET", "gh-secret-value")]);
    let service = service_for(
        home.path(),
        env,
        HttpSettings::default(),
        HttpBrowser::default().opener(),
    );

    let outcome = service.authenticate("ghstub", opts()).await.unwrap();
    assert_eq!(
        outcome.tokens.access_token.secret(),
        "gho_stubAccessToken0123456789"
    );
    assert_eq!(outcome.tokens.scopes(), vec!["repo", "gist"]);
    assert!(outcome.tokens.is_bearer());
    assert_eq!(
        outcome.tokens.expires_in, None,
        "GitHub OAuth-app tokens do not expire"
    );
    // A token without expiry is valid on the fast path.
    assert!(service.cached_valid_token("ghstub").unwrap().is_some());

    let seen = stub.seen.lock().unwrap().clone();
    let token_request = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(
        token_request.headers.get("accept").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        token_request
            .headers
            .get("content-type")
            .map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    let form: BTreeMap<String, String> = form_urlencoded::parse(token_request.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "gh-code-0123456789");
    assert_eq!(form["client_id"], "gh-client-id");
    assert_eq!(form["client_secret"], "gh-secret-value");
    assert!(form["code_verifier"].len() >= 43);
    assert!(form["redirect_uri"].starts_with("http://localhost:"));

    let outcome = service.logout("ghstub").await.unwrap();
    assert_eq!(outcome.revocation, Revocation::Revoked);
    assert!(outcome.deleted);
    let seen = stub.seen.lock().unwrap().clone();
    let delete = seen.iter().find(|s| s.method == "DELETE").unwrap();
    assert_eq!(delete.path, "/applications/gh-client-id/token");
    let auth = delete.headers.get("authorization").unwrap();
    assert!(auth.starts_with("Basic "), "Basic client_id:client_secret");
    let body: serde_json::Value = serde_json::from_str(&delete.body).unwrap();
    assert_eq!(body["access_token"], "gho_stubAccessToken0123456789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_with_http_200_is_an_auth_error() {
    captured_logs();
    let stub = start_stub(TokenMode::ErrorWith200);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("providers.toml"),
        providers_toml(&stub.base),
    )
    .unwrap();
    let service = service_for(
        home.path(),
        Environment::empty(),
        HttpSettings::default(),
        HttpBrowser::default().opener(),
    );
    let err = service.authenticate("ghstub", opts()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed, "{err:?}");
    assert_eq!(err.oauth_error(), Some("bad_verification_code"));
    assert_eq!(err.http_status(), Some(200));
    assert!(
        !err.to_string().contains("incorrect or expired"),
        "server text stays out of Display"
    );
    assert!(service.get_tokens("ghstub").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_logout_without_secret_deletes_locally_and_says_where_to_revoke() {
    captured_logs();
    let stub = start_stub(TokenMode::FormSuccess);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("providers.toml"),
        providers_toml(&stub.base),
    )
    .unwrap();
    let service = service_for(
        home.path(),
        Environment::empty(),
        HttpSettings::default(),
        HttpBrowser::default().opener(),
    );
    service.authenticate("ghstub", opts()).await.unwrap();
    let outcome = service.logout("ghstub").await.unwrap();
    match &outcome.revocation {
        Revocation::NotAttempted { reason } => {
            assert!(reason.contains("GHSTUB_CLIENT_SECRET"), "{reason}");
            assert!(
                reason
                    .contains("https://github.com/settings/connections/applications/gh-client-id"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(outcome.deleted);
    assert!(
        !stub
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.method == "DELETE")
    );
}
