//! Secrets never on the command line (issue 19, property 6): `mcp proxy --header-file` and
//! `--header-env` give header values that other local users cannot read from
//! `/proc/<pid>/cmdline`, and `CONTEXT_HARNESS_CLIENT_SECRET` / `_FILE` give a pre-registered
//! confidential client's secret for an MCP server URL (and a provider), sent with
//! `client_secret_basic` unless the server's metadata allows only `client_secret_post`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp::McpStub;
use crate::util::{AuthServer, Home, base64, browser_script, http, require_server};

/// The headers of each request a [`recording_server`] saw: `(method, [(lower-case name, value)])`.
type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A small local **stub** MCP server that records every request's headers (the SDK test servers
/// do not expose the headers they receive): `initialize` gets a JSON answer with a session,
/// other POSTs 202, GET 405 (no stream), DELETE 200. Returns its URL and what it saw.
fn recording_server() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut headers = Vec::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if name == "content-length" {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    headers.push((name, value.trim().to_owned()));
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let method = request_line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned();
            log.lock().expect("log").push((method.clone(), headers));
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let answer = match method.as_str() {
                "POST" if message["method"] == "initialize" => {
                    let json = json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                        "protocolVersion": "2025-06-18", "capabilities": {},
                        "serverInfo": {"name": "recorder", "version": "1"}}})
                    .to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\n\r\n{json}",
                        json.len()
                    )
                }
                "POST" => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned(),
                "DELETE" => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned(),
                _ => "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_owned(),
            };
            let _ = stream.write_all(
                answer
                    .replacen("\r\n", "\r\nConnection: close\r\n", 1)
                    .as_bytes(),
            );
        }
    });
    (url, seen)
}

/// Writes `text` to `path` with permission bits `mode`.
fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

const FILE_SECRET: &str = "file-s3cret-4f1c9a";
const OTHER_FILE_SECRET: &str = "second-file-s3cret-77d0";
const ENV_SECRET: &str = "env-s3cret-9b2e51";

/// The bridge sends the headers of `--header-file` and `--header-env` (and `--header`) on its
/// requests, while its command line, which any local user can read, holds none of their values;
/// nor does its stderr at TRACE.
#[test]
fn proxy_headers_from_a_file_and_the_environment_stay_off_the_command_line() {
    let (url, seen) = recording_server();
    let home = Home::new();
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = secrets.path().join("headers");
    write_mode(
        &file,
        &format!(
            "# the API keys\nX-File-Key: {FILE_SECRET}\r\n\n  X-File-Other:{OTHER_FILE_SECRET}\n"
        ),
        0o600,
    );
    let file_arg = file.to_string_lossy().into_owned();
    let mut child = home
        .cmd(&[
            "-vvv",
            "mcp",
            "proxy",
            &url,
            "--header-file",
            &file_arg,
            "--header-env",
            "X-Env-Key: PROXY_TEST_API_KEY",
            "--header",
            "X-Plain: plain-visible",
        ])
        .env("PROXY_TEST_API_KEY", ENV_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the proxy");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
    )
    .expect("write");
    stdin.flush().expect("flush");
    let answer = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("an answer to initialize");
    assert!(answer.contains("recorder"), "{answer}");

    // What every local user can read while the bridge runs.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("--header-file") && cmdline.contains("PROXY_TEST_API_KEY"),
        "{cmdline}"
    );
    for secret in [FILE_SECRET, OTHER_FILE_SECRET, ENV_SECRET] {
        assert!(!cmdline.contains(secret), "{cmdline}");
    }

    drop(stdin);
    let status = child.wait().expect("wait");
    let stderr = stderr.join().expect("stderr");
    assert!(status.success(), "{stderr}");

    let seen = seen.lock().expect("seen").clone();
    let (_, initialize) = seen
        .iter()
        .find(|(method, _)| method == "POST")
        .unwrap_or_else(|| panic!("no POST: {seen:?}"));
    for (name, value) in [
        ("x-file-key", FILE_SECRET),
        ("x-file-other", OTHER_FILE_SECRET),
        ("x-env-key", ENV_SECRET),
        ("x-plain", "plain-visible"),
    ] {
        let got: Vec<&str> = initialize
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(got, [value], "{name}: {initialize:?}");
    }
    // Every request carried them, not only the first.
    assert!(
        seen.iter().all(|(_, headers)| headers
            .iter()
            .any(|(n, v)| n == "x-env-key" && v == ENV_SECRET)),
        "{seen:?}"
    );
    // The log was at TRACE (it names the headers) and holds no value.
    assert!(
        stderr.contains("TRACE") && stderr.contains("x-file-key"),
        "{stderr}"
    );
    for secret in [FILE_SECRET, OTHER_FILE_SECRET, ENV_SECRET] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

/// A header file that another user could read or swap, or that is malformed, and an unset
/// `--header-env` variable: exit 13 (`config_invalid`) with the fix, before anything is sent, and
/// no value in the message. A header the bridge sets itself is a usage error (exit 2).
#[test]
fn proxy_refuses_unsafe_header_files_and_missing_variables() {
    let (url, seen) = recording_server();
    let home = Home::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good");
    write_mode(&good, &format!("X-Key: {FILE_SECRET}\n"), 0o600);
    let readable = dir.path().join("readable");
    write_mode(&readable, &format!("X-Key: {FILE_SECRET}\n"), 0o644);
    let group = dir.path().join("group");
    write_mode(&group, &format!("X-Key: {FILE_SECRET}\n"), 0o640);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&good, &link).expect("symlink");
    let malformed = dir.path().join("malformed");
    write_mode(&malformed, &format!("X-Ok: 1\n{FILE_SECRET}\n"), 0o600);
    let shared_dir = dir.path().join("shared");
    std::fs::create_dir(&shared_dir).expect("mkdir");
    let in_shared = shared_dir.join("headers");
    write_mode(&in_shared, &format!("X-Key: {FILE_SECRET}\n"), 0o600);
    std::fs::set_permissions(&shared_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let path = |p: &Path| p.to_string_lossy().into_owned();
    for (file, says, hint) in [
        (
            &readable,
            "mode 644",
            format!("chmod 600 {}", path(&readable)),
        ),
        (&group, "mode 640", format!("chmod 600 {}", path(&group))),
        (&link, "symbolic link", "realpath".to_owned()),
        (
            &malformed,
            "line 2: expected 'Name: value'",
            "one `Name: value` header per line".to_owned(),
        ),
        (
            &in_shared,
            "writable by group or others",
            "directory only you can write".to_owned(),
        ),
        (
            &dir.path().join("missing"),
            "no such file",
            "existing file".to_owned(),
        ),
    ] {
        let run = home.run(&["mcp", "proxy", &url, "--header-file", &path(file)]);
        run.expect_code(13);
        assert!(
            run.stderr.contains(says) && run.stderr.contains(&hint),
            "{run:#?}"
        );
        assert!(!run.stderr.contains(FILE_SECRET), "{run:#?}");
    }
    let run = home.run(&[
        "mcp",
        "proxy",
        &url,
        "--header-env",
        "X-Key: PROXY_TEST_UNSET_KEY",
    ]);
    run.expect_code(13);
    assert!(
        run.stderr.contains("PROXY_TEST_UNSET_KEY is not set"),
        "{run:#?}"
    );
    let run = home.run_env(
        &[
            "mcp",
            "proxy",
            &url,
            "--header-env",
            "X-Key: PROXY_TEST_KEY",
        ],
        &[("PROXY_TEST_KEY", &format!("{ENV_SECRET}\r\nX-Injected: 1"))],
    );
    run.expect_code(13);
    assert!(!run.stderr.contains(ENV_SECRET), "{run:#?}");
    for bad in ["Mcp-Session-Id: forged", "Content-Length: 0", "Bad Name: x"] {
        let run = home.run(&["mcp", "proxy", &url, "--header", bad]);
        run.expect_code(2);
    }
    assert!(seen.lock().expect("seen").is_empty(), "nothing was sent");
}

const CLIENT_ID: &str = "ch-confidential";
const CLIENT_SECRET: &str = "ch-confidential-secret";

/// `mcp auth <server url> --client-id ch-confidential` with the secret in the environment.
fn confidential_auth(
    home: &Home,
    url: &str,
    client_id: &str,
    env: &[(&str, &str)],
) -> crate::util::Run {
    let browser = browser_script("follow.mjs");
    let mut env = env.to_vec();
    env.push(("BROWSER", &browser));
    home.run_env(
        &[
            "-vvv",
            "mcp",
            "auth",
            url,
            "--client-id",
            client_id,
            "--port",
            "0",
            "--timeout",
            "60",
        ],
        &env,
    )
}

fn last_token_request(server: &AuthServer) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/test/last-token-request", server.issuer),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// Neither the secret nor the Basic credentials derived from it appear in `text`.
#[track_caller]
fn assert_no_secret(text: &str, client_id: &str, secret: &str) {
    assert!(!text.contains(secret), "the secret leaked:\n{text}");
    let basic = base64(&format!("{client_id}:{secret}"));
    assert!(
        !text.contains(&basic),
        "the Basic credentials leaked:\n{text}"
    );
}

/// A pre-registered confidential client signs in to an MCP server URL (no dynamic registration)
/// with the secret from `CONTEXT_HARNESS_CLIENT_SECRET`, by HTTP Basic (the oidc-provider registered
/// it for `client_secret_basic`, so it refuses the secret in the body, and a wrong secret); refresh
/// authenticates the same way; the `_FILE` form works and a group-readable file is refused. The
/// secret never reaches stderr at TRACE.
#[test]
fn a_confidential_client_signs_in_to_a_server_url_with_its_secret_from_the_environment() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = McpStub::start(&server.issuer);
    let url = stub.url.as_str();
    let home = Home::new();

    let wrong = confidential_auth(
        &home,
        url,
        CLIENT_ID,
        &[("CONTEXT_HARNESS_CLIENT_SECRET", "wrong-s3cret-0e1d")],
    );
    assert_ne!(wrong.code, 0, "{wrong:#?}");
    assert_no_secret(&wrong.stderr, CLIENT_ID, "wrong-s3cret-0e1d");
    assert_eq!(last_token_request(&server)["authorization_scheme"], "Basic");

    let run = confidential_auth(
        &home,
        url,
        CLIENT_ID,
        &[("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET)],
    );
    run.expect_code(0);
    assert!(run.stderr.contains("TRACE"), "{run:#?}");
    assert_no_secret(&run.stderr, CLIENT_ID, CLIENT_SECRET);
    assert_no_secret(&run.stdout, CLIENT_ID, CLIENT_SECRET);
    let sent = last_token_request(&server);
    assert_eq!(sent["authorization_scheme"], "Basic", "{sent}");
    assert!(sent.get("client_secret").is_none(), "{sent}");
    assert_eq!(server.stats()["registration_requests"], 0);
    home.run(&["mcp", "token", url]).expect_code(0);

    // Refresh authenticates with the secret too.
    let before = server.stats()["refresh_requests"].as_u64().unwrap_or(0);
    let refresh = home.run_env(
        &["-vvv", "mcp", "refresh", url],
        &[("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET)],
    );
    refresh.expect_code(0);
    assert_no_secret(&refresh.stderr, CLIENT_ID, CLIENT_SECRET);
    assert_eq!(
        server.stats()["refresh_requests"].as_u64(),
        Some(before + 1)
    );
    assert_eq!(last_token_request(&server)["authorization_scheme"], "Basic");
    // Without it the client is public, which the server refuses.
    let refresh = home.run(&["mcp", "refresh", url]);
    assert_ne!(refresh.code, 0, "{refresh:#?}");

    // The file form, in a fresh home: read the trusted way, its line break dropped.
    let home = Home::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("client-secret");
    let file_arg = file.to_string_lossy().into_owned();
    write_mode(&file, &format!("{CLIENT_SECRET}\n"), 0o644);
    let codes = server.stats()["authorization_code_requests"].clone();
    let refused = confidential_auth(
        &home,
        url,
        CLIENT_ID,
        &[("CONTEXT_HARNESS_CLIENT_SECRET_FILE", &file_arg)],
    );
    refused.expect_code(13);
    assert!(
        refused.stderr.contains(&format!("chmod 600 {file_arg}")),
        "{refused:#?}"
    );
    assert_no_secret(&refused.stderr, CLIENT_ID, CLIENT_SECRET);
    assert_eq!(server.stats()["authorization_code_requests"], codes);
    let both = confidential_auth(
        &home,
        url,
        CLIENT_ID,
        &[
            ("CONTEXT_HARNESS_CLIENT_SECRET_FILE", &file_arg),
            ("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    both.expect_code(13);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = confidential_auth(
        &home,
        url,
        CLIENT_ID,
        &[("CONTEXT_HARNESS_CLIENT_SECRET_FILE", &file_arg)],
    );
    run.expect_code(0);
    assert_no_secret(&run.stderr, CLIENT_ID, CLIENT_SECRET);
    assert_eq!(last_token_request(&server)["authorization_scheme"], "Basic");
    assert_eq!(server.stats()["registration_requests"], 0);
}

/// An authorization server whose metadata allows only `client_secret_post` gets the secret in the
/// form body, at sign-in and at refresh (the oidc-provider registered `ch-confidential-post` for
/// that method and refuses Basic for it).
#[test]
fn a_server_allowing_only_client_secret_post_gets_the_secret_in_the_body() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let (status, body) = http(
        "POST",
        &format!("{}/test/control", server.issuer),
        &[("Content-Type", "application/json")],
        r#"{"discovery_patch":{"token_endpoint_auth_methods_supported":["client_secret_post"]}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let stub = McpStub::start(&server.issuer);
    let url = stub.url.as_str();
    let home = Home::new();
    let (id, secret) = ("ch-confidential-post", "ch-confidential-post-secret");
    let run = confidential_auth(&home, url, id, &[("CONTEXT_HARNESS_CLIENT_SECRET", secret)]);
    run.expect_code(0);
    assert_no_secret(&run.stderr, id, secret);
    let sent = last_token_request(&server);
    assert_eq!(sent["client_secret"], secret, "{sent}");
    assert!(sent.get("authorization_scheme").is_none(), "{sent}");
    let refresh = home.run_env(
        &["-vvv", "mcp", "refresh", url],
        &[("CONTEXT_HARNESS_CLIENT_SECRET", secret)],
    );
    refresh.expect_code(0);
    assert_no_secret(&refresh.stderr, id, secret);
    assert_eq!(last_token_request(&server)["grant_type"], "refresh_token");
    assert_eq!(last_token_request(&server)["client_secret"], secret);
}

/// For a provider, `{SERVICE}_CLIENT_SECRET` wins over `CONTEXT_HARNESS_CLIENT_SECRET`; the general
/// variable applies only to a client named on the command line (`--client-id`), never to the
/// provider's own client: a general secret exported for one server must not reach another's
/// endpoints (hostile-review finding).
#[test]
fn a_provider_takes_its_own_secret_variable_first_then_the_general_one() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let home = Home::with_local(&server.issuer, CLIENT_ID);
    let browser = browser_script("follow.mjs");
    let auth = |extra: &[&str], env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("BROWSER", &browser));
        let mut args = vec![
            "-vvv",
            "mcp",
            "auth",
            "local",
            "--port",
            "0",
            "--timeout",
            "60",
        ];
        args.extend_from_slice(extra);
        home.run_env(&args, &env)
    };
    // The provider's own client (from providers.toml): the general secret is not sent.
    let run = auth(&[], &[("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET)]);
    assert_ne!(run.code, 0, "{run:#?}");
    let last = last_token_request(&server);
    assert!(last["client_secret"].is_null(), "{last}");
    assert!(last["authorization_scheme"].is_null(), "{last}");
    assert_no_secret(&run.stderr, CLIENT_ID, CLIENT_SECRET);
    // The same client named on the command line: the general secret is its secret.
    let run = auth(
        &["--client-id", CLIENT_ID],
        &[("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET)],
    );
    run.expect_code(0);
    assert_no_secret(&run.stderr, CLIENT_ID, CLIENT_SECRET);
    let run = auth(
        &[],
        &[
            ("LOCAL_CLIENT_SECRET", CLIENT_SECRET),
            ("CONTEXT_HARNESS_CLIENT_SECRET", "wrong-s3cret-0e1d"),
        ],
    );
    run.expect_code(0);
    let run = auth(
        &["--client-id", CLIENT_ID],
        &[
            ("LOCAL_CLIENT_SECRET", "wrong-s3cret-0e1d"),
            ("CONTEXT_HARNESS_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    assert_ne!(run.code, 0, "{run:#?}");
    assert_no_secret(&run.stderr, CLIENT_ID, "wrong-s3cret-0e1d");
}
