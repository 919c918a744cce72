//! `mcp proxy <url>` end to end against the MCP server built with the official **Python** SDK
//! (`tests/mcp-servers/python/server.py`: the `mcp` package's `MCPServer` with Streamable HTTP sessions and
//! the GET stream, its `AuthSettings` serving the RFC 9728 metadata and answering 401/403, and a
//! `TokenVerifier` that asks the local oidc-provider's RFC 7662 introspection endpoint). The oidc-provider
//! runs with `AS_OPAQUE_ACCESS_TOKENS=1` so its access tokens can be introspected, and therefore revoked
//! for real. The client side is `proxy.rs`'s [`Proxy`]: every stdout line must be a JSON-RPC message.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::proxy::{Proxy, text_of};
use crate::util::{
    AuthServer, Home, browser_script, form_encode, http, repo_root, require, require_server,
};

/// node and the oidc-provider, and the Python server's venv (`cargo xtask test` makes it).
fn require_python_server() -> bool {
    require_server()
        && require(
            context_harness_test_support::python_installed(&repo_root()),
            "tests/mcp-servers/python/.venv with the mcp package",
        )
}

/// The oidc-provider (auto-approving, opaque access tokens the Python server can introspect).
fn auth_server() -> AuthServer {
    AuthServer::start(&[("AS_AUTO_APPROVE", "1"), ("AS_OPAQUE_ACCESS_TOKENS", "1")])
}

/// The Python-SDK server trusting `issuer`, stopped on drop.
struct PythonServer {
    _server: context_harness_test_support::PythonMcpServer,
    url: String,
}

impl PythonServer {
    fn start(issuer: &str) -> Self {
        let server = context_harness_test_support::PythonMcpServer::start(
            &repo_root(),
            &[("MCP_ISSUER", issuer)],
            context_harness_test_support::ServerLog::Inherit,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self {
            url: server.url().to_owned(),
            _server: server,
        }
    }

    fn stats(&self) -> Value {
        let base = self.url.trim_end_matches("/mcp");
        let (status, body) = http("GET", &format!("{base}/test/stats"), &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats json")
    }

    /// A counter of `/test/stats`.
    fn count(&self, key: &str) -> u64 {
        let stats = self.stats();
        stats[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {key}: {stats}"))
    }
}

/// `mcp auth <python url>` (discovery through the Python SDK's RFC 9728 metadata), then the bridge with
/// the stored tokens: initialize → tools/list → tools/call round trips, two calls in flight, stdout only
/// JSON-RPC, no 401 and no discovery at start-up, the session deleted at stdin EOF, exit 0.
#[test]
fn proxy_round_trips_with_the_python_sdk_server() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server = PythonServer::start(&auth.issuer);
    let home = Home::new();
    home.run_env(
        &["mcp", "auth", &server.url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    // Discovery went through the Python SDK's protected-resource metadata (path-suffixed, RFC 9728 §3.1).
    let well_known = server.stats()["well_known"].clone();
    assert!(
        well_known["/.well-known/oauth-protected-resource/mcp"].as_u64() >= Some(1),
        "{well_known}"
    );
    // The stored token is one the authorization server introspects as active, issued for this server.
    let token = home.run(&["mcp", "token", &server.url]);
    token.expect_code(0);
    let token = token.stdout.trim().to_owned();
    assert!(auth.introspect(&token));

    let before = auth.stats();
    let unauthorized = server.count("unauthorized");
    let introspections = server.count("introspections");
    let mut proxy = Proxy::spawn(&home, &server.url, &[], &[]);
    let init = proxy.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(
        init["result"]["serverInfo"]["name"], "context-harness-python-test-server",
        "{init}"
    );
    let list = proxy.call(2, "tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo") && names.contains(&"add"), "{list}");
    let call = proxy.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "héllo\nworld"}}),
    );
    assert_eq!(text_of(&call), "héllo\nworld");
    // Two requests in flight at once both come back.
    proxy.send(&json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}));
    proxy.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{"a":20,"b":22}}}));
    let mut seen = [proxy.recv(), proxy.recv()];
    seen.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(text_of(&seen[0]), "3");
    assert_eq!(text_of(&seen[1]), "42");

    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(!stderr.contains(&token), "the token reached stderr");
    let stats = server.stats();
    assert_eq!(
        stats["deletes"], 1,
        "stdin EOF deletes the session: {stats}"
    );
    // The stored bearer was used: no 401, every request introspected, no discovery or token request.
    assert_eq!(
        stats["unauthorized"].as_u64(),
        Some(unauthorized),
        "{stats}"
    );
    assert!(
        stats["introspections"].as_u64() > Some(introspections),
        "{stats}"
    );
    assert_eq!(stats["last_authorization_scheme"], "Bearer", "{stats}");
    let after = auth.stats();
    assert_eq!(before["well_known"], after["well_known"], "{after}");
    assert_eq!(before["token_requests"], after["token_requests"], "{after}");
    // The client's clientInfo reached the server unchanged; later requests carried the negotiated version.
    let infos = stats["client_infos"].as_array().expect("client_infos");
    assert_eq!(
        infos.last(),
        Some(&json!({"name": "proxy-test-client", "version": "9.9.9", "x-extra": true})),
        "{stats}"
    );
    let versions = stats["protocol_versions"].as_array().expect("versions");
    assert!(!versions.is_empty(), "{stats}");
    assert!(versions.iter().all(|v| v == "2025-06-18"), "{stats}");
}

/// No stored tokens: the bridge answers the Python server's 401 with the sign-in of `mcp auth` (the URL
/// on stderr, one browser opening), then the client's initialize and a call go through; the tokens are
/// shared with `mcp status`.
#[test]
fn proxy_signs_in_to_the_python_sdk_server_on_first_use() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server = PythonServer::start(&auth.issuer);
    let home = Home::new();
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "context-harness-python-test-server",
        "{init}"
    );
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "first use"}}),
    );
    assert_eq!(text_of(&call), "first use");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains("/auth?"), "the URL is on stderr: {stderr}");
    assert_eq!(stderr.matches("needs a sign-in").count(), 1, "{stderr}");
    let stats = server.stats();
    assert!(stats["unauthorized"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["deletes"], 1, "{stats}");
    assert_eq!(auth.stats()["authorization_code_requests"], 1);
    home.run(&["mcp", "status", &server.url]).expect_code(0);
}

/// The access token revoked at the authorization server (RFC 7009; oidc-provider then revokes the
/// grant's refresh token too): the Python server's introspection calls it inactive → 401 → the bridge's
/// refresh fails → sign-in → the call retried; the client sees only the answer.
#[test]
fn proxy_recovers_from_a_token_revoked_at_the_authorization_server() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server = PythonServer::start(&auth.issuer);
    let home = Home::new();
    home.run_env(
        &["mcp", "auth", &server.url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    let mut proxy = Proxy::spawn(
        &home,
        &server.url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    proxy.initialize();
    // The bridge opens its GET stream after `notifications/initialized`; let it open before the
    // revocation so only the call below meets the 401.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.count("gets") < 1 {
        assert!(Instant::now() < deadline, "the GET stream never opened");
        std::thread::sleep(Duration::from_millis(20));
    }

    let old = home.run(&["mcp", "token", &server.url]);
    old.expect_code(0);
    let old = old.stdout.trim().to_owned();
    let client_id = introspection(&auth, &old)["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    let (status, body) = http(
        "POST",
        &format!("{}/token/revocation", auth.issuer),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form_encode(&[
            ("token", &old),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert!(!auth.introspect(&old), "the token is revoked");

    let unauthorized = server.count("unauthorized");
    let codes = auth.stats()["authorization_code_requests"].as_u64();
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "after revocation"}}),
    );
    assert_eq!(text_of(&call), "after revocation", "{call}");
    assert!(server.count("unauthorized") > unauthorized);
    let stats = auth.stats();
    assert!(stats["refresh_requests"].as_u64() >= Some(1), "{stats}");
    assert_eq!(
        stats["authorization_code_requests"].as_u64(),
        codes.map(|n| n + 1),
        "{stats}"
    );
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(stderr.matches("needs a sign-in").count(), 1, "{stderr}");
    // The new token is stored, shared with `mcp token`, and active.
    let new = home.run(&["mcp", "token", &server.url]);
    new.expect_code(0);
    assert_ne!(new.stdout.trim(), old);
    assert!(auth.introspect(new.stdout.trim()));
}

/// The authorization server's introspection answer for `token`.
fn introspection(auth: &AuthServer, token: &str) -> Value {
    let basic = format!(
        "Basic {}",
        crate::util::base64("ch-introspector:ch-introspector-secret")
    );
    let (status, body) = http(
        "POST",
        &format!("{}/token/introspection", auth.issuer),
        &[
            ("Authorization", &basic),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form_encode(&[("token", token)]),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("introspection json")
}
