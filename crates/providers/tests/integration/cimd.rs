//! Client ID Metadata Documents (MCP 2026-07-28 "Client Registration"), end to end at the real
//! oidc-provider with its `clientIdMetadataDocument` feature (`AS_CIMD=1`): the document this crate
//! renders is served on loopback (`AS_CIMD_FETCH_ORIGIN` maps its https URL there), fetched and
//! validated by the authorization server, and its URL is the client id of the whole grant. Also the
//! registration order: pre-registered, then the document, then dynamic registration, then an error
//! asking for a client.

use std::sync::{Arc, Mutex};

use context_harness_providers::{
    App, Environment, ErrorCode, HttpSettings, client_metadata_document,
    client_metadata_redirect_uris,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::mcp::{McpStub, PrmConfig, opts, start};
use crate::support::{AuthServer, Harness};

/// Where the application says its document is published (never resolved: the authorization server
/// fetches it from the loopback [`DocumentServer`]).
const URL: &str = "https://client.example/oauth/client-metadata.json";

/// The variable the default application reads the document URL from.
const VAR: &str = "CONTEXT_HARNESS_CLIENT_METADATA_URL";

/// Serves `document` at the path of [`URL`] on loopback (404 elsewhere) and records the paths asked.
struct DocumentServer {
    origin: String,
    paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DocumentServer {
    async fn start(document: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&paths);
        let body = document.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (seen, body) = (Arc::clone(&seen), body.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(path.clone());
                    let (status, body) = if path == "/oauth/client-metadata.json" {
                        ("200 OK", body)
                    } else {
                        ("404 Not Found", "{}".to_owned())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            origin,
            paths,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.paths.lock().unwrap().len()
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The authorization server with client metadata documents on, fetching them from `documents`.
fn start_cimd(documents: &DocumentServer) -> Option<AuthServer> {
    start(&[
        ("AS_AUTO_APPROVE", "1"),
        ("AS_CIMD", "1"),
        ("AS_CIMD_FETCH_ORIGIN", documents.origin.as_str()),
    ])
}

fn harness_with(issuer: &str, pairs: &[(&str, &str)]) -> Harness {
    let env = Environment::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)));
    Harness::with(issuer, "ch-public", env, HttpSettings::default(), "")
}

#[test]
fn the_document_lists_the_listeners_fixed_redirect_uris() {
    assert_eq!(
        client_metadata_redirect_uris(),
        [
            "http://127.0.0.1:8080/callback",
            "http://127.0.0.1:3000/callback",
            "http://127.0.0.1:57548/callback",
        ]
    );
    let document = client_metadata_document(&App::default(), URL).unwrap();
    assert_eq!(
        document,
        json!({
            "client_id": URL,
            "client_name": "context-harness",
            "application_type": "native",
            "redirect_uris": client_metadata_redirect_uris(),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    );
    let err = client_metadata_document(&App::default(), "http://client.example/c.json");
    assert_eq!(err.err().map(|e| e.code()), Some(ErrorCode::ConfigInvalid));
}

/// The document's URL is the client id at an authorization server that fetches documents: no
/// dynamic registration, the document fetched and accepted, the fixed `/callback` path, a token for
/// the server, and a refresh as the same public client (no secret, even when the environment has
/// one for pre-registered clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_metadata_document_is_the_client_at_oidc_provider() {
    let documents =
        DocumentServer::start(client_metadata_document(&App::default(), URL).unwrap()).await;
    let Some(server) = start_cimd(&documents) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = harness_with(&server.issuer, &[(VAR, URL)]);
    let url = stub.url();

    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    assert_eq!(
        outcome
            .tokens
            .extra
            .get("client_id")
            .and_then(Value::as_str),
        Some(URL)
    );
    let path = url::Url::parse(&outcome.redirect_uri)
        .unwrap()
        .path()
        .to_owned();
    assert_eq!(path, "/callback", "{}", outcome.redirect_uri);
    let claims = crate::mcp::jwt_payload(outcome.tokens.access_token.secret());
    assert_eq!(claims["aud"], url.as_str(), "{claims}");
    assert_eq!(claims["client_id"], URL, "{claims}");
    let stats = server.stats().await;
    assert_eq!(stats["registration_requests"], 0, "{stats}");
    assert!(stats["cimd_fetches"][URL].as_u64() >= Some(1), "{stats}");
    assert!(documents.hits() >= 1);
    assert!(!h.home.path().join("registrations").exists());
    let record = h.service.mcp_server_record(&url).unwrap().unwrap();
    assert_eq!(record.client_metadata_url.as_deref(), Some(URL));
    assert!(!record.dynamic_client);
    let last = server.last_token_request().await;
    assert_eq!(last["client_id"], URL, "{last}");

    // Another process with a secret in its environment (meant for a pre-registered client) refreshes
    // as the same public client: the secret is never sent.
    let other = crate::support::service_for(
        h.home.path(),
        Environment::from_pairs([(VAR, URL), ("CONTEXT_HARNESS_CLIENT_SECRET", "s3cret")]),
        HttpSettings::default(),
        |_: &str| Ok(()),
    );
    let refreshed = other.refresh_tokens(&url).await.unwrap();
    assert_ne!(refreshed.access_token, outcome.tokens.access_token);
    let last = server.last_token_request().await;
    assert_eq!(last["grant_type"], "refresh_token", "{last}");
    assert_eq!(last["client_id"], URL, "{last}");
    assert!(last.get("client_secret").is_none(), "{last}");
    assert!(last.get("authorization_scheme").is_none(), "{last}");
}

/// Pre-registered, then the document (only where the server announces support and RFC 9207 `iss`),
/// then dynamic registration, then an error that names the document option.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_order_pre_registered_document_dynamic_error() {
    let documents =
        DocumentServer::start(client_metadata_document(&App::default(), URL).unwrap()).await;
    let Some(server) = start_cimd(&documents) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let url = stub.url();
    let client_id = |outcome: &context_harness_providers::AuthOutcome| {
        outcome
            .tokens
            .extra
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };

    // A pre-registered client wins; the document is not even fetched.
    let h = harness_with(&server.issuer, &[(VAR, URL)]);
    let outcome = h
        .service
        .authenticate(&url, opts().client_id("ch-public"))
        .await
        .unwrap();
    assert_eq!(client_id(&outcome).as_deref(), Some("ch-public"));
    assert_eq!(documents.hits(), 0);
    assert_eq!(server.stats().await["registration_requests"], 0);

    // Without a document URL: dynamic registration, as before.
    let h = harness_with(&server.issuer, &[]);
    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    assert_ne!(client_id(&outcome).as_deref(), Some(URL));
    assert_eq!(server.stats().await["registration_requests"], 1);

    // A server that does not announce RFC 9207 `iss`: the shared redirect URIs of a document would
    // lose the mix-up defence, so the client registers dynamically instead.
    server
        .control(
            json!({"discovery_patch": {"authorization_response_iss_parameter_supported": null}}),
        )
        .await;
    let h = harness_with(&server.issuer, &[(VAR, URL)]);
    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    assert_ne!(client_id(&outcome).as_deref(), Some(URL));
    assert_eq!(server.stats().await["registration_requests"], 2);

    // A server that does not accept documents: dynamic registration.
    server
        .control(json!({"discovery_patch": {"client_id_metadata_document_supported": null}}))
        .await;
    let h = harness_with(&server.issuer, &[(VAR, URL)]);
    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    assert_ne!(client_id(&outcome).as_deref(), Some(URL));
    assert_eq!(server.stats().await["registration_requests"], 3);
    assert_eq!(documents.hits(), 0);

    // Documents accepted but no registration endpoint and no URL configured: the error asks for one.
    server
        .control(json!({"discovery_patch": {"registration_endpoint": null}}))
        .await;
    let h = harness_with(&server.issuer, &[]);
    let err = h.service.authenticate(&url, opts()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigMissing, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("--client-metadata-url") && text.contains(VAR),
        "{text}"
    );

    // An unusable URL in the variable is a configuration error, named.
    let h = harness_with(&server.issuer, &[(VAR, "http://client.example/c.json")]);
    let err = h.service.authenticate(&url, opts()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
    assert!(err.to_string().contains("https"), "{err}");
}
