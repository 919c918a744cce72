//! `mcp headers` as an MCP host's headers helper (issue 23): the host runs the command, reads its
//! stdout as a JSON object of headers and sends them on every request. The host side is
//! `tests/mcp-servers/headers-helper-host.mjs` (that code path, then the official TypeScript SDK's
//! client); the server is the SDK's (`requireBearerAuth` checking the local oidc-provider's tokens).

use std::process::Command;

use serde_json::Value;

use crate::proxy::require_mcp_servers;
use crate::util::{AuthServer, BIN, Home, browser_script, repo_root};

/// Runs the host with `helper` (`-` for none) as its headers helper, in `home`'s environment.
fn host(home: &Home, url: &str, helper: &[&str]) -> Value {
    let isolated = home.cmd(&[]);
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("tests/mcp-servers/headers-helper-host.mjs"))
        .arg(url)
        .args(helper);
    for (key, value) in isolated.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd.output().expect("run node");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn an_mcp_host_connects_with_the_headers_of_mcp_headers() {
    if !require_mcp_servers() {
        return;
    }
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let server = context_harness_test_support::McpServer::start(
        &repo_root(),
        &[("MCP_ISSUER", auth.issuer.as_str())],
        context_harness_test_support::ServerLog::Inherit,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = server.url().to_owned();
    let home = Home::new();

    // The server refuses the host without the helper's headers.
    let refused = host(&home, &url, &["-"]);
    assert_eq!(refused["ok"], false, "{refused}");

    home.run_env(
        &["mcp", "auth", &url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    let answer = host(&home, &url, &[BIN, "mcp", "headers", &url]);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["echo"], "through the headers helper", "{answer}");

    // The helper's output is exactly one JSON object holding the bearer header.
    let printed = home.run(&["mcp", "headers", &url]);
    printed.expect_code(0);
    let headers = printed.json();
    let token = home.run(&["mcp", "token", &url]);
    token.expect_code(0);
    assert_eq!(
        headers,
        serde_json::json!({"Authorization": format!("Bearer {}", token.stdout.trim())})
    );
}
