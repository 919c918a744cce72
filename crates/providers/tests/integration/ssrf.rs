//! One SSRF policy for every URL a server supplies, enforced in the HTTP client's
//! resolver.
//!
//! The server here is a **stub standing in for a hostile public server**: it listens on loopback,
//! and a test-only host name (`*.test`, RFC 6761) resolving to it is registered as *public*
//! (`discovery::register_test_host`), so the client treats it as it would a server on the
//! internet. Its metadata then points the client at loopback, private and link-local addresses.
//! Every such URL must be refused before anything is sent there: no test here ever sends traffic
//! to a non-loopback address (the private and link-local URLs are refused by policy, and the
//! loopback ones would hit closed ports of this machine).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use context_harness_providers::{AuthenticateOptions, ErrorCode};
use context_harness_providers::{NetworkClass, register_test_host, register_test_host_answers};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::Harness;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Unique host names per stub (tests run in parallel in one process).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    format!(
        "{prefix}-{}-{}.test",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The hostile stub: MCP server (401 + PRM) and authorization server (RFC 8414 metadata, RFC 7591
/// registration) in one, reached as `http://<name>.test:<port>` which counts as public.
struct HostileStub {
    base: String,
    paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileStub {
    /// `metadata_patch` is merged into a clean metadata document; `registration_patch` into the
    /// registration answer.
    async fn start(metadata_patch: Value, registration_patch: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = unique("hostile");
        register_test_host(&host, &[(LOOPBACK, NetworkClass::Public)]).unwrap();
        let base = format!("http://{host}:{port}");
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (base2, paths2) = (base.clone(), Arc::clone(&paths));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let base = base2.clone();
                let paths = Arc::clone(&paths2);
                let (mp, rp) = (metadata_patch.clone(), registration_patch.clone());
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
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    paths.lock().unwrap().push(path.clone());
                    let mut metadata = json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/register"),
                        "code_challenge_methods_supported": ["S256"],
                    });
                    merge(&mut metadata, &mp);
                    let mut registration = json!({
                        "client_id": "hostile-client",
                        "redirect_uris": [],
                        "token_endpoint_auth_method": "none",
                    });
                    merge(&mut registration, &rp);
                    let (status, extra, body) = match path.as_str() {
                        "/mcp" => (
                            "401 Unauthorized",
                            format!(
                                "WWW-Authenticate: Bearer resource_metadata=\"{base}/prm\"\r\n"
                            ),
                            "{}".to_owned(),
                        ),
                        "/prm" => (
                            "200 OK",
                            String::new(),
                            json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]})
                                .to_string(),
                        ),
                        "/.well-known/oauth-authorization-server" => {
                            ("200 OK", String::new(), metadata.to_string())
                        }
                        "/register" => ("201 Created", String::new(), registration.to_string()),
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
        Self { base, paths, task }
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for HostileStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn merge(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            t.insert(k.clone(), v.clone());
        }
    }
}

fn harness() -> Harness {
    // The configured provider is never used here.
    Harness::new("http://127.0.0.1:9/unused")
}

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(std::time::Duration::from_secs(20))
}

/// Endpoint values a public server must not lead to. Domain names are registered with the
/// classes their addresses would have (private; public + loopback; no answer at all).
fn hostile_targets() -> Vec<(String, &'static str)> {
    let private_name = unique("intranet");
    register_test_host(
        &private_name,
        &[("10.0.0.5".parse().unwrap(), NetworkClass::Private)],
    )
    .unwrap();
    let mixed_name = unique("mixed");
    register_test_host(
        &mixed_name,
        &[
            (LOOPBACK, NetworkClass::Public),
            (
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
                NetworkClass::Loopback,
            ),
        ],
    )
    .unwrap();
    let gone_name = unique("gone");
    register_test_host(&gone_name, &[]).unwrap();
    vec![
        ("http://127.0.0.1:9/x".to_owned(), "127.0.0.1"),
        ("https://127.0.0.1/x".to_owned(), "loopback"),
        ("https://[::1]/x".to_owned(), "loopback"),
        ("https://localhost/x".to_owned(), "loopback"),
        ("https://10.0.0.1/x".to_owned(), "private-network"),
        ("https://192.168.1.1/x".to_owned(), "private-network"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "link-local",
        ),
        ("https://[fd00:ec2::254]/x".to_owned(), "link-local"),
        (
            "https://metadata.google.internal/x".to_owned(),
            "link-local",
        ),
        (format!("https://{private_name}/x"), "10.0.0.5"),
        (format!("https://{mixed_name}/x"), "127.0.0.2"),
        // Not a refusal but an unreachable host (exit 11), whoever named it.
        (format!("https://{gone_name}/x"), "does not resolve"),
    ]
}

/// The code of a hostile target's failure: a refusal, except a name that does not resolve (an
/// unreachable host).
fn expected_code(why: &str) -> ErrorCode {
    if why == "does not resolve" {
        ErrorCode::NetworkError
    } else {
        ErrorCode::AuthFailed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_supplied_endpoints_may_not_lead_a_public_server_to_private_addresses() {
    let h = harness();
    for field in [
        "registration_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
        "token_endpoint",
    ] {
        for (target, why) in hostile_targets() {
            let stub = HostileStub::start(json!({ field: target }), json!({})).await;
            let err = h
                .service
                .discover_mcp_server(&stub.url())
                .await
                .unwrap_err();
            assert_eq!(err.code(), expected_code(why), "{field} {target}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(field) && text.contains(why),
                "{field} = {target}: {text}"
            );
            assert!(err.hint().is_some(), "{field} {target}: a hint");
            let err = h
                .service
                .authenticate(&stub.url(), opts())
                .await
                .unwrap_err();
            assert_eq!(err.code(), expected_code(why), "{field} {target}: {err}");
            // Nothing beyond discovery happened: no registration, nothing stored.
            assert!(
                !stub.paths().iter().any(|p| p == "/register"),
                "{field} {target}: {:?}",
                stub.paths()
            );
            assert!(!h.home.path().join("registrations").exists());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_client_uri_pointing_inward_fails_the_registration() {
    let h = harness();
    for (target, why) in hostile_targets() {
        let stub = HostileStub::start(
            json!({}),
            json!({
                "registration_client_uri": target,
                "registration_access_token": "rat-secret-value",
            }),
        )
        .await;
        let err = h
            .service
            .authenticate(&stub.url(), opts())
            .await
            .unwrap_err();
        assert_eq!(err.code(), expected_code(why), "{target}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("registration_client_uri") && text.contains(why),
            "{target}: {text}"
        );
        assert!(!text.contains("rat-secret-value"));
        assert_eq!(
            stub.paths().iter().filter(|p| *p == "/register").count(),
            1,
            "{target}"
        );
        // The refused registration is not kept (so it is never used, nor its URI contacted).
        let kept = std::fs::read_dir(h.home.path().join("registrations"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(kept, 0, "{target}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_between_the_check_and_the_connection_is_refused() {
    let h = harness();
    // The registration endpoint's host answers "public" (the stub) to the discovery-time check,
    // then "loopback" to the lookup made for the connection, as a rebinding name with TTL 0 would.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rebind = unique("rebind");
    register_test_host_answers(
        &rebind,
        vec![
            vec![(LOOPBACK, NetworkClass::Public)],
            vec![(LOOPBACK, NetworkClass::Loopback)],
        ],
    )
    .unwrap();
    let stub = HostileStub::start(
        json!({"registration_endpoint": format!("http://{rebind}:{port}/register")}),
        json!({}),
    )
    .await;
    let err = h
        .service
        .authenticate(&stub.url(), opts())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("registration endpoint") && text.contains("loopback address 127.0.0.1"),
        "{text}"
    );
    // Nothing connected to the rebound address: the listener has no pending connection.
    let accepted = tokio::time::timeout(std::time::Duration::ZERO, listener.accept()).await;
    assert!(
        accepted.is_err(),
        "a connection reached the rebound address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_url_resolving_to_public_and_loopback_is_not_trusted_as_loopback() {
    // The user's URL resolves to a public address and a loopback one. Before the fix it got
    // loopback trust (so its metadata could lead anywhere on loopback); now it gets the trust of
    // its least-trusted address, public, under which its own loopback address is refused too: no
    // request reaches it at all.
    let h = harness();
    let stub = HostileStub::start(
        json!({"registration_endpoint": "http://127.0.0.1:9/register"}),
        json!({}),
    )
    .await;
    let host = stub
        .base
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    register_test_host(
        &host,
        &[
            (LOOPBACK, NetworkClass::Public),
            (
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
                NetworkClass::Loopback,
            ),
        ],
    )
    .unwrap();
    let err = h
        .service
        .discover_mcp_server(&stub.url())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed, "{err}");
    assert!(
        err.to_string().contains("loopback address 127.0.0.3"),
        "{err}"
    );
    assert_eq!(stub.paths(), Vec::<String>::new());
}
