//! The code and the state never reach logs (at TRACE), errors or `Debug` output.

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use context_harness_callback_server::{CallbackServer, Error, parse_redirect_url};
use context_harness_pkce::State;

use crate::util::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once, for the whole test binary) a TRACE subscriber writing into a buffer.
fn captured() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        capture
    })
}

#[tokio::test]
async fn code_and_state_never_logged_or_shown() {
    let capture = captured();
    let state = State::generate().unwrap();
    let s = state.as_str().to_owned();
    let code = "SECRET-CODE-4f1d9a";
    let stale = State::generate().unwrap();
    let stale_s = stale.as_str().to_owned();
    let mut shown = Vec::new();

    // A success after a mismatch, a duplicate and an unreadable query.
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let (good, s2, stale2) = (
        format!("/callback?code={code}&state={s}"),
        s.clone(),
        stale_s.clone(),
    );
    let browser = client(move || {
        get(v4(port), &format!("/callback?code={code}&state={stale2}"));
        get(
            v4(port),
            &format!("/callback?code={code}&code={code}&state={s2}"),
        );
        get(v4(port), &format!("/callback?code={code}%ZZ&state={s2}"));
        get(v4(port), &good)
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), code);
    shown.push(format!("{response:?}"));
    shown.push(format!("{:?}", response.code));
    let page = browser.await.unwrap();
    assert!(!page.contains(code) && !page.contains(&s));

    // Error outcomes and a timeout after a mismatch.
    for query in [
        format!("error=access_denied&error_description=no&state={s}&code={code}"),
        format!("error=invalid_request&state={s}&code={code}"),
    ] {
        let server = CallbackServer::bind(ephemeral()).await.unwrap();
        let port = server.port();
        let browser = client(move || get(v4(port), &format!("/callback?{query}")));
        let err = server.wait(&state).await.unwrap_err();
        shown.push(format!("{err:?} {err}"));
        browser.await.unwrap();
    }
    let server = CallbackServer::bind(ephemeral().with_timeout(Duration::from_millis(200)))
        .await
        .unwrap();
    let mut stream = connect(v4(server.port())).unwrap();
    stream
        .write_all(&request(
            "GET",
            &format!("/callback?code={code}&state={stale_s}"),
        ))
        .unwrap();
    let err = server.wait(&state).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Timeout {
            state_mismatch_seen: true
        }
    ));
    shown.push(format!("{err:?} {err}"));

    // Paste-back errors.
    for pasted in [
        format!("http://localhost:8080/callback?code={code}&state={stale_s}"),
        format!("http://localhost:9/callback?code={code}&state={s}"),
        format!("http://localhost:8080/callback?code={code}&code=2&state={s}"),
    ] {
        let err =
            parse_redirect_url(&pasted, "http://localhost:8080/callback", &state).unwrap_err();
        shown.push(format!("{err:?} {err}"));
    }
    shown.push(format!("{state:?}"));

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("callback listener bound"),
        "nothing captured: {log}"
    );
    assert!(
        log.contains("TRACE"),
        "TRACE events were not captured: {log}"
    );
    for text in shown.iter().chain([&log]) {
        for secret in [code, s.as_str(), stale_s.as_str()] {
            assert!(!text.contains(secret), "{secret:?} leaked into {text}");
        }
    }
}
