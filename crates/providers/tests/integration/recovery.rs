//! The token recovery file (`tokens/<name>.recovery`) is read the one trusted way, like every file
//! under the home directory. Each test plants what another local user (or an accident) could put
//! there — a symbolic link to tokens of their choosing, a FIFO, a device, a huge file, a file they own
//! or may write — and checks that the store's own tokens are used, that the call returns, and that
//! the warning names the file and the problem. No server is needed: these are the no-network reads
//! (`mcp token`'s fast path, `mcp status`).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use context_harness_providers::storage::{
    FileStore, MAX_FILE_BYTES, ProviderName, TokenStore, tokens_dir, write_private_atomic,
};
use context_harness_providers::tokens::{AccessToken, OAuthTokens, RefreshToken};
use context_harness_providers::{AuthStatus, Environment, HttpSettings, OAuthService};

use crate::support::{captured_logs, service_for};

/// How long a read may take before the test calls it hung (a FIFO read would never return).
const HANG_BOUND: Duration = Duration::from_secs(20);

const STORE_TOKEN: &str = "store-access-token";
const PLANTED_TOKEN: &str = "planted-access-token";

fn tokens(access: &str) -> OAuthTokens {
    let mut tokens = OAuthTokens::new(
        AccessToken::new(access),
        "Bearer",
        std::time::SystemTime::now(),
    );
    tokens.refresh_token = Some(RefreshToken::new(format!("{access}-refresh")));
    tokens.expires_in = Some(3600);
    tokens
}

/// A home whose store holds [`STORE_TOKEN`] for `github`, the service reading it, and the path of
/// `github`'s recovery file.
fn setup() -> (tempfile::TempDir, Arc<OAuthService>, PathBuf) {
    captured_logs();
    let home = tempfile::tempdir().unwrap();
    let dir = tokens_dir(home.path());
    FileStore::new(dir.clone())
        .save(&ProviderName::new("github").unwrap(), &tokens(STORE_TOKEN))
        .unwrap();
    let service = Arc::new(service_for(
        home.path(),
        Environment::empty(),
        HttpSettings::default(),
        |_: &str| Ok(()),
    ));
    (home, service, dir.join("github.recovery"))
}

/// The access token each no-network read returns, each call run on its own thread and waited for
/// at most [`HANG_BOUND`] (a FIFO or endless device must not hang it).
fn read_all(service: &Arc<OAuthService>) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    let service = Arc::clone(service);
    std::thread::spawn(move || {
        let secret = |t: OAuthTokens| t.access_token.secret().to_owned();
        let cached = service.cached_valid_token("github").map(|t| t.map(secret));
        let got = service.get_tokens("github").map(secret);
        let status = service.get_status("github");
        let _ = tx.send((cached, got, status));
    });
    let (cached, got, status) = rx
        .recv_timeout(HANG_BOUND)
        .expect("the read returned (it did not hang on the recovery file)");
    assert_eq!(status.unwrap(), AuthStatus::Authenticated);
    vec![cached.unwrap().unwrap(), got.unwrap()]
}

/// The captured log lines that mention `path`.
fn warnings_about(path: &Path) -> String {
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    let shown = path.display().to_string();
    logs.lines()
        .filter(|l| l.contains(&shown))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Plants `plant` at the recovery path, then checks that the store's tokens are used (never the
/// planted ones) and that a warning names the file and `problem`.
fn refused(plant: impl FnOnce(&Path), problem: &str) {
    let (_home, service, recovery) = setup();
    plant(&recovery);
    assert_eq!(
        read_all(&service),
        [STORE_TOKEN, STORE_TOKEN],
        "planted: {problem}"
    );
    let warnings = warnings_about(&recovery);
    assert!(
        warnings.contains(problem) && warnings.contains("ignoring the token recovery file"),
        "no warning naming {problem:?}: {warnings}"
    );
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes valid token JSON holding [`PLANTED_TOKEN`] to `path` with `mode`.
fn plant_tokens(path: &Path, mode: u32) {
    fs::write(path, tokens(PLANTED_TOKEN).to_json().unwrap()).unwrap();
    chmod(path, mode);
}

#[test]
fn an_honest_recovery_file_is_used() {
    // Without this, the refusals below could pass because the recovery file is never read at all.
    let (_home, service, recovery) = setup();
    write_private_atomic(
        &recovery,
        tokens(PLANTED_TOKEN).to_json().unwrap().as_bytes(),
    )
    .unwrap();
    assert_eq!(read_all(&service), [PLANTED_TOKEN, PLANTED_TOKEN]);
}

#[test]
fn a_symlinked_recovery_file_is_not_followed() {
    refused(
        |recovery| {
            // Someone else's tokens, in a file that would pass every check but the link.
            let elsewhere = recovery.with_file_name("elsewhere.json");
            plant_tokens(&elsewhere, 0o600);
            symlink(&elsewhere, recovery).unwrap();
        },
        "it is a symbolic link",
    );
}

#[test]
fn a_fifo_as_recovery_file_does_not_hang() {
    refused(
        |recovery| {
            let made = std::process::Command::new("mkfifo")
                .arg(recovery)
                .status()
                .unwrap();
            assert!(made.success());
        },
        "it is not a regular file",
    );
}

#[test]
fn dev_zero_behind_the_recovery_file_is_not_read() {
    // Read through, this would fill memory until the process dies.
    refused(
        |recovery| symlink("/dev/zero", recovery).unwrap(),
        "it is a symbolic link",
    );
}

#[test]
fn a_device_as_recovery_file_is_not_opened() {
    let (_home, _service, probe) = setup();
    // A character device like /dev/zero (1, 5); creating one needs CAP_MKNOD (root, as in CI).
    let made = std::process::Command::new("mknod")
        .arg(&probe)
        .args(["c", "1", "5"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("note: cannot create a device node here (not root?); skipping the device case");
        return;
    }
    refused(
        |recovery| {
            let made = std::process::Command::new("mknod")
                .arg(recovery)
                .args(["c", "1", "5"])
                .status()
                .unwrap();
            assert!(made.success());
        },
        "it is not a regular file",
    );
}

#[test]
fn an_oversized_recovery_file_is_not_read() {
    refused(
        |recovery| {
            // Valid token JSON, so only the size cap can keep it out.
            let mut json: serde_json::Value =
                serde_json::from_str(&tokens(PLANTED_TOKEN).to_json().unwrap()).unwrap();
            let pad = usize::try_from(MAX_FILE_BYTES).unwrap();
            json["padding"] = serde_json::Value::String("x".repeat(pad));
            fs::write(recovery, serde_json::to_vec(&json).unwrap()).unwrap();
            chmod(recovery, 0o600);
        },
        "it is larger than",
    );
}

#[test]
fn a_group_writable_recovery_file_is_refused() {
    refused(
        |recovery| plant_tokens(recovery, 0o620),
        "it is writable by group or others (mode 620)",
    );
}

#[test]
fn a_recovery_file_owned_by_another_user_is_refused() {
    let (_home, _service, probe) = setup();
    plant_tokens(&probe, 0o600);
    // Only root can give a file away; CI runs the tests as root.
    if std::os::unix::fs::lchown(&probe, Some(65534), None).is_err() {
        eprintln!("note: cannot chown here (not root); skipping the foreign-owner case");
        return;
    }
    refused(
        |recovery| {
            plant_tokens(recovery, 0o600);
            std::os::unix::fs::lchown(recovery, Some(65534), None).unwrap();
        },
        "it is owned by uid 65534",
    );
}
