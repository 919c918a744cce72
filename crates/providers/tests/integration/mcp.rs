//! MCP server sign-in (RFC 9728 → RFC 8414/OIDC → RFC 7591 → RFC 8707 + RFC 9207), the device
//! flow (RFC 8628) and issuer-only providers, against the real authorization server plus a small
//! protected-resource server written here (a stand-in MCP server: 401 + `WWW-Authenticate`, and
//! RFC 9728 metadata naming the real server as its authorization server).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use context_harness_providers::storage::ProviderName;
use context_harness_providers::{
    AuthStatus, AuthenticateOptions, ErrorCode, OAuthService, Revocation, SignInFlow,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{AuthServer, DeviceUi, Harness, captured_logs, test_client};
use context_harness_providers::protocol::DeviceAuthorization;

pub(crate) fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(30))
}

pub(crate) fn start(env: &[(&str, &str)]) -> Option<AuthServer> {
    captured_logs();
    AuthServer::start(env)
}

/// How the stand-in MCP server advertises its metadata.
#[derive(Clone)]
pub(crate) struct PrmConfig {
    /// `authorization_servers[0]`.
    pub(crate) issuer: String,
    /// The PRM `resource` (`{base}` stands for the stub's origin); `None` = its own `/mcp` URL.
    pub(crate) resource: Option<String>,
    /// Send `WWW-Authenticate: Bearer resource_metadata=…` (else only the well-known URLs work).
    pub(crate) header: bool,
    /// Override the `resource_metadata` URL in the header.
    pub(crate) header_url: Option<String>,
    /// `scopes_supported` in the PRM.
    pub(crate) scopes: Vec<&'static str>,
    /// Serve the PRM at the root well-known URL (`/.well-known/oauth-protected-resource`, which
    /// stands for the origin) instead of the path-inserted one.
    pub(crate) at_root: bool,
    /// A `scope` in the 401's Bearer challenge.
    pub(crate) challenge_scope: Option<&'static str>,
    /// Answer an `initialize` without a token with 200 (a server that authorizes per method, like
    /// the conformance suite's step-up server); every other request without one gets the 401.
    pub(crate) open_initialize: bool,
}

impl PrmConfig {
    pub(crate) fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            resource: None,
            header: true,
            header_url: None,
            scopes: vec!["mcp:tools"],
            at_root: false,
            challenge_scope: None,
            open_initialize: false,
        }
    }
}

/// A tiny HTTP/1.1 server: `/mcp` answers 401 without a bearer token; the PRM is served at
/// `/custom-prm` (the header's URL) and `/.well-known/oauth-protected-resource/mcp` (or the root
/// well-known URL with `at_root`).
pub(crate) struct McpStub {
    base: String,
    paths: Arc<Mutex<Vec<String>>>,
    /// `authorization_servers[0]` of the PRM from now on ([`switch_issuer`](Self::switch_issuer)).
    issuer: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl McpStub {
    pub(crate) async fn start(config: PrmConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let issuer = Arc::new(Mutex::new(config.issuer.clone()));
        let (base2, paths2, issuer2) = (base.clone(), Arc::clone(&paths), Arc::clone(&issuer));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (base, paths, mut config) =
                    (base2.clone(), Arc::clone(&paths2), config.clone());
                config.issuer = issuer2.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let authorized = head
                        .lines()
                        .any(|l| l.to_ascii_lowercase().starts_with("authorization: bearer "));
                    paths.lock().unwrap().push(path.clone());
                    let prm = json!({
                        "resource": config.resource.clone().map_or_else(|| format!("{base}/mcp"), |r| r.replace("{base}", &base)),
                        "authorization_servers": [config.issuer],
                        "scopes_supported": config.scopes,
                        "bearer_methods_supported": ["header"],
                    })
                    .to_string();
                    let initialize = String::from_utf8_lossy(&buf[head_end..])
                        .contains("\"method\":\"initialize\"");
                    let (status, extra, body) = match path.as_str() {
                        "/mcp" if authorized || (config.open_initialize && initialize) => {
                            ("200 OK", String::new(), "{\"ok\":true}".to_owned())
                        }
                        "/mcp" => {
                            let header = if config.header {
                                let url = config.header_url.clone().map_or_else(
                                    || format!("{base}/custom-prm"),
                                    |u| u.replace("{base}", &base),
                                );
                                let scope = config
                                    .challenge_scope
                                    .map_or_else(String::new, |s| format!(", scope=\"{s}\""));
                                format!(
                                    "WWW-Authenticate: Basic realm=\"x, y\", Bearer error=\"invalid_token\", resource_metadata=\"{url}\"{scope}\r\n"
                                )
                            } else {
                                "WWW-Authenticate: Bearer\r\n".to_owned()
                            };
                            (
                                "401 Unauthorized",
                                header,
                                "{\"error\":\"unauthorized\"}".to_owned(),
                            )
                        }
                        "/custom-prm" => ("200 OK", String::new(), prm),
                        "/.well-known/oauth-protected-resource/mcp" if !config.at_root => {
                            ("200 OK", String::new(), prm)
                        }
                        "/.well-known/oauth-protected-resource" if config.at_root => {
                            ("200 OK", String::new(), prm)
                        }
                        // A single-page app's catch-all route: 200 with HTML for any path.
                        "/spa" => (
                            "200 OK",
                            String::new(),
                            "<!doctype html><html><body><div id=\"app\"></div></body></html>"
                                .to_owned(),
                        ),
                        _ => ("404 Not Found", String::new(), "{}".to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            base,
            paths,
            issuer,
            task,
        }
    }

    /// The protected-resource metadata names `issuer` from now on (the server moved to another
    /// authorization server).
    pub(crate) fn switch_issuer(&self, issuer: &str) {
        issuer.clone_into(&mut self.issuer.lock().unwrap());
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub(crate) fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for McpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The JSON payload of a JWT (no signature check: the test only reads `aud`).
pub(crate) fn jwt_payload(token: &str) -> Value {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let payload = token.split('.').nth(1).expect("a JWT access token");
    let bytes = Base64UrlUnpadded::decode_vec(payload.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn registration_files(h: &Harness) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(h.home.path().join("registrations"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_url_sign_in_from_nothing_to_a_token_for_the_resource() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    assert_eq!(
        h.service.get_status(&url).unwrap(),
        AuthStatus::NotAuthenticated
    );

    let outcome = h.service.authenticate(&url, opts()).await.unwrap();
    let tokens = &outcome.tokens;
    // The access token is for this MCP server (RFC 8707 resource → JWT `aud`).
    let claims = jwt_payload(tokens.access_token.secret());
    assert_eq!(claims["aud"], url.as_str(), "{claims}");
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access is advertised, so it was requested"
    );

    // Discovery went through the header's resource_metadata URL first.
    let paths = stub.paths();
    assert_eq!(paths[0], "/mcp");
    assert_eq!(paths[1], "/custom-prm");
    // One dynamic registration (RFC 7591), stored 0600 and keyed by issuer.
    let stats = server.stats().await;
    assert_eq!(stats["registration_requests"], 1);
    let files = registration_files(&h);
    assert_eq!(files.len(), 1);
    let registration: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(registration["issuer"], server.issuer.as_str());
    // One redirect path per authorization server (RFC 9700 §4.4.2 mix-up defence). The sign-in
    // asked for any port (`ports([0])`): the listener was bound before registering, and the
    // registration names the port it got besides the default ones.
    let path = format!(
        "/callback/{}",
        ProviderName::from_url(&server.issuer).unwrap()
    );
    assert_eq!(
        registration["redirect_uris"],
        json!([
            format!("http://127.0.0.1:8080{path}"),
            format!("http://127.0.0.1:3000{path}"),
            format!("http://127.0.0.1:57548{path}"),
            outcome.redirect_uri,
        ])
    );
    // The scope asked for is registered, as far as the server supports it (this one does not
    // know the resource's own scopes).
    assert_eq!(registration["scope"], "offline_access", "{registration}");
    assert!(
        outcome.redirect_uri.ends_with(&path),
        "{}",
        outcome.redirect_uri
    );
    assert_eq!(registration["token_endpoint_auth_method"], "none");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(
        tokens.extra.get("client_id").and_then(Value::as_str),
        registration["client_id"].as_str()
    );

    // Stored under the name derived from the URL: `mcp token <url>` and `mcp status` find it.
    let name = ProviderName::for_server(&url).unwrap();
    assert!(h.stored(name.as_str()).is_some());
    assert_eq!(
        h.service.get_status(&url).unwrap(),
        AuthStatus::Authenticated
    );
    let fresh = h.another_service();
    let cached = fresh.cached_valid_token(&url).unwrap().unwrap();
    assert_eq!(cached.access_token, tokens.access_token);
    assert!(!fresh.http_client_built());
    assert_eq!(fresh.mcp_servers().len(), 1);

    // The bearer token opens the MCP server.
    let (status, _) = fresh.get_with_token(&url, &url).await.unwrap();
    assert_eq!(status, 200);

    // Refresh keeps the resource (the new token's audience is still the server).
    let refreshed = fresh.refresh_tokens(&url).await.unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(
        jwt_payload(refreshed.access_token.secret())["aud"],
        url.as_str()
    );

    // Signing in again reuses the registration.
    h.service.authenticate(&url, opts()).await.unwrap();
    assert_eq!(server.stats().await["registration_requests"], 1);

    // Logout revokes at the discovered revocation endpoint.
    let out = h.service.logout(&url).await.unwrap();
    assert_eq!(out.revocation, Revocation::Revoked);
    assert!(out.deleted);
    assert_eq!(
        h.service.get_status(&url).unwrap(),
        AuthStatus::NotAuthenticated
    );

    // No token, code or registration secret in the logs.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).to_string();
    for secret in [
        tokens.access_token.secret(),
        refreshed.access_token.secret(),
    ] {
        assert!(!logs.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prm_from_the_well_known_url_when_the_challenge_has_none() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let mut config = PrmConfig::new(&server.issuer);
    config.header = false;
    let stub = McpStub::start(config).await;
    let h = Harness::new(&server.issuer);
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.resource, stub.url());
    assert_eq!(
        stub.paths(),
        ["/mcp", "/.well-known/oauth-protected-resource/mcp"]
    );
}

/// MCP "Scope Selection Strategy": the first sign-in asks for the `scope` of the 401 challenge, not
/// the metadata's `scopes_supported`, also when the server lets `initialize` through without a token
/// (then the probe asks again with a request it guards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sign_in_asks_for_the_challenges_scope() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    for open_initialize in [false, true] {
        let mut config = PrmConfig::new(&server.issuer);
        config.scopes = vec!["mcp:resources"];
        config.challenge_scope = Some("mcp:tools");
        config.open_initialize = open_initialize;
        let stub = McpStub::start(config).await;
        let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
        assert_eq!(info.challenge_scope.as_deref(), Some("mcp:tools"));
        assert_eq!(info.default_scopes(), ["mcp:tools", "offline_access"]);
        let probes = stub.paths().iter().filter(|p| *p == "/mcp").count();
        assert_eq!(probes, if open_initialize { 2 } else { 1 });
        let outcome = h.service.authenticate(&stub.url(), opts()).await.unwrap();
        let scopes = outcome.tokens.scopes();
        assert!(scopes.contains(&"mcp:tools"), "{scopes:?}");
        assert!(!scopes.contains(&"mcp:resources"), "{scopes:?}");
    }
    // Without a scope in the challenge: the metadata's scopes_supported.
    let mut config = PrmConfig::new(&server.issuer);
    config.scopes = vec!["mcp:resources"];
    config.open_initialize = true;
    let stub = McpStub::start(config).await;
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.challenge_scope, None);
    assert_eq!(info.default_scopes(), ["mcp:resources", "offline_access"]);
}

/// MCP 2026-07-28 "Authorization Server Binding": when the protected-resource metadata names a new
/// authorization server, the client registers there (never presenting the old server's client id)
/// and keeps the old registration for the old server, which a move back reuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_authorization_server_gets_its_own_registration_and_the_old_one_is_kept() {
    let Some(as1) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let Some(as2) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&as1.issuer)).await;
    let h = Harness::new(&as1.issuer);
    let url = stub.url();
    let client_id = |tokens: &context_harness_providers::OAuthTokens| {
        tokens
            .extra
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };

    let first = h.service.authenticate(&url, opts()).await.unwrap();
    let id1 = client_id(&first.tokens);
    assert_eq!(as1.stats().await["registration_requests"], 1);

    stub.switch_issuer(&as2.issuer);
    let second = h.service.authenticate(&url, opts()).await.unwrap();
    let id2 = client_id(&second.tokens);
    assert_ne!(id1, id2);
    assert_eq!(as2.stats().await["registration_requests"], 1);
    assert_eq!(as1.stats().await["registration_requests"], 1);
    assert_eq!(
        jwt_payload(second.tokens.access_token.secret())["iss"],
        as2.issuer.as_str()
    );
    let record = h.service.mcp_server_record(&url).unwrap().unwrap();
    assert_eq!(record.issuer, as2.issuer);
    // One registration per issuer, the old one kept.
    assert_eq!(registration_files(&h).len(), 2);
    // The refresh goes to the new server with its client.
    let refreshed = h.service.refresh_tokens(&url).await.unwrap();
    assert_eq!(client_id(&refreshed), id2);
    assert_eq!(as2.stats().await["refresh_requests"], 1);
    assert_eq!(as1.stats().await["refresh_requests"], 0);

    // Back to the first server: its registration is reused, not made again.
    stub.switch_issuer(&as1.issuer);
    let third = h.service.authenticate(&url, opts()).await.unwrap();
    assert_eq!(client_id(&third.tokens), id1);
    assert_eq!(as1.stats().await["registration_requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_with_a_path_uses_path_insertion() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ISSUER_PATH", "/tenant1")]) else {
        return;
    };
    assert!(server.issuer.ends_with("/tenant1"), "{}", server.issuer);
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let outcome = h.service.authenticate(&stub.url(), opts()).await.unwrap();
    assert_eq!(
        jwt_payload(outcome.tokens.access_token.secret())["aud"],
        stub.url().as_str()
    );
    // RFC 8414 with the well-known segment inserted before the path answered first.
    let well_known = server.stats().await["well_known"].clone();
    assert_eq!(
        well_known,
        json!({"/.well-known/oauth-authorization-server/tenant1": 1})
    );

    // Without it, OIDC path insertion (404 here) and then the appended form are tried, in order.
    server.control(json!({"rfc8414_path": false})).await;
    let info = h.service.discover_mcp_server(&stub.url()).await.unwrap();
    assert_eq!(info.authorization_server.issuer, server.issuer);
    let well_known = server.stats().await["well_known"].clone();
    assert_eq!(
        well_known,
        json!({
            "/.well-known/oauth-authorization-server/tenant1": 2,
            "/.well-known/openid-configuration/tenant1": 1,
            "/tenant1/.well-known/openid-configuration": 1,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_metadata_issuer_mismatch_missing_s256_resource_and_ssrf() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;

    // The metadata names another issuer.
    server
        .control(json!({"discovery_patch": {"issuer": "http://127.0.0.1:1/evil"}}))
        .await;
    let err = h
        .service
        .authenticate(&stub.url(), opts())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed);
    assert!(err.to_string().contains("names issuer"), "{err}");

    // No S256 in code_challenge_methods_supported.
    server
        .control(json!({"discovery_patch": {"code_challenge_methods_supported": null}}))
        .await;
    let err = h
        .service
        .authenticate(&stub.url(), opts())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed);
    assert!(err.to_string().contains("S256"), "{err}");
    assert!(err.to_string().contains(&server.issuer), "{err}");
    server
        .control(json!({"discovery_patch": {"code_challenge_methods_supported": ["plain"]}}))
        .await;
    assert!(h.service.discover_mcp_server(&stub.url()).await.is_err());
    server.control(json!({"discovery_patch": null})).await;
    assert_eq!(
        server.stats().await["registration_requests"],
        0,
        "nothing registered"
    );

    // A PRM for another resource.
    let mut config = PrmConfig::new(&server.issuer);
    config.resource = Some("https://other.example/mcp".to_owned());
    let other = McpStub::start(config).await;
    let err = h
        .service
        .authenticate(&other.url(), opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // resource_metadata pointing at the cloud metadata address.
    let mut config = PrmConfig::new(&server.issuer);
    config.header_url = Some("http://169.254.169.254/latest/meta-data".to_owned());
    let ssrf = McpStub::start(config).await;
    let err = h
        .service
        .authenticate(&ssrf.url(), opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("169.254.169.254"), "{err}");

    // An authorization server on a link-local address.
    let ssrf_as = McpStub::start(PrmConfig::new("http://169.254.169.254/")).await;
    assert!(h.service.discover_mcp_server(&ssrf_as.url()).await.is_err());
    assert!(
        h.stored(ProviderName::for_server(&stub.url()).unwrap().as_str())
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_registers_after_the_server_forgets_the_client() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let url = stub.url();
    let first = h.service.authenticate(&url, opts()).await.unwrap().tokens;
    let first_client = first.extra["client_id"].as_str().unwrap().to_owned();

    // The server deletes the client: refresh answers invalid_client → the registration is dropped.
    server
        .post("/test/delete-client", json!({"client_id": first_client}))
        .await;
    let err = h.service.refresh_tokens(&url).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenRefreshFailed, "{err:?}");
    assert!(
        registration_files(&h).is_empty(),
        "the refused registration is forgotten"
    );
    assert_eq!(
        h.service.get_status(&url).unwrap(),
        AuthStatus::TokenRefreshFailed
    );

    // Signing in registers exactly once more and works.
    let second = h.service.authenticate(&url, opts()).await.unwrap().tokens;
    let second_client = second.extra["client_id"].as_str().unwrap().to_owned();
    assert_ne!(second_client, first_client);
    assert_eq!(server.stats().await["registration_requests"], 2);

    // Deleted at the server while the registration is still stored: RFC 7592 says it is gone.
    server
        .post("/test/delete-client", json!({"client_id": second_client}))
        .await;
    let third = h.service.authenticate(&url, opts()).await.unwrap().tokens;
    assert_ne!(third.extra["client_id"], second.extra["client_id"]);
    assert_eq!(server.stats().await["registration_requests"], 3);

    // A corrupted stored client id is noticed too.
    let files = registration_files(&h);
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    stored["client_id"] = json!("corrupted-client-id");
    std::fs::write(&files[0], stored.to_string()).unwrap();
    h.service.authenticate(&url, opts()).await.unwrap();
    assert_eq!(server.stats().await["registration_requests"], 4);
}

/// Runs a device sign-in, approving or denying it through the server's hook once it is pending.
async fn device_sign_in(
    server: &AuthServer,
    service: &OAuthService,
    provider: &str,
    action: Option<&'static str>,
) -> (
    context_harness_providers::Result<context_harness_providers::AuthOutcome>,
    Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let options = opts()
        .flow(SignInFlow::Device)
        .ui(DeviceUi(move |a: &DeviceAuthorization| {
            assert!(a.verification_uri.starts_with("http://127.0.0.1:"));
            let _ = tx.send(a.user_code.clone());
        }));
    let issuer = server.issuer.clone();
    let driver = tokio::spawn(async move {
        let user_code = rx.recv().await.unwrap();
        let Some(action) = action else { return };
        let client = test_client();
        // Let at least one poll see authorization_pending first.
        for _ in 0..50 {
            let stats: Value = client
                .get(format!("{issuer}/test/stats"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if stats["device_code_requests"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = client
            .post(format!("{issuer}/test/device"))
            .json(&json!({"user_code": user_code, "action": action}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    });
    let started = Instant::now();
    let result = service.authenticate(provider, options).await;
    let elapsed = started.elapsed();
    driver.await.unwrap();
    (result, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_approve_and_deny() {
    let Some(server) = start(&[]) else {
        return;
    };
    server.control(json!({"device_interval": 1})).await;
    let h = Harness::new(&server.issuer);
    let (result, _) = device_sign_in(&server, &h.service, "local", Some("approve")).await;
    let outcome = result.unwrap();
    assert!(server.is_active(outcome.tokens.access_token.secret()).await);
    assert_eq!(h.stored("local").unwrap(), outcome.tokens);
    let stats = server.stats().await;
    assert_eq!(stats["device_authorization_requests"], 1);
    assert!(
        stats["device_code_requests"].as_u64().unwrap() >= 2,
        "{stats}"
    );

    let (result, _) = device_sign_in(&server, &h.service, "local", Some("deny")).await;
    assert_eq!(result.unwrap_err().code(), ErrorCode::AuthCancelled);
    // The earlier tokens are untouched by the denied attempt.
    assert_eq!(h.stored("local").unwrap(), outcome.tokens);

    // The device code itself never reaches the logs.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).to_string();
    let last = server.last_token_request().await;
    assert!(!logs.contains(outcome.tokens.access_token.secret()));
    assert!(last.get("code").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_slow_down_adds_five_seconds() {
    let Some(server) = start(&[]) else {
        return;
    };
    server
        .control(json!({"device_interval": 1, "device_slow_down": 1}))
        .await;
    let h = Harness::new(&server.issuer);
    let (result, elapsed) = device_sign_in(&server, &h.service, "local", Some("approve")).await;
    result.unwrap();
    // Poll 1 after 1 s → slow_down; poll 2 after 1 + 5 s → tokens.
    assert!(elapsed >= Duration::from_secs(7), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert_eq!(server.stats().await["device_code_requests"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_expiry_is_a_timeout() {
    let Some(server) = start(&[]) else {
        return;
    };
    server
        .control(json!({"device_interval": 1, "device_code_ttl": 3}))
        .await;
    let h = Harness::new(&server.issuer);
    let (result, elapsed) = device_sign_in(&server, &h.service, "local", None).await;
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(h.stored("local").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_wait_is_bounded_by_the_timeout() {
    let Some(server) = start(&[]) else {
        return;
    };
    // The code lives 10 minutes; the caller allows 2 s.
    server
        .control(json!({"device_interval": 1, "device_code_ttl": 600}))
        .await;
    let h = Harness::new(&server.issuer);
    let options = opts()
        .timeout(Duration::from_secs(2))
        .flow(SignInFlow::Device)
        .ui(DeviceUi(|_: &DeviceAuthorization| {}));
    let started = Instant::now();
    let err = h.service.authenticate("local", options).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err:?}");
    assert!(err.to_string().contains("within 2 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(h.stored("local").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_for_an_mcp_server_url() {
    let Some(server) = start(&[]) else {
        return;
    };
    server.control(json!({"device_interval": 1})).await;
    let stub = McpStub::start(PrmConfig::new(&server.issuer)).await;
    let h = Harness::new(&server.issuer);
    let (result, _) = device_sign_in(&server, &h.service, &stub.url(), Some("approve")).await;
    let tokens = result.unwrap().tokens;
    assert_eq!(
        jwt_payload(tokens.access_token.secret())["aud"],
        stub.url().as_str()
    );
    assert_eq!(
        h.service.get_status(&stub.url()).unwrap(),
        AuthStatus::Authenticated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_needs_a_device_endpoint() {
    let Some(server) = start(&[]) else {
        return;
    };
    let h = Harness::with(
        &server.issuer,
        "ch-public",
        context_harness_providers::Environment::empty(),
        context_harness_providers::HttpSettings::default(),
        "",
    );
    // github has one; a provider without one is refused up front.
    let toml = std::fs::read_to_string(h.home.path().join("providers.toml")).unwrap();
    let toml = toml.replace(
        &format!("device_auth_url = \"{}/device/auth\"\n", server.issuer),
        "",
    );
    std::fs::write(h.home.path().join("providers.toml"), toml).unwrap();
    let service = h.another_service();
    let err = service
        .authenticate("local", opts().flow(SignInFlow::Device))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigMissing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_only_provider_discovers_and_caches_its_endpoints() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let issuer = &server.issuer;
    std::fs::write(
        h.home.path().join("providers.toml"),
        format!(
            r#"
[providers.disc]
issuer = "{issuer}"
client_id = "ch-public"
scopes = ["openid", "offline_access"]
extra_auth_params = {{ prompt = "consent" }}
redirect_host = "127.0.0.1"
ports = [0]
"#
        ),
    )
    .unwrap();
    let service = h.another_service();
    let outcome = service.authenticate("disc", opts()).await.unwrap();
    assert!(server.is_active(outcome.tokens.access_token.secret()).await);
    let cache_dir = h.home.path().join("cache/discovery");
    let cached: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().collect();
    assert_eq!(cached.len(), 1);
    let hits = server.stats().await["well_known"].clone();

    // Refresh and logout use the cached endpoints (no new discovery request).
    let refreshed = service.refresh_tokens("disc").await.unwrap();
    let out = service.logout("disc").await.unwrap();
    assert_eq!(
        out.revocation,
        Revocation::Revoked,
        "revocation_endpoint was discovered"
    );
    assert!(!server.is_active(refreshed.access_token.secret()).await);
    assert_eq!(server.stats().await["well_known"], hits);

    // The device endpoint came from discovery too.
    server.control(json!({"device_interval": 1})).await;
    let (result, _) = device_sign_in(&server, &service, "disc", Some("approve")).await;
    assert!(
        server
            .is_active(result.unwrap().tokens.access_token.secret())
            .await
    );
}
