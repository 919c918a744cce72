//! Token lifecycle through the binary, against the repository's oidc-provider: no refresh
//! storm with short-lived tokens, the real reason when there is no refresh token, and a complete
//! logout reported once per token. The failing revocation is the server's documented
//! `revocation_fault` test hook (a quirk-stub behaviour on top of the real server).

use std::process::Stdio;

use crate::util::{AuthServer, Home, Pending, follow_to_redirect, http, require_server};

/// Signs in to `local` with a pasted redirect URL (`extra` flags added).
fn sign_in(home: &Home, extra: &[&str]) {
    let auth = pasted_sign_in(home, extra);
    auth.expect_code(0);
    assert!(auth.stderr.contains("redirect: http://"), "{auth:#?}");
}

/// `mcp auth local` with a pasted redirect URL (`extra` flags added), however it ends.
fn pasted_sign_in(home: &Home, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "mcp",
        "auth",
        "local",
        "--no-browser",
        "--port",
        "0",
        "--timeout",
        "60",
    ];
    args.extend_from_slice(extra);
    let pending = Pending::spawn(home.cmd(&args));
    let redirect = follow_to_redirect(&pending.url);
    pending.paste(&redirect)
}

fn control(server: &AuthServer, body: &str) {
    let (status, answer) = http(
        "POST",
        &format!("{}/test/control", server.issuer),
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(status, 200, "{answer}");
}

fn twenty_token_processes(ttl: &str) {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", ttl)]);
    let home = Home::with_local(&server.issuer, "ch-public");
    sign_in(&home, &[]);
    // Right after sign-in: no refresh.
    let first = home.run(&["mcp", "token", "local"]);
    first.expect_code(0);
    assert_eq!(server.stats()["refresh_requests"], 0);

    let ttl_secs: f64 = ttl.parse().unwrap();
    home.backdate("local", ttl_secs + 1.0); // expired
    let children: Vec<_> = (0..20)
        .map(|_| {
            home.cmd(&["mcp", "token", "local"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();
    assert_eq!(
        server.stats()["refresh_requests"],
        1,
        "{ttl} s tokens: exactly one refresh request"
    );
    let stored = home.tokens("local")["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_ne!(stored, first.stdout.trim());
    assert!(
        outputs.iter().all(|t| *t == stored),
        "all 20 print the same, new token"
    );
}

#[test]
fn twenty_mcp_token_processes_refresh_once_with_5_s_tokens() {
    twenty_token_processes("5");
}

#[test]
fn twenty_mcp_token_processes_refresh_once_with_30_s_tokens() {
    twenty_token_processes("30");
}

#[test]
fn refresh_without_a_refresh_token_says_so_and_until_when() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    // Without offline_access oidc-provider issues no refresh token.
    sign_in(&home, &["--scope", "openid"]);
    let run = home.run(&["mcp", "refresh", "local"]);
    run.expect_code(6);
    assert!(run.stderr.contains("no refresh token"), "{run:#?}");
    assert!(run.stderr.contains("valid for another"), "{run:#?}");
    assert!(!run.stderr.contains("has expired"), "{run:#?}");
    assert_eq!(server.stats()["refresh_requests"], 0);
    // `mcp token` still serves the valid token.
    home.run(&["mcp", "token", "local"]).expect_code(0);
}

#[test]
fn logout_reports_each_token_once_and_revokes_the_access_token_anyway() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    sign_in(&home, &[]);
    let access = home.tokens("local")["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert!(server.introspect(&access));
    control(
        &server,
        r#"{"revocation_fault":{"token_type_hint":"refresh_token","times":1}}"#,
    );
    let logout = home.run(&["mcp", "logout", "local"]);
    logout.expect_code(0);
    let warnings: Vec<&str> = logout
        .stderr
        .lines()
        .filter(|l| l.contains("warning:") || l.contains("WARN"))
        .collect();
    assert_eq!(warnings.len(), 1, "one line per outcome: {logout:#?}");
    assert!(warnings[0].contains("refresh token"), "{logout:#?}");
    assert!(
        logout
            .stderr
            .contains("Access token revoked at the server."),
        "{logout:#?}"
    );
    assert!(logout.stderr.contains("Signed out of local"), "{logout:#?}");
    assert!(!server.introspect(&access), "the access token is revoked");
    assert!(!home.token_file("local").exists());
    assert_eq!(server.stats()["revocation_requests"], 2);
}

/// A server that answers `token_type` `DPoP` to token requests that carried no DPoP proof (RFC 9449
/// §5 binds a token only to a proof's key; a hostile-server stand-in: the repository's oidc-provider
/// with its `token_type_override` test hook): the sign-in is refused (exit 4, `auth_failed`, naming
/// the server's answer) and nothing is stored; a refresh answered so is stored (a rotated refresh
/// token must be kept) but refused the same way. The token is never printed.
#[test]
fn a_dpop_answer_to_a_request_without_a_proof_is_refused() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let said = "answered token_type DPoP to a token request that carried no DPoP proof";

    // Sign-in.
    let home = Home::with_local(&server.issuer, "ch-public");
    control(&server, r#"{"token_type_override": "DPoP"}"#);
    let auth = pasted_sign_in(&home, &[]);
    auth.expect_code(4);
    assert!(auth.stderr.contains(said), "{auth:#?}");
    assert!(
        !home.path().join("tokens").join("local.json").exists(),
        "nothing stored"
    );

    // Refresh.
    control(&server, r#"{"token_type_override": null}"#);
    sign_in(&home, &[]);
    let signed_in = home.tokens("local");
    assert_eq!(signed_in["token_type"], "Bearer", "{signed_in:#}");
    control(&server, r#"{"token_type_override": "DPoP"}"#);
    home.backdate("local", 7200.0);
    let token = home.run(&["mcp", "token", "local", "--no-sign-in"]);
    token.expect_code(4);
    assert!(token.stderr.contains(said), "{token:#?}");
    assert!(token.stdout.is_empty(), "{token:#?}");
    let refreshed = home.tokens("local");
    assert_eq!(refreshed["token_type"], "DPoP", "the refreshed set is kept");
    assert_ne!(refreshed["refresh_token"], signed_in["refresh_token"]);
    let secret = refreshed["access_token"].as_str().expect("token");
    assert!(!token.stderr.contains(secret) && !auth.stderr.contains(secret));
    // From now on it counts as unusable (no key): a sign-in is needed.
    home.run(&["mcp", "token", "local", "--no-sign-in"])
        .expect_code(3);
}
