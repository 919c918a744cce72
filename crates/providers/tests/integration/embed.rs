//! A program embedding the library under its own name (`examples/my_tool.rs`, compiled in here so
//! the test runs the example's own code) signs in to the local authorization server and gets a
//! token through the public API, and nothing it leaves behind — home, files, keyring entry — is
//! named context-harness.

use std::path::Path;

use context_harness_providers::{Environment, ErrorCode, OAuthService};

use crate::support::{AuthServer, HttpBrowser, local_providers_toml};

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/my_tool.rs"]
mod my_tool;

/// How many callbacks the HTTP "browser" reached (one per sign-in).
fn visits(browser: &HttpBrowser) -> usize {
    browser.callbacks.lock().unwrap().len()
}

/// Every path under `dir` (relative) with the file's bytes (`None` for a directory).
fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        if entry.file_type().unwrap().is_dir() {
            out.push((rel, None));
            walk(&path, base, out);
        } else {
            out.push((rel, Some(std::fs::read(&path).unwrap())));
        }
    }
}

/// Asserts that no path under `user_home` and no file's content names context-harness.
fn assert_nothing_named_context_harness(user_home: &Path) {
    let mut all = Vec::new();
    walk(user_home, user_home, &mut all);
    assert!(!all.is_empty());
    for (path, bytes) in &all {
        assert!(!path.contains("context-harness"), "{path}");
        if let Some(bytes) = bytes {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("context-harness") && !text.contains("CONTEXT_HARNESS"),
                "{path} names context-harness"
            );
        }
    }
}

/// A user home (`$HOME`) whose `~/.my-tool/providers.toml` configures the local server; the
/// service is the example's builder with this environment and the HTTP "browser".
fn my_tool_service(
    issuer: &str,
    user_home: &Path,
    extra_env: &[(&str, &str)],
    browser: &HttpBrowser,
) -> OAuthService {
    let app_home = user_home.join(".my-tool");
    std::fs::create_dir(&app_home).unwrap();
    std::fs::write(
        app_home.join("providers.toml"),
        local_providers_toml(issuer, "ch-public", ""),
    )
    .unwrap();
    let mut env = Environment::from_pairs([("HOME", user_home.display().to_string())]);
    for (k, v) in extra_env {
        env.set(*k, *v);
    }
    let service = my_tool::builder()
        .environment(env)
        .browser(browser.opener())
        .build()
        .unwrap();
    assert_eq!(service.home(), app_home);
    assert_eq!(service.app().user_agent(), "my-tool/1.0.0");
    service
}

/// The file store (chosen through `MY_TOOL_STORAGE`, the app's own variable): the example signs
/// in once, then gets the stored token without a browser; every name under the home is its own.
#[tokio::test]
async fn embedded_app_signs_in_under_its_own_home() {
    let Some(server) = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let user_home = tempfile::tempdir().unwrap();
    let browser = HttpBrowser::default();
    let service = my_tool_service(
        &server.issuer,
        user_home.path(),
        // The context-harness variables are not the app's: ignored.
        &[
            ("MY_TOOL_STORAGE", "file"),
            ("CONTEXT_HARNESS_STORAGE", "keyring"),
            ("CONTEXT_HARNESS_HOME", "/nonexistent"),
        ],
        &browser,
    );
    assert_eq!(service.store().name(), "file");

    // Not signed in: a predicate, not hint text, says a sign-in helps.
    let err = service.ensure_valid_token("local").await.unwrap_err();
    assert!(err.needs_sign_in() && !err.is_transient(), "{err:?}");

    let token = my_tool::access_token(&service, "local").await.unwrap();
    assert!(!token.secret().is_empty());
    assert_eq!(visits(&browser), 1);
    // A second call uses the stored token: no sign-in.
    let again = my_tool::access_token(&service, "local").await.unwrap();
    assert_eq!(again.secret(), token.secret());
    assert_eq!(visits(&browser), 1);

    let app_home = user_home.path().join(".my-tool");
    assert!(app_home.join("tokens/local.json").is_file());
    assert!(!user_home.path().join(".context-harness").exists());
    assert_nothing_named_context_harness(user_home.path());

    // An unknown provider is not cured by a sign-in: no browser, the error as it is.
    let err = my_tool::access_token(&service, "nope").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(!err.needs_sign_in());
    assert_eq!(visits(&browser), 1);
}

/// The real Secret Service (gnome-keyring in the private session of `cargo xtask
/// with-secret-service`): the token is in an entry whose service is `my-tool`, no keyring entry
/// or attribute names context-harness, and the home holds only the backend record.
#[cfg(feature = "keyring")]
#[tokio::test]
async fn embedded_app_keyring_entry_is_its_own() {
    if std::env::var("CONTEXT_HARNESS_TEST_SECRET_SERVICE").as_deref() != Ok("1") {
        eprintln!(
            "note: skipping: needs a private Secret Service (cargo xtask with-secret-service)"
        );
        return;
    }
    let Some(server) = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]) else {
        return;
    };
    let user_home = tempfile::tempdir().unwrap();
    let browser = HttpBrowser::default();
    // The default storage mode (auto) with a working keyring.
    let service = my_tool_service(&server.issuer, user_home.path(), &[], &browser);
    let token = my_tool::access_token(&service, "local").await.unwrap();
    assert!(!token.secret().is_empty());
    assert_eq!(visits(&browser), 1);
    let location = service.storage_location("local").unwrap();
    assert_eq!(
        location,
        "system keyring (service \"my-tool\", user \"local\")"
    );

    // The entry, as the Secret Service shows it to any client.
    let search = |service: &str| {
        let out = std::process::Command::new("secret-tool")
            .args(["search", "--all", "--unlock", "service", service])
            .output()
            .unwrap();
        // Attributes and labels are printed on stderr or stdout depending on the version.
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mine = search("my-tool");
    assert!(mine.contains("attribute.username = local"), "{mine}");
    assert!(mine.contains("attribute.service = my-tool"), "{mine}");
    assert!(mine.contains(token.secret()), "the entry holds the token");
    assert!(!mine.contains("context-harness"), "{mine}");
    let theirs = search("context-harness");
    assert!(!theirs.contains("username = local"), "{theirs}");

    let app_home = user_home.path().join(".my-tool");
    assert_eq!(
        std::fs::read_to_string(app_home.join("tokens/local.backend"))
            .unwrap()
            .trim(),
        "keyring"
    );
    assert!(!app_home.join("tokens/local.json").exists());
    assert_nothing_named_context_harness(user_home.path());

    // Signing out removes the app's entry.
    service.logout("local").await.unwrap();
    assert!(!search("my-tool").contains("username = local"));
}
