//! One interactive sign-in per provider across services (as separate processes build them) and
//! tasks, through the library's `token_with`: while one sign-in runs, the others wait for it (each
//! told once through `SignInUi::waiting_for_sign_in`) and return its token; one browser opens.
//! Against the repository's oidc-provider (auto-approving); the browser is the plain-HTTP
//! `HttpBrowser` of `support.rs`, started only when the test lets it go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::{AuthenticateOptions, SignInUi};
use tokio::sync::watch;

use crate::support::{AuthServer, Harness, captured_logs, drive};

/// Counts `waiting_for_sign_in` calls.
#[derive(Clone)]
struct Waits(Arc<watch::Sender<usize>>);

impl SignInUi for Waits {
    fn waiting_for_sign_in(&self, _provider: &str) {
        self.0.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_calls_share_one_sign_in() {
    captured_logs();
    let Some(server) = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let opened = Arc::new(AtomicUsize::new(0));
    let (go, gate) = watch::channel(false);
    let callbacks = Arc::new(Mutex::new(Vec::new()));
    // A browser that counts its starts and follows the sign-in once the test lets it.
    let opener = {
        let (opened, callbacks) = (Arc::clone(&opened), Arc::clone(&callbacks));
        move |url: &str| {
            opened.fetch_add(1, Ordering::SeqCst);
            let (url, callbacks, mut gate) = (url.to_owned(), Arc::clone(&callbacks), gate.clone());
            tokio::runtime::Handle::current().spawn(async move {
                let _ = gate.wait_for(|go| *go).await;
                if let Err(e) = drive(&url, &callbacks).await {
                    eprintln!("http browser: {e}");
                }
            });
            Ok(())
        }
    };
    let (waits, mut waited) = watch::channel(0usize);
    let waits = Waits(Arc::new(waits));
    let options = || {
        AuthenticateOptions::new()
            .ports([0])
            .timeout(Duration::from_secs(60))
            .browser(opener.clone())
            .ui(waits.clone())
    };
    // Three services on one home (three processes), and a second task on one of them.
    let services = [
        h.another_service(),
        h.another_service(),
        h.another_service(),
    ];
    // Boxed: four sign-in futures side by side would not fit on the test thread's stack.
    let calls = [
        Box::pin(services[0].token_with("local", options())),
        Box::pin(services[1].token_with("local", options())),
        Box::pin(services[2].token_with("local", options())),
        Box::pin(services[2].token_with("local", options())),
    ];
    let waiting = async {
        // Every call but the signing-in one waits (and says so once) before the browser goes on.
        let _ = waited.wait_for(|n| *n >= 3).await;
        let _ = go.send(true);
    };
    let both = async { tokio::join!(futures_join(calls), waiting) };
    let (tokens, ()) = tokio::time::timeout(Duration::from_secs(120), both)
        .await
        .expect("every call answered, once the waiters had said they wait");
    let tokens: Vec<String> = tokens
        .into_iter()
        .map(|t| t.unwrap().secret().to_owned())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(opened.load(Ordering::SeqCst), 1, "one browser");
    assert_eq!(*waits.0.borrow(), 3, "each waiter told once");
    assert_eq!(server.stats().await["authorization_code_requests"], 1);
    assert_eq!(h.stored("local").unwrap().access_token.secret(), tokens[0]);
}

/// Awaits every future of `calls` concurrently, in order.
async fn futures_join<F: Future>(calls: [F; 4]) -> Vec<F::Output> {
    let [a, b, c, d] = calls;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    vec![a, b, c, d]
}
