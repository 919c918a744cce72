//! Test helpers: temporary homes, the local authorization server, raw HTTP, prerequisites.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_context-harness");

pub(crate) use context_harness_test_support::repo_root;

use context_harness_test_support::is_ci;

/// `true` when `present`; otherwise fails under `CI=true`, or prints a note and returns `false`.
pub(crate) fn require(present: bool, what: &str) -> bool {
    if present {
        return true;
    }
    assert!(
        !is_ci(),
        "CI=true and {what} is missing (`cargo xtask test` installs it)"
    );
    eprintln!("note: skipping: {what} is missing (`cargo xtask test` installs it)");
    false
}

/// The authorization server's `node_modules` (`CONTEXT_HARNESS_TEST_NODE_MODULES` or the default).
pub(crate) fn node_modules() -> PathBuf {
    context_harness_test_support::node_modules(&repo_root())
}

/// The Chromium binary (`CONTEXT_HARNESS_TEST_CHROMIUM` or `/usr/bin/chromium`).
pub(crate) fn chromium() -> PathBuf {
    std::env::var_os("CONTEXT_HARNESS_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn node_present() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether node and the server's packages are there (see [`require`]).
pub(crate) fn require_server() -> bool {
    require(node_present(), "node")
        && require(
            node_modules().join("oidc-provider").is_dir(),
            "the authorization server's node_modules",
        )
}

/// `BROWSER` value running one of the scripts in `tests/browser` with node.
pub(crate) fn browser_script(name: &str) -> String {
    format!(
        "node {}",
        repo_root().join("tests/browser").join(name).display()
    )
}

/// `BROWSER` value running `tests/browser/driver.mjs` (headless Chromium) with its settings as
/// arguments, diagnostics appended to `log`: the browser's environment is an allowlist, so test
/// settings cannot travel in `CONTEXT_HARNESS_TEST_*` variables. (`$BROWSER` is split at
/// whitespace: the paths must have none.)
pub(crate) fn driver_browser(log: &Path, action: &str) -> String {
    format!(
        "{} --chromium={} --node-modules={} --log={} --action={action}",
        browser_script("driver.mjs"),
        chromium().display(),
        node_modules().display(),
        log.display()
    )
}

/// The local oidc-provider (started by `context-harness-test-support`), stopped on drop.
pub(crate) struct AuthServer {
    _server: context_harness_test_support::AuthorizationServer,
    pub(crate) issuer: String,
    _logs: tempfile::TempDir,
}

impl AuthServer {
    /// Starts the server with these `AS_*` variables and waits for its ready line.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        let logs = tempfile::tempdir().expect("tempdir");
        let log = context_harness_test_support::ServerLog::File(logs.path().join("server.log"));
        let server =
            context_harness_test_support::AuthorizationServer::start(&repo_root(), env, log)
                .unwrap_or_else(|e| panic!("{e}"));
        Self {
            issuer: server.issuer().to_owned(),
            _server: server,
            _logs: logs,
        }
    }

    /// `GET /test/stats`.
    pub(crate) fn stats(&self) -> Value {
        let (status, body) = http("GET", &format!("{}/test/stats", self.issuer), &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats json")
    }

    /// Whether the server's introspection endpoint calls `token` active.
    pub(crate) fn introspect(&self, token: &str) -> bool {
        let body: String = form_encode(&[("token", token)]);
        let auth = format!("Basic {}", base64("ch-introspector:ch-introspector-secret"));
        let (status, answer) = http(
            "POST",
            &format!("{}/token/introspection", self.issuer),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &body,
        );
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).expect("introspection json");
        v["active"] == Value::Bool(true)
    }
}

/// A temporary context-harness home and the environment the binary runs with.
pub(crate) struct Home {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// A finished run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {self:#?}"))
    }
}

impl Home {
    /// An empty home.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
        }
    }

    /// A home whose `providers.toml` has `[providers.local]` pointing at `issuer`.
    pub(crate) fn with_local(issuer: &str, client_id: &str) -> Self {
        let home = Self::new();
        let toml = format!(
            r#"[providers.local]
display_name = "Local test server"
auth_url = "{issuer}/auth"
token_url = "{issuer}/token"
revocation_url = "{issuer}/token/revocation"
issuer = "{issuer}"
iss_parameter_supported = true
client_id = "{client_id}"
scopes = ["openid", "offline_access"]
extra_auth_params = {{ prompt = "consent" }}
"#
        );
        std::fs::write(home.path().join("providers.toml"), toml).expect("write providers.toml");
        home
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a variable to every later run.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.push((key.to_owned(), value.into()));
    }

    /// The binary with `args`, isolated: file storage in this home, no browser, no colours.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("CONTEXT_HARNESS_HOME", self.path())
            .env("CONTEXT_HARNESS_STORAGE", "file")
            .env("HOME", self.path())
            .env("NO_COLOR", "1");
        for var in [
            "RUST_LOG",
            "BROWSER",
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "SSH_CONNECTION",
            "SSH_CLIENT",
            "SSH_TTY",
            "LOCAL_CLIENT_ID",
            "LOCAL_CLIENT_SECRET",
            "CONTEXT_HARNESS_CLIENT_SECRET",
            "CONTEXT_HARNESS_CLIENT_SECRET_FILE",
            "GITHUB_CLIENT_ID",
            "ATLASSIAN_CLIENT_ID",
            "GITLAB_CLIENT_ID",
            // The trust store reads these: a test sets them when it means to.
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs the binary to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run the binary"))
    }

    /// Runs the binary with extra variables.
    pub(crate) fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::from(
            self.cmd(args)
                .envs(env.iter().copied())
                .output()
                .expect("run the binary"),
        )
    }

    /// The token file of `provider`.
    pub(crate) fn token_file(&self, provider: &str) -> PathBuf {
        self.path().join("tokens").join(format!("{provider}.json"))
    }

    /// The stored token JSON of `provider`.
    pub(crate) fn tokens(&self, provider: &str) -> Value {
        let text = std::fs::read_to_string(self.token_file(provider)).expect("token file");
        serde_json::from_str(&text).expect("token json")
    }

    /// Moves `issued_at` back by `secs`, so the stored access token looks expired.
    pub(crate) fn backdate(&self, provider: &str, secs: f64) {
        let mut tokens = self.tokens(provider);
        let issued = tokens["issued_at"].as_f64().expect("issued_at");
        tokens["issued_at"] = Value::from(issued - secs);
        std::fs::write(self.token_file(provider), tokens.to_string()).expect("rewrite tokens");
    }
}

/// Runs `node tests/browser/follow.mjs --print URL`: follows an auto-approved authorization and
/// returns the loopback redirect URL without requesting it.
pub(crate) fn follow_to_redirect(url: &str) -> String {
    let out = Command::new("node")
        .arg(repo_root().join("tests/browser/follow.mjs"))
        .args(["--print", url])
        .output()
        .expect("run follow.mjs");
    assert!(
        out.status.success(),
        "follow.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A sign-in waiting in the background after printing its authorization URL.
pub(crate) struct Pending {
    child: Child,
    /// The authorization URL the binary printed.
    pub(crate) url: String,
    seen: String,
    rest: std::thread::JoinHandle<String>,
}

impl Pending {
    /// Spawns `cmd` (stdin, stdout, stderr piped) and reads stderr until the authorization URL.
    #[allow(clippy::zombie_processes)] // the child moves into `Self`; `paste` waits for it
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the binary");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = stderr.read_line(&mut line).expect("read stderr");
            if n == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no authorization URL printed; stderr:\n{seen}");
            }
            seen.push_str(&line);
            let trimmed = line.trim();
            if trimmed.starts_with("http") && trimmed.contains("/auth?") {
                let url = trimmed.to_owned();
                // Drain the rest on a thread so the child never blocks on a full pipe.
                let rest = std::thread::spawn(move || {
                    let mut rest = String::new();
                    let _ = stderr.read_to_string(&mut rest);
                    rest
                });
                return Self {
                    child,
                    url,
                    seen,
                    rest,
                };
            }
        }
    }

    /// Writes `line` to the child's stdin, closes it, and waits for the end.
    pub(crate) fn paste(mut self, line: &str) -> Run {
        {
            let mut stdin = self.child.stdin.take().expect("stdin");
            stdin
                .write_all(format!("{line}\n").as_bytes())
                .expect("paste");
        }
        let output = self.child.wait_with_output().expect("wait");
        let rest = self.rest.join().unwrap_or_default();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: format!("{}{rest}", self.seen),
        }
    }
}

/// A minimal HTTP/1.1 client for `http://host:port/path` (content-length or chunked answers).
pub(crate) fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("receive");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64 with padding.
pub(crate) fn base64(input: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
