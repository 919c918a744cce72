//! Bench rows 7a–7c (MCP 2025-11-25 wire): `context-harness mcp proxy` beside `mcp-remote` (npm,
//! run with node), in one run, against the TypeScript-SDK server of `tests/mcp-servers` protected by
//! the local authorization server, with stored tokens (signed in first with `mcp auth <url>`):
//!
//! - 7a start → `initialize` answer (process spawned → its answer line read), median of the rounds;
//! - 7b added latency per request: `tools/call` through the bridge minus the same POST sent directly
//!   (keep-alive HTTP/1.1, session id and bearer), interleaved, median of ≥ 50 each;
//! - 7c peak RSS (`VmHWM` of the process after the 7b workload).
//!
//! mcp-remote gets the same token through `--header Authorization:…` (its own OAuth flow needs a
//! desktop browser), so both bridge with a valid bearer and neither signs in.
//!
//! Rows 7d–7f are the same three on the MCP 2026-07-28 wire ([`measure_2026`]), against the
//! TypeScript SDK v2 server `tests/mcp-servers/server2026.mjs` (stateless, no authorization): start →
//! first answer is spawn → `server/discover` answer; the direct POST carries the headers a
//! 2026-07-28 server checks (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`). mcp-remote does not
//! speak 2026-07-28, so it has no peer row there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use crate::install;
use crate::local_server::{self, AuthServer};

/// Requests per side for the latency row (at least 50, for a stable median).
const REQUESTS: usize = 60;

/// The measured numbers of one bridge.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Start → `initialize` answer, ms, one per start.
    pub(crate) start_ms: Vec<f64>,
    /// Through the bridge minus direct, ms, one per request pair.
    pub(crate) added_ms: Vec<f64>,
    /// Direct HTTP round trips, ms.
    pub(crate) direct_ms: Vec<f64>,
    /// Peak RSS, kB.
    pub(crate) rss_kb: f64,
}

/// The TypeScript-SDK server (started by `context-harness-test-support`), stopped on drop.
struct McpServer {
    _server: context_harness_test_support::McpServer,
    url: String,
}

impl McpServer {
    fn start(root: &Path, issuer: &str) -> Result<Self> {
        let server = context_harness_test_support::McpServer::start(
            root,
            &[("MCP_ISSUER", issuer)],
            context_harness_test_support::ServerLog::Discard,
        )
        .map_err(|e| anyhow::anyhow!("the MCP test server did not start: {e}"))?;
        Ok(Self {
            url: server.url().to_owned(),
            _server: server,
        })
    }
}

/// A bridge process driven over stdio.
struct Bridge {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Bridge {
    fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
        })
    }

    /// Sends `message` and waits for the line holding `"id":id`.
    fn call(&mut self, message: &str, id: u64) -> Result<String> {
        writeln!(self.stdin, "{message}")?;
        self.stdin.flush()?;
        let needle = format!("\"id\":{id}");
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .context("no answer from the bridge within 30 s")?;
            if line.contains(&needle) {
                ensure!(
                    !line.contains("\"error\""),
                    "the bridge answered an error: {line}"
                );
                return Ok(line);
            }
        }
    }

    /// Peak RSS (`VmHWM`) in kB.
    fn peak_rss_kb(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")
    }

    fn finish(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// The 2025 wire revision the host asks for in `initialize` (and the direct POSTs name).
const VERSION_2025: &str = "2025-11-25";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn call_message(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"bench"}}}}}}"#
    )
}

/// The 2026-07-28 wire revision.
const VERSION_2026: &str = "2026-07-28";
/// The `_meta` envelope every 2026-07-28 request carries.
const META_2026: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A 2026-07-28 `server/discover` request (the first request of a stateless host).
fn discover_2026(id: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"server/discover","params":{{{META_2026}}}}}"#)
}

/// A 2026-07-28 `tools/call` of `echo`.
fn call_2026(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"bench"}},{META_2026}}}}}"#
    )
}

/// A keep-alive HTTP/1.1 connection to the server for the direct requests.
struct Direct {
    stream: BufReader<TcpStream>,
    authority: String,
    path: String,
    /// Header lines (each ending in CRLF) sent with every POST after the handshake.
    headers: String,
}

impl Direct {
    fn connect(url: &str, bearer: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").context("http URL")?;
        let (authority, path) = rest.split_once('/').context("URL path")?;
        let stream = TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut direct = Self {
            stream: BufReader::new(stream),
            authority: authority.to_owned(),
            path: format!("/{path}"),
            headers: format!("Authorization: Bearer {bearer}\r\n"),
        };
        let (headers, _) = direct.post(INITIALIZE)?;
        let session = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("mcp-session-id")
                    .then(|| v.trim().to_owned())
            })
            .context("no session id")?;
        direct.headers.push_str(&format!(
            "Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: {VERSION_2025}\r\n"
        ));
        direct.post(INITIALIZED)?;
        Ok(direct)
    }

    /// A connection for 2026-07-28 `tools/call`s of `echo` (no session, no bearer: the server has
    /// no authorization), with the headers a 2026-07-28 server checks against the body.
    fn connect_2026(url: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").context("http URL")?;
        let (authority, path) = rest.split_once('/').context("URL path")?;
        let stream = TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            stream: BufReader::new(stream),
            authority: authority.to_owned(),
            path: format!("/{path}"),
            headers: format!(
                "MCP-Protocol-Version: {VERSION_2026}\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n"
            ),
        })
    }

    /// POSTs `body`; returns the head and the body of the answer.
    fn post(&mut self, body: &str) -> Result<(String, String)> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n{}\r\n",
            self.path,
            self.authority,
            body.len(),
            self.headers
        );
        request.push_str(body);
        self.stream.get_mut().write_all(request.as_bytes())?;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            ensure!(self.stream.read_line(&mut line)? > 0, "connection closed");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let mut body = Vec::new();
        if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(length, 0);
            self.stream.read_exact(&mut body)?;
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                self.stream.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16)?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok((head, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Signs in with `mcp auth <url>` and returns (server, token); the caller keeps the server alive.
fn prepare(cli: &Path, home: &Path, root: &Path, issuer: &str) -> Result<(McpServer, String)> {
    let server = McpServer::start(root, issuer)?;
    let run = |args: &[&str]| {
        Command::new(cli)
            .args(args)
            .env("CONTEXT_HARNESS_HOME", home)
            .env("CONTEXT_HARNESS_STORAGE", "file")
            .env("BROWSER", local_server::follow_browser(root))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .output()
    };
    let auth = run(&["mcp", "auth", &server.url, "--port", "0", "--timeout", "60"])?;
    ensure!(
        auth.status.success(),
        "`mcp auth` failed: {}",
        String::from_utf8_lossy(&auth.stderr)
    );
    let token = run(&["mcp", "token", &server.url])?;
    ensure!(token.status.success(), "`mcp token` failed");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    Ok((server, token))
}

/// Measures both bridges; `rounds` starts each (interleaved), then the latency and RSS workload.
pub(crate) fn measure(
    cli: &Path,
    root: &Path,
    tmp: &Path,
    rounds: u32,
) -> Result<(Measured, Measured)> {
    let log = tmp.join("proxy-as.log");
    let auth = AuthServer::start(root, &[("AS_AUTO_APPROVE", "1")], &log)?;
    let home = tmp.join("proxy-home");
    std::fs::create_dir_all(&home)?;
    let (server, token) = prepare(cli, &home, root, &auth.issuer)?;
    let url = server.url.clone();
    let ours = || {
        let mut cmd = Command::new(cli);
        cmd.args(["-q", "mcp", "proxy", &url])
            .env("CONTEXT_HARNESS_HOME", &home)
            .env("CONTEXT_HARNESS_STORAGE", "file");
        cmd
    };
    let remote_js = root
        .join(install::MCP_SERVERS_DIR)
        .join("node_modules/mcp-remote/dist/proxy.js");
    ensure!(remote_js.is_file(), "mcp-remote is not installed");
    let remote_home = tmp.join("mcp-remote-home");
    std::fs::create_dir_all(&remote_home)?;
    let theirs = || {
        let mut cmd = Command::new("node");
        cmd.arg(&remote_js)
            .arg(&url)
            .args(["--header", &format!("Authorization:Bearer {token}")])
            .arg("--allow-http")
            .env("HOME", &remote_home)
            .env("MCP_REMOTE_CONFIG_DIR", &remote_home);
        cmd
    };
    let mut a = Measured {
        start_ms: Vec::new(),
        added_ms: Vec::new(),
        direct_ms: Vec::new(),
        rss_kb: 0.0,
    };
    let mut b = a.clone();
    for round in 0..rounds.max(3) {
        let order: [(&dyn Fn() -> Command, &mut Measured); 2] = if round % 2 == 0 {
            [(&ours, &mut a), (&theirs, &mut b)]
        } else {
            [(&theirs, &mut b), (&ours, &mut a)]
        };
        for (make, into) in order {
            let started = Instant::now();
            let mut bridge = Bridge::spawn(make())?;
            bridge.call(INITIALIZE, 1)?;
            into.start_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            bridge.finish();
        }
    }
    for (make, into) in [(&ours as &dyn Fn() -> Command, &mut a), (&theirs, &mut b)] {
        let mut bridge = Bridge::spawn(make())?;
        bridge.call(INITIALIZE, 1)?;
        writeln!(bridge.stdin, "{INITIALIZED}")?;
        let mut direct = Direct::connect(&url, &token)?;
        for i in 0..REQUESTS {
            let id = 100 + i as u64;
            let t = Instant::now();
            let (_, body) = direct.post(&call_message(id))?;
            let direct_ms = t.elapsed().as_secs_f64() * 1000.0;
            ensure!(body.contains("bench"), "direct answer: {body}");
            let t = Instant::now();
            bridge.call(&call_message(id), id)?;
            let bridged_ms = t.elapsed().as_secs_f64() * 1000.0;
            into.direct_ms.push(direct_ms);
            into.added_ms.push(bridged_ms - direct_ms);
        }
        into.rss_kb = bridge.peak_rss_kb()?;
        bridge.finish();
    }
    drop(server);
    drop(auth);
    Ok((a, b))
}

/// Measures `mcp proxy` on the 2026-07-28 wire (rows 7d–7f): `rounds` starts (spawn →
/// `server/discover` answer), then `tools/call`s through the bridge and directly, interleaved, then
/// the peak RSS. No sign-in: the SDK v2 server has no authorization.
pub(crate) fn measure_2026(cli: &Path, root: &Path, tmp: &Path, rounds: u32) -> Result<Measured> {
    let script = root.join(install::MCP_SERVERS_DIR).join("server2026.mjs");
    ensure!(
        root.join(install::MCP_SERVERS_DIR)
            .join("node_modules/@modelcontextprotocol/server")
            .is_dir(),
        "the TypeScript SDK v2 server package is not installed"
    );
    let server = context_harness_test_support::TestServer::start(
        &script,
        &[],
        &[],
        None,
        context_harness_test_support::ServerLog::Discard,
    )
    .map_err(|e| anyhow::anyhow!("the 2026-07-28 MCP test server did not start: {e}"))?;
    let url = server
        .ready_str("url")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let home = tmp.join("proxy-2026-home");
    std::fs::create_dir_all(&home)?;
    let ours = || {
        let mut cmd = Command::new(cli);
        cmd.args(["-q", "mcp", "proxy", &url])
            .env("CONTEXT_HARNESS_HOME", &home)
            .env("CONTEXT_HARNESS_STORAGE", "file");
        cmd
    };
    let mut m = Measured {
        start_ms: Vec::new(),
        added_ms: Vec::new(),
        direct_ms: Vec::new(),
        rss_kb: 0.0,
    };
    for _ in 0..rounds.max(3) {
        let started = Instant::now();
        let mut bridge = Bridge::spawn(ours())?;
        bridge.call(&discover_2026(1), 1)?;
        m.start_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        bridge.finish();
    }
    let mut bridge = Bridge::spawn(ours())?;
    bridge.call(&discover_2026(1), 1)?;
    let mut direct = Direct::connect_2026(&url)?;
    for i in 0..REQUESTS {
        let id = 100 + i as u64;
        let t = Instant::now();
        let (head, body) = direct.post(&call_2026(id))?;
        let direct_ms = t.elapsed().as_secs_f64() * 1000.0;
        ensure!(body.contains("bench"), "direct answer: {head}{body}");
        let t = Instant::now();
        bridge.call(&call_2026(id), id)?;
        let bridged_ms = t.elapsed().as_secs_f64() * 1000.0;
        m.direct_ms.push(direct_ms);
        m.added_ms.push(bridged_ms - direct_ms);
    }
    m.rss_kb = bridge.peak_rss_kb()?;
    bridge.finish();
    drop(server);
    Ok(m)
}
