//! Commands that need no server: usage, completions, providers, never-authenticated providers.

use crate::util::Home;

/// A home whose `local` provider points at a closed port (nothing here may contact it).
fn offline_home() -> Home {
    Home::with_local("http://127.0.0.1:9", "ch-public")
}

#[test]
fn usage_errors_exit_2() {
    let home = Home::new();
    home.run(&["mcp", "frobnicate"]).expect_code(2);
    home.run(&["mcp", "auth", "local", "--timeout", "0"])
        .expect_code(2);
    home.run_env(&["mcp", "status"], &[("CONTEXT_HARNESS_STORAGE", "floppy")])
        .expect_code(2);
    let help = home.run(&["--help"]);
    help.expect_code(0);
    assert!(help.stdout.contains("mcp"), "{help:#?}");
}

#[test]
fn completions_for_every_shell() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = home.run(&["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout.contains("context-harness"), "{shell}: {run:#?}");
        assert!(run.stderr.is_empty(), "{shell}: {run:#?}");
    }
}

#[test]
fn providers_lists_builtins_and_configured() {
    let home = offline_home();
    let run = home.run(&["mcp", "providers", "--json"]);
    run.expect_code(0);
    let doc = run.json();
    let providers = doc["providers"].as_array().expect("array");
    let names: Vec<&str> = providers
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["atlassian", "github", "gitlab", "local"]);
    let local = &providers[3];
    assert_eq!(local["source"], "configured");
    assert_eq!(local["client_id_set"], true);
    assert_eq!(local["client_id_source"], "config");
    assert_eq!(local["client_id_env"], "LOCAL_CLIENT_ID");
    assert_eq!(providers[1]["client_id_set"], false);
    assert!(
        doc["config_file"]
            .as_str()
            .is_some_and(|f| f.ends_with("providers.toml"))
    );

    let with_env = home.run_env(
        &["mcp", "providers", "--json"],
        &[("GITHUB_CLIENT_ID", "Iv1.x")],
    );
    assert_eq!(with_env.json()["providers"][1]["client_id_source"], "env");

    let text = home.run(&["mcp", "providers"]);
    text.expect_code(0);
    assert!(text.stdout.contains("set GITHUB_CLIENT_ID"), "{text:#?}");
}

#[test]
fn never_authenticated_status_and_token_exit_3_with_hint() {
    let home = offline_home();
    let hint = "run `context-harness mcp auth local`";

    let status = home.run(&["mcp", "status", "local"]);
    status.expect_code(3);
    assert!(status.stdout.contains("not authenticated"), "{status:#?}");
    assert!(status.stderr.contains(hint), "{status:#?}");

    let json = home.run(&["mcp", "status", "local", "--json"]);
    json.expect_code(3);
    let row = &json.json()["providers"][0];
    assert_eq!(row["name"], "local");
    assert_eq!(row["status"], "not_authenticated");
    assert_eq!(row["expires_at"], serde_json::Value::Null);

    for args in [
        &["mcp", "token", "local"][..],
        &["mcp", "token", "local", "--json"],
        &["mcp", "refresh", "local"],
    ] {
        let run = home.run(args);
        run.expect_code(3);
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert!(run.stderr.contains(hint), "{run:#?}");
    }

    // Listing everything is not an error.
    let all = home.run(&["mcp", "status", "--json"]);
    all.expect_code(0);
    let rows = all.json()["providers"].as_array().expect("array").len();
    assert_eq!(rows, 4);

    // Logging out of nothing is fine.
    home.run(&["mcp", "logout", "local", "--local-only"])
        .expect_code(0);
}

#[test]
fn unknown_provider_missing_client_id_and_device_are_explained() {
    let home = offline_home();
    let unknown = home.run(&["mcp", "token", "nope"]);
    unknown.expect_code(9);
    assert!(unknown.stderr.contains("[providers.nope]"), "{unknown:#?}");
    home.run(&["mcp", "status", "nope"]).expect_code(9);

    let missing = home.run(&["mcp", "auth", "github", "--no-browser"]);
    missing.expect_code(8);
    assert!(missing.stderr.contains("GITHUB_CLIENT_ID"), "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains("https://github.com/settings/developers"),
        "{missing:#?}"
    );

    // `local` has no device_auth_url.
    let device = home.run(&["mcp", "auth", "local", "--device"]);
    device.expect_code(8);
    assert!(
        device.stderr.contains("device authorization endpoint"),
        "{device:#?}"
    );
    assert!(device.stderr.contains("hint:"), "{device:#?}");
}

#[test]
fn bad_providers_toml_is_config_invalid() {
    let home = Home::new();
    std::fs::write(
        home.path().join("providers.toml"),
        "[providers.x]\nauth_url = 3\n",
    )
    .expect("write");
    let run = home.run(&["mcp", "providers"]);
    run.expect_code(13);
    assert!(run.stderr.contains("providers.toml"), "{run:#?}");
}
