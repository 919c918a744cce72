//! The whole flow in a real headless Chromium: sign in, status, token, refresh on expiry, logout.

use crate::util::{
    AuthServer, Home, chromium, driver_browser, node_modules, require, require_server,
};

#[test]
fn real_browser_sign_in_token_refresh_and_logout() {
    if !require_server()
        || !require(
            node_modules().join("playwright-core").is_dir(),
            "playwright-core",
        )
        || !require(chromium().is_file(), "Chromium")
    {
        return;
    }
    // Not auto-approve: the driver fills in the login form and clicks "Allow".
    let server = AuthServer::start(&[]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let log = home.path().join("driver.log");
    let browser = driver_browser(&log, "approve");
    let env = [("BROWSER", browser.as_str())];

    // Sign in.
    let auth = home.run_env(
        &["mcp", "auth", "local", "--port", "0", "--timeout", "120"],
        &env,
    );
    let driver_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(auth.code, 0, "{auth:#?}\ndriver log:\n{driver_log}");
    let file = home.token_file("local");
    assert!(
        auth.stderr
            .contains(&format!("Tokens stored in the file {}", file.display())),
        "{auth:#?}"
    );
    assert!(auth.stdout.is_empty(), "{auth:#?}");
    assert!(
        driver_log.contains("consent page: clicking approve"),
        "{driver_log}"
    );

    // Status.
    let status = home.run(&["mcp", "status", "--json"]);
    status.expect_code(0);
    let doc = status.json();
    let local = doc["providers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "local"))
        .expect("local row")
        .clone();
    assert_eq!(local["status"], "authenticated");
    assert_eq!(local["storage"], "file");
    assert_eq!(local["has_refresh_token"], true);
    assert!(local["expires_at"].as_i64().is_some());
    assert_eq!(
        local["scopes"],
        serde_json::json!(["openid", "offline_access"])
    );

    // Token: active at the server.
    let first = home.run(&["mcp", "token", "local"]);
    first.expect_code(0);
    let first = first.stdout.trim().to_owned();
    assert!(!first.is_empty());
    assert!(server.introspect(&first), "fresh token should be active");
    assert_eq!(server.stats()["refresh_requests"], 0);

    // Expiry: `mcp token` refreshes once, then serves the new token from the cache.
    home.backdate("local", 7200.0);
    let expired = home.run(&["mcp", "status", "local", "--json"]);
    expired.expect_code(0);
    assert_eq!(expired.json()["providers"][0]["status"], "token_expired");
    let refreshed = home.run(&["mcp", "token", "local", "--json"]);
    refreshed.expect_code(0);
    let refreshed = refreshed.json();
    let second = refreshed["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_ne!(second, first);
    assert_eq!(refreshed["token_type"], "Bearer");
    assert!(refreshed["expires_at"].as_i64().is_some());
    assert!(server.introspect(&second));
    assert_eq!(server.stats()["refresh_requests"], 1);
    let again = home.run(&["mcp", "token", "local"]);
    assert_eq!(again.stdout.trim(), second);
    assert_eq!(server.stats()["refresh_requests"], 1);

    // Logout revokes at the server and deletes the file.
    let logout = home.run(&["mcp", "logout", "local"]);
    logout.expect_code(0);
    assert!(
        logout.stderr.contains("revoked at the server"),
        "{logout:#?}"
    );
    assert!(
        !server.introspect(&second),
        "revoked token should be inactive"
    );
    assert!(!file.exists());
    home.run(&["mcp", "status", "local"]).expect_code(3);
}

/// `response_mode=form_post` in a real headless Chromium against the real
/// oidc-provider: the server answers the consent with its auto-submitting form, the browser POSTs
/// `code`, `state` and `iss` to the loopback listener, and the sign-in succeeds. The server saw
/// exactly one authorization request, with `response_mode=form_post` (oidc-provider then never
/// puts the code in a query), so the listener's form POST handling is what completed it. (The
/// driver's own "Signed in" check may still be running when the binary exits: not asserted.)
#[test]
fn real_browser_sign_in_with_response_mode_form_post() {
    if !require_server()
        || !require(
            node_modules().join("playwright-core").is_dir(),
            "playwright-core",
        )
        || !require(chromium().is_file(), "Chromium")
    {
        return;
    }
    let server = AuthServer::start(&[]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let path = home.path().join("providers.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let form_post = toml.replace(
        r#"extra_auth_params = { prompt = "consent" }"#,
        r#"extra_auth_params = { response_mode = "form_post", prompt = "consent" }"#,
    );
    assert_ne!(toml, form_post);
    std::fs::write(&path, form_post).unwrap();
    let log = home.path().join("driver.log");
    let browser = driver_browser(&log, "approve");
    let env = [("BROWSER", browser.as_str())];

    let auth = home.run_env(
        &["mcp", "auth", "local", "--port", "0", "--timeout", "120"],
        &env,
    );
    let driver_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(auth.code, 0, "{auth:#?}\ndriver log:\n{driver_log}");
    assert!(
        driver_log.contains("consent page: clicking approve"),
        "{driver_log}"
    );
    let stats = server.stats();
    assert_eq!(stats["response_modes"]["form_post"], 1, "{stats}");
    assert!(stats["response_modes"]["query"].is_null(), "{stats}");
    assert_eq!(stats["authorization_code_requests"], 1, "{stats}");

    // Tokens stored, and usable.
    let tokens = home.tokens("local");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let status = home.run(&["mcp", "status", "local", "--json"]);
    status.expect_code(0);
    assert_eq!(status.json()["providers"][0]["status"], "authenticated");
    let token = home.run(&["mcp", "token", "local"]);
    token.expect_code(0);
    assert!(server.introspect(token.stdout.trim()));
}
