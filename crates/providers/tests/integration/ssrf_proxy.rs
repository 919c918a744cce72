//! The proxy exemption of the SSRF policy covers the connection to the configured proxy only: a
//! URL a server supplies is judged by its own host whatever `HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` (upper or lower case) say, also when its host has the proxy's name.
//!
//! The server here is a **stub standing in for a hostile public server**: it listens on loopback
//! and is reached as a test-only host name (`*.test`, RFC 6761) registered as *public*. Its 401
//! challenge sends the client to `https://<the proxy's name>:<port>/prm`, where the proxy's name
//! resolves to loopback and `<port>` is a second loopback listener (the "victim"). The stub also
//! plays the proxy where the variables point at it: it answers absolute-form requests as if it had
//! forwarded them and records every request line (a `CONNECT` included), forwarding nothing. No
//! test here sends traffic to a non-loopback address.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::register_test_host;
use context_harness_providers::{Environment, ErrorCode, HttpSettings, NetworkClass};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::Harness;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Unique host names per test (tests run in parallel in one process; the registry is global).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    format!(
        "{prefix}-{}-{}.test",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stub: MCP server, PRM and authorization-server metadata on `http://<host>:<port>`, and a
/// stand-in proxy on the same port (absolute-form requests are answered by their path).
struct Stub {
    host: String,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    /// `resource_metadata`: what the 401 challenge points at; `None` for the stub's own `/prm`.
    async fn start(resource_metadata: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = unique("public-mcp");
        register_test_host(&host, &[(LOOPBACK, NetworkClass::Public)]).unwrap();
        let base = format!("http://{host}:{port}");
        let challenge = resource_metadata.unwrap_or_else(|| format!("{base}/prm"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&lines);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (base, challenge, log) = (base.clone(), challenge.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let line = head.lines().next().unwrap_or("").to_owned();
                    log.lock().unwrap().push(line.clone());
                    let target = line.split_whitespace().nth(1).unwrap_or("/");
                    // Absolute form (a request sent to a proxy): keep the path.
                    let path = match target.strip_prefix("http://") {
                        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
                        None => target,
                    };
                    let (status, extra, body) = match path {
                        "/mcp" => (
                            "401 Unauthorized",
                            format!("WWW-Authenticate: Bearer resource_metadata=\"{challenge}\"\r\n"),
                            "{}".to_owned(),
                        ),
                        "/prm" => (
                            "200 OK",
                            String::new(),
                            json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]})
                                .to_string(),
                        ),
                        "/.well-known/oauth-authorization-server" => (
                            "200 OK",
                            String::new(),
                            json!({
                                "issuer": base,
                                "authorization_endpoint": format!("{base}/authorize"),
                                "token_endpoint": format!("{base}/token"),
                                "code_challenge_methods_supported": ["S256"],
                            })
                            .to_string(),
                        ),
                        // A CONNECT (or anything else) gets no tunnel.
                        _ => ("502 Bad Gateway", String::new(), "{}".to_owned()),
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
            host,
            port,
            lines,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}:{}/mcp", self.host, self.port)
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A service with exactly `env` (its proxy variables) and short timeouts: before the fix, a
/// refused-by-nobody TLS connection to the silent victim ended in a timeout, not a refusal.
fn harness(env: &[(&str, String)]) -> Harness {
    let settings = HttpSettings {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(3),
    };
    Harness::with(
        "http://127.0.0.1:9/unused",
        "ch-public",
        Environment::from_pairs(env.iter().map(|(k, v)| (*k, v.clone()))),
        settings,
        "",
    )
}

/// Whether the victim listener has a connection waiting (a TCP connection completes in the kernel
/// before the client's request could fail, so a contact is always seen here).
fn contacted(victim: &std::net::TcpListener) -> bool {
    match victim.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("victim listener: {e}"),
    }
}

/// One hostile case: the proxy variables (built from the proxy's name `N`, the stub's host `H` and
/// port `S`) and the host written in the server-supplied URL (built from `N`).
struct Case {
    what: &'static str,
    env: fn(&str, &str, u16) -> Vec<(&'static str, String)>,
    target_host: fn(&str) -> String,
}

fn same(n: &str) -> String {
    n.to_owned()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "HTTP_PROXY; the https URL is direct",
            env: |n, _, s| vec![("HTTP_PROXY", format!("http://{n}:{s}"))],
            target_host: same,
        },
        Case {
            what: "http_proxy",
            env: |n, _, s| vec![("http_proxy", format!("http://{n}:{s}"))],
            target_host: same,
        },
        Case {
            what: "HTTP_PROXY without a scheme",
            env: |n, _, s| vec![("HTTP_PROXY", format!("{n}:{s}"))],
            target_host: same,
        },
        Case {
            what: "HTTP_PROXY without a port",
            env: |n, h, _| {
                vec![
                    ("HTTP_PROXY", format!("http://{n}")),
                    ("NO_PROXY", h.to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "HTTP_PROXY in upper case, the URL's host too",
            env: |n, _, s| vec![("HTTP_PROXY", format!("http://{}:{s}", n.to_uppercase()))],
            target_host: |n| n.to_uppercase(),
        },
        Case {
            what: "HTTP_PROXY; the URL's host with a trailing dot",
            env: |n, _, s| vec![("HTTP_PROXY", format!("http://{n}:{s}"))],
            target_host: |n| format!("{n}."),
        },
        Case {
            what: "HTTP_PROXY with a trailing dot",
            env: |n, _, s| vec![("HTTP_PROXY", format!("http://{n}.:{s}"))],
            target_host: same,
        },
        Case {
            what: "HTTPS_PROXY with NO_PROXY naming the proxy",
            env: |n, _, s| {
                vec![
                    ("HTTPS_PROXY", format!("http://{n}:{s}")),
                    ("NO_PROXY", n.to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "https_proxy with no_proxy naming the proxy",
            env: |n, _, s| {
                vec![
                    ("https_proxy", format!("http://{n}:{s}")),
                    ("no_proxy", n.to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "HTTPS_PROXY with NO_PROXY=*",
            env: |n, _, s| {
                vec![
                    ("HTTPS_PROXY", format!("http://{n}:{s}")),
                    ("NO_PROXY", "*".to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "ALL_PROXY with NO_PROXY naming the proxy",
            env: |n, _, s| {
                vec![
                    ("ALL_PROXY", format!("http://{n}:{s}")),
                    ("NO_PROXY", n.to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "all_proxy with no_proxy=.test",
            env: |n, _, s| {
                vec![
                    ("all_proxy", format!("http://{n}:{s}")),
                    ("no_proxy", ".test".to_owned()),
                ]
            },
            target_host: same,
        },
        Case {
            what: "HTTPS_PROXY without NO_PROXY: the URL goes through the proxy",
            env: |n, _, s| vec![("HTTPS_PROXY", format!("http://{n}:{s}"))],
            target_host: same,
        },
        Case {
            what: "ALL_PROXY without NO_PROXY: the URL goes through the proxy",
            env: |n, _, s| vec![("ALL_PROXY", format!("http://{n}:{s}"))],
            target_host: same,
        },
        Case {
            what: "HTTPS_PROXY as an IP literal, the URL's host the same literal",
            env: |_, _, s| vec![("HTTPS_PROXY", format!("http://127.0.0.1:{s}"))],
            target_host: |_| "127.0.0.1".to_owned(),
        },
    ]
}

/// A public server's challenge points at `https://<the proxy's name>:<victim port>/prm`; the proxy's
/// name resolves to loopback. Whatever the proxy variables, the URL is refused by the address
/// policy, the victim gets no connection and no proxy is asked to connect there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_on_the_proxys_host_is_judged_by_the_policy_under_every_proxy_variable() {
    for case in cases() {
        let proxy_name = unique("corp-proxy");
        register_test_host(&proxy_name, &[(LOOPBACK, NetworkClass::Loopback)]).unwrap();
        let victim = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        victim.set_nonblocking(true).unwrap();
        let victim_port = victim.local_addr().unwrap().port();
        let target = format!(
            "https://{}:{victim_port}/prm",
            (case.target_host)(&proxy_name)
        );
        let stub = Stub::start(Some(target.clone())).await;
        let h = harness(&(case.env)(&proxy_name, &stub.host, stub.port));

        let err = h
            .service
            .discover_mcp_server(&stub.url())
            .await
            .expect_err(case.what);
        let text = err.to_string();
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{}: {text}", case.what);
        assert!(
            text.contains("loopback") && text.contains("public"),
            "{}: {text}",
            case.what
        );
        // The refusal is about the server-supplied URL, not the proxy: the probe was answered.
        assert!(
            stub.lines().iter().any(|l| l.contains("/mcp")),
            "{}: {:?}",
            case.what,
            stub.lines()
        );
        assert!(
            !stub.lines().iter().any(|l| l.starts_with("CONNECT")),
            "{}: a proxy was asked to connect: {:?}",
            case.what,
            stub.lines()
        );
        assert!(
            !contacted(&victim),
            "{}: {target} reached the loopback listener",
            case.what
        );
    }
}

/// A legitimate request through a proxy on loopback still works: the proxy itself (reached by
/// name or as an IP literal, with and without a scheme) is the user's setting and is contacted,
/// and the public target is judged and sent to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_server_behind_a_loopback_proxy_is_reached_through_it() {
    for form in ["name", "literal", "no scheme", "lower case, trailing dot"] {
        let proxy_name = unique("corp-proxy");
        register_test_host(&proxy_name, &[(LOOPBACK, NetworkClass::Loopback)]).unwrap();
        let stub = Stub::start(None).await;
        let s = stub.port;
        let env = match form {
            "name" => vec![("HTTP_PROXY", format!("http://{proxy_name}:{s}"))],
            "literal" => vec![("ALL_PROXY", format!("http://127.0.0.1:{s}"))],
            "no scheme" => vec![("HTTP_PROXY", format!("{proxy_name}:{s}"))],
            _ => vec![
                ("all_proxy", format!("http://{proxy_name}.:{s}")),
                ("no_proxy", "example.invalid".to_owned()),
            ],
        };
        let h = harness(&env);
        let info = h
            .service
            .discover_mcp_server(&stub.url())
            .await
            .unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(
            info.authorization_server.token_endpoint.as_deref(),
            Some(format!("http://{}:{s}/token", stub.host).as_str()),
            "{form}"
        );
        // Every request reached the stub in absolute form, i.e. through the proxy.
        let lines = stub.lines();
        assert!(lines.len() >= 3, "{form}: {lines:?}");
        let through_proxy = format!("http://{}:{s}/", stub.host);
        assert!(
            lines.iter().all(|l| l.contains(&through_proxy)),
            "{form}: {lines:?}"
        );
    }
}
