//! `mcp headers` as an MCP host's headers helper (issue 23): the host runs the command, reads its
//! stdout as a JSON object of headers and sends them on every request. Two hosts: a real one,
//! Claude Code (`tests/mcp-host`, pinned; its `claude mcp list` health check runs a server's
//! `headersHelper` and connects with what it prints, offline), and
//! `tests/mcp-servers/headers-helper-host.mjs` (that code path, then the official TypeScript SDK's
//! client). The server is the SDK's (`requireBearerAuth` checking the local oidc-provider's tokens).

use std::process::Command;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use context_harness_providers::DpopKey;
use serde_json::Value;

use crate::git_credential::{bearer_tokens, home_for_git};

use crate::proxy::require_mcp_servers;
use context_harness_test_support::{MCP_HOST_BIN, MCP_HOST_DIR};

use crate::util::{AuthServer, BIN, Home, browser_script, repo_root, require};

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

/// Claude Code, a real MCP host, with a home of its own (`HOME`) and nothing sent anywhere but the
/// loopback servers.
fn claude(claude_home: &std::path::Path, args: &[&str]) -> crate::util::Run {
    let out = Command::new(repo_root().join(MCP_HOST_BIN))
        .args(args)
        .env("HOME", claude_home)
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env_remove("ANTHROPIC_API_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run claude");
    crate::util::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Claude Code's `headersHelper` running `context-harness mcp headers <url>`: its health check
/// (`claude mcp list`) connects to the SDK server with the printed headers; the same server with a
/// helper printing a wrong token fails, so the check is real.
#[test]
fn claude_code_connects_with_the_headers_of_mcp_headers() {
    if !require_mcp_servers()
        || !require(
            repo_root().join(MCP_HOST_BIN).is_file(),
            &format!("Claude Code ({MCP_HOST_DIR}/node_modules)"),
        )
    {
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
    home.run_env(
        &["mcp", "auth", &url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    )
    .expect_code(0);

    let claude_home = tempfile::tempdir().expect("tempdir");
    let helper = format!(
        "{BIN} --home {} --storage file mcp headers {url}",
        home.path().display()
    );
    let wrong = "printf '%s' '{\"Authorization\": \"Bearer not-a-token\"}'".to_owned();
    for (name, command) in [("ours", &helper), ("wrong", &wrong)] {
        let config = serde_json::json!({"type": "http", "url": url, "headersHelper": command});
        claude(
            claude_home.path(),
            &[
                "mcp",
                "add-json",
                "--scope",
                "user",
                name,
                &config.to_string(),
            ],
        )
        .expect_code(0);
    }
    let list = claude(claude_home.path(), &["mcp", "list"]);
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no line for {name}: {list:#?}"))
            .to_owned()
    };
    eprintln!("claude mcp list:\n{}", list.stdout);
    assert!(line("ours").contains("Connected"), "{list:#?}");
    assert!(!line("ours").contains("Failed"), "{list:#?}");
    assert!(line("wrong").contains("Failed"), "{list:#?}");
}

/// A home holding a DPoP-bound token for the provider `local` (no server: the token is valid).
fn dpop_home() -> Home {
    let key = DpopKey::generate().expect("key");
    let mut bound = bearer_tokens("at-headers-1");
    bound.token_type = "DPoP".to_owned();
    key.write(&mut bound);
    home_for_git("http://127.0.0.1:9", "127.0.0.1:9", Some(&bound))
}

/// The claims of the proof in `mcp headers` output, checking the output's shape on the way: one
/// line, one JSON object of exactly `Authorization` and `DPoP`, string values, no CR or LF.
fn proof_claims(stdout: &str) -> Value {
    assert_eq!(stdout.matches('\n').count(), 1, "{stdout}");
    assert!(!stdout.contains('\r'), "{stdout}");
    let headers: Value = serde_json::from_str(stdout).expect("json");
    let object = headers.as_object().expect("a JSON object");
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["Authorization", "DPoP"], "{headers}");
    assert_eq!(headers["Authorization"], "DPoP at-headers-1");
    let proof = headers["DPoP"].as_str().expect("proof");
    let claims = proof.split('.').nth(1).expect("claims");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).expect("base64url"))
        .expect("json")
}

/// Hostile `--url`, `--method` and `--nonce` values. A URL with user info is refused (a request's
/// target never carries it, RFC 9110 §4.2.4; the proof's `htu` carried `user:password@` to the
/// server), and so is one that is not http(s) (it was signed as `htu`); the password is not echoed.
/// A nonce that is not RFC 9449 `NQCHAR`s (a CR LF) is refused; any RFC 9110 method token is
/// accepted (`M-SEARCH` was refused). A CR LF in the URL never reaches a header. All of them are
/// checked before a token is got: with no token and `--no-sign-in`, still exit 13, not 3.
#[test]
fn hostile_request_values_are_refused_or_harmless() {
    let home = dpop_home();
    let refused: [(&[&str], &str); 6] = [
        (
            &["--url", "https://alice:hunter2@rs.example/mcp"],
            "user info",
        ),
        (&["--url", "file:///etc/passwd"], "not an http or https URL"),
        (
            &["--url", "javascript:alert(1)"],
            "not an http or https URL",
        ),
        (&["--nonce", "n\r\nX-Injected: 1"], "not a DPoP nonce"),
        (&["--nonce", ""], "not a DPoP nonce"),
        (&["--method", "GET /x HTTP/1.1"], "not an HTTP method"),
    ];
    let empty = Home::with_local("http://127.0.0.1:9", "ch-public");
    for (extra, why) in refused {
        let mut args = vec!["mcp", "headers", "local"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--url") {
            args.extend(["--url", "https://rs.example/mcp"]);
        }
        for (home, what) in [(&home, "bound token"), (&empty, "no token")] {
            let mut args = args.clone();
            args.push("--no-sign-in");
            let out = home.run(&args);
            out.expect_code(13);
            assert!(out.stdout.is_empty(), "{what} {extra:?}: {out:#?}");
            assert!(out.stderr.contains(why), "{what} {extra:?}: {out:#?}");
            assert!(!out.stderr.contains("hunter2"), "{what}: {out:#?}");
            assert!(!out.stderr.contains("at-headers-1"), "{what}: {out:#?}");
        }
    }

    let out = home.run(&[
        "mcp",
        "headers",
        "local",
        "--method",
        "M-SEARCH",
        "--url",
        "https://rs.example/a\r\nX-Injected: 1",
        "--nonce",
        "n!#[]~",
    ]);
    out.expect_code(0);
    let claims = proof_claims(&out.stdout);
    assert_eq!(claims["htm"], "M-SEARCH");
    assert_eq!(
        claims["htu"], "https://rs.example/aX-Injected:%201",
        "{claims}"
    );
    assert_eq!(claims["nonce"], "n!#[]~");
    assert!(out.stderr.is_empty(), "{out:#?}");
}

/// A `--url` carrying a password that does not parse (a space in the host, a bad port, an
/// unclosed IPv6 address, a password holding `/`) is refused without echoing the password:
/// `--url https://u:s3cret@ho st/` printed `error: --url https://u:s3cret@ho st/: invalid
/// international domain name`. Each refusal of `--method`, `--url` and `--nonce` says what a valid
/// value looks like (a hint).
#[test]
fn refused_request_values_hide_passwords_and_have_hints() {
    let home = dpop_home();
    for url in [
        "https://u:s3cret@ho st/",
        "https://u:s3cret@rs.example:99999/mcp",
        "https://u:s3cret@[::1/mcp",
        "https://u:s3cret@[::g]/mcp",
        "https://u:pa/s3cret@rs.example/mcp",
        "ftp://u:s3cret@rs.example/",
        "javascript:u:s3cret@rs.example",
    ] {
        let out = home.run(&["mcp", "headers", "local", "--url", url, "--no-sign-in"]);
        out.expect_code(13);
        assert!(out.stdout.is_empty(), "{url}: {out:#?}");
        assert!(!out.stderr.contains("s3cret"), "{url}: {out:#?}");
        assert!(out.stderr.contains("--url"), "{url}: {out:#?}");
        assert!(
            out.stderr.contains("hint:") && out.stderr.contains("e.g. --url https://"),
            "{url}: {out:#?}"
        );
    }
    for (extra, hint) in [
        (["--method", "GET /x"], "e.g. --method GET"),
        (["--nonce", "a b"], "DPoP-Nonce"),
    ] {
        let mut args = vec!["mcp", "headers", "local", "--url", "https://rs.example/mcp"];
        args.extend(extra);
        let out = home.run(&args);
        out.expect_code(13);
        assert!(
            out.stderr.contains("hint:") && out.stderr.contains(hint),
            "{extra:?}: {out:#?}"
        );
    }
}
