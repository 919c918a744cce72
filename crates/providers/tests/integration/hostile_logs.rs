//! A library user installs their own `tracing` subscriber, which may not sanitise anything (the
//! one here, [`captured_logs`], is `tracing-subscriber`'s plain formatter at TRACE). The library's
//! own log call sites must therefore pass server text through the terminal sanitiser: against a
//! hostile server ([`HostileServer`], a local stub) every sign-in below fails, and nothing this
//! test binary logged holds an escape sequence, a C1 control or a bidi override.

use std::time::Duration;

use context_harness_providers::{
    AuthenticateOptions, Environment, ErrorCode, HttpSettings, NextStep,
};

use crate::hostile_stub::{HostileServer, Mode, assert_clean};
use crate::support::{HttpBrowser, captured_logs, service_for};

fn opts() -> AuthenticateOptions {
    AuthenticateOptions::new()
        .ports([0])
        .timeout(Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_text_never_reaches_the_logs_raw() {
    captured_logs();
    for mode in [
        Mode::UnprintableClientId,
        Mode::RegistrationRefused,
        Mode::TokenRefused,
    ] {
        let stub = HostileServer::start(mode);
        let home = tempfile::tempdir().unwrap();
        let browser = HttpBrowser::default();
        let service = service_for(
            home.path(),
            Environment::empty(),
            HttpSettings::default(),
            browser.opener(),
        );
        let err = service
            .authenticate(&stub.mcp_url(), opts())
            .await
            .err()
            .unwrap_or_else(|| panic!("{mode:?}: a hostile server's sign-in succeeded"));
        assert_clean(&format!("{mode:?} error"), &err.to_string());
        assert_eq!(err.code(), ErrorCode::AuthFailed, "{mode:?}: {err}");
        let seen = stub.seen();
        assert!(seen.contains(&"POST /register".to_owned()), "{seen:?}");
        match mode {
            Mode::UnprintableClientId => {
                assert!(
                    err.to_string()
                        .contains("issued a client_id that is not printable ASCII"),
                    "{err}"
                );
                assert_eq!(err.next_step(), Some(&NextStep::UsePreRegisteredClient));
                // Refused before any use: no authorization request, nothing stored.
                assert!(!seen.contains(&"GET /authorize".to_owned()), "{seen:?}");
                assert!(
                    std::fs::read_dir(home.path().join("registrations"))
                        .map(|d| d.count())
                        .unwrap_or(0)
                        == 0
                );
            }
            Mode::TokenRefused => {
                assert!(seen.contains(&"POST /token".to_owned()), "{seen:?}");
                assert_eq!(err.oauth_error(), Some("invalid_grant"));
            }
            _ => {}
        }
    }
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    // The logs are real: discovery and registration were logged.
    assert!(
        logs.contains("authorization-server metadata found"),
        "{logs}"
    );
    assert!(logs.contains("several authorization servers"), "{logs}");
    assert!(logs.contains("registered a client"), "{logs}");
    assert_clean("the library's logs", &logs);
}
