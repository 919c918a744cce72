//! A registration's secrets, against the real Secret Service (gnome-keyring in the private session
//! of `cargo xtask with-secret-service` / `cargo xtask test`): with `--storage keyring`, the dynamically
//! registered client's `registration_access_token` (and `client_secret`, when a server issues one)
//! lives in the keyring next to the tokens, and no file under the home holds it or the tokens.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::mcp::McpStub;
use crate::util::{AuthServer, Home, browser_script, require, require_server};

fn secret_service() -> bool {
    require(
        std::env::var("CONTEXT_HARNESS_TEST_SECRET_SERVICE").as_deref() == Ok("1"),
        "a private Secret Service (run under `cargo xtask with-secret-service`)",
    )
}

fn secret_tool(args: &[&str]) -> Option<String> {
    let out = Command::new("secret-tool").args(args).output().ok()?;
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every regular file under `dir`, with its bytes.
fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            all_files(&path, out);
        } else if kind.is_file() {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn keyring_storage_keeps_registration_secrets_out_of_every_file() {
    if !require_server() || !secret_service() {
        return;
    }
    let server = AuthServer::start(&[("AS_AUTO_APPROVE", "1")]);
    let stub = McpStub::start(&server.issuer);
    let home = Home::new();
    let url = stub.url.as_str();
    let keyring = [("CONTEXT_HARNESS_STORAGE", "keyring")];

    let auth = home.run_env(
        &["mcp", "auth", url, "--port", "0", "--timeout", "60"],
        &[
            ("BROWSER", &browser_script("follow.mjs")),
            ("CONTEXT_HARNESS_STORAGE", "keyring"),
        ],
    );
    auth.expect_code(0);

    // The registration file holds the public part and says where the rest is.
    let mut registrations = Vec::new();
    all_files(&home.path().join("registrations"), &mut registrations);
    assert_eq!(registrations.len(), 1, "{registrations:?}");
    let (reg_path, reg_bytes) = &registrations[0];
    let reg: Value = serde_json::from_slice(reg_bytes).expect("registration JSON");
    assert_eq!(reg["secrets"], "keyring", "{reg}");
    assert!(reg.get("registration_access_token").is_none(), "{reg}");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    assert!(reg["client_id"].as_str().is_some_and(|id| !id.is_empty()));

    // The keyring entry holds the secrets the server issued.
    let stem = Path::new(reg_path)
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file stem");
    let user = format!("registration:{stem}");
    let kept = secret_tool(&["lookup", "service", "context-harness", "username", &user])
        .expect("registration secrets in the keyring");
    let kept: Value = serde_json::from_str(&kept).expect("secrets JSON");
    let rat = kept["registration_access_token"]
        .as_str()
        .expect("oidc-provider issues a registration access token")
        .to_owned();
    assert!(!rat.is_empty());

    // The tokens are in the keyring as well, and usable.
    let token = home.run_env(&["mcp", "token", url], &keyring);
    token.expect_code(0);
    let access = token.stdout.trim().to_owned();
    assert!(!access.is_empty());

    // No file under the home holds any of these secrets.
    let mut files = Vec::new();
    all_files(home.path(), &mut files);
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, &rat),
            "registration access token in {path}"
        );
        assert!(!contains(bytes, &access), "access token in {path}");
        if let Some(secret) = kept["client_secret"].as_str() {
            assert!(!contains(bytes, secret), "client secret in {path}");
        }
    }

    // File storage does not quietly read around the keyring.
    let refresh = home.run(&["mcp", "refresh", url]);
    assert_ne!(refresh.code, 0, "{refresh:#?}");

    home.run_env(&["mcp", "logout", url, "--local-only"], &keyring)
        .expect_code(0);
    let _ = Command::new("secret-tool")
        .args(["clear", "service", "context-harness", "username", &user])
        .status();
}
