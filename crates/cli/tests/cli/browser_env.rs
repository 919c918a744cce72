//! The browser's environment is an allowlist: an MCP host starts `mcp proxy` / `mcp auth` with
//! API keys, database URLs and tokens in its environment, and none of them may reach the browser
//! (or any other child). The browser is a stand-in script (`$BROWSER`) that dumps its environment
//! to a file, then follows the sign-in with `tests/browser/follow.mjs`, so the run ends by itself;
//! the server is the hostile stub in its "token refused" mode (any server would do: only the
//! browser's environment is under test).

use std::os::unix::fs::PermissionsExt as _;

use crate::hostile_stub::{HostileServer, Mode};
use crate::util::{Home, repo_root, require};

/// Twenty-four secret-like names an MCP host's `env` block holds, with values that must not leak.
const SECRETS: [&str; 24] = [
    "GITHUB_PAT",
    "DB_PASS",
    "OPENAI_KEY",
    "DATABASE_URL",
    "SLACK_WEBHOOK",
    "SIGNING_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ANTHROPIC_API_KEY",
    "NPM_TOKEN",
    "GH_TOKEN",
    "GITLAB_TOKEN",
    "STRIPE_SECRET_KEY",
    "SENTRY_DSN",
    "REDIS_URL",
    "MONGODB_URI",
    "JWT_SECRET",
    "PGPASSWORD",
    "HF_TOKEN",
    "VAULT_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SSH_AUTH_SOCK",
    "LD_PRELOAD",
    "NODE_OPTIONS",
];

/// The tool's own variables (`CONTEXT_HARNESS_HOME` and `_STORAGE` are set by [`Home::cmd`]).
const OWN: [&str; 4] = [
    "CONTEXT_HARNESS_CLIENT_SECRET",
    "CONTEXT_HARNESS_TEST_CHROMIUM",
    "ACME_CLIENT_SECRET",
    "LOCAL_CLIENT_SECRET",
];

/// Variables the shell running the stand-in sets itself.
const SHELL_ADDED: [&str; 4] = ["PWD", "OLDPWD", "SHLVL", "_"];

#[test]
fn no_secret_reaches_the_browser() {
    if !require(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node",
    ) {
        return;
    }
    let stub = HostileServer::start(Mode::TokenRefused);
    let home = Home::new();
    let dump = home.path().join("browser-env.txt");
    let script = home.path().join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > '{}'\nexec node '{}' \"$1\"\n",
            dump.display(),
            repo_root().join("tests/browser/follow.mjs").display()
        ),
    )
    .expect("write the stand-in");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = script.display().to_string();
    let secret_value =
        |name: &str| format!("{}-value-the-browser-must-not-see", name.to_lowercase());
    let values: Vec<(String, String)> = SECRETS
        .iter()
        .chain(OWN.iter())
        .map(|name| ((*name).to_owned(), secret_value(name)))
        .collect();
    let mut env: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([
        ("BROWSER", script.as_str()),
        ("DISPLAY", ":98"),
        ("WAYLAND_DISPLAY", "wayland-7"),
        ("XDG_RUNTIME_DIR", "/run/user/4242"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/4242/bus"),
        ("LANG", "C.UTF-8"),
        ("LC_MESSAGES", "C"),
        ("TMPDIR", "/tmp"),
        (
            "https_proxy",
            "http://bob:proxy-pw-not-for-browsers@proxy.invalid:3128",
        ),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("UNLISTED_BUT_HARMLESS", "x"),
    ]);
    let url = stub.mcp_url();
    let run = home.run_env(
        &["mcp", "auth", &url, "--port", "0", "--timeout", "30"],
        &env,
    );
    // The browser brought the code back and the (stub) token endpoint refused it: the browser ran.
    run.expect_code(4);
    assert!(run.stderr.contains("invalid_grant"), "{run:#?}");

    let dumped = std::fs::read_to_string(&dump).expect("the stand-in dumped its environment");
    let names: Vec<&str> = dumped
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for (name, value) in &values {
        assert!(
            !names.contains(&name.as_str()),
            "{name} reached the browser"
        );
        assert!(
            !dumped.contains(value.as_str()),
            "{name}'s value reached the browser"
        );
    }
    for name in [
        "CONTEXT_HARNESS_HOME",
        "CONTEXT_HARNESS_STORAGE",
        "UNLISTED_BUT_HARMLESS",
    ] {
        assert!(!names.contains(&name), "{name} reached the browser");
    }
    assert!(!dumped.contains("proxy-pw-not-for-browsers"), "{dumped}");
    for wanted in [
        "DISPLAY=:98",
        "WAYLAND_DISPLAY=wayland-7",
        "XDG_RUNTIME_DIR=/run/user/4242",
        "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/4242/bus",
        "LANG=C.UTF-8",
        "LC_MESSAGES=C",
        "TMPDIR=/tmp",
        "https_proxy=http://proxy.invalid:3128",
        "NO_PROXY=127.0.0.1,localhost",
        &format!("HOME={}", home.path().display()),
    ] {
        assert!(
            dumped.lines().any(|l| l == wanted),
            "{wanted} missing:\n{dumped}"
        );
    }
    assert!(names.contains(&"PATH"), "{dumped}");
    for name in names {
        assert!(
            context_harness_providers::is_browser_env_name(name) || SHELL_ADDED.contains(&name),
            "{name} is not on the allowlist but reached the browser"
        );
    }
}
