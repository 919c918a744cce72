//! The listener end to end over loopback TCP.

use std::io::Write as _;
use std::time::{Duration, Instant};

use context_harness_callback_server::{CallbackConfig, CallbackServer, Error, RedirectHost};
use context_harness_pkce::State;

use crate::util::*;

fn callback(state: &State, code: &str) -> String {
    format!("/callback?code={code}&state={}", state.as_str())
}

#[tokio::test]
async fn valid_callback_on_both_families_and_port_free_afterwards() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    assert_eq!(
        server.redirect_uri(),
        format!("http://localhost:{port}/callback")
    );
    let mut addrs = server.local_addrs();
    addrs.sort();
    if has_ipv6() {
        assert_eq!(addrs, [v4(port), v6(port)]);
    } else {
        eprintln!("note: no IPv6 loopback here; checking 127.0.0.1 only");
        assert_eq!(addrs, [v4(port)]);
    }
    let target = format!(
        "{}&iss=https%3A%2F%2Fas.example%2F",
        callback(&state, "c0de")
    );
    let browser = client(move || {
        // Both families answer (a 404 for another path), then the real callback.
        let others: Vec<String> = [v4(port), v6(port)]
            .into_iter()
            .filter(|a| a.is_ipv4() || has_ipv6())
            .map(|a| get(a, "/favicon.ico"))
            .collect();
        (others, get(v4(port), &target))
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "c0de");
    assert_eq!(response.state, state.as_str());
    assert_eq!(response.iss.as_deref(), Some("https://as.example/"));
    let (others, page) = browser.await.unwrap();
    for other in others {
        assert_eq!(status(&other), 404, "{other}");
    }
    // The page was sent in full before `wait` returned and the connection closed.
    assert_eq!(status(&page), 200, "{page}");
    assert!(page.contains("You can close this tab"));
    assert!(page.ends_with("</html>\n"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&page, "connection"), Some("close"));
    assert!(!page.contains("c0de"));
    assert_port_free(port);
}

#[tokio::test]
async fn ipv6_callback_and_ipv4_redirect_host() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral().with_host(RedirectHost::Ipv4))
        .await
        .unwrap();
    let port = server.port();
    assert_eq!(
        server.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    let addr = if has_ipv6() { v6(port) } else { v4(port) };
    let target = callback(&state, "six");
    let browser = client(move || get(addr, &target));
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "six");
    assert_eq!(status(&browser.await.unwrap()), 200);
    assert_port_free(port);
}

#[tokio::test]
async fn falls_back_when_first_ports_are_held_by_v4_and_v6_holders() {
    if !has_ipv6() {
        eprintln!("note: no IPv6 loopback here; the [::1] holder case cannot be set up");
    }
    let (_held4, a) = hold_v4();
    let (_held6, b) = if has_ipv6() { hold_v6() } else { hold_v4() };
    let c = free_port();
    let config = CallbackConfig::default()
        .with_ports([a, b, c])
        .with_timeout(Duration::from_secs(30));
    let server = CallbackServer::bind(config).await.unwrap();
    assert_eq!(server.port(), c);
    assert_eq!(
        server.redirect_uri(),
        format!("http://localhost:{c}/callback")
    );
    let skipped = server.skipped_ports();
    assert_eq!(skipped.len(), 2);
    assert_eq!((skipped[0].port, skipped[0].address), (a, v4(a)));
    let b_addr = if has_ipv6() { v6(b) } else { v4(b) };
    assert_eq!((skipped[1].port, skipped[1].address), (b, b_addr));
    assert_eq!(skipped[1].error.kind(), std::io::ErrorKind::AddrInUse);

    let state = State::generate().unwrap();
    let target = callback(&state, "fallback");
    let browser = client(move || get(v4(c), &target));
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "fallback");
    assert_eq!(status(&browser.await.unwrap()), 200);
    assert_port_free(c);
}

#[tokio::test]
async fn all_ports_busy_names_each_port() {
    let (_held4, a) = hold_v4();
    let (_held6, b) = if has_ipv6() { hold_v6() } else { hold_v4() };
    let config = CallbackConfig::default().with_ports([a, b]);
    let err = CallbackServer::bind(config).await.unwrap_err();
    let Error::AllPortsBusy { attempts } = &err else {
        panic!("expected AllPortsBusy, got {err:?}");
    };
    let ports: Vec<u16> = attempts.iter().map(|t| t.port).collect();
    assert_eq!(ports, [a, b]);
    assert!(
        attempts
            .iter()
            .all(|t| t.error.kind() == std::io::ErrorKind::AddrInUse)
    );
    let message = err.to_string();
    assert!(
        message.starts_with("no callback port available"),
        "{message}"
    );
    assert!(
        message.contains(&format!("port {a} (127.0.0.1:{a}:")),
        "{message}"
    );
    if has_ipv6() {
        assert!(
            message.contains(&format!("port {b} ([::1]:{b}:")),
            "{message}"
        );
    }
    assert!(
        !message.contains("state") && !message.contains("CSRF"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_config_is_rejected_before_binding() {
    let err = CallbackServer::bind(CallbackConfig::default().with_ports([]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_path_and_method_then_the_right_request() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let good = callback(&state, "abc");
    let bad_method = good.clone();
    let browser = client(move || {
        let favicon = get(v4(port), "/favicon.ico");
        // Even with the right code and state, another path does not count.
        let other_path = get(v4(port), &format!("/callback/{}", &bad_method[9..]));
        // A POST that is not a form (response_mode=form_post sends one): 415.
        let post = send(v4(port), &request("POST", &bad_method)).unwrap();
        let put = send(v4(port), &request("PUT", &bad_method)).unwrap();
        let head = send(v4(port), &request("HEAD", &bad_method)).unwrap();
        (favicon, other_path, post, put, head, get(v4(port), &good))
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "abc");
    let (favicon, other_path, post, put, head, good) = browser.await.unwrap();
    assert_eq!(status(&favicon), 404);
    assert_eq!(status(&other_path), 404);
    assert_eq!(status(&post), 415);
    assert_eq!(status(&put), 405);
    assert_eq!(header(&put, "allow"), Some("GET, POST"));
    assert_eq!(status(&head), 405);
    assert_eq!(status(&good), 200);
    assert_port_free(port);
}

#[tokio::test]
async fn state_mismatch_then_match() {
    let state = State::generate().unwrap();
    let old_tab = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let stale = callback(&old_tab, "old");
    let missing = "/callback?code=nostate".to_owned();
    let empty = "/callback?code=x&state=".to_owned();
    // A prefix of the right state is still wrong.
    let prefix = format!("/callback?code=x&state={}", &state.as_str()[..10]);
    let forged_error = format!("/callback?error=access_denied&state={}", old_tab.as_str());
    let good = callback(&state, "fresh");
    let ipv6 = has_ipv6();
    let browser = client(move || {
        let rejected: Vec<String> = [&stale, &missing, &empty, &prefix, &forged_error]
            .into_iter()
            .map(|t| get(v4(port), t))
            .collect();
        let good_addr = if ipv6 { v6(port) } else { v4(port) };
        (rejected, get(good_addr, &good))
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "fresh");
    let (rejected, good) = browser.await.unwrap();
    for page in rejected {
        assert_eq!(status(&page), 400, "{page}");
        assert!(page.contains("still waiting"), "{page}");
        assert_eq!(header(&page, "cache-control"), Some("no-store"));
    }
    assert_eq!(status(&good), 200);
}

#[tokio::test]
async fn duplicate_and_badly_encoded_parameters_keep_waiting() {
    let state = State::generate().unwrap();
    let s = state.as_str().to_owned();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let bad = [
        format!("/callback?code=a&code=b&state={s}"),
        format!("/callback?code=a&state={s}&state={s}"),
        format!("/callback?code=a&state={s}&iss=x&iss=y"),
        format!("/callback?code=%ZZ&state={s}"),
        format!("/callback?code=a%2&state={s}"),
        format!("/callback?code=%FF%FE&state={s}"),
        format!("/callback?code=a%0Ab&state={s}"),
        "/callback".to_owned(),
    ];
    let good = callback(&state, "ok");
    let browser = client(move || {
        let pages: Vec<String> = bad.iter().map(|t| get(v4(port), t)).collect();
        (pages, get(v4(port), &good))
    });
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "ok");
    let (pages, good) = browser.await.unwrap();
    for page in pages {
        assert_eq!(status(&page), 400, "{page}");
        assert!(!page.contains("CSRF"), "not a state problem: {page}");
    }
    assert_eq!(status(&good), 200);
}

#[tokio::test]
async fn access_denied_is_cancelled() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let target = format!(
        "/callback?error=access_denied&error_description=User+said+no&state={}&iss=https%3A%2F%2Fas",
        state.as_str()
    );
    let browser = client(move || get(v4(port), &target));
    let err = server.wait(&state).await.unwrap_err();
    let Error::Cancelled { description, iss } = &err else {
        panic!("expected Cancelled, got {err:?}");
    };
    assert_eq!(description.as_deref(), Some("User said no"));
    assert_eq!(iss.as_deref(), Some("https://as"));
    let page = browser.await.unwrap();
    assert_eq!(status(&page), 200);
    assert!(page.contains("cancelled") && page.contains("You can close this tab"));
    assert_port_free(port);
}

#[tokio::test]
async fn provider_error_is_reported_and_escaped() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let target = format!(
        "/callback?state={}&error=%3Cscript%3Ebad%3C%2Fscript%3E&error_description=Scope+%22x%22+unknown\
         &error_uri=https%3A%2F%2Fas%2Fhelp&code=ignored",
        state.as_str()
    );
    let browser = client(move || get(v4(port), &target));
    let err = server.wait(&state).await.unwrap_err();
    let Error::Authorization {
        error,
        description,
        uri,
        iss,
    } = &err
    else {
        panic!("expected Authorization, got {err:?}");
    };
    assert_eq!(error, "<script>bad</script>");
    assert_eq!(description.as_deref(), Some("Scope \"x\" unknown"));
    assert_eq!(uri.as_deref(), Some("https://as/help"));
    assert_eq!(*iss, None);
    assert_eq!(
        err.to_string(),
        "authorization server returned error \"<script>bad</script>\": Scope \"x\" unknown"
    );
    let page = browser.await.unwrap();
    assert_eq!(status(&page), 200);
    assert!(page.contains("&lt;script&gt;bad&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        !page.contains("unknown"),
        "description waits for the iss check: {page}"
    );
    assert_port_free(port);
}

#[tokio::test]
async fn right_state_without_code_ends_the_flow() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let target = format!("/callback?state={}", state.as_str());
    let browser = client(move || get(v4(port), &target));
    let err = server.wait(&state).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCallback { .. }), "{err:?}");
    assert_eq!(status(&browser.await.unwrap()), 400);
}

#[tokio::test]
async fn timeout_without_any_request() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral().with_timeout(Duration::from_millis(200)))
        .await
        .unwrap();
    let port = server.port();
    let err = server.wait(&state).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                state_mismatch_seen: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "timed out waiting for the authorization callback"
    );
    assert_port_free(port);
}

#[tokio::test]
async fn timeout_after_a_mismatch_says_so() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral().with_timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    let port = server.port();
    // Queued in the backlog before `wait` starts, so it is served well within the timeout.
    let mut stale = connect(v4(port)).unwrap();
    stale
        .write_all(&request("GET", "/callback?code=x&state=old-tab"))
        .unwrap();
    let err = server.wait(&state).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                state_mismatch_seen: true
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("(possible CSRF or an old browser tab)")
    );
    let page = read_all(&mut stale).unwrap();
    assert_eq!(status(&page), 400);
    assert_port_free(port);
}

#[tokio::test]
async fn dropping_the_server_frees_the_port() {
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    drop(server);
    assert_port_free(port);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_connections_do_not_delay_a_valid_callback() {
    let state = State::generate().unwrap();
    // A long header timeout: the wait must not sit out the slow clients below.
    let server =
        CallbackServer::bind(ephemeral().with_header_read_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
    let port = server.port();
    let target = callback(&state, "through");
    let started = Instant::now();
    let browser = client(move || {
        // Slowloris: half a request line, then silence (kept open until the end).
        let slow: Vec<_> = (0..6)
            .map(|i| {
                let mut s = connect(if i % 2 == 0 || !has_ipv6() {
                    v4(port)
                } else {
                    v6(port)
                })
                .unwrap();
                s.write_all(b"GET /callback?co").unwrap();
                s
            })
            .collect();
        // Garbage, oversized heads, too many headers.
        let garbage = send_and_close(v4(port), b"\x00\xff\r\n\r\nnot http at all").unwrap();
        let huge = format!(
            "GET /callback?x={} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(40_000)
        );
        let huge = send_and_close(v4(port), huge.as_bytes()).unwrap();
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let many = send(
            v4(port),
            format!("GET /callback HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
        )
        .unwrap();
        let good = get(v4(port), &target);
        (slow, garbage, huge, many, good)
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "through");
    assert!(started.elapsed() < Duration::from_secs(10));
    let (slow, garbage, huge, many, good) = browser.await.unwrap();
    assert_eq!(status(&good), 200);
    let garbage = String::from_utf8_lossy(&garbage);
    assert!(garbage.is_empty() || status(&garbage) == 400, "{garbage}");
    // The server closes with the rest of the oversized head unread, so the kernel may reset
    // the connection before the client reads the 431.
    let huge = String::from_utf8_lossy(&huge);
    assert!(huge.is_empty() || status(&huge) == 431, "{huge}");
    assert_eq!(status(&many), 431);
    drop(slow);
    assert_port_free(port);
}

#[tokio::test]
async fn slow_clients_beyond_the_connection_cap_are_timed_out() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(
        ephemeral()
            .with_max_connections(2)
            .with_header_read_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let port = server.port();
    // Four slow clients take both slots and queue behind them; the valid request waits in the
    // backlog until the header timeout frees slots.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let mut s = connect(v4(port)).unwrap();
            s.write_all(b"GET /callback?co").unwrap();
            s
        })
        .collect();
    let target = callback(&state, "patient");
    let browser = client(move || get(v4(port), &target));
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "patient");
    assert_eq!(status(&browser.await.unwrap()), 200);
    drop(slow);
    assert_port_free(port);
}

#[tokio::test]
async fn a_second_valid_callback_after_the_first_is_refused() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let target = callback(&state, "once");
    let replay = target.clone();
    let browser = client(move || get(v4(port), &target));
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "once");
    assert_eq!(status(&browser.await.unwrap()), 200);
    // The listener is gone: a replay cannot even connect.
    assert!(
        std::net::TcpStream::connect_timeout(&v4(port), Duration::from_secs(2)).is_err(),
        "replay of {replay} reached a closed listener"
    );
}

#[tokio::test]
async fn extreme_settings_do_not_panic() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(
        ephemeral()
            .with_timeout(Duration::MAX)
            .with_header_read_timeout(Duration::MAX)
            .with_max_connections(usize::MAX),
    )
    .await
    .unwrap();
    let port = server.port();
    let target = callback(&state, "big");
    let browser = client(move || get(v4(port), &target));
    assert_eq!(server.wait(&state).await.unwrap().code.secret(), "big");
    assert_eq!(status(&browser.await.unwrap()), 200);
}

/// Idle connections on one family used to take every connection slot, so the
/// other listener was never served until the sign-in timed out.
async fn valid_callback_after_idle_connections(valid_on_ipv6: bool) {
    let state = State::generate().unwrap();
    // Header timeout and wait timeout far beyond the bound asserted below: the callback must be
    // served because the idle connections cannot hold it back, not because they time out.
    let server = CallbackServer::bind(
        ephemeral()
            .with_header_read_timeout(Duration::from_secs(60))
            .with_timeout(Duration::from_secs(40)),
    )
    .await
    .unwrap();
    let port = server.port();
    let target = callback(&state, "fair");
    let started = Instant::now();
    let browser = client(move || {
        // 80 idle connections to the IPv4 listener (more than any connection limit), kept open.
        let idle: Vec<_> = (0..80).map(|_| connect(v4(port)).unwrap()).collect();
        let good = get(if valid_on_ipv6 { v6(port) } else { v4(port) }, &target);
        (idle, good)
    });
    let response = server.wait(&state).await;
    let elapsed = started.elapsed();
    assert_eq!(response.unwrap().code.secret(), "fair");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let (idle, good) = browser.await.unwrap();
    assert_eq!(status(&good), 200, "{good}");
    drop(idle);
    assert_port_free(port);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_ipv4_connections_do_not_starve_the_ipv6_listener() {
    if !has_ipv6() {
        eprintln!("note: no IPv6 loopback here; skipping the cross-family case");
        return;
    }
    valid_callback_after_idle_connections(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_hold_back_a_valid_callback_on_the_same_family() {
    valid_callback_after_idle_connections(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_on_both_families_do_not_hold_back_a_valid_callback() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(
        ephemeral()
            .with_max_connections(4)
            .with_header_read_timeout(Duration::from_secs(60))
            .with_timeout(Duration::from_secs(40)),
    )
    .await
    .unwrap();
    let port = server.port();
    let target = callback(&state, "partial-heads");
    let browser = client(move || {
        // Half-sent request lines on every listener, several times the limit.
        let slow: Vec<_> = (0..24)
            .map(|i| {
                let addr = if i % 2 == 0 || !has_ipv6() {
                    v4(port)
                } else {
                    v6(port)
                };
                let mut s = connect(addr).unwrap();
                s.write_all(b"GET /callback?co").unwrap();
                s
            })
            .collect();
        let good = get(if has_ipv6() { v6(port) } else { v4(port) }, &target);
        (slow, good)
    });
    assert_eq!(
        server.wait(&state).await.unwrap().code.secret(),
        "partial-heads"
    );
    let (slow, good) = browser.await.unwrap();
    assert_eq!(status(&good), 200, "{good}");
    drop(slow);
    assert_port_free(port);
}

/// `POST {target}` with a form body (and `Content-Length`).
fn form_post(body: &str, content_type: &str) -> Vec<u8> {
    format!(
        "POST /callback HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `response_mode=form_post` (the browser POSTs the response as a form). Judged
/// exactly like a GET's query: a wrong state, a repeated parameter, a body that is not a form or
/// is too large are refused and the wait goes on; the right form completes it once, with `iss`.
#[tokio::test]
async fn form_post_is_judged_like_a_query() {
    let state = State::generate().unwrap();
    let old_tab = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral()).await.unwrap();
    let port = server.port();
    let s = state.as_str().to_owned();
    let old = old_tab.as_str().to_owned();
    let browser = client(move || {
        let addr = v4(port);
        let form = "application/x-www-form-urlencoded";
        let wrong_state = send(addr, &form_post(&format!("code=old&state={old}"), form)).unwrap();
        let repeated = send(
            addr,
            &form_post(&format!("code=a&state={s}&iss=x&iss=y"), form),
        )
        .unwrap();
        let json = send(
            addr,
            &form_post(
                &format!("{{\"code\":\"a\",\"state\":\"{s}\"}}"),
                "application/json",
            ),
        )
        .unwrap();
        let huge = format!("code=a&state={s}&pad={}", "x".repeat(17 * 1024));
        let too_large = send(addr, &form_post(&huge, form)).unwrap();
        let good = send(
            addr,
            &form_post(
                &format!("code=form-code&state={s}&iss=https%3A%2F%2Fas.example%2F"),
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
        )
        .unwrap();
        (wrong_state, repeated, json, too_large, good)
    });
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "form-code");
    assert_eq!(response.iss.as_deref(), Some("https://as.example/"));
    let (wrong_state, repeated, json, too_large, good) = browser.await.unwrap();
    assert_eq!(status(&wrong_state), 400, "{wrong_state}");
    assert_eq!(status(&repeated), 400, "{repeated}");
    assert_eq!(status(&json), 415, "{json}");
    assert!(json.contains("<html"), "a page, not a bare status");
    assert_eq!(status(&too_large), 413, "{too_large}");
    assert_eq!(status(&good), 200, "{good}");
    assert!(
        !good.contains("form-code"),
        "the page never echoes the code"
    );
    assert_port_free(port);
}

/// Single use: once a form POST completed the sign-in, a replayed one is refused.
#[tokio::test]
async fn a_replayed_form_post_is_refused() {
    let state = State::generate().unwrap();
    let server = CallbackServer::bind(ephemeral().with_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    let port = server.port();
    let body = format!("code=once&state={}", state.as_str());
    let first = form_post(&body, "application/x-www-form-urlencoded");
    let browser = client(move || send(v4(port), &first).unwrap());
    let response = server.wait(&state).await.unwrap();
    assert_eq!(response.code.secret(), "once");
    assert_eq!(status(&browser.await.unwrap()), 200);
    // The listener is closed after completion: a replay cannot even connect.
    assert!(
        send(
            v4(port),
            &form_post(&body, "application/x-www-form-urlencoded")
        )
        .is_err()
    );
}

/// Red-team finding: a `POST` whose head is complete but whose form body trickles in (or never
/// comes) counted as "mid-request", so it could not be evicted: a few of them took every slot and
/// the browser's real callback was closed until they hit their deadline. Such connections are now
/// evictable like half-sent heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_form_bodies_do_not_hold_back_a_valid_callback() {
    let state = State::generate().unwrap();
    // Header timeout and wait timeout far beyond the bound asserted below: the callback must be
    // served because the slow bodies cannot hold it back, not because they time out.
    let server = CallbackServer::bind(
        ephemeral()
            .with_max_connections(2)
            .with_header_read_timeout(Duration::from_secs(60))
            .with_timeout(Duration::from_secs(40)),
    )
    .await
    .unwrap();
    let port = server.port();
    let target = callback(&state, "despite-slow-bodies");
    let started = Instant::now();
    let browser = client(move || {
        // Each slow client asks for `100 Continue`, which the listener sends only once it is
        // reading the body: so every slot is known to hold a body-reading connection before the
        // browser connects (no race with the accept loop).
        let slow: Vec<_> = (0..2)
            .map(|_| {
                let mut s = connect(v4(port)).unwrap();
                s.write_all(
                    b"POST /callback HTTP/1.1\r\nHost: localhost\r\n\
                      Content-Type: application/x-www-form-urlencoded\r\n\
                      Expect: 100-continue\r\nContent-Length: 4000\r\n\r\n",
                )
                .unwrap();
                let mut interim = [0u8; 25];
                std::io::Read::read_exact(&mut s, &mut interim).unwrap();
                assert!(interim.starts_with(b"HTTP/1.1 100 Continue"));
                s.write_all(b"code=a&st").unwrap();
                s
            })
            .collect();
        let good = get(v4(port), &target);
        (slow, good)
    });
    let response = server.wait(&state).await;
    let elapsed = started.elapsed();
    assert_eq!(response.unwrap().code.secret(), "despite-slow-bodies");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let (slow, good) = browser.await.unwrap();
    assert_eq!(status(&good), 200, "{good}");
    drop(slow);
    assert_port_free(port);
}
