//! The browser started for a sign-in gets an environment built from an allowlist.
//!
//! The parent test starts this test binary again as a child process whose environment holds
//! secret-like variables, the tool's own `CONTEXT_HARNESS_*`, an unlisted harmless marker and the
//! variables a browser needs, with `$BROWSER` naming a small script that dumps its own environment
//! to a file and hands the authorization URL back through a FIFO. The child signs in with the
//! default [`SystemBrowser`](context_harness_providers::SystemBrowser) against the real local
//! authorization server; the parent then checks the dump.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_harness_providers::storage::{self, FileStore};
use context_harness_providers::{
    AuthenticateOptions, Environment, OAuthService, ProviderRegistry, is_browser_env_name,
};

use crate::support::{AuthServer, drive, local_providers_toml};

const SECRETS: [(&str, &str); 8] = [
    ("ACME_CLIENT_SECRET", "acme-secret-the-browser-must-not-see"),
    (
        "LOCAL_CLIENT_SECRET",
        "local-secret-the-browser-must-not-see",
    ),
    ("GH_TOKEN", "gh-token-the-browser-must-not-see"),
    ("client_secret", "bare-secret-the-browser-must-not-see"),
    ("GITHUB_PAT", "github-pat-the-browser-must-not-see"),
    (
        "DATABASE_URL",
        "postgres://u:db-pw-the-browser-must-not-see@db/x",
    ),
    (
        "CONTEXT_HARNESS_CLIENT_SECRET",
        "ch-secret-the-browser-must-not-see",
    ),
    ("LC_SECRET_TOKEN", "lc-token-the-browser-must-not-see"),
];

/// Variables the shell running the stand-in sets itself.
const SHELL_ADDED: [&str; 4] = ["PWD", "OLDPWD", "SHLVL", "_"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_is_started_without_secrets_in_its_environment() {
    let Some(server) = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(
        home.join("providers.toml"),
        local_providers_toml(&server.issuer, "ch-public", ""),
    )
    .unwrap();
    let fifo = dir.path().join("url.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let dump = dir.path().join("browser-env.txt");
    let script = dir.path().join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > '{}'\nprintf '%s' \"$1\" > '{}'\n",
            dump.display(),
            fifo.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "browser_env::child_signs_in_with_the_system_browser",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CH_BROWSER_CHILD_HOME", &home)
        .env("CH_BROWSER_CHILD_FIFO", &fifo)
        .env("BROWSER", &script)
        .env("CH_UNLISTED_MARKER", "harmless-but-not-listed")
        .env("DISPLAY", ":97")
        .env("LC_TIME", "C")
        .env(
            "https_proxy",
            "http://alice:proxy-pw-not-for-browsers@proxy.invalid:3128",
        );
    for (name, value) in SECRETS {
        child.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || child.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD_SIGNED_IN"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let env = std::fs::read_to_string(&dump).unwrap();
    // The dump is real: what a browser needs reached it, proxy credentials removed.
    for wanted in [
        "DISPLAY=:97",
        "LC_TIME=C",
        "https_proxy=http://proxy.invalid:3128",
    ] {
        assert!(env.lines().any(|l| l == wanted), "{wanted} missing:\n{env}");
    }
    for name in ["PATH", "HOME"] {
        assert!(
            env.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name}:\n{env}"
        );
    }
    assert!(!env.contains("proxy-pw-not-for-browsers"), "{env}");
    for (name, value) in SECRETS {
        assert!(!env.contains(value), "{name} reached the browser");
    }
    // Nothing outside the allowlist: not the marker, not the child's own test variables.
    for line in env.lines() {
        let name = line.split('=').next().unwrap_or_default();
        assert!(
            is_browser_env_name(name) || SHELL_ADDED.contains(&name),
            "{name} reached the browser"
        );
    }
}

/// Child-process entry for the test above; a no-op in a normal run.
#[test]
#[allow(clippy::print_stdout)] // the parent reads the outcome from stdout
fn child_signs_in_with_the_system_browser() {
    let (Some(home), Some(fifo)) = (
        std::env::var_os("CH_BROWSER_CHILD_HOME"),
        std::env::var_os("CH_BROWSER_CHILD_FIFO"),
    ) else {
        return;
    };
    let home = std::path::PathBuf::from(home);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The default opener: no `.browser(…)`.
    let service = OAuthService::builder()
        .home(&home)
        .environment(Environment::empty())
        .store(Arc::new(FileStore::new(storage::tokens_dir(&home))))
        .registry(ProviderRegistry::load(&home).unwrap())
        .build()
        .unwrap();
    runtime.block_on(async {
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&callbacks);
        // The script writes the URL into the FIFO once it has run; reading blocks until then.
        let driver = tokio::spawn(async move {
            let url = tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo))
                .await
                .unwrap()
                .unwrap();
            drive(&url, &seen).await
        });
        let outcome = service
            .authenticate(
                "local",
                AuthenticateOptions::new()
                    .ports([0])
                    .timeout(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        driver.await.unwrap().unwrap();
        assert!(!outcome.tokens.access_token.secret().is_empty());
        assert_eq!(callbacks.lock().unwrap().len(), 1);
    });
    println!("CHILD_SIGNED_IN");
}
