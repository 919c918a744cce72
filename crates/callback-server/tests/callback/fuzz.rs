//! Property tests: arbitrary bytes at the listener and arbitrary text at the parser never
//! cause a panic, and always get a sane answer.

use std::sync::OnceLock;
use std::time::Duration;

use context_harness_callback_server::{CallbackServer, Error, parse_redirect_url};
use context_harness_pkce::State;
use proptest::prelude::*;

use crate::util::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Status codes a sane answer may carry: our pages, and hyper's for unparseable requests.
const SANE: [u16; 8] = [400, 404, 405, 408, 413, 414, 431, 501];

/// One listener shared by the cases of a test, on its own runtime thread.
struct Target {
    port: u16,
    state: State,
    done: std::sync::mpsc::Receiver<Result<String, Error>>,
}

fn start_listener() -> Target {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    let state = State::generate().unwrap();
    let expected = state.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = CallbackServer::bind(
                ephemeral()
                    .with_timeout(Duration::from_secs(120))
                    .with_header_read_timeout(Duration::from_secs(5)),
            )
            .await
            .unwrap();
            ready_tx.send(server.port()).unwrap();
            let result = server.wait(&expected).await.map(|r| r.code.into_secret());
            let _ = done_tx.send(result);
        });
    });
    let port = ready_rx.recv().unwrap();
    Target { port, state, done }
}

impl Target {
    /// Proves the listener survived everything: a valid callback still works.
    fn finish(self) {
        let page = get(
            v4(self.port),
            &format!("/callback?code=survived&state={}", self.state.as_str()),
        );
        assert_eq!(status(&page), 200, "{page}");
        let code = self.done.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(code.unwrap(), "survived");
        assert_port_free(self.port);
    }
}

fn check_raw(port: u16, bytes: &[u8]) -> Result<(), TestCaseError> {
    let answer = send_and_close(v4(port), bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let answer = String::from_utf8_lossy(&answer);
    // Nothing (the server closed an unparseable or incomplete request) or an HTTP response.
    prop_assert!(
        answer.is_empty() || SANE.contains(&status(&answer)),
        "bytes {:?} got {:?}",
        bytes,
        answer
    );
    Ok(())
}

/// Arbitrary bytes, and arbitrary bytes after a plausible start, thrown at the listener.
#[test]
fn listener_survives_arbitrary_bytes() {
    let target = start_listener();
    let port = target.port;
    let mut runner = proptest::test_runner::TestRunner::new(config(96));
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|tail| {
            let mut b = b"GET /callback?".to_vec();
            b.extend(tail);
            b
        }),
    ];
    runner.run(&bytes, |b| check_raw(port, &b)).unwrap();
    target.finish();
}

/// Well-framed requests to the callback path with an arbitrary query (any bytes the request
/// line can carry): always a complete 400 response, never a dropped connection.
#[test]
fn listener_answers_every_framed_query() {
    let target = start_listener();
    let port = target.port;
    let mut runner = proptest::test_runner::TestRunner::new(config(96));
    // Visible ASCII without space: what a request target may hold. Mixed with the characters
    // that matter to the query parser.
    let query = proptest::collection::vec(
        prop_oneof![
            4 => 0x21u8..0x7f,
            1 => proptest::sample::select(b"%&=+".to_vec()),
        ],
        0..400,
    );
    runner
        .run(&query, |q| {
            let mut req = b"GET /callback?".to_vec();
            req.extend(&q);
            req.extend(b" HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let answer = send(v4(port), &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Ours (an HTML page) or hyper's (for a target it cannot parse); either way a
            // complete response.
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let length: Option<usize> =
                header(&answer, "content-length").and_then(|l| l.parse().ok());
            prop_assert!(
                status(&answer) == 400 && length == Some(body.len()),
                "query {:?} got {:?}",
                String::from_utf8_lossy(&q),
                answer
            );
            Ok(())
        })
        .unwrap();
    target.finish();
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| State::generate().unwrap())
}

proptest! {
    #![proptest_config(config(512))]

    /// Any pasted text: no panic, and never a code without the right state.
    #[test]
    fn paste_back_never_panics(text in any::<String>()) {
        let r = parse_redirect_url(&text, "http://localhost:8080/callback", state());
        prop_assert!(r.is_err());
    }

    /// Any query after the right base: no panic, never accepted without the state.
    #[test]
    fn paste_back_query_never_panics(query in "[a-z=&%+0-9A-F_]{0,200}") {
        let pasted = format!("http://localhost:8080/callback?{query}");
        let r = parse_redirect_url(&pasted, "http://localhost:8080/callback", state());
        prop_assert!(r.is_err());
    }

    /// Any code without control characters survives encoding and decoding.
    #[test]
    fn codes_round_trip(code in "[^\\p{Cc}]{1,100}", iss in proptest::option::of("[^\\p{Cc}]{1,50}")) {
        let s = state();
        let mut pasted = format!(
            "http://localhost:8080/callback?state={}&code={}",
            encode(s.as_str()),
            encode(&code)
        );
        if let Some(iss) = &iss {
            pasted.push_str(&format!("&iss={}", encode(iss)));
        }
        let r = parse_redirect_url(&pasted, "http://localhost:8080/callback", s).unwrap();
        prop_assert_eq!(r.code.secret(), code.as_str());
        prop_assert_eq!(r.iss, iss);
    }
}
