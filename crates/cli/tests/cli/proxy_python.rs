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
        Self::start_with(issuer, &[])
    }

    /// With more environment (`MCP_SCOPES`, `MCP_JSON`).
    fn start_with(issuer: &str, env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.push(("MCP_ISSUER", issuer));
        let server = context_harness_test_support::PythonMcpServer::start(
            &repo_root(),
            &env,
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
    let init = initialize_python(&mut proxy);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
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
    let mut proxy = spawn_with_browser(&home, &server.url);
    initialize_python(&mut proxy);
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
    let mut proxy = spawn_with_browser(&home, &server.url);
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
/// The bridge for `url`, with the stand-in browser that follows an auto-approved sign-in.
fn spawn_with_browser(home: &Home, url: &str) -> Proxy {
    Proxy::spawn(
        home,
        url,
        &[],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
}

/// `initialize` through the bridge; the answer must come from the Python-SDK server.
fn initialize_python(proxy: &mut Proxy) -> Value {
    let init = proxy.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "context-harness-python-test-server",
        "{init}"
    );
    init
}

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

/// The scopes the authorization server says `token` grants (RFC 7662 `scope`).
fn granted(auth: &AuthServer, token: &str) -> Vec<String> {
    introspection(auth, token)["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The stored access token of `url` (as `mcp token` prints it).
fn stored_token(home: &Home, url: &str) -> String {
    let run = home.run(&["mcp", "token", url]);
    run.expect_code(0);
    run.stdout.trim().to_owned()
}

/// `mcp auth <url> --scope …` through the oidc-provider (auto-approving) and follow.mjs.
fn sign_in_with_scopes(home: &Home, url: &str, scopes: &[&str]) {
    let mut args = vec!["mcp", "auth", url, "--port", "0", "--timeout", "60"];
    for scope in scopes {
        args.extend_from_slice(&["--scope", scope]);
    }
    home.run_env(&args, &[("BROWSER", &browser_script("follow.mjs"))])
        .expect_code(0);
}

/// Rewrites the stored MCP server record's `scopes` (as a record written before the server
/// required more would read), so only the protected-resource metadata can name the missing scope.
fn forget_recorded_scopes(home: &Home, keep: &[&str]) {
    let dir = home.path().join("mcp");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("the mcp record directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(entries.len(), 1, "one record in {}", dir.display());
    let path = entries[0].path();
    let mut record: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the record"))
            .expect("record json");
    record["scopes"] = json!(keep);
    std::fs::write(&path, record.to_string()).expect("write the record");
}

/// The Python SDK's 403 `insufficient_scope` names no `scope`: the bridge asks for the
/// `scopes_supported` of the server's protected-resource metadata (MCP "Scope Selection Strategy"),
/// fetched afresh since the stored record lists only the scope the token has, signs in once for the
/// union (one browser opening), and retries; the client sees only answers.
#[test]
fn proxy_steps_up_when_the_python_sdk_server_names_no_scope() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server =
        PythonServer::start_with(&auth.issuer, &[("MCP_SCOPES", "mcp:tools mcp:resources")]);
    let home = Home::new();
    sign_in_with_scopes(&home, &server.url, &["mcp:tools"]);
    let old = stored_token(&home, &server.url);
    let old_scopes = granted(&auth, &old);
    assert!(
        old_scopes.contains(&"mcp:tools".to_owned()),
        "{old_scopes:?}"
    );
    assert!(
        !old_scopes.contains(&"mcp:resources".to_owned()),
        "{old_scopes:?}"
    );
    forget_recorded_scopes(&home, &["mcp:tools"]);

    let codes = auth.stats()["authorization_code_requests"].as_u64();
    let prm = "/.well-known/oauth-protected-resource/mcp";
    let prm_hits = server.stats()["well_known"][prm].as_u64().unwrap_or(0);
    let mut proxy = spawn_with_browser(&home, &server.url);
    initialize_python(&mut proxy);
    let call = proxy.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "stepped up"}}),
    );
    assert_eq!(text_of(&call), "stepped up", "{call}");
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(stderr.matches("needs a sign-in").count(), 1, "{stderr}");
    let stats = server.stats();
    assert_eq!(
        stats["forbidden"], 1,
        "one 403, then the stepped-up token: {stats}"
    );
    assert!(
        stats["well_known"][prm].as_u64().unwrap_or(0) > prm_hits,
        "the metadata was fetched: {stats}"
    );
    assert_eq!(
        auth.stats()["authorization_code_requests"].as_u64(),
        codes.map(|n| n + 1),
        "one new sign-in"
    );
    // The new sign-in asked for both scopes: the stored token (shared with `mcp token`) has them.
    let new = stored_token(&home, &server.url);
    assert_ne!(new, old);
    let new_scopes = granted(&auth, &new);
    for scope in ["mcp:tools", "mcp:resources"] {
        assert!(new_scopes.contains(&scope.to_owned()), "{new_scopes:?}");
    }
    let status = home.run(&["mcp", "status", &server.url, "--json"]);
    status.expect_code(0);
    assert!(status.stdout.contains("mcp:resources"), "{}", status.stdout);
}

/// A step-up that cannot help: the server requires a scope the authorization server does not grant
/// (`mcp:admin`). One sign-in for the union, the server still refuses, and every request (the
/// initialize included, and a later one, with no second browser) gets a JSON-RPC error: not
/// `network_error` but `auth_failed`, with a hint naming `mcp auth <url> --scope …`.
#[test]
fn proxy_reports_a_step_up_that_cannot_help() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server = PythonServer::start_with(&auth.issuer, &[("MCP_SCOPES", "mcp:tools mcp:admin")]);
    let home = Home::new();
    sign_in_with_scopes(&home, &server.url, &["mcp:tools"]);
    let codes = auth.stats()["authorization_code_requests"].as_u64();
    let mut proxy = spawn_with_browser(&home, &server.url);
    let fix = format!("context-harness mcp auth {} --scope", server.url);
    let init = proxy.initialize();
    assert_scope_refusal(&init, &fix);
    assert!(
        init["error"]["data"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("--scope mcp:admin"),
        "{init}"
    );
    let later = proxy.call(2, "tools/list", json!({}));
    assert_scope_refusal(&later, &fix);
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(stderr.matches("needs a sign-in;").count(), 1, "{stderr}");
    // oidc-provider grants what it knows and drops `mcp:admin`: the new token is refused too.
    assert_eq!(
        auth.stats()["authorization_code_requests"].as_u64(),
        codes.map(|n| n + 1),
        "exactly one new sign-in"
    );
    for answer in [&init, &later] {
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("still refuses the token"), "{answer}");
    }
}

/// A step-up the user refuses (the authorization server answers `access_denied`): the request gets
/// the `auth_failed` error naming `mcp auth <url> --scope mcp:tools --scope mcp:resources …`, a later
/// one too without a second browser opening; once that command is run in a terminal, the client's
/// next request goes through with the tokens it stored, without a restart.
#[test]
fn proxy_reports_a_refused_step_up_and_picks_up_a_terminal_sign_in() {
    if !require_python_server() {
        return;
    }
    let auth = auth_server();
    let server =
        PythonServer::start_with(&auth.issuer, &[("MCP_SCOPES", "mcp:tools mcp:resources")]);
    let home = Home::new();
    sign_in_with_scopes(&home, &server.url, &["mcp:tools"]);
    control(&auth, &json!({"deny": true}));
    let codes = auth.stats()["authorization_code_requests"].as_u64();
    let mut proxy = spawn_with_browser(&home, &server.url);
    let fix = format!("context-harness mcp auth {} --scope", server.url);
    let init = proxy.initialize();
    assert_scope_refusal(&init, &fix);
    let hint = init["error"]["data"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("--scope mcp:tools"), "{init}");
    assert!(hint.contains("--scope mcp:resources"), "{init}");
    let again = proxy.call(5, "tools/list", json!({}));
    assert_scope_refusal(&again, &fix);
    assert_eq!(
        auth.stats()["authorization_code_requests"].as_u64(),
        codes,
        "no sign-in completed"
    );

    // The fix, run in a terminal meanwhile; the client's next initialize then succeeds.
    control(&auth, &json!({"deny": false}));
    sign_in_with_scopes(&home, &server.url, &["mcp:tools", "mcp:resources"]);
    let init = proxy.call(
        6,
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "proxy-test-client", "version": "9.9.9"},
        }),
    );
    assert_eq!(
        init["result"]["serverInfo"]["name"], "context-harness-python-test-server",
        "{init}"
    );
    let (code, rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        stderr.matches("needs a sign-in;").count(),
        1,
        "one browser opening: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{fix} mcp:tools --scope mcp:resources")),
        "stderr names the fix too: {stderr}"
    );
}

/// Merges `patch` into the authorization server's control state.
fn control(auth: &AuthServer, patch: &Value) {
    let (status, body) = http(
        "POST",
        &format!("{}/test/control", auth.issuer),
        &[("Content-Type", "application/json")],
        &patch.to_string(),
    );
    assert_eq!(status, 200, "{body}");
}

/// A JSON-RPC error for a 403 `insufficient_scope` no step-up fixed.
#[track_caller]
fn assert_scope_refusal(answer: &Value, fix: &str) {
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "auth_failed", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("insufficient_scope"), "{answer}");
    assert!(message.contains(fix), "{answer}");
    assert!(
        answer["error"]["data"]["hint"]
            .as_str()
            .unwrap_or_default()
            .starts_with(fix),
        "{answer}"
    );
}
