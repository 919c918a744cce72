//! `mcp auth <MCP server URL>` end to end: the binary discovers a stand-in MCP server (written here:
//! 401 with `WWW-Authenticate: Bearer resource_metadata=…`, RFC 9728 metadata naming the local
//! oidc-provider), registers a client, signs in, and the URL then works with `status`, `token` and
//! `logout`; plus the same with `--device`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::util::{AuthServer, Home, browser_script, http, require_server};

/// A stand-in MCP server on a loopback port, stopped on drop.
pub(crate) struct McpStub {
    pub(crate) url: String,
    stop: Arc<AtomicBool>,
}

impl McpStub {
    pub(crate) fn start(issuer: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (issuer, base2, stop2) = (issuer.to_owned(), base.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut socket, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = socket.set_nonblocking(false);
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match socket.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match socket.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, extra, body) = match path {
                    "/mcp" => (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer resource_metadata=\"{base2}/.well-known/oauth-protected-resource/mcp\"\r\n"
                        ),
                        "{}".to_owned(),
                    ),
                    "/.well-known/oauth-protected-resource/mcp" => (
                        "200 OK",
                        String::new(),
                        serde_json::json!({
                            "resource": format!("{base2}/mcp"),
                            "authorization_servers": [issuer],
                            "scopes_supported": ["mcp:tools"],
                        })
                        .to_string(),
                    ),
                    _ => ("404 Not Found", String::new(), "{}".to_owned()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes());
            }
        });
        Self {
            url: format!("{base}/mcp"),
            stop,
        }
    }
}

impl Drop for McpStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The `aud` claim of a JWT (payload base64url-decoded; no signature check needed here).
fn jwt_aud(token: &str) -> Value {
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let claims: Value = serde_json::from_slice(&out).expect("JWT payload JSON");
    claims["aud"].clone()
}

#[test]
fn mcp_auth_with_a_server_url_works_end_to_end() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let url = stub.url.as_str();

    let auth = home.run_env(
        &["-vvv", "mcp", "auth", url, "--port", "0", "--timeout", "60"],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    auth.expect_code(0);
    assert!(
        auth.stderr.contains(&format!("Signed in to {url}")),
        "{auth:#?}"
    );
    // The authorization server's host is shown before the browser opens (mix-up defence).
    let as_host = server.issuer.trim_start_matches("http://");
    assert!(
        auth.stderr.contains(&format!(
            "Opening the browser to sign in to {url} at {as_host}"
        )),
        "{auth:#?}"
    );
    assert_eq!(server.stats()["registration_requests"], 1);

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
    assert_eq!(row["status"], "authenticated", "{row}");

    let token = home.run(&["mcp", "token", url]);
    token.expect_code(0);
    let access_token = token.stdout.trim();
    assert_eq!(
        jwt_aud(access_token),
        url,
        "the token is for this server (RFC 8707)"
    );
    // Neither the verbose sign-in nor status printed it.
    assert!(!auth.stdout.contains(access_token) && !auth.stderr.contains(access_token));
    assert!(!status.stdout.contains(access_token));

    // Texts that other parsers read as this server's URL never get its token (exit 13).
    let rest = url.trim_start_matches("http://");
    for crafted in [
        format!("http://evil.example\\@{rest}"),
        format!("http://evil.example@{rest}"),
        format!("{url}#x"),
        format!("{url} "),
    ] {
        let out = home.run(&["mcp", "token", &crafted]);
        out.expect_code(13);
        assert!(!out.stdout.contains(access_token), "{out:#?}");
        assert!(out.stderr.contains("not a usable server URL"), "{out:#?}");
    }

    let status = home.run(&["mcp", "status", url, "--json"]);
    status.expect_code(0);
    assert_eq!(status.json()["providers"][0]["status"], "authenticated");

    let logout = home.run(&["mcp", "logout", url]);
    logout.expect_code(0);
    let token = home.run(&["mcp", "token", url]);
    assert_ne!(token.code, 0, "{token:#?}");
    assert!(
        token
            .stderr
            .contains(&format!("context-harness mcp auth {url}")),
        "{token:#?}"
    );
}

#[test]
fn mcp_auth_with_a_server_url_and_device_flow() {
    if !require_server() {
        return;
    }
    let server = AuthServer::start(&[]);
    let (status, body) = http(
        "POST",
        &format!("{}/test/control", server.issuer),
        &[("Content-Type", "application/json")],
        r#"{"device_interval":1}"#,
    );
    assert_eq!(status, 200, "{body}");
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let mut child = home
        .cmd(&["mcp", "auth", &stub.url, "--device", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let mut code = None;
    let mut want_code = false;
    while code.is_none() {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            panic!("no user code printed:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains("enter the code") {
            want_code = true;
        } else if want_code && !line.trim().is_empty() {
            code = Some(line.trim().to_owned());
        }
    }
    let user_code = code.unwrap_or_default();
    let (status, body) = http(
        "POST",
        &format!("{}/test/device", server.issuer),
        &[("Content-Type", "application/json")],
        &serde_json::json!({"user_code": user_code, "action": "approve"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{seen}{rest}");
    // The device flow has no redirect URI: no empty `redirect:` field on the success line.
    assert!(rest.contains("refresh token: yes"), "{rest}");
    assert!(!rest.contains("redirect:"), "{rest}");
    let token = home.run(&["mcp", "token", &stub.url]);
    token.expect_code(0);
    assert_eq!(jwt_aud(&token.stdout), stub.url.as_str());
}

/// `--client-metadata-url` on `mcp auth`: at an authorization server that fetches Client ID Metadata
/// Documents (the local oidc-provider with `AS_CIMD=1`; the document this project renders is served on
/// loopback and the server fetches its https URL there), the URL is the client id: no dynamic
/// registration, and the tokens work. An unusable URL stops `mcp auth` and `mcp proxy` before anything
/// starts (exit 13).
#[test]
fn mcp_auth_with_a_client_metadata_document() {
    if !require_server() {
        return;
    }
    const URL: &str = "https://client.example/oauth/client-metadata.json";
    let document = context_harness_providers::client_metadata_document(
        &context_harness_providers::App::default(),
        URL,
    )
    .expect("document")
    .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served2 = Arc::clone(&served);
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let mut reader = BufReader::new(&socket);
            let _ = reader.read_line(&mut line);
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header.trim().is_empty() => break,
                    Ok(_) => {}
                }
            }
            let found = line.split_whitespace().nth(1) == Some("/oauth/client-metadata.json");
            if found {
                served2.fetch_add(1, Ordering::Relaxed);
            }
            let (status, body) = if found {
                ("200 OK", document.as_str())
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                socket,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let server = AuthServer::start(&[
        ("AS_AUTO_APPROVE", "1"),
        ("AS_CIMD", "1"),
        ("AS_CIMD_FETCH_ORIGIN", origin.as_str()),
    ]);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let url = stub.url.as_str();

    for args in [
        &[
            "mcp",
            "auth",
            url,
            "--client-metadata-url",
            "http://client.example/c.json",
        ][..],
        &[
            "mcp",
            "proxy",
            url,
            "--client-metadata-url",
            "https://client.example/",
        ][..],
    ] {
        let out = home.run(args);
        out.expect_code(13);
        assert!(
            out.stderr.contains("client metadata document URL"),
            "{out:#?}"
        );
    }

    let auth = home.run_env(
        &[
            "mcp",
            "auth",
            url,
            "--port",
            "0",
            "--timeout",
            "60",
            "--client-metadata-url",
            URL,
        ],
        &[("BROWSER", &browser_script("follow.mjs"))],
    );
    auth.expect_code(0);
    let stats = server.stats();
    assert_eq!(stats["registration_requests"], 0, "{stats}");
    assert!(stats["cimd_fetches"][URL].as_u64() >= Some(1), "{stats}");
    assert!(served.load(Ordering::Relaxed) >= 1);
    let token = home.run(&["mcp", "token", url]);
    token.expect_code(0);
    assert_eq!(jwt_aud(token.stdout.trim()), url);
}
