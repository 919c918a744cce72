//! Scenarios against the real authorization server (node `oidc-provider`, `tests/authorization-server`).

use std::process::Command;
use std::time::{Duration, SystemTime};

use context_harness_providers::{
    AuthStatus, AuthenticateOptions, Environment, ErrorCode, HttpSettings, NextStep, Revocation,
};
use serde_json::json;

use crate::support::{AuthServer, Harness, captured_logs, service_for};

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(30))
}

fn start(env: &[(&str, &str)]) -> Option<AuthServer> {
    captured_logs();
    AuthServer::start(env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_login_stores_tokens_and_fast_path_needs_no_http() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::NotAuthenticated
    );

    let outcome = h.service.authenticate("local", opts()).await.unwrap();
    assert!(
        outcome.redirect_uri.starts_with("http://127.0.0.1:"),
        "{}",
        outcome.redirect_uri
    );
    assert_eq!(outcome.store, "file");
    let tokens = &outcome.tokens;
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access + prompt=consent yields an RT"
    );
    assert!(tokens.has_scope("offline_access"));
    assert!(tokens.is_bearer());
    assert_eq!(
        tokens.extra.get("client_id").and_then(|v| v.as_str()),
        Some("ch-public")
    );

    // Stored state equals what was returned, and the server calls the token active.
    let stored = h.stored("local").unwrap();
    assert_eq!(&stored, tokens);
    assert!(server.is_active(stored.access_token.secret()).await);
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::Authenticated
    );
    let stats = server.stats().await;
    assert_eq!(stats["authorization_code_requests"], 1);
    // The exchange sent PKCE and the identical redirect URI.
    let last = server.last_token_request().await;
    assert_eq!(last["redirect_uri"], outcome.redirect_uri.as_str());
    assert!(
        last["code_verifier"]
            .as_str()
            .is_some_and(|v| v.len() >= 43)
    );

    // The fast path of a fresh service (as `mcp token` builds it) reads the store only.
    let fresh = h.another_service();
    let cached = fresh.cached_valid_token("local").unwrap().unwrap();
    assert_eq!(cached.access_token, tokens.access_token);
    assert!(!fresh.http_client_built());
    // ensure_valid_token on a valid token does not build the HTTP client either.
    let ensured = fresh.ensure_valid_token("local").await.unwrap();
    assert_eq!(ensured.access_token, tokens.access_token);
    assert!(!fresh.http_client_built());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_triggers_refresh_and_rotation_is_persisted() {
    // 30 s lifetime: inside the 60 s buffer, so the token counts as expiring at once.
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let first = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    // Past the 15 s margin of a 30 s token (min(60 s, half the lifetime)).
    h.backdate("local", 16.0);
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::TokenExpired
    );
    assert!(h.service.cached_valid_token("local").unwrap().is_none());

    server.control(json!({ "access_token_ttl": 3600 })).await;
    let refreshed = h.service.ensure_valid_token("local").await.unwrap();
    assert_ne!(refreshed.access_token, first.access_token);
    let (old_rt, new_rt) = (
        first.refresh_token.unwrap(),
        refreshed.refresh_token.clone().unwrap(),
    );
    assert_ne!(old_rt, new_rt, "the server rotates refresh tokens");
    assert_eq!(server.stats().await["refresh_requests"], 1);

    // Persisted before returning: the store holds the rotated RT and the new AT.
    let stored = h.stored("local").unwrap();
    assert_eq!(stored, refreshed);
    assert_eq!(stored.refresh_token.as_ref(), Some(&new_rt));
    assert!(stored.refresh_failed_at.is_none());
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::Authenticated
    );
    assert!(server.is_active(stored.access_token.secret()).await);

    // Valid now: no further refresh.
    let again = h.service.get_bearer_token("local").await.unwrap();
    assert_eq!(again, refreshed.access_token);
    assert_eq!(server.stats().await["refresh_requests"], 1);

    // An explicit refresh rotates again and persists.
    let forced = h.service.refresh_tokens("local").await.unwrap();
    assert_ne!(forced.refresh_token.as_ref(), Some(&new_rt));
    assert_eq!(h.stored("local").unwrap(), forced);
    assert_eq!(server.stats().await["refresh_requests"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_without_new_refresh_token_keeps_the_old_one() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let first = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    h.backdate("local", 16.0);
    server
        .control(json!({ "omit_refresh_token": true, "access_token_ttl": 3600 }))
        .await;
    let refreshed = h.service.ensure_valid_token("local").await.unwrap();
    assert_ne!(refreshed.access_token, first.access_token);
    assert_eq!(refreshed.refresh_token, first.refresh_token);
    assert_eq!(
        h.stored("local").unwrap().refresh_token,
        first.refresh_token
    );
    // And the kept RT still works at the server.
    assert!(
        server
            .is_active(first.refresh_token.unwrap().secret())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_refresh_exactly_once() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    h.service.authenticate("local", opts()).await.unwrap();
    h.backdate("local", 16.0);
    server.control(json!({ "access_token_ttl": 3600 })).await;
    let before = server.stats().await["refresh_requests"].as_u64().unwrap();
    assert_eq!(before, 0);

    let exe = std::env::current_exe().unwrap();
    let go = h.home.path().join("go");
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "flows::child_ensure_valid_token",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CH_CHILD_HOME", h.home.path())
                .env("CH_CHILD_GO", &go)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Release them together.
    std::fs::write(&go, b"go").unwrap();
    let mut seen = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The harness prints `test … ... ` before the test's own output on the same line.
        let token = stdout
            .split_once("CHILD_TOKEN=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no token in child output: {stdout}"))
            .to_owned();
        seen.push(token);
    }
    assert_eq!(
        server.stats().await["refresh_requests"],
        1,
        "exactly one refresh at the server"
    );
    let stored = h.stored("local").unwrap();
    assert!(
        seen.iter().all(|t| t == stored.access_token.secret()),
        "all 20 got the stored new token"
    );
    assert!(server.is_active(stored.access_token.secret()).await);
}

/// Child-process entry for [`twenty_processes_refresh_exactly_once`]; a no-op in a normal run.
#[test]
#[allow(clippy::print_stdout)] // the parent reads the token from stdout
fn child_ensure_valid_token() {
    let (Some(home), Some(go)) = (
        std::env::var_os("CH_CHILD_HOME"),
        std::env::var_os("CH_CHILD_GO"),
    ) else {
        return;
    };
    let home = std::path::PathBuf::from(home);
    let go = std::path::PathBuf::from(go);
    let deadline = SystemTime::now() + Duration::from_secs(30);
    while !go.exists() && SystemTime::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let service = service_for(
        &home,
        Environment::empty(),
        HttpSettings::default(),
        |_: &str| Ok(()),
    );
    let tokens = runtime
        .block_on(service.ensure_valid_token("local"))
        .unwrap();
    println!("CHILD_TOKEN={}", tokens.access_token.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_marks_refresh_failed_and_keeps_tokens() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    h.backdate("local", 16.0);
    // Kill the grant at the server behind the client's back.
    server
        .revoke_directly(
            tokens.refresh_token.as_ref().unwrap().secret(),
            "refresh_token",
        )
        .await;

    let err = h.service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenRefreshFailed);
    assert_eq!(err.oauth_error(), Some("invalid_grant"));
    assert_eq!(
        err.next_step(),
        Some(&NextStep::SignIn {
            provider: "local".to_owned()
        })
    );
    assert!(err.needs_sign_in());
    assert_eq!(server.stats().await["refresh_requests"], 1);

    // Tokens retained, marked; status says so.
    let stored = h.stored("local").unwrap();
    assert_eq!(stored.access_token, tokens.access_token);
    assert_eq!(stored.refresh_token, tokens.refresh_token);
    assert!(stored.refresh_failed_at.is_some());
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::TokenRefreshFailed
    );

    // No retry loop: the next call fails without asking the server again.
    let err = h.service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenRefreshFailed);
    assert_eq!(server.stats().await["refresh_requests"], 1);

    // Signing in again clears the mark.
    h.service.authenticate("local", opts()).await.unwrap();
    assert!(h.stored("local").unwrap().refresh_failed_at.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_faults_leave_storage_untouched() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let http = HttpSettings {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
    };
    let h = Harness::with(&server.issuer, "ch-public", Environment::empty(), http, "");
    h.service.authenticate("local", opts()).await.unwrap();
    h.backdate("local", 16.0);
    let before = h.token_file("local").unwrap();

    let cases = [
        ("500", ErrorCode::NetworkError),
        ("html", ErrorCode::NetworkError),
        // An unreadable HTTP 200 is the server's fault, not the network's.
        ("garbage", ErrorCode::AuthFailed),
        ("reset", ErrorCode::NetworkError),
        ("slow", ErrorCode::Timeout),
    ];
    for (mode, expected) in cases {
        server
            .control(json!({ "fault": { "mode": mode, "grant_type": "refresh_token", "delay_ms": 4000 } }))
            .await;
        let err = h.service.ensure_valid_token("local").await.unwrap_err();
        assert_eq!(err.code(), expected, "fault {mode}: {err} ({err:?})");
        assert!(err.hint().is_some(), "fault {mode} has a next step");
        assert_eq!(
            h.token_file("local").unwrap(),
            before,
            "fault {mode} changed storage"
        );
        assert_eq!(
            h.service.get_status("local").unwrap(),
            AuthStatus::TokenExpired
        );
    }
    assert_eq!(server.stats().await["faults_served"], 5);

    // With the faults gone, the untouched refresh token still works.
    server
        .control(json!({ "fault": null, "access_token_ttl": 3600 }))
        .await;
    h.service.ensure_valid_token("local").await.unwrap();
    assert_ne!(h.token_file("local").unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_auth_cancelled() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_DENY", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let err = h.service.authenticate("local", opts()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthCancelled, "{err:?}");
    assert!(h.stored("local").is_none());
    assert_eq!(server.stats().await["token_requests"], 0);
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::NotAuthenticated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_at_the_server_and_deletes_locally() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    let rt = tokens.refresh_token.clone().unwrap();
    assert!(server.is_active(tokens.access_token.secret()).await);
    assert!(server.is_active(rt.secret()).await);

    let outcome = h.service.logout("local").await.unwrap();
    assert_eq!(outcome.revocation, Revocation::Revoked);
    assert!(outcome.deleted);
    assert!(!server.is_active(tokens.access_token.secret()).await);
    assert!(!server.is_active(rt.secret()).await);
    assert!(h.stored("local").is_none());
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::NotAuthenticated
    );
    let err = h.service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthRequired);

    // Logging out again is harmless.
    let outcome = h.service.logout("local").await.unwrap();
    assert!(!outcome.deleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_deletes_locally_even_when_revocation_fails() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    h.service.authenticate("local", opts()).await.unwrap();
    drop(server); // the server is gone: revocation cannot succeed
    let outcome = h.service.logout("local").await.unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::Failed { .. }),
        "{outcome:?}"
    );
    assert!(outcome.deleted);
    assert!(h.stored("local").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_clients_authenticate_with_basic_and_post() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    for (client, secret, method) in [
        (
            "ch-confidential",
            "ch-confidential-secret",
            "client_secret_basic",
        ),
        (
            "ch-confidential-post",
            "ch-confidential-post-secret",
            "client_secret_post",
        ),
    ] {
        let env = Environment::from_pairs([("LOCAL_CLIENT_SECRET", secret)]);
        let extra = format!("token_auth_method = \"{method}\"");
        let h = Harness::with(&server.issuer, client, env, HttpSettings::default(), &extra);
        let tokens = h
            .service
            .authenticate("local", opts())
            .await
            .unwrap()
            .tokens;
        let last = server.last_token_request().await;
        assert_eq!(
            last["client_secret"].as_str().is_some(),
            method == "client_secret_post",
            "{method}"
        );
        h.backdate("local", 16.0);
        let refreshed = h.service.ensure_valid_token("local").await.unwrap();
        assert_ne!(refreshed.access_token, tokens.access_token, "{method}");
        // The secret is never written to disk.
        let file = String::from_utf8(h.token_file("local").unwrap()).unwrap();
        assert!(!file.contains(secret), "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_issuer_in_callback_is_refused() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    // Configure a different expected issuer: the server's real `iss` no longer matches (mix-up).
    let h = Harness::new(&server.issuer);
    let toml = std::fs::read_to_string(h.home.path().join("providers.toml"))
        .unwrap()
        .replace(
            &format!("issuer = \"{}\"", server.issuer),
            "issuer = \"https://other-issuer.example\"",
        );
    std::fs::write(h.home.path().join("providers.toml"), toml).unwrap();
    let service = h.another_service();
    let err = service.authenticate("local", opts()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed);
    assert!(err.to_string().contains("issuer"), "{err}");
    assert_eq!(
        server.stats().await["token_requests"],
        0,
        "the code was never redeemed"
    );
    assert!(h.stored("local").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_response_from_a_wrong_issuer_is_a_mix_up_not_a_denial() {
    // RFC 9207 §2.4: `iss` is checked before an error response is acted on.
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_DENY", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let toml = std::fs::read_to_string(h.home.path().join("providers.toml"))
        .unwrap()
        .replace(
            &format!("issuer = \"{}\"", server.issuer),
            "issuer = \"https://other-issuer.example\"",
        );
    std::fs::write(h.home.path().join("providers.toml"), toml).unwrap();
    let err = h
        .another_service()
        .authenticate("local", opts())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed, "{err:?}");
    assert!(err.to_string().contains("mix-up"), "{err}");
    assert!(h.stored("local").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let secret = "ch-confidential-secret";
    let env = Environment::from_pairs([("LOCAL_CLIENT_SECRET", secret)]);
    let h = Harness::with(
        &server.issuer,
        "ch-confidential",
        env,
        HttpSettings::default(),
        "",
    );
    let outcome = h.service.authenticate("local", opts()).await.unwrap();
    let exchange = server.last_token_request().await;
    h.backdate("local", 16.0);
    let refreshed = h.service.ensure_valid_token("local").await.unwrap();
    h.service.logout("local").await.unwrap();

    let code = exchange["code"].as_str().unwrap().to_owned();
    let verifier = exchange["code_verifier"].as_str().unwrap().to_owned();
    let callback = h
        .browser
        .callbacks
        .lock()
        .unwrap()
        .first()
        .cloned()
        .unwrap();
    assert!(callback.contains(&code), "the test sees the real code");
    let mut secrets = vec![
        outcome.tokens.access_token.secret().to_owned(),
        outcome
            .tokens
            .refresh_token
            .as_ref()
            .unwrap()
            .secret()
            .to_owned(),
        refreshed.access_token.secret().to_owned(),
        refreshed
            .refresh_token
            .as_ref()
            .unwrap()
            .secret()
            .to_owned(),
        code,
        verifier,
        secret.to_owned(),
    ];
    if let Some(id_token) = &outcome.tokens.id_token {
        secrets.push(id_token.secret().to_owned());
    }
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(
        logs.contains("context_harness_providers"),
        "TRACE capture is live"
    );
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "a secret reached the logs");
    }
    // Debug output of the tokens is redacted too.
    let debug = format!("{:?} {:?}", outcome, refreshed);
    for s in &secrets {
        assert!(!debug.contains(s.as_str()), "a secret reached Debug output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_browser_is_answered_while_it_runs() {
    // Like lynx, w3m or curl named in $BROWSER: `open` returns only once the browser has loaded the
    // callback page, so the listener must answer while the opener is still running.
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let callbacks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&callbacks);
    let handle = tokio::runtime::Handle::current();
    let foreground = move |url: &str| -> std::io::Result<()> {
        handle
            .block_on(crate::support::drive(url, &seen))
            .map_err(std::io::Error::other)
    };
    let outcome = h
        .service
        .authenticate("local", opts().browser(foreground))
        .await
        .unwrap();
    assert!(!outcome.tokens.access_token.secret().is_empty());
    assert_eq!(callbacks.lock().unwrap().len(), 1);
    assert!(h.stored("local").is_some());
}
