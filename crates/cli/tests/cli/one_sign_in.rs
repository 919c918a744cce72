//! One sign-in per server across processes (issue 21): several `mcp proxy <url>`, `mcp token <url>`
//! and `mcp auth <url>` processes that need the same server while it has no tokens open **one**
//! browser; the others wait for that sign-in and use its tokens. When the signing-in process is
//! killed mid-way, a waiting one signs in instead.
//!
//! The authorization server is the local oidc-provider (auto-approving); the MCP server is the
//! TypeScript SDK's (`tests/mcp-servers/server.mjs`, checking tokens by introspection). The browser
//! is a stand-in script that appends the id of the process that started it to a file (so the test
//! counts browser starts and knows which process signs in), waits until the test has seen every
//! other process waiting, then follows the sign-in like `tests/browser/follow.mjs`. Its settings
//! travel as arguments inside `BROWSER` (the browser's environment is an allowlist).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::proxy::require_mcp_servers;
use crate::util::{AuthServer, Home, repo_root};

/// What every process but the signing-in one prints once on stderr while it waits (after the
/// bridges' `context-harness: ` prefix).
fn waiting(url: &str) -> String {
    format!("another context-harness process is signing in to {url}; waiting…")
}

/// How long any one step may take before the test fails with the processes' stderr.
const STEP: Duration = Duration::from_secs(60);

/// A running `context-harness` process whose stdout and stderr lines arrive on channels.
struct Process {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    seen: String,
}

impl Process {
    fn spawn(home: &Home, args: &[&str], browser: &str) -> Self {
        let mut child = home
            .cmd(args)
            .env("BROWSER", browser)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the binary");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("stdout")));
        let stderr = lines(Box::new(child.stderr.take().expect("stderr")));
        Self {
            what: args.join(" "),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            seen: String::new(),
        }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads stderr until a line contains `text`; fails after [`STEP`].
    #[track_caller]
    fn expect_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + STEP;
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(_) => panic!(
                    "`{}` never printed {text:?}; its stderr:\n{}",
                    self.what, self.seen
                ),
            }
        }
    }

    /// Everything on stderr so far (without waiting).
    fn stderr_now(&mut self) -> &str {
        while let Ok(line) = self.stderr.try_recv() {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        &self.seen
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to the proxy");
        stdin.flush().expect("flush");
    }

    /// The next stdout line as JSON; fails after [`STEP`].
    #[track_caller]
    fn recv(&mut self) -> Value {
        match self.stdout.recv_timeout(STEP) {
            Ok(line) => serde_json::from_str(&line).expect("JSON-RPC on stdout"),
            Err(_) => {
                let stderr = self.stderr_now().to_owned();
                panic!("`{}` answered nothing; its stderr:\n{stderr}", self.what)
            }
        }
    }

    /// Closes stdin and waits for the exit: the code and the rest of stdout.
    fn finish(mut self) -> (i32, String, String) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        let stdout: Vec<String> = self.stdout.iter().collect();
        let stderr = format!(
            "{}{}",
            self.seen,
            self.stderr.iter().collect::<Vec<_>>().join("\n")
        );
        (status.code().unwrap_or(-1), stdout.join("\n"), stderr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser stand-in: `sh browser.sh STARTS GO HANG FOLLOW URL` appends its parent's process id
/// (the `context-harness` that started it) to STARTS; with HANG `hang-first`, the first start
/// stops there (a sign-in that never completes); otherwise it waits for the file GO, then follows
/// the authorization URL through the auto-approving server to the loopback listener.
struct Browser {
    command: String,
    starts: PathBuf,
    go: PathBuf,
}

impl Browser {
    fn new(home: &Home, hang_first: bool) -> Self {
        let script = home.path().join("browser.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n# TEST-ONLY browser stand-in (see one_sign_in.rs).\n\
             starts=\"$1\"; go=\"$2\"; hang=\"$3\"; follow=\"$4\"; url=\"$5\"\n\
             echo \"$PPID\" >> \"$starts\"\n\
             if [ \"$hang\" = hang-first ] && [ \"$(wc -l < \"$starts\")\" -eq 1 ]; then exit 0; fi\n\
             while [ ! -e \"$go\" ]; do sleep 0.05; done\n\
             exec node \"$follow\" \"$url\"\n",
        )
        .expect("write the browser stand-in");
        let starts = home.path().join("browser-starts");
        let go = home.path().join("browser-go");
        let command = format!(
            "sh {} {} {} {} {}",
            script.display(),
            starts.display(),
            go.display(),
            if hang_first { "hang-first" } else { "follow" },
            repo_root().join("tests/browser/follow.mjs").display()
        );
        Self {
            command,
            starts,
            go,
        }
    }

    /// The process ids that started the browser, in order.
    fn starts(&self) -> Vec<u32> {
        std::fs::read_to_string(&self.starts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Lets the waiting browser (and any later one) follow the sign-in.
    fn go(&self) {
        std::fs::write(&self.go, "").expect("write the go file");
    }
}

/// The local oidc-provider and an SDK MCP server it protects.
fn servers() -> (AuthServer, context_harness_test_support::McpServer) {
    let auth = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let server = context_harness_test_support::McpServer::start(
        &repo_root(),
        &[("MCP_ISSUER", auth.issuer.as_str())],
        context_harness_test_support::ServerLog::Inherit,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (auth, server)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "one-sign-in-test", "version": "1"},
    }})
}

fn proxy(home: &Home, url: &str, browser: &Browser) -> Process {
    let mut p = Process::spawn(
        home,
        &["mcp", "proxy", url, "--port", "0", "--timeout", "120"],
        &browser.command,
    );
    p.send(&initialize());
    p
}

/// `proxies` bridges, `tokens` `mcp token` and `auths` `mcp auth` processes, none with tokens,
/// started at once: one browser start (by whichever process took the sign-in lock first), every
/// one of them answered with the tokens of that one sign-in.
fn one_browser_for(proxies: usize, tokens: usize, auths: usize) {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server) = servers();
    let url = server.url().to_owned();
    let home = Home::new();
    let browser = Browser::new(&home, false);

    // Started together, the kinds interleaved: any of them may be the one that signs in.
    let mut all: Vec<Process> = Vec::new();
    for i in 0..proxies.max(tokens).max(auths) {
        if i < tokens {
            all.push(Process::spawn(
                &home,
                &["mcp", "token", &url, "--timeout", "120"],
                &browser.command,
            ));
        }
        if i < proxies {
            all.push(proxy(&home, &url, &browser));
        }
        if i < auths {
            all.push(Process::spawn(
                &home,
                &["mcp", "auth", &url, "--port", "0", "--timeout", "120"],
                &browser.command,
            ));
        }
    }
    // One process signs in (its browser waits for the go file); every other one waits for it.
    let deadline = Instant::now() + STEP;
    let signer = loop {
        if let Some(&pid) = browser.starts().first() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "no browser started; stderr: {:?}",
            all.iter_mut()
                .map(|p| p.stderr_now().to_owned())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        all.iter().any(|p| p.id() == signer),
        "the browser was started by one of the processes"
    );
    for process in all.iter_mut().filter(|p| p.id() != signer) {
        process.expect_stderr(&waiting(&url));
    }
    browser.go();

    for bridge in all.iter_mut().filter(|p| p.what.contains(" proxy ")) {
        let answer = bridge.recv();
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
    }
    let stored = home.run(&["mcp", "token", &url]);
    stored.expect_code(0);
    let token = stored.stdout.trim().to_owned();
    for process in all {
        let what = process.what.clone();
        let signed_in = process.id() == signer;
        let (code, stdout, stderr) = process.finish();
        assert_eq!(code, 0, "`{what}`: {stderr}");
        // The waiting line once in each waiting process; none in the one that signed in.
        let said = stderr.matches(&waiting(&url)).count();
        assert_eq!(said, usize::from(!signed_in), "`{what}`: {stderr}");
        if what.contains(" token ") {
            assert_eq!(stdout.trim(), token, "`{what}` printed another token");
        }
        if what.contains(" token ") || what.contains(" auth ") {
            let said = if signed_in {
                format!("Signed in to {url}")
            } else {
                "another context-harness process completed".to_owned()
            };
            assert!(stderr.contains(&said), "`{what}`: {stderr}");
        }
    }
    assert_eq!(browser.starts(), [signer], "one browser start");
    let stats = auth.stats();
    assert_eq!(stats["authorization_code_requests"], 1, "{stats}");
    assert_eq!(stats["registration_requests"], 1, "{stats}");
}

#[test]
fn three_processes_open_one_browser() {
    one_browser_for(2, 1, 0);
}

#[test]
fn three_token_processes_open_one_browser() {
    one_browser_for(0, 3, 0);
}

#[test]
fn ten_processes_open_one_browser() {
    one_browser_for(5, 4, 1);
}

/// The bridge that signs in is killed while its browser is out (a sign-in that never completes):
/// the OS releases its sign-in lock, a waiting bridge takes over with a browser of its own, and
/// every bridge left is answered.
#[test]
fn a_killed_sign_in_is_taken_over_by_a_waiting_process() {
    if !require_mcp_servers() {
        return;
    }
    let (_auth, server) = servers();
    let url = server.url().to_owned();
    let home = Home::new();
    let browser = Browser::new(&home, true);
    browser.go();

    let mut bridges: Vec<Process> = (0..3).map(|_| proxy(&home, &url, &browser)).collect();
    let deadline = Instant::now() + STEP;
    let first = loop {
        if let Some(&pid) = browser.starts().first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no browser started");
        std::thread::sleep(Duration::from_millis(20));
    };
    for bridge in bridges.iter_mut().filter(|b| b.id() != first) {
        bridge.expect_stderr(&waiting(&url));
    }
    let index = bridges
        .iter()
        .position(|b| b.id() == first)
        .expect("the signing-in bridge");
    let killed = bridges.remove(index);
    drop(killed);

    for bridge in &mut bridges {
        let answer = bridge.recv();
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
    }
    let starts = browser.starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(
        bridges.iter().any(|b| b.id() == starts[1]),
        "a waiting bridge took over: {starts:?}"
    );
    for bridge in bridges {
        let (code, _, stderr) = bridge.finish();
        assert_eq!(code, 0, "{stderr}");
    }
    home.run(&["mcp", "token", &url]).expect_code(0);
}

/// `mcp token --no-sign-in` never starts a sign-in, even where a browser could be opened: with no
/// tokens it exits 3 (not signed in) at once, and no browser starts. Without the flag, the same
/// command signs in (the tests above).
#[test]
fn no_sign_in_exits_3_without_a_browser() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server) = servers();
    let url = server.url().to_owned();
    let home = Home::new();
    let browser = Browser::new(&home, false);
    browser.go();
    for command in [
        &["mcp", "token", url.as_str(), "--no-sign-in"][..],
        &["mcp", "headers", url.as_str(), "--no-sign-in"][..],
    ] {
        let run = Process::spawn(&home, command, &browser.command);
        let (code, stdout, stderr) = run.finish();
        assert_eq!(code, 3, "{command:?}: {stderr}");
        assert!(stdout.is_empty(), "{command:?}: {stdout}");
        assert!(stderr.contains("mcp auth"), "{command:?}: {stderr}");
    }
    assert!(browser.starts().is_empty(), "no browser started");
    assert_eq!(auth.stats()["authorization_code_requests"], 0);
}

/// A sign-in `mcp token` starts on its own always shows the authorization URL: a browser command
/// may "succeed" without showing anything (here `true`; a failing `$BROWSER` falling back to
/// xdg-open, a stale DISPLAY), and nobody may be watching for a browser. It never offers a paste
/// it would not read.
#[test]
fn an_implicit_sign_in_shows_its_url() {
    if !require_mcp_servers() {
        return;
    }
    let (auth, server) = servers();
    let url = server.url().to_owned();
    let home = Home::new();
    let run = home.run_env(
        &["mcp", "token", &url, "--timeout", "2"],
        &[("BROWSER", "true")],
    );
    run.expect_code(10);
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr.contains("If no browser opens, open this URL"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!("{}/auth?", auth.issuer)),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("paste"), "{run:#?}");
}
