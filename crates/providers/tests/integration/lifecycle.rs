//! Token lifecycle under real conditions, against the repository's oidc-provider:
//! short-lived tokens and the refresh margin, single-flight refresh across processes, transient
//! answers waited out, rotations never lost, complete logout.
//!
//! The 429/503 answers and the failing revocation are injected by the server's documented test
//! hooks (`fault`, `revocation_fault` in `tests/authorization-server/server.mjs`): oidc-provider
//! itself never rate-limits, so those are quirk-stub behaviours on top of the real server.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use context_harness_providers::storage::{self, FileStore, ProviderLock, ProviderName, TokenStore};
use context_harness_providers::{
    AuthStatus, AuthenticateOptions, Environment, ErrorCode, OAuthService, OAuthTokens,
    ProviderRegistry, Revocation, SignInFlow,
};
use serde_json::{Value, json};

use crate::support::{AuthServer, DeviceUi, Harness, captured_logs, test_client};
use context_harness_providers::protocol::DeviceAuthorization;

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(30))
}

fn start(env: &[(&str, &str)]) -> Option<AuthServer> {
    captured_logs();
    AuthServer::start(env)
}

async fn refresh_requests(server: &AuthServer) -> u64 {
    server.stats().await["refresh_requests"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_second_tokens_are_used_for_half_their_life_then_refreshed_once() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let first = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    assert_eq!(first.expires_in, Some(30));

    // Right after sign-in: no refresh, whichever path is used.
    for _ in 0..5 {
        let cached = h.another_service().cached_valid_token("local").unwrap();
        assert_eq!(cached.unwrap().access_token, first.access_token);
        let ensured = h.service.ensure_valid_token("local").await.unwrap();
        assert_eq!(ensured.access_token, first.access_token);
    }
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::Authenticated
    );
    assert_eq!(refresh_requests(&server).await, 0);

    // Past the 15 s margin (not yet expired): exactly one refresh, then the new token is used.
    h.backdate("local", 16.0);
    assert_eq!(
        h.service.get_status("local").unwrap(),
        AuthStatus::TokenExpired
    );
    assert!(h.service.cached_valid_token("local").unwrap().is_none());
    let refreshed = h.service.ensure_valid_token("local").await.unwrap();
    assert_ne!(refreshed.access_token, first.access_token);
    for _ in 0..5 {
        let again = h.service.ensure_valid_token("local").await.unwrap();
        assert_eq!(again.access_token, refreshed.access_token);
    }
    assert_eq!(refresh_requests(&server).await, 1);
    assert!(server.is_active(refreshed.access_token.secret()).await);
}

/// 20 processes (the test binary, re-run as `flows::child_ensure_valid_token`) released together on
/// an expired token whose successor lives just as short: exactly one refresh request, and all print
/// the same token.
async fn twenty_processes_on_an_expired_token(ttl: &str) {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", ttl)]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    h.service.authenticate("local", opts()).await.unwrap();
    let ttl: f64 = ttl.parse().unwrap();
    h.backdate("local", ttl + 1.0); // expired
    assert_eq!(refresh_requests(&server).await, 0);

    let exe = std::env::current_exe().unwrap();
    let go = h.home.path().join("go");
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "flows::child_ensure_valid_token",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CH_CHILD_HOME", h.home.path())
                .env("CH_CHILD_GO", &go)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(&go, b"go").unwrap();
    let mut seen = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = stdout
            .split_once("CHILD_TOKEN=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no token in child output: {stdout}"))
            .to_owned();
        seen.push(token);
    }
    assert_eq!(
        refresh_requests(&server).await,
        1,
        "exactly one refresh at the server ({ttl} s tokens)"
    );
    let stored = h.stored("local").unwrap();
    assert!(
        seen.iter().all(|t| t == stored.access_token.secret()),
        "all 20 print the stored new token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_refresh_once_with_5_s_tokens() {
    twenty_processes_on_an_expired_token("5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_refresh_once_with_30_s_tokens() {
    twenty_processes_on_an_expired_token("30").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_waits_out_429_and_503() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    h.service.authenticate("local", opts()).await.unwrap();
    // 429 with a JSON `temporarily_unavailable` body, 429 with a plain-text body, 503 without a
    // Retry-After (exponential back-off), 400 `temporarily_unavailable` (RFC 6749 §5.2).
    let cases = [
        json!({"mode": "429", "retry_after": "1", "body": "json"}),
        json!({"mode": "429", "retry_after": "1", "body": "text"}),
        json!({"mode": "503", "body": "text"}),
    ];
    for (i, fault) in cases.into_iter().enumerate() {
        h.backdate("local", 16.0);
        let before_file = h.token_file("local").unwrap();
        let before = refresh_requests(&server).await;
        let mut fault = fault;
        fault["grant_type"] = json!("refresh_token");
        fault["times"] = json!(1);
        server.control(json!({ "fault": fault.clone() })).await;
        let started = Instant::now();
        let tokens = h.service.ensure_valid_token("local").await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(
            refresh_requests(&server).await,
            before + 2,
            "{fault}: one extra request"
        );
        if fault["retry_after"] == "1" {
            assert!(
                elapsed >= Duration::from_millis(950),
                "{fault}: {elapsed:?}"
            );
        }
        assert!(elapsed < Duration::from_secs(10), "{fault}: {elapsed:?}");
        assert_ne!(h.token_file("local").unwrap(), before_file, "{fault}");
        assert!(server.is_active(tokens.access_token.secret()).await, "{i}");
    }
    assert_eq!(server.stats().await["faults_served"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_that_stays_rate_limited_is_a_network_error_and_changes_nothing() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("providers.toml"),
        crate::support::local_providers_toml(&server.issuer, "ch-public", ""),
    )
    .unwrap();
    let browser = crate::support::HttpBrowser::default();
    let service = OAuthService::builder()
        .home(home.path())
        .environment(Environment::empty())
        .store(Arc::new(FileStore::new(storage::tokens_dir(home.path()))))
        .registry(ProviderRegistry::load(home.path()).unwrap())
        .browser(browser.opener())
        .refresh_retry_budget(Duration::from_millis(1500))
        .build()
        .unwrap();
    service.authenticate("local", opts()).await.unwrap();
    let file = FileStore::new(storage::tokens_dir(home.path()));
    let name = ProviderName::new("local").unwrap();
    let mut tokens = file.load(&name).unwrap().unwrap();
    tokens.issued_at -= 16.0;
    file.save(&name, &tokens).unwrap();
    let before = std::fs::read(file.path_for(&name)).unwrap();

    server
        .control(json!({ "fault": {"mode": "429", "retry_after": "1", "body": "text", "grant_type": "refresh_token"} }))
        .await;
    let err = service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    assert_eq!(err.http_status(), Some(429));
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    // Waited once (1 s), then the next wait would pass the budget.
    assert_eq!(refresh_requests(&server).await, 2);
    assert_eq!(std::fs::read(file.path_for(&name)).unwrap(), before);
}

/// A store that fails every save while `failing` is set (a full disk, a read-only directory or a
/// keyring error — CI runs as root, where a read-only directory does not fail).
struct FlakyStore {
    inner: FileStore,
    failing: AtomicBool,
    saves: Mutex<u32>,
}

impl TokenStore for FlakyStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> storage::Result<()> {
        *self.saves.lock().unwrap() += 1;
        if self.failing.load(Ordering::SeqCst) {
            return Err(storage::Error::Io {
                op: "write",
                path: self.inner.path_for(provider),
                source: std::io::Error::other("no space left on device (injected)"),
            });
        }
        self.inner.save(provider, tokens)
    }
    fn load(&self, provider: &ProviderName) -> storage::Result<Option<OAuthTokens>> {
        self.inner.load(provider)
    }
    fn delete(&self, provider: &ProviderName) -> storage::Result<bool> {
        self.inner.delete(provider)
    }
    fn name(&self) -> &'static str {
        "file"
    }
    fn location(&self, provider: &ProviderName) -> String {
        self.inner.location(provider)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_save_fails_is_kept_and_the_new_refresh_token_is_used() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens_dir = storage::tokens_dir(h.home.path());
    let flaky = Arc::new(FlakyStore {
        inner: FileStore::new(tokens_dir.clone()),
        failing: AtomicBool::new(false),
        saves: Mutex::new(0),
    });
    let service = OAuthService::builder()
        .home(h.home.path())
        .environment(Environment::empty())
        .store(Arc::clone(&flaky) as Arc<dyn TokenStore>)
        .registry(ProviderRegistry::load(h.home.path()).unwrap())
        .browser(h.browser.opener())
        .build()
        .unwrap();
    let first = service.authenticate("local", opts()).await.unwrap().tokens;
    let old_rt = first.refresh_token.clone().unwrap();
    h.backdate("local", 16.0);

    flaky.failing.store(true, Ordering::SeqCst);
    let saves_before = *flaky.saves.lock().unwrap();
    let refreshed = service.ensure_valid_token("local").await.unwrap();
    let new_rt = refreshed.refresh_token.clone().unwrap();
    assert_ne!(new_rt, old_rt, "the server rotated the refresh token");
    assert_eq!(
        *flaky.saves.lock().unwrap() - saves_before,
        2,
        "tried, retried once"
    );
    // The store still holds the old set; the recovery file (0600) holds the new one, and reads
    // prefer it.
    assert_eq!(
        h.stored("local").unwrap().refresh_token,
        Some(old_rt.clone())
    );
    let recovery = tokens_dir.join("local.recovery");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&recovery).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(service.get_tokens("local").unwrap(), refreshed);
    assert_eq!(
        service
            .cached_valid_token("local")
            .unwrap()
            .unwrap()
            .access_token,
        refreshed.access_token
    );
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(
        logs.contains("local.recovery"),
        "the warning says where the tokens are"
    );

    // The next refresh (the store still failing) sends the NEW refresh token, and the server
    // accepts it; the old one is never sent again.
    let again = service.refresh_tokens("local").await.unwrap();
    let last = server.last_token_request().await;
    assert_eq!(last["refresh_token"], new_rt.secret());
    assert_ne!(again.refresh_token.as_ref(), Some(&new_rt));
    assert_eq!(service.get_tokens("local").unwrap(), again);

    // Once the store works again, the newest set moves back into it and the recovery file goes.
    flaky.failing.store(false, Ordering::SeqCst);
    let third = service.refresh_tokens("local").await.unwrap();
    assert_eq!(
        server.last_token_request().await["refresh_token"],
        again.refresh_token.as_ref().unwrap().secret()
    );
    assert_eq!(h.stored("local").unwrap(), third);
    assert!(!recovery.exists());
    assert!(server.is_active(third.access_token.secret()).await);
    assert_eq!(refresh_requests(&server).await, 3);
    // The old refresh token was never replayed: had it been, oidc-provider's reuse detection would
    // have revoked the grant, and the newest refresh token would be inactive.
    assert!(
        server
            .is_active(third.refresh_token.as_ref().unwrap().secret())
            .await
    );
}

/// A store whose saves wait for a signal, to drop the caller while the save is in flight.
struct GatedStore {
    inner: FileStore,
    started: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
    gate: AtomicBool,
}

impl TokenStore for GatedStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> storage::Result<()> {
        if self.gate.load(Ordering::SeqCst) {
            if let Some(tx) = self.started.lock().unwrap().take() {
                let _ = tx.send(());
            }
            let _ = self.release.lock().unwrap().recv();
        }
        self.inner.save(provider, tokens)
    }
    fn load(&self, provider: &ProviderName) -> storage::Result<Option<OAuthTokens>> {
        self.inner.load(provider)
    }
    fn delete(&self, provider: &ProviderName) -> storage::Result<bool> {
        self.inner.delete(provider)
    }
    fn name(&self) -> &'static str {
        "file"
    }
    fn location(&self, provider: &ProviderName) -> String {
        self.inner.location(provider)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_refresh_still_saves_the_rotation() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "30")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens_dir = storage::tokens_dir(h.home.path());
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let gated = Arc::new(GatedStore {
        inner: FileStore::new(tokens_dir.clone()),
        started: Mutex::new(Some(started_tx)),
        release: Mutex::new(release_rx),
        gate: AtomicBool::new(false),
    });
    let service = Arc::new(
        OAuthService::builder()
            .home(h.home.path())
            .environment(Environment::empty())
            .store(Arc::clone(&gated) as Arc<dyn TokenStore>)
            .registry(ProviderRegistry::load(h.home.path()).unwrap())
            .browser(h.browser.opener())
            .build()
            .unwrap(),
    );
    let first = service.authenticate("local", opts()).await.unwrap().tokens;
    h.backdate("local", 16.0);
    gated.gate.store(true, Ordering::SeqCst);

    let task = {
        let service = Arc::clone(&service);
        tokio::spawn(async move { service.ensure_valid_token("local").await })
    };
    // The server has answered and the save is under way: cancel the caller now.
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();

    // The refresh lock is held until the save is done; once we get it, the new set is stored.
    let name = ProviderName::new("local").unwrap();
    let lock = tokio::task::spawn_blocking(move || {
        ProviderLock::acquire(&tokens_dir, &name, Duration::from_secs(20)).unwrap()
    })
    .await
    .unwrap();
    let stored = h.stored("local").unwrap();
    drop(lock);
    assert_ne!(stored.refresh_token, first.refresh_token);
    assert_eq!(
        server.last_token_request().await["refresh_token"],
        first.refresh_token.as_ref().unwrap().secret()
    );
    assert_eq!(refresh_requests(&server).await, 1);
    assert!(
        server
            .is_active(stored.refresh_token.as_ref().unwrap().secret())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_access_token_even_when_the_refresh_token_revocation_fails() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    let tokens = h
        .service
        .authenticate("local", opts())
        .await
        .unwrap()
        .tokens;
    server
        .control(json!({ "revocation_fault": {"token_type_hint": "refresh_token", "times": 1} }))
        .await;
    let outcome = h.service.logout("local").await.unwrap();
    assert!(outcome.deleted);
    assert!(h.stored("local").is_none());
    assert_eq!(outcome.tokens.len(), 2, "{outcome:?}");
    assert_eq!(outcome.tokens[0].token, "refresh token");
    assert!(
        matches!(outcome.tokens[0].result, Revocation::Failed { .. }),
        "{outcome:?}"
    );
    assert_eq!(outcome.tokens[1].token, "access token");
    assert_eq!(outcome.tokens[1].result, Revocation::Revoked);
    assert!(matches!(outcome.revocation, Revocation::Failed { .. }));
    assert!(!server.is_active(tokens.access_token.secret()).await);
    let stats = server.stats().await;
    assert_eq!(stats["revocation_requests"], 2);
    assert_eq!(stats["revocation_faults_served"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_token_a_valid_token_is_used_and_refresh_says_why_not() {
    let Some(server) = start(&[("AS_AUTO_APPROVE", "1"), ("AS_ACCESS_TOKEN_TTL", "3600")]) else {
        return;
    };
    let h = Harness::new(&server.issuer);
    // Without offline_access oidc-provider issues no refresh token.
    let tokens = h
        .service
        .authenticate("local", opts().scopes(["openid"]))
        .await
        .unwrap()
        .tokens;
    assert!(tokens.refresh_token.is_none());

    let err = h.service.refresh_tokens("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    let message = err.to_string();
    assert!(message.contains("no refresh token"), "{message}");
    assert!(message.contains("valid for another 59 min"), "{message}");
    assert!(!message.contains("has expired"), "{message}");

    // Within the margin but not expired: still usable, no request.
    h.backdate("local", 3570.0);
    let ensured = h.service.ensure_valid_token("local").await.unwrap();
    assert_eq!(ensured.access_token, tokens.access_token);
    // Expired: the old message, which is true then.
    h.backdate("local", 60.0);
    let err = h.service.ensure_valid_token("local").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    assert!(err.to_string().contains("has expired"), "{err}");
    assert_eq!(server.stats().await["token_requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_polling_waits_out_a_429() {
    let Some(server) = start(&[]) else {
        return;
    };
    server
        .control(json!({
            "device_interval": 1,
            "fault": {"mode": "429", "retry_after": "1", "body": "json", "times": 1,
                      "grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
        }))
        .await;
    let h = Harness::new(&server.issuer);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let options = opts()
        .flow(SignInFlow::Device)
        .ui(DeviceUi(move |a: &DeviceAuthorization| {
            let _ = tx.send(a.user_code.clone());
        }));
    let issuer = server.issuer.clone();
    // Approve once the first poll (the one answered 429) has reached the server.
    let driver = tokio::spawn(async move {
        let user_code = rx.recv().await.unwrap();
        let client = test_client();
        for _ in 0..100 {
            let stats: Value = client
                .get(format!("{issuer}/test/stats"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if stats["faults_served"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = client
            .post(format!("{issuer}/test/device"))
            .json(&json!({"user_code": user_code, "action": "approve"}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    });
    let outcome = h.service.authenticate("local", options).await.unwrap();
    driver.await.unwrap();
    assert!(outcome.redirect_uri.is_empty());
    assert!(server.is_active(outcome.tokens.access_token.secret()).await);
    let stats = server.stats().await;
    assert_eq!(stats["faults_served"], 1);
    assert_eq!(
        stats["device_code_requests"], 2,
        "one extra request: {stats}"
    );
}
