//! `mcp proxy` stays bounded and live whatever the host and the server do (issue 20, item 4).
//! The servers here are small local **stubs reproducing hostile MCP servers** (answers that stream
//! forever, POSTs that never get a status line, 15 MiB answers): no SDK server behaves this way on
//! purpose. The host side is this test, writing raw bytes to the binary's stdin.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::Home;

/// One request a stub saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    session: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `method` of the JSON-RPC message it carries.
    fn rpc(&self) -> String {
        self.json()["method"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `params.name` (the tool of a `tools/call`).
    fn tool(&self) -> String {
        self.json()["params"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

/// A raw HTTP/1.1 stub on loopback: one thread per connection, one request per connection
/// (answers say `Connection: close`), every request recorded before `handler` answers it.
struct Stub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    fn start(handler: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, handler) = (Arc::clone(&log), Arc::clone(&handler));
                std::thread::spawn(move || serve_one(stream, &log, &*handler));
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// Waits (at most 30 s) until `enough` holds for what the stub saw.
    fn wait_for(&self, what: &str, enough: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !enough(&self.seen()) {
            assert!(
                Instant::now() < deadline,
                "the stub never saw {what}: {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve_one(mut stream: TcpStream, log: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let method = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let (mut length, mut session) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                session = Some(value.trim().to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let seen = Seen {
        method,
        session,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().expect("log").push(seen.clone());
    handler(&seen, &mut stream);
}

/// A JSON answer (with a session id).
fn json_answer(stream: &mut TcpStream, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn status(stream: &mut TcpStream, status: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// Never a status line: holds the connection until the bridge drops it.
fn silence(stream: &mut TcpStream) {
    let _ = std::io::copy(stream, &mut std::io::sink());
}

/// An SSE answer that never ends: a comment every 100 ms until the bridge goes.
fn stream_forever(stream: &mut TcpStream) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    );
    while stream.write_all(b": still working\n\n").is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The common part of the stubs: `initialize` (answered with `version`), 202 for other
/// notifications and responses, 405 for the GET stream, 200 for `DELETE`.
fn basics(seen: &Seen, stream: &mut TcpStream, version: &str) -> bool {
    match (seen.method.as_str(), seen.rpc().as_str()) {
        ("POST", "initialize") => {
            let answer = json!({"jsonrpc": "2.0", "id": seen.json()["id"], "result": {
                "protocolVersion": version, "capabilities": {}, "serverInfo": {"name": "stub", "version": "1"}}});
            json_answer(stream, &answer.to_string());
        }
        ("GET", _) => status(stream, "405 Method Not Allowed"),
        ("DELETE", _) => status(stream, "200 OK"),
        ("POST", _)
            if seen.json().is_object()
                && (seen.json().get("id").is_none() || seen.json().get("method").is_none()) =>
        {
            status(stream, "202 Accepted");
        }
        _ => return false,
    }
    true
}

/// The binary as a stdio server for these tests: stdout is read only as far as the test asks.
struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    /// How many more lines the stdout reader may read.
    want: mpsc::Sender<usize>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Bridge {
    fn spawn(home: &Home, url: &str, extra: &[&str]) -> Self {
        let mut args = vec!["-vv", "mcp", "proxy", url, "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = home
            .cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the bridge");
        let stdout = child.stdout.take().expect("stdout");
        let (want, allowance) = mpsc::channel::<usize>();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            while let Ok(n) = allowance.recv() {
                for _ in 0..n {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 || tx.send(line).is_err() {
                        return;
                    }
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut all);
            all
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            want,
            lines,
            stderr: Some(stderr),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to the bridge");
        stdin.flush().expect("flush");
    }

    fn send(&mut self, message: &Value) {
        self.write(format!("{message}\n").as_bytes());
    }

    /// Lets the test read `n` more lines of stdout.
    fn allow(&self, n: usize) {
        self.want.send(n).expect("stdout reader");
    }

    /// The next line of stdout (allowed before); fails the test with stderr after 30 s.
    fn recv_line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => panic!("no line within 30 s; stderr:\n{}", self.kill()),
        }
    }

    /// [`Self::recv_line`], parsed.
    fn recv(&mut self) -> Value {
        let line = self.recv_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout holds a line that is not JSON ({e}): {line:?}"))
    }

    /// Reads (allowing as it goes) until the response to `id`; returns what came before it too.
    fn until(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            self.allow(1);
            let message = self.recv();
            if message["id"] == *id && message.get("method").is_none() {
                return (message, before);
            }
            before.push(message);
        }
    }

    fn initialize(&mut self) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
        let (answer, _) = self.until(&json!(1));
        answer
    }

    /// Kills the bridge and returns its stderr.
    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Waits at most `within` for the exit: the exit code, or a failed test with stderr.
    fn exit_within(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                panic!("still running after {within:?}; stderr:\n{}", self.kill());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The peak resident set of the bridge so far, in bytes (Linux `/proc`).
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What is not UTF-8, not JSON, too long or not a JSON-RPC message is answered by the bridge
/// (-32700 / -32600) and never reaches the server; blank lines are skipped. A batch goes to a
/// server that negotiated 2025-03-26 (the one revision with batches), and to no other.
/// Before: invalid UTF-8 was repaired with U+FFFD and forwarded, and JSON that is no message was
/// forwarded as it was.
#[test]
fn proxy_answers_lines_that_are_not_messages_and_never_forwards_them() {
    for version in ["2025-06-18", "2025-03-26"] {
        let stub = Stub::start(move |seen, stream| {
            if basics(seen, stream, version) {
                return;
            }
            let answer = match seen.json() {
                Value::Array(batch) => Value::Array(
                    batch
                        .iter()
                        .map(|m| json!({"jsonrpc": "2.0", "id": m["id"], "result": {}}))
                        .collect(),
                ),
                message => json!({"jsonrpc": "2.0", "id": message["id"], "result": {}}),
            };
            json_answer(stream, &answer.to_string());
        });
        let home = Home::new();
        let mut bridge = Bridge::spawn(&home, &stub.url, &[]);
        assert_eq!(bridge.initialize()["result"]["protocolVersion"], version);
        bridge.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        bridge.write(
            b"{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\",\"params\":{\"s\":\"\xff\"}}\n",
        );
        bridge.write(b"not json\n\n   \r\n");
        let mut long =
            b"{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"ping\",\"params\":{\"s\":\"".to_vec();
        long.resize(17 * 1024 * 1024, b'x');
        long.extend_from_slice(b"\"}}\n");
        bridge.write(&long);
        bridge.write(b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}\n");
        bridge.write(b"{\"id\":12,\"method\":\"ping\"}\n42\n");
        bridge.write(b"[{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"ping\"}]\n");
        bridge.send(&json!({"jsonrpc": "2.0", "id": 14, "method": "ping"}));
        let (answer, before) = bridge.until(&json!(14));
        assert_eq!(answer["result"], json!({}), "{answer}");
        let mut errors: Vec<(i64, Value, String)> = before
            .iter()
            .filter(|m| m.is_object())
            .map(|m| {
                assert_eq!(m["jsonrpc"], "2.0", "{m}");
                let code = m["error"]["code"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("not an error: {m}"));
                (
                    code,
                    m["id"].clone(),
                    m["error"]["data"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        errors.sort_by_key(|e| format!("{e:?}"));
        let mut expected = vec![
            (-32700, Value::Null, "parse_error".to_owned()),
            (-32700, Value::Null, "parse_error".to_owned()),
            (-32600, Value::Null, "message_too_large".to_owned()),
            (-32600, Value::Null, "invalid_request".to_owned()),
            (-32600, json!(12), "invalid_request".to_owned()),
            (-32600, Value::Null, "invalid_request".to_owned()),
        ];
        let batch_answer = before.iter().find(|m| m.is_array());
        if version == "2025-03-26" {
            assert_eq!(
                batch_answer,
                Some(&json!([{"jsonrpc": "2.0", "id": 13, "result": {}}]))
            );
        } else {
            assert_eq!(batch_answer, None);
            expected.push((-32600, Value::Null, "invalid_request".to_owned()));
        }
        expected.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(errors, expected, "{before:?}");
        // The server saw the good messages only.
        let bodies: Vec<String> = stub
            .seen()
            .into_iter()
            .filter(|s| s.method == "POST")
            .map(|s| s.body)
            .collect();
        let mut sent = vec![r#""initialize""#, "notifications/initialized", r#""id":14"#];
        if version == "2025-03-26" {
            sent.insert(2, r#"[{"jsonrpc":"2.0","id":13"#);
        }
        assert_eq!(bodies.len(), sent.len(), "{bodies:?}");
        for (body, part) in bodies.iter().zip(sent) {
            assert!(body.contains(part), "{body:?} is not {part}");
        }
        drop(bridge.stdin.take());
        assert_eq!(bridge.exit_within(Duration::from_secs(5)), 0);
    }
}

/// How the hostile server treats `tools/call`.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// An SSE answer that never ends.
    StreamForever,
    /// No status line ever (nor for the `DELETE`).
    Silent,
}

/// stdin EOF, SIGTERM and SIGINT end the bridge within 5 s with 64 requests in flight whose
/// answers stream forever, or whose POSTs never get a status line, and one more waiting for a
/// slot; the session is `DELETE`d (also when the server never answers that). Before: the bridge
/// stopped reading stdin and ignored EOF and both signals; only SIGKILL ended it.
#[test]
fn proxy_ends_within_5_s_whatever_is_in_flight() {
    for hostile in [Hostile::StreamForever, Hostile::Silent] {
        for end in ["EOF", "TERM", "INT"] {
            let stub = Stub::start(move |seen, stream| {
                if seen.method == "DELETE" && matches!(hostile, Hostile::Silent) {
                    return silence(stream);
                }
                if basics(seen, stream, "2025-06-18") {
                    return;
                }
                match hostile {
                    Hostile::StreamForever => stream_forever(stream),
                    Hostile::Silent => silence(stream),
                }
            });
            let home = Home::new();
            let mut bridge = Bridge::spawn(&home, &stub.url, &[]);
            bridge.initialize();
            bridge.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
            for id in 2..=66 {
                bridge.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "slow", "arguments": {}}}));
            }
            let calls = |seen: &[Seen]| seen.iter().filter(|s| s.rpc() == "tools/call").count();
            stub.wait_for("64 calls", |seen| calls(seen) >= 64);
            let start = Instant::now();
            match end {
                "EOF" => drop(bridge.stdin.take()),
                signal => bridge.signal(signal),
            }
            let code = bridge.exit_within(Duration::from_secs(5));
            let took = start.elapsed();
            assert_eq!(code, 0, "{hostile:?} {end}");
            let seen = stub.seen();
            assert_eq!(calls(&seen), 64, "{hostile:?} {end}: one slot each");
            let delete = seen.iter().find(|s| s.method == "DELETE");
            assert_eq!(
                delete.and_then(|d| d.session.as_deref()),
                Some("s1"),
                "{hostile:?} {end}: the session was deleted"
            );
            eprintln!("{hostile:?}, {end}: exited in {took:?}");
        }
    }
}

/// A hostile server for the timeouts: `notifications/initialized` never gets a status line; the
/// `tools/call` of tool `fast` is answered at once, `silent` never, `progress` after progress
/// notifications every 300 ms for 2.4 s, `progress_forever` with progress notifications only.
fn timeout_stub() -> Stub {
    Stub::start(|seen, stream| {
        if seen.rpc() == "notifications/initialized" {
            return silence(stream);
        }
        if basics(seen, stream, "2025-06-18") {
            return;
        }
        let message = seen.json();
        let (id, token) = (&message["id"], &message["params"]["_meta"]["progressToken"]);
        let result = json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}});
        let progress = |n: u64| {
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": n}})
        };
        let steps = match seen.tool().as_str() {
            "fast" => return json_answer(stream, &result.to_string()),
            "progress" => Some(8),
            "progress_forever" => None,
            _ => return silence(stream),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        );
        let mut n = 0;
        while steps.is_none_or(|steps| n < steps) {
            n += 1;
            if write!(stream, "data: {}\n\n", progress(n)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = write!(stream, "data: {result}\n\n");
    })
}

/// A notification whose POST never gets a status line holds back no later message (before: every
/// later message waited for it, forever).
#[test]
fn proxy_is_not_stalled_by_a_notification_the_server_never_takes() {
    let stub = timeout_stub();
    let home = Home::new();
    let mut bridge = Bridge::spawn(&home, &stub.url, &[]);
    bridge.initialize();
    bridge.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let start = Instant::now();
    bridge.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "fast", "arguments": {}}}));
    let (answer, _) = bridge.until(&json!(2));
    assert_eq!(answer["result"]["content"][0]["text"], "done", "{answer}");
    // The default request timeout is 120 s: the order wait (2 s), not a timeout, let it through.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    drop(bridge.stdin.take());
    assert_eq!(bridge.exit_within(Duration::from_secs(5)), 0);
}

/// `--request-timeout 1`: a request without an answer gets one error (-32000, `data.code`
/// `timeout`) and the server a `notifications/cancelled` for it; progress notifications keep a
/// request going, up to 10 timeouts in all. Before: no timeout at all.
#[test]
fn proxy_answers_every_request_in_bounded_time() {
    let stub = timeout_stub();
    let home = Home::new();
    let mut bridge = Bridge::spawn(&home, &stub.url, &["--request-timeout", "1"]);
    bridge.initialize();
    let start = Instant::now();
    let call = |id: i64, tool: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {"progressToken": format!("p{id}")}}})
    };
    bridge.send(&call(2, "silent"));
    bridge.send(&call(3, "progress"));
    bridge.send(&call(4, "progress_forever"));
    let mut answers = Vec::new();
    let mut progress = 0;
    while answers.len() < 3 {
        bridge.allow(1);
        let message = bridge.recv();
        if message["method"] == "notifications/progress" {
            progress += 1;
            continue;
        }
        answers.push((message, start.elapsed()));
    }
    let (silent, after) = &answers[0];
    assert_eq!(silent["id"], 2, "{answers:?}");
    assert_eq!(silent["error"]["code"], -32000, "{silent}");
    assert_eq!(silent["error"]["data"]["code"], "timeout", "{silent}");
    assert!(
        *after >= Duration::from_secs(1) && *after < Duration::from_secs(4),
        "{after:?}"
    );
    let (done, _) = &answers[1];
    assert_eq!(done["id"], 3, "{answers:?}");
    assert_eq!(
        done["result"]["content"][0]["text"], "done",
        "progress kept it going: {done}"
    );
    let (capped, after) = &answers[2];
    assert_eq!(capped["id"], 4, "{answers:?}");
    assert_eq!(capped["error"]["data"]["code"], "timeout", "{capped}");
    assert!(
        *after >= Duration::from_secs(9) && *after < Duration::from_secs(14),
        "{after:?}"
    );
    assert!(progress >= 8, "{progress} progress notifications relayed");
    // The server was told, for both.
    stub.wait_for("two cancellations", |seen| {
        let cancelled: Vec<Value> = seen
            .iter()
            .filter(|s| s.rpc() == "notifications/cancelled")
            .map(|s| s.json()["params"]["requestId"].clone())
            .collect();
        cancelled.contains(&json!(2)) && cancelled.contains(&json!(4))
    });
    // Nothing more for these ids: exactly one response each.
    bridge.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "fast", "arguments": {}}}));
    let (_, before) = bridge.until(&json!(5));
    assert!(before.iter().all(|m| m.get("id").is_none()), "{before:?}");
    drop(bridge.stdin.take());
    assert_eq!(bridge.exit_within(Duration::from_secs(5)), 0);
}

/// While the host does not read stdout, 32 answers of 15 MiB (SSE and JSON) stay within the
/// bridge's byte budget: the servers' streams wait instead. Then every answer arrives whole. Before:
/// each waiting answer cost about 3 times its size (1.4 GiB resident).
#[cfg(target_os = "linux")]
#[test]
fn proxy_memory_stays_bounded_while_the_host_does_not_read() {
    const SIZE: usize = 15 * 1024 * 1024;
    const CALLS: i64 = 32;
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::clone(&written);
    let stub = Stub::start(move |seen, stream| {
        if basics(seen, stream, "2025-06-18") {
            return;
        }
        let id = seen.json()["id"].as_i64().unwrap_or_default();
        let head = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":""#
        );
        let tail = r#""}]}}"#;
        let sse = id % 2 == 0;
        let answer = if sse {
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: "
                .to_owned()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                head.len() + SIZE + tail.len()
            )
        };
        let chunk = vec![b'x'; 64 * 1024];
        let mut ok = stream.write_all(answer.as_bytes()).is_ok()
            && stream.write_all(head.as_bytes()).is_ok();
        let mut left = SIZE;
        while ok && left > 0 {
            let n = left.min(chunk.len());
            ok = stream.write_all(&chunk[..n]).is_ok();
            left -= n;
        }
        ok = ok
            && stream.write_all(tail.as_bytes()).is_ok()
            && (!sse || stream.write_all(b"\n\n").is_ok());
        if ok {
            done.fetch_add(1, Ordering::SeqCst);
            // Keep the connection until the bridge drops it (the SSE stream stays open).
            silence(stream);
        }
    });
    let home = Home::new();
    let mut bridge = Bridge::spawn(&home, &stub.url, &[]);
    bridge.initialize();
    bridge.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    for id in 2..2 + CALLS {
        bridge.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "big", "arguments": {}}}));
    }
    stub.wait_for("every call", |seen| {
        seen.iter().filter(|s| s.rpc() == "tools/call").count()
            >= usize::try_from(CALLS).unwrap_or(0)
    });
    // Give the bridge the time it needs to take in every answer, if it would (it took well under
    // a second before); with the budget it cannot, and the servers' writes wait.
    let deadline = Instant::now() + Duration::from_secs(8);
    while written.load(Ordering::SeqCst) < usize::try_from(CALLS).unwrap_or(0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak = bridge.peak_rss();
    eprintln!(
        "peak RSS with the host not reading: {} MiB ({} of {CALLS} answers written by the servers)",
        peak >> 20,
        written.load(Ordering::SeqCst)
    );
    // Now read everything: every answer whole (checked without parsing 15 MiB), each once.
    let mut ids = Vec::new();
    for _ in 0..CALLS {
        bridge.allow(1);
        let line = bridge.recv_line();
        let id: i64 = line
            .strip_prefix(r#"{"jsonrpc":"2.0","id":"#)
            .and_then(|rest| rest.split(',').next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("not an answer: {}", &line[..line.len().min(200)]));
        let whole = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":""#
        )
        .len()
            + SIZE
            + r#""}]}}"#.len()
            + 1;
        assert_eq!(line.len(), whole, "answer {id} is not whole");
        assert!(line.ends_with("xxx\"}]}}\n"), "answer {id} is not whole");
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (2..2 + CALLS).collect::<Vec<_>>());
    let overall = bridge.peak_rss();
    eprintln!("peak RSS over the whole run: {} MiB", overall >> 20);
    assert!(
        peak < 128 << 20,
        "{} MiB resident while the host did not read",
        peak >> 20
    );
    assert!(overall < 128 << 20, "{} MiB resident", overall >> 20);
    drop(bridge.stdin.take());
    assert_eq!(bridge.exit_within(Duration::from_secs(5)), 0);
}
