//! One owner per token name, through the binary: an MCP server's tokens are stored under a name of
//! the servers' namespace (`_…`) that no `providers.toml` entry may have, so no command naming a
//! provider can print, refresh, replace or delete them — whatever the provider is called. The
//! authorization server is the real local oidc-provider; the MCP server is the stand-in of `mcp.rs`.

use crate::mcp::McpStub;
use crate::util::{AuthServer, Home, browser_script, require_server};

/// Every command a provider name can be given to, with its arguments.
fn commands(name: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["mcp", "auth", name, "--port", "0", "--timeout", "2"],
        // With a browser, `mcp token` signs in itself (whose stand-in never comes back).
        vec!["mcp", "token", name, "--timeout", "2"],
        vec!["mcp", "token", name, "--no-sign-in"],
        vec!["mcp", "token", name, "--json", "--no-sign-in"],
        vec!["mcp", "refresh", name],
        vec!["mcp", "status", name],
        vec!["mcp", "status", name, "--json"],
        vec!["mcp", "logout", name],
        vec!["mcp", "logout", name, "--local-only"],
    ]
}

#[test]
fn no_provider_name_reaches_an_mcp_servers_tokens() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let url = stub.url.as_str();
    home.run_env(
        &["mcp", "auth", url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);
    let token = home.run(&["mcp", "token", url]);
    token.expect_code(0);
    let access_token = token.stdout.trim().to_owned();

    let status = home.run(&["mcp", "status", "--json"]);
    status.expect_code(0);
    let rows = status.json()["providers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let row = rows
        .iter()
        .find(|r| r["server_url"] == url)
        .unwrap_or_else(|| panic!("no row for {url}: {status:#?}"));
    let name = row["name"].as_str().unwrap_or_default().to_owned();
    assert!(name.starts_with('_'), "{name}");
    assert!(home.token_file(&name).exists());
    let before = home.tokens(&name);

    // A browser stand-in that records being started and opens nothing: a sign-in of the
    // provider below can only time out.
    let opened = home.path().join("opened");
    let browser = home.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", opened.display()),
    )
    .expect("write the browser stand-in");
    make_executable(&browser);
    let browser = browser.display().to_string();

    let provider_toml = |provider: &str| {
        format!(
            "[providers.\"{provider}\"]\nauth_url = \"{i}/auth\"\ntoken_url = \"{i}/token\"\n\
             revocation_url = \"{i}/token/revocation\"\nclient_id = \"ch-public\"\n",
            i = server.issuer
        )
    };

    // 1. The server's own storage name as a provider: refused by every command, exit 13.
    std::fs::write(home.path().join("providers.toml"), provider_toml(&name))
        .expect("providers.toml");
    for args in commands(&name) {
        let out = home.run_env(&args, &[("BROWSER", &browser)]);
        out.expect_code(13);
        assert!(!out.stdout.contains(&access_token), "{args:?}: {out:#?}");
        assert!(out.stderr.contains("hint:"), "{args:?}: {out:#?}");
    }
    // Without the file, the name is still not a provider (servers are named by URL): every
    // command refuses it, `mcp status` included.
    std::fs::remove_file(home.path().join("providers.toml")).expect("rm providers.toml");
    for args in commands(&name) {
        let out = home.run_env(&args, &[("BROWSER", &browser)]);
        out.expect_code(13);
        assert!(!out.stdout.contains(&access_token), "{args:?}: {out:#?}");
        assert!(out.stderr.contains("by its URL"), "{args:?}: {out:#?}");
    }

    // 2. A provider with the server's old (0.2) storage name is an ordinary provider: it has no
    //    tokens, and nothing it does touches the server's.
    let legacy = name.trim_start_matches('_').to_owned();
    std::fs::write(home.path().join("providers.toml"), provider_toml(&legacy))
        .expect("providers.toml");
    for args in commands(&legacy) {
        let out = home.run_env(&args, &[("BROWSER", &browser)]);
        assert!(!out.stdout.contains(&access_token), "{args:?}: {out:#?}");
        assert!(!out.stderr.contains(&access_token), "{args:?}: {out:#?}");
        let expected = match args[1] {
            // The stand-in browser never comes back.
            "auth" => 10,
            "token" if !args.contains(&"--no-sign-in") => 10,
            "logout" => 0, // not signed in: nothing to delete
            _ => 3,        // not signed in
        };
        out.expect_code(expected);
    }
    assert!(opened.exists(), "the provider's sign-in did start");
    assert_eq!(
        home.tokens(&name),
        before,
        "the server's tokens are untouched"
    );
    assert!(!home.token_file(&legacy).exists());
    let token = home.run(&["mcp", "token", url]);
    token.expect_code(0);
    assert_eq!(token.stdout.trim(), access_token);
}

#[cfg(unix)]
fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `mcp proxy <url>` sends the server only its own tokens, whatever a provider of a colliding name
/// holds: a provider named like the server's old storage name, signed in (a planted token file, not
/// bound to any server), and a `providers.toml` entry for the server's own storage name.
#[test]
fn the_proxy_sends_only_the_servers_own_tokens() {
    if !crate::proxy::require_mcp_servers() {
        return;
    }
    let (auth, server, home) = crate::proxy::signed_in(&[("AS_AUTO_APPROVE", "1")], &[]);
    let status = home.run(&["mcp", "status", "--json"]);
    let rows = status.json()["providers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name = rows
        .iter()
        .find(|r| r["server_url"] == server.url.as_str())
        .and_then(|r| r["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(name.starts_with('_'), "{status:#?}");
    let legacy = name.trim_start_matches('_').to_owned();
    std::fs::write(
        home.path().join("providers.toml"),
        format!(
            "[providers.\"{legacy}\"]\nauth_url = \"{i}/auth\"\ntoken_url = \"{i}/token\"\nclient_id = \"ch-public\"\n",
            i = auth.issuer
        ),
    )
    .expect("providers.toml");
    let planted = serde_json::json!({
        "access_token": "a-providers-token",
        "token_type": "Bearer",
        "issued_at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        "expires_in": 3600,
    });
    std::fs::write(home.token_file(&legacy), planted.to_string()).expect("plant");
    make_private(&home.token_file(&legacy));
    let unauthorized = server.stats()["unauthorized"].clone();
    let mut proxy = crate::proxy::Proxy::spawn(&home, &server.url, &[], &[]);
    proxy.initialize();
    let call = proxy.call(
        2,
        "tools/call",
        serde_json::json!({"name": "echo", "arguments": {"text": "own token"}}),
    );
    assert_eq!(crate::proxy::text_of(&call), "own token");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    // The first token sent was accepted: the server's own, not the provider's.
    assert_eq!(server.stats()["unauthorized"], unauthorized);
    // The provider's tokens are where they were.
    assert_eq!(home.tokens(&legacy)["access_token"], "a-providers-token");
}

#[cfg(unix)]
fn make_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}
