//! Sign-in flows without a real browser: pasted redirect, access denied, port fallback.

use crate::util::{AuthServer, Home, Pending, browser_script, follow_to_redirect, require_server};

#[test]
fn no_browser_accepts_a_pasted_redirect_url() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let pending = Pending::spawn(home.cmd(&[
        "mcp",
        "auth",
        "local",
        "--no-browser",
        "--port",
        "0",
        "--timeout",
        "60",
    ]));
    // follow.mjs never requests the loopback redirect: only the paste can finish this sign-in.
    let redirect = follow_to_redirect(&pending.url);
    let run = pending.paste(&redirect);
    run.expect_code(0);
    assert!(run.stderr.contains("--no-browser given"), "{run:#?}");
    assert!(run.stderr.contains("Tokens stored in the file"), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert_eq!(server.stats()["authorization_code_requests"], 1);

    let status = home.run(&["mcp", "status", "local", "--json"]);
    status.expect_code(0);
    assert_eq!(status.json()["providers"][0]["status"], "authenticated");
}

/// Pasted as people paste: a stale address and a scrap first (each refused with its real reason,
/// the sign-in keeps waiting), then the right one wrapped over two lines inside angle brackets.
#[test]
fn pasted_addresses_are_taken_as_people_paste_them() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let pending = Pending::spawn(home.cmd(&[
        "mcp",
        "auth",
        "local",
        "--no-browser",
        "--port",
        "0",
        "--timeout",
        "60",
    ]));
    let redirect = follow_to_redirect(&pending.url);
    let (query_start, _) = redirect.split_once('?').expect("a query");
    let stale = format!("{query_start}?code=old&state=from-an-old-tab");
    let (head, tail) = redirect.split_at(redirect.len() / 2);
    let elsewhere = "http://localhost:1/callback?code=x&state=y";
    let run = pending.paste(&format!("{stale}\n{elsewhere}\n<{head}\n  {tail}>"));
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("belongs to a different or older sign-in attempt"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("host or port differs"), "{run:#?}");
    assert_eq!(
        run.stderr.matches("was not accepted").count(),
        2,
        "{run:#?}"
    );
    assert!(run.stderr.contains("Tokens stored in the file"), "{run:#?}");
    assert_eq!(server.stats()["authorization_code_requests"], 1);
}

#[test]
fn access_denied_exits_5() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_DENY", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let run = home.run_env(
        &["mcp", "auth", "local", "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    run.expect_code(5);
    assert!(run.stderr.contains("denied"), "{run:#?}");
    assert!(
        run.stderr
            .contains("hint: run `context-harness mcp auth local` again"),
        "{run:#?}"
    );
    assert!(!home.token_file("local").exists());
}

#[test]
fn busy_port_falls_back_to_the_next_and_says_so() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    // Hold port A ourselves; B is free (we just released it).
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = held.local_addr().expect("addr").port();
    let b = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (a, b) = (a.to_string(), b.to_string());
    let run = home.run_env(
        &[
            "mcp",
            "auth",
            "local",
            "--port",
            &a,
            "--port",
            &b,
            "--timeout",
            "60",
        ],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            "Port {a} is in use; listening on port {b} instead"
        )),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains(&format!("redirect: http://localhost:{b}/callback")),
        "{run:#?}"
    );
    drop(held);
}

#[test]
fn timeout_exits_10() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[]);
    let home = Home::with_local(&server.issuer, "ch-public");
    // Nobody opens the URL; stdin is empty, so only the listener waits.
    let run = home.run(&[
        "mcp",
        "auth",
        "local",
        "--no-browser",
        "--port",
        "0",
        "--timeout",
        "1",
    ]);
    run.expect_code(10);
    assert!(run.stderr.contains("hint:"), "{run:#?}");
}

/// Without a display (no `--no-browser`), a provider with no device endpoint falls back from the
/// device grant to the browser flow: the printed URL's redirect can still be pasted (the paste was
/// offered but never read before).
#[test]
fn no_display_without_a_device_endpoint_accepts_a_pasted_redirect_url() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, "ch-public");
    let pending =
        Pending::spawn(home.cmd(&["mcp", "auth", "local", "--port", "0", "--timeout", "60"]));
    let redirect = follow_to_redirect(&pending.url);
    let run = pending.paste(&redirect);
    run.expect_code(0);
    assert!(run.stderr.contains("No display found"), "{run:#?}");
    assert!(run.stderr.contains("paste the address"), "{run:#?}");
    assert!(run.stderr.contains("Tokens stored in the file"), "{run:#?}");
    assert_eq!(server.stats()["authorization_code_requests"], 1);
}
