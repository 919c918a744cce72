//! A first run without surprises (issue 23): a host the user typed that does not resolve, or
//! that refuses the connection, is exit 11 (`network_error`: an unreachable server) with a message
//! that says so and names the host; and hints name the real home directory, never a variable that
//! may not be set.
//!
//! `.invalid` is reserved by RFC 6761: no resolver ever answers for it, with or without a network.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::proxy::Proxy;
use crate::util::{Home, Run};

const GONE_HOST: &str = "no-such-host.invalid";
const GONE: &str = "https://no-such-host.invalid/mcp";

/// Exit 11, the message naming `host` and saying that its name does not resolve, the hint saying
/// what to check, and no word of a "server-supplied" host (the user typed it).
#[track_caller]
fn assert_does_not_resolve(run: &Run, host: &str) {
    run.expect_code(11);
    assert!(
        run.stderr
            .contains(&format!("the host name {host} does not resolve")),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("hint: check the spelling of the host name"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("server-supplied"), "{run:#?}");
}

/// Writes `value` to `path` (mode 0600), its directory made 0700.
fn plant(path: &Path, value: &Value) {
    let dir = path.parent().expect("a directory");
    fs::create_dir_all(dir).expect("mkdir");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("chmod dir");
    fs::write(path, value.to_string()).expect("plant");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod file");
}

/// Expired tokens with a refresh token, as a sign-in long ago left them.
fn expired_tokens() -> Value {
    json!({
        "access_token": "old-at", "token_type": "Bearer", "expires_in": 1,
        "refresh_token": "old-rt", "scope": null, "issued_at": 1, "client_id": "c"
    })
}

fn write_providers(home: &Home, text: &str) {
    let file = home.path().join("providers.toml");
    fs::write(&file, text).expect("providers.toml");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// `mcp auth` of an MCP server URL whose host does not resolve: exit 11 naming the host, before
/// anything else; `mcp proxy` answers the host's requests with a `network_error` saying the same.
/// `mcp token` and `mcp status` contact no server when nothing is stored (exit 3, "not signed
/// in"); with a stored sign-in whose access token expired, `mcp token` refreshes and reports the
/// host the same way.
#[test]
fn an_mcp_server_url_that_does_not_resolve_is_exit_11_naming_the_host() {
    let home = Home::new();
    assert_does_not_resolve(&home.run(&["mcp", "auth", GONE]), GONE_HOST);
    assert_does_not_resolve(
        &home.run(&["mcp", "auth", GONE, "--device", "--timeout", "5"]),
        GONE_HOST,
    );
    for args in [["mcp", "token", GONE], ["mcp", "status", GONE]] {
        let run = home.run(&args);
        run.expect_code(3);
        assert!(run.stderr.contains("not signed in"), "{run:#?}");
    }

    let mut proxy = Proxy::spawn(&home, GONE, &[], &[]);
    let answer = proxy.initialize();
    assert_eq!(answer["error"]["data"]["code"], "network_error", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("the host name {GONE_HOST} does not resolve")),
        "{answer}"
    );
    let hint = answer["error"]["data"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("spelling"), "{answer}");
    let (code, _, stderr) = proxy.finish();
    assert_eq!(code, 0, "the bridge ends normally at stdin EOF: {stderr}");

    // A sign-in stored long ago (its record and bound tokens, as the sign-in writes them).
    let name = "_no-such-host.invalid-mcp";
    let token_endpoint = format!("https://{GONE_HOST}/token");
    plant(
        &home.path().join("mcp").join(format!("{name}.json")),
        &json!({
            "server_url": GONE, "resource": GONE,
            "resource_metadata_url": format!("https://{GONE_HOST}/.well-known/oauth-protected-resource/mcp"),
            "issuer": format!("https://{GONE_HOST}"),
            "authorization_endpoint": format!("https://{GONE_HOST}/authorize"),
            "token_endpoint": token_endpoint,
        }),
    );
    let mut tokens = expired_tokens();
    tokens["mcp_server"] = json!({
        "server_url": GONE, "issuer": format!("https://{GONE_HOST}"),
        "token_endpoint": token_endpoint, "revocation_endpoint": null
    });
    plant(&home.token_file(name), &tokens);
    let run = home.run(&["mcp", "token", GONE]);
    run.expect_code(11);
    assert!(
        run.stderr
            .contains(&format!("the host name {GONE_HOST} does not resolve")),
        "{run:#?}"
    );
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert_eq!(home.tokens(name)["refresh_token"], "old-rt");
}

/// A `providers.toml` entry whose endpoints do not resolve: the device flow, a refresh (`mcp
/// token`, `mcp refresh`) and an issuer-only entry's discovery are exit 11 naming the host.
#[test]
fn configured_endpoints_that_do_not_resolve_are_exit_11_naming_the_host() {
    let home = Home::new();
    write_providers(
        &home,
        "[providers.gone]\n\
         auth_url = \"https://as.no-such-host.invalid/authorize\"\n\
         token_url = \"https://as.no-such-host.invalid/token\"\n\
         device_auth_url = \"https://as.no-such-host.invalid/device\"\n\
         client_id = \"c\"\n\
         [providers.gone-issuer]\n\
         issuer = \"https://idp.no-such-host.invalid\"\n\
         client_id = \"c\"\n",
    );
    let host = "as.no-such-host.invalid";
    assert_does_not_resolve(
        &home.run(&["mcp", "auth", "gone", "--device", "--timeout", "5"]),
        host,
    );
    plant(&home.token_file("gone"), &expired_tokens());
    for command in ["token", "refresh"] {
        let run = home.run(&["mcp", command, "gone"]);
        assert_does_not_resolve(&run, host);
        assert!(run.stderr.contains("token endpoint"), "{run:#?}");
        assert!(run.stdout.is_empty(), "{run:#?}");
    }
    assert_eq!(home.tokens("gone")["refresh_token"], "old-rt");
    let run = home.run(&["mcp", "auth", "gone-issuer", "--timeout", "5"]);
    assert_does_not_resolve(&run, "idp.no-such-host.invalid");
    assert!(run.stderr.contains("the issuer of gone-issuer"), "{run:#?}");
}

/// A host the user typed that refuses the connection is exit 11 as well ("cannot connect"), for
/// an MCP server URL and for a configured token endpoint.
#[test]
fn a_refused_connection_to_a_typed_host_is_exit_11() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let home = Home::new();
    let run = home.run(&["mcp", "auth", &format!("http://127.0.0.1:{port}/mcp")]);
    run.expect_code(11);
    assert!(
        run.stderr
            .contains("cannot connect to the MCP server at 127.0.0.1"),
        "{run:#?}"
    );
    write_providers(
        &home,
        &format!(
            "[providers.closed]\nauth_url = \"http://127.0.0.1:{port}/authorize\"\n\
             token_url = \"http://127.0.0.1:{port}/token\"\nclient_id = \"c\"\n"
        ),
    );
    plant(&home.token_file("closed"), &expired_tokens());
    let run = home.run(&["mcp", "token", "closed"]);
    run.expect_code(11);
    assert!(run.stderr.contains("cannot connect"), "{run:#?}");
    assert!(!run.stderr.contains("does not resolve"), "{run:#?}");
}

/// The unknown-provider hint names the home's `providers.toml` by its real path: the default
/// (`$HOME/.context-harness`, with `CONTEXT_HARNESS_HOME` unset), `CONTEXT_HARNESS_HOME`, or
/// `--home`, whether the file exists or not.
#[test]
fn hints_name_the_real_home_directory() {
    let home = Home::new();
    let hint_of = |run: &Run| -> String {
        run.expect_code(9);
        assert!(!run.stderr.contains("$CONTEXT_HARNESS_HOME"), "{run:#?}");
        run.stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_else(|| panic!("no hint: {run:#?}"))
            .to_owned()
    };
    let path = |dir: &Path| dir.join("providers.toml").display().to_string();

    // Default home: CONTEXT_HARNESS_HOME unset, HOME is the test's directory.
    let output = home
        .cmd(&["mcp", "auth", "nosuch"])
        .env_remove("CONTEXT_HARNESS_HOME")
        .output()
        .expect("run");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let hint = hint_of(&run);
    let default = path(&home.path().join(".context-harness"));
    assert!(hint.ends_with(&format!("to {default}")), "{hint}");

    // CONTEXT_HARNESS_HOME, without and with a providers.toml.
    for _ in 0..2 {
        let hint = hint_of(&home.run(&["mcp", "token", "nosuch"]));
        assert!(
            hint.ends_with(&format!("to {}", path(home.path()))),
            "{hint}"
        );
        write_providers(&home, "");
    }

    // --home wins over the variable.
    let other = home.path().join("other-home");
    let other_arg = other.display().to_string();
    let hint = hint_of(&home.run(&["--home", &other_arg, "mcp", "auth", "nosuch"]));
    assert!(hint.ends_with(&format!("to {}", path(&other))), "{hint}");
}

/// A password typed into a server URL (`https://user:password@host/…`, refused: server URLs carry
/// no user info) is never repeated: not in the error, not in the logs at TRACE, for every command
/// that takes a server URL; each exits 13 (`config_invalid`).
#[test]
fn a_password_in_a_server_url_is_never_repeated() {
    let home = Home::new();
    for url in [
        "https://alice:s3cr3t-pw@mcp.example/mcp",
        "https://s3cr3t-pw@mcp.example",
        "http://a:s3cr3t-pw@b@127.0.0.1:9/mcp",
        // What lenient parsers read as user info too.
        "https:bob:s3cr3t-pw@mcp.example/mcp",
        "https:/bob:s3cr3t-pw@mcp.example/mcp",
        "HTTPS:\\\\bob:s3cr3t-pw@mcp.example/mcp",
    ] {
        for command in [
            &["mcp", "auth"][..],
            &["mcp", "token"],
            &["mcp", "token", "--json"],
            &["mcp", "status"],
            &["mcp", "refresh"],
            &["mcp", "logout"],
            &["mcp", "headers"],
            &["mcp", "proxy"],
        ] {
            let mut args = vec!["-vvv"];
            args.extend_from_slice(&command[..2]);
            args.push(url);
            args.extend_from_slice(&command[2..]);
            let run = home.run(&args);
            assert_eq!(run.code, 13, "{args:?}: {run:#?}");
            assert!(!run.stdout.contains("s3cr3t"), "{args:?}: {run:#?}");
            assert!(!run.stderr.contains("s3cr3t"), "{args:?}: {run:#?}");
            assert!(run.stderr.contains("***@"), "{args:?}: {run:#?}");
        }
    }
}

/// Texts that are not server URLs but carry `user:password@` (no scheme, another scheme, `//`) are
/// refused as provider names without repeating the password either.
#[test]
fn a_password_in_a_non_url_provider_is_never_repeated() {
    let home = Home::new();
    for text in [
        "bob:s3cr3t-pw@mcp.example",
        "//bob:s3cr3t-pw@mcp.example/mcp",
        "ftp://bob:s3cr3t-pw@mcp.example/mcp",
    ] {
        for command in ["auth", "token", "status", "logout"] {
            let run = home.run(&["-vvv", "mcp", command, text]);
            assert_ne!(run.code, 0, "{command} {text}: {run:#?}");
            assert!(!run.stdout.contains("s3cr3t"), "{command} {text}: {run:#?}");
            assert!(!run.stderr.contains("s3cr3t"), "{command} {text}: {run:#?}");
        }
    }
}
