//! Server text at TRACE: a hostile MCP server and authorization server (`HostileServer`, a small
//! local **stub reproducing a hostile server**, shared with the providers' tests) put escape
//! sequences (OSC 52 clipboard write, clear screen, window title, OSC 8 links), C1 controls and
//! bidi overrides into every string they send: metadata, the registered `client_id`, error codes
//! and descriptions, `WWW-Authenticate` values, response headers, SSE event ids and names, and a
//! JSON-RPC error message. With `-vvv` and with `RUST_LOG=trace` (every crate's logs, hyper's
//! included) nothing of it reaches stderr raw. A `client_id` that is not printable ASCII is refused
//! at registration with a clear error.

use std::time::Duration;

use serde_json::json;

use crate::hostile_stub::{HostileServer, Mode, assert_clean, hostile};
use crate::proxy::Proxy;
use crate::util::{Home, Run, browser_script, require};

/// The two ways to log everything: the CLI's own `-vvv`, and `RUST_LOG=trace` (all targets).
fn at_trace(home: &Home, args: &[&str]) -> [Run; 2] {
    let mut verbose = vec!["-vvv"];
    verbose.extend_from_slice(args);
    [
        home.run(&verbose),
        home.run_env(args, &[("RUST_LOG", "trace")]),
    ]
}

#[track_caller]
fn assert_traced(run: &Run) {
    assert!(run.stderr.contains("TRACE"), "not at TRACE: {run:#?}");
    // The hostile metadata was read and logged (through the sanitiser).
    assert!(
        run.stderr.contains("several authorization servers"),
        "{run:#?}"
    );
    assert_clean("stderr", &run.stderr);
    assert_clean("stdout", &run.stdout);
}

/// A registration answer whose `client_id` holds escape sequences: refused with `auth_failed`
/// (exit 4), a message naming the field and RFC 6749, and the hint to use a pre-registered
/// client; nothing is stored and no browser is opened.
#[test]
fn an_unprintable_client_id_is_refused_at_registration() {
    let stub = HostileServer::start(Mode::UnprintableClientId);
    let home = Home::new();
    let url = stub.mcp_url();
    for run in at_trace(
        &home,
        &["mcp", "auth", &url, "--port", "0", "--timeout", "20"],
    ) {
        run.expect_code(4);
        assert_traced(&run);
        assert!(
            run.stderr
                .contains("issued a client_id that is not printable ASCII (RFC 6749 Appendix A"),
            "{run:#?}"
        );
        assert!(
            run.stderr.contains("hint:") && run.stderr.contains("--client-id"),
            "{run:#?}"
        );
    }
    let seen = stub.seen();
    assert!(seen.contains(&"POST /register".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"GET /authorize".to_owned()), "{seen:?}");
    assert!(
        !home.path().join("registrations").exists()
            || std::fs::read_dir(home.path().join("registrations")).map_or(0, |d| d.count()) == 0
    );
}

/// A refused registration whose `error` and `error_description` are hostile: `-v` shows the
/// server's description, sanitised.
#[test]
fn a_hostile_registration_refusal_is_sanitised() {
    let stub = HostileServer::start(Mode::RegistrationRefused);
    let home = Home::new();
    let url = stub.mcp_url();
    for run in at_trace(
        &home,
        &["mcp", "auth", &url, "--port", "0", "--timeout", "20"],
    ) {
        run.expect_code(4);
        assert_traced(&run);
        assert!(run.stderr.contains("was refused"), "{run:#?}");
    }
}

/// Registration succeeds, the browser (the `follow.mjs` stand-in) brings the code back, and the
/// token endpoint refuses it with a hostile `error_description` and `error_uri`.
#[test]
fn a_hostile_token_error_is_sanitised() {
    if !require(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node",
    ) {
        return;
    }
    let stub = HostileServer::start(Mode::TokenRefused);
    let home = Home::new();
    let url = stub.mcp_url();
    let browser = browser_script("follow.mjs");
    let args = ["mcp", "auth", &url, "--port", "0", "--timeout", "30"];
    let mut verbose = vec!["-vvv"];
    verbose.extend_from_slice(&args);
    for run in [
        home.run_env(&verbose, &[("BROWSER", &browser)]),
        home.run_env(&args, &[("BROWSER", &browser), ("RUST_LOG", "trace")]),
    ] {
        assert!(run.code > 0 && run.code < 128, "{run:#?}");
        assert_traced(&run);
        assert!(run.stderr.contains("invalid_grant"), "{run:#?}");
    }
    let seen = stub.seen();
    assert!(seen.contains(&"POST /token".to_owned()), "{seen:?}");
}

/// `mcp proxy` relays a JSON-RPC error whose message holds escape sequences unchanged on stdout
/// (it is data for the MCP client), while its TRACE log of the SSE events (hostile ids and event
/// names) and the response headers stays clean.
#[test]
fn the_proxy_relays_hostile_json_rpc_errors_but_logs_them_clean() {
    let stub = HostileServer::start(Mode::OpenMcp);
    let home = Home::new();
    let mut proxy = Proxy::spawn(&home, &stub.mcp_url(), &[], &[("RUST_LOG", "trace")]);
    proxy.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}));
    let answer = proxy
        .recv_within(Duration::from_secs(30))
        .expect("an answer to request 7");
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(
        answer["error"]["message"].as_str(),
        Some(hostile("no such method").as_str()),
        "the message is data: relayed as it is"
    );
    let (code, _rest, stderr) = proxy.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("TRACE"), "{stderr}");
    assert!(stderr.contains("an event of the POST's stream"), "{stderr}");
    assert_clean("the proxy's stderr", &stderr);
}
