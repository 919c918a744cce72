//! Fixtures and the child-process roles.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use context_harness_storage::{FileStore, ProviderLock, ProviderName, TokenStore};
use context_harness_tokens::OAuthTokens;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The variable that selects a child role.
pub(crate) const CHILD_ROLE: &str = "CH_STORAGE_TEST_CHILD";
/// The token directory a child works in.
pub(crate) const CHILD_DIR: &str = "CH_STORAGE_TEST_DIR";

/// A token file exactly as the Python original writes it (`json.dump` of the token response plus a float
/// `issued_at`).
pub(crate) const SEED_FIXTURE: &str = r#"{"access_token": "gho_seedAccess123", "token_type": "bearer", "expires_in": 28800, "refresh_token": "ghr_seedRefresh456", "scope": "repo read:org", "issued_at": 1718000000.123456}"#;

pub(crate) fn name(s: &str) -> ProviderName {
    match ProviderName::new(s) {
        Ok(n) => n,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// Token set number `n`: access `tok-n`, refresh `rt-n`, `pad` bytes of padding in an extra field (so
/// that writes take long enough to be interrupted).
pub(crate) fn numbered(n: u64, pad: usize) -> Result<OAuthTokens, Box<dyn std::error::Error>> {
    let json = format!(
        r#"{{"access_token": "tok-{n}", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-{n}",
            "scope": "a b", "issued_at": {n}.5, "counter": {n}, "pad": "{}"}}"#,
        "x".repeat(pad)
    );
    Ok(OAuthTokens::from_json(&json)?)
}

/// The number of a token set written by [`numbered`], checking that all its parts agree.
pub(crate) fn number_of(tokens: &OAuthTokens, pad: usize) -> Result<u64, String> {
    let n: u64 = tokens
        .access_token
        .secret()
        .strip_prefix("tok-")
        .and_then(|n| n.parse().ok())
        .ok_or("access token is not tok-N")?;
    let refresh = tokens.refresh_token.as_ref().map(|t| t.secret().to_owned());
    if refresh.as_deref() != Some(format!("rt-{n}").as_str()) {
        return Err(format!(
            "torn token set: access tok-{n} with refresh {refresh:?}"
        ));
    }
    if tokens.extra.get("counter").and_then(|v| v.as_u64()) != Some(n) {
        return Err(format!("torn token set: counter does not match tok-{n}"));
    }
    if tokens
        .extra
        .get("pad")
        .and_then(|v| v.as_str())
        .map(str::len)
        != Some(pad)
    {
        return Err("padding has the wrong length".to_owned());
    }
    Ok(n)
}

pub(crate) fn mode(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// A command that re-runs this test binary as the child `role`, working in `dir`.
pub(crate) fn child_command(role: &str, dir: &Path) -> Result<Command, std::io::Error> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ROLE, role)
    .env(CHILD_DIR, dir)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    Ok(cmd)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // libtest has printed "test child_process ... " without a newline: start a fresh line.
    let _ = writeln!(out, "\n{line}");
    let _ = out.flush();
}

/// Runs the child role named by [`CHILD_ROLE`], if any. Panics (failing the child) on any error.
pub(crate) fn run_child_role() {
    let Some(role) = std::env::var_os(CHILD_ROLE) else {
        return;
    };
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        panic!("{CHILD_DIR} is not set");
    };
    let result = match role.to_str() {
        Some("crash-writer") => crash_writer(&dir),
        Some("counter") => counter(&dir),
        #[cfg(feature = "keyring")]
        Some("no-keyring") => no_keyring_child(&dir),
        other => Err(format!("unknown child role {other:?}").into()),
    };
    if let Err(err) = result {
        panic!("child role failed: {err}");
    }
}

pub(crate) const CRASH_PAD: usize = 64 * 1024;

/// Rewrites `github`'s tokens forever with increasing numbers; says READY after the first save.
fn crash_writer(dir: &Path) -> TestResult {
    let store = FileStore::new(dir.to_path_buf());
    let github = name("github");
    let mut n = match store.load(&github)? {
        Some(t) => number_of(&t, CRASH_PAD)?,
        None => 0,
    };
    let first = numbered(n + 1, CRASH_PAD)?;
    store.save(&github, &first)?;
    n += 1;
    say("READY");
    loop {
        n += 1;
        store.save(&github, &numbered(n, CRASH_PAD)?)?;
    }
}

pub(crate) const COUNTER_CYCLES: u64 = 200;

/// Increments the `counter` of `shared`'s tokens [`COUNTER_CYCLES`] times under the provider lock,
/// also reading without the lock in between (which must never see a torn file).
fn counter(dir: &Path) -> TestResult {
    let store = FileStore::new(dir.to_path_buf());
    let shared = name("shared");
    say("READY");
    for i in 0..COUNTER_CYCLES {
        {
            let _lock = ProviderLock::acquire(dir, &shared, Duration::from_secs(60))?;
            let current = store.load(&shared)?.ok_or("tokens vanished")?;
            let n = number_of(&current, 16)?;
            store.save(&shared, &numbered(n + 1, 16)?)?;
        }
        if i % 2 == 0 {
            let seen = store.load(&shared)?.ok_or("tokens vanished")?;
            number_of(&seen, 16)?;
        }
    }
    say("DONE");
    Ok(())
}

/// Watches a child's stdout on a thread, reading it to the end (so the child never writes into a
/// closed pipe), and signals the returned channel when a line equal to `want` appears.
pub(crate) fn watch_for_line(
    stdout: impl std::io::Read + Send + 'static,
    want: &'static str,
) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(stdout);
        for line in std::io::BufRead::lines(reader) {
            let Ok(line) = line else { break };
            if line.trim_end() == want {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// Waits (bounded) for the signal from [`watch_for_line`].
pub(crate) fn wait_for(
    rx: &std::sync::mpsc::Receiver<()>,
    want: &str,
    limit: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    rx.recv_timeout(limit)
        .map_err(|e| format!("child did not say {want} within {limit:?}: {e}").into())
}

/// Elapsed-time helper for bound checks.
#[cfg(feature = "keyring")]
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Child role: with no session bus, the auto store must choose the file at once.
#[cfg(feature = "keyring")]
pub(crate) fn no_keyring_child(dir: &Path) -> TestResult {
    let keyring = context_harness_storage::KeyringStore::new();
    if keyring.may_be_available() {
        return Err("a session bus is visible to the no-keyring child".into());
    }
    let store = context_harness_storage::open_store(
        context_harness_storage::StorageMode::Auto,
        dir.parent().ok_or("no parent")?,
    )?;
    let auto = context_harness_storage::AutoStore::new(dir.to_path_buf());
    let github = name("github");
    let tokens = numbered(1, 0)?;
    let (saved, took) = timed(|| auto.save(&github, &tokens));
    saved?;
    if took >= Duration::from_secs(1) {
        return Err(format!("auto store took {took:?} to pick the file").into());
    }
    if auto.backend_for(&github)? != Some(context_harness_storage::Backend::File) {
        return Err("auto store did not record the file backend".into());
    }
    let (loaded, took) = timed(|| store.load(&name("other")));
    if loaded?.is_some() || took >= Duration::from_secs(1) {
        return Err(format!("unexpected load result after {took:?}").into());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(b"\nDONE\n")?;
    out.flush()?;
    Ok(())
}
