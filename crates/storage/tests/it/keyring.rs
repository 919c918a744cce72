//! Keyring store: keyring-core's mock store for error paths, a blocking store for timeouts, a session
//! without a bus, and a real Secret Service (gnome-keyring, started by `with-secret-service.sh`).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use context_harness_storage::keyring_core::{self, CredentialStore, Entry, mock};
use context_harness_storage::{
    AutoStore, Backend, DEFAULT_KEYRING_TIMEOUT, KEYRING_SERVICE, KeyringErrorKind, KeyringStore,
    ProviderName, StorageMode, TokenStore, open_store,
};

use crate::util::{
    SEED_FIXTURE, TestResult, child_command, mode, name, numbered, timed, wait_for, watch_for_line,
};

fn mock_store() -> Result<Arc<CredentialStore>, keyring_core::Error> {
    let store: Arc<CredentialStore> = mock::Store::new()?;
    Ok(store)
}

/// Makes the next call on `store`'s entry for `provider` fail with `err`.
fn inject(store: &Arc<CredentialStore>, provider: &str, err: keyring_core::Error) -> TestResult {
    let entry = Entry::new_in_store(store, KEYRING_SERVICE, provider)?;
    let cred: &mock::Cred = entry
        .as_any()
        .downcast_ref()
        .ok_or("not a mock credential")?;
    cred.set_error(err);
    Ok(())
}

fn locked() -> keyring_core::Error {
    keyring_core::Error::NoStorageAccess("collection is locked".into())
}

#[test]
fn mock_round_trip_records_keyring_and_migrates_seed_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = mock_store()?;
    let auto = AutoStore::with_keyring(
        dir.path().to_path_buf(),
        KeyringStore::with_credential_store(store.clone()),
    );
    let github = name("github");
    // A file of the Python original with no record is read from the file.
    fs::write(dir.path().join("github.json"), SEED_FIXTURE)?;
    assert_eq!(
        auto.load(&github)?.ok_or("seed")?.access_token.secret(),
        "gho_seedAccess123"
    );
    assert_eq!(auto.backend_for(&github)?, None);

    // Saving moves it into the keyring and removes the plaintext copy.
    auto.save(&github, &numbered(1, 0)?)?;
    assert_eq!(auto.backend_for(&github)?, Some(Backend::Keyring));
    assert!(!dir.path().join("github.json").exists());
    assert!(auto.location(&github).contains("system keyring"));
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, "github")?;
    assert!(entry.get_password()?.contains("tok-1"));
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-1"
    );

    // Overwrite, then delete removes entry and record.
    auto.save(&github, &numbered(2, 0)?)?;
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-2"
    );
    assert!(auto.delete(&github)?);
    assert!(matches!(
        entry.get_password(),
        Err(keyring_core::Error::NoEntry)
    ));
    assert_eq!(auto.backend_for(&github)?, None);
    assert!(auto.load(&github)?.is_none());
    assert!(!auto.delete(&github)?);
    Ok(())
}

/// An embedding program's service name: entries, secret slots and the shown location are under it,
/// and nothing is written under the default service.
#[test]
fn keyring_service_is_a_parameter() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = mock_store()?;
    let keyring = KeyringStore::with_credential_store(store.clone()).with_service("my-tool");
    assert_eq!(keyring.service(), "my-tool");
    let auto = AutoStore::with_keyring(dir.path().to_path_buf(), keyring);
    let github = name("github");
    auto.save(&github, &numbered(1, 0)?)?;
    assert!(
        Entry::new_in_store(&store, "my-tool", "github")?
            .get_password()?
            .contains("tok-1")
    );
    assert!(matches!(
        Entry::new_in_store(&store, KEYRING_SERVICE, "github")?.get_password(),
        Err(keyring_core::Error::NoEntry)
    ));
    let location = auto.location(&github);
    assert!(location.contains("\"my-tool\""), "{location}");
    assert!(!location.contains(KEYRING_SERVICE), "{location}");
    // Secrets that are not tokens share the service.
    let slots = auto.secrets().ok_or("no secret slots")?;
    assert_eq!(
        slots.save("registration", &github, "s3cret")?,
        Backend::Keyring
    );
    let user = context_harness_storage::SecretSlots::user("registration", &github);
    assert_eq!(
        Entry::new_in_store(&store, "my-tool", &user)?.get_password()?,
        "s3cret"
    );
    assert!(auto.delete(&github)?);
    assert!(auto.load(&github)?.is_none());
    // The default is unchanged.
    assert_eq!(KeyringStore::new().service(), KEYRING_SERVICE);
    Ok(())
}

#[test]
fn locked_keyring_falls_back_to_file_and_reads_never_touch_the_keyring() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = mock_store()?;
    let auto = AutoStore::with_keyring(
        dir.path().to_path_buf(),
        KeyringStore::with_credential_store(store.clone()),
    );
    let github = name("github");
    inject(&store, "github", locked())?;
    auto.save(&github, &numbered(1, 0)?)?;
    assert_eq!(auto.backend_for(&github)?, Some(Backend::File));
    let file = dir.path().join("github.json");
    assert_eq!(mode(&file)?, 0o600);
    assert!(auto.location(&github).ends_with("github.json"));

    // Arm another error: if load or save consulted the keyring, they would consume it.
    inject(&store, "github", locked())?;
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-1"
    );
    auto.save(&github, &numbered(2, 0)?)?;
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-2"
    );
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, "github")?;
    assert!(
        matches!(
            entry.get_password(),
            Err(keyring_core::Error::NoStorageAccess(_))
        ),
        "a file-recorded provider touched the keyring"
    );
    assert!(auto.delete(&github)?);
    assert!(!file.exists());
    Ok(())
}

#[test]
fn keyring_that_fails_after_working_falls_back_and_delete_clears_both() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = mock_store()?;
    let keyring = KeyringStore::with_credential_store(store.clone());
    let auto = AutoStore::with_keyring(dir.path().to_path_buf(), keyring.clone());
    let github = name("github");
    auto.save(&github, &numbered(1, 0)?)?;
    assert_eq!(auto.backend_for(&github)?, Some(Backend::Keyring));
    // Locked on load with no file copy: an error, not "signed out".
    inject(&store, "github", locked())?;
    let err = auto.load(&github).err().ok_or("locked keyring loaded")?;
    assert!(err.is_keyring_unavailable(), "{err:?}");

    // A fresh auto store (new process) whose keyring write fails: falls back to the file.
    let auto = AutoStore::with_keyring(dir.path().to_path_buf(), keyring.clone());
    inject(&store, "github", locked())?;
    auto.save(&github, &numbered(2, 0)?)?;
    assert_eq!(auto.backend_for(&github)?, Some(Backend::File));
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-2"
    );
    // Delete clears the old keyring copy too.
    let auto = AutoStore::with_keyring(dir.path().to_path_buf(), keyring);
    assert!(auto.delete(&github)?);
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, "github")?;
    assert!(matches!(
        entry.get_password(),
        Err(keyring_core::Error::NoEntry)
    ));
    Ok(())
}

#[test]
fn keyring_errors_never_carry_the_secret() -> TestResult {
    let store = mock_store()?;
    let keyring = KeyringStore::with_credential_store(store.clone());
    let github = name("github");
    inject(
        &store,
        "github",
        keyring_core::Error::BadEncoding(b"tok-SECRET".to_vec()),
    )?;
    let err = keyring.load(&github).err().ok_or("bad encoding loaded")?;
    assert!(err.is_corrupt());
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!("{s} {s:?}"));
        source = s.source();
    }
    assert!(!text.contains("SECRET"), "{text}");
    // Invalid JSON in the keyring is BadData, too.
    Entry::new_in_store(&store, KEYRING_SERVICE, "github")?.set_password("{not json")?;
    let err = keyring.load(&github).err().ok_or("bad json loaded")?;
    assert!(matches!(
        err,
        context_harness_storage::Error::Keyring {
            kind: KeyringErrorKind::BadData,
            ..
        }
    ));
    assert_eq!(keyring.name(), "keyring");
    assert!(keyring.location(&github).contains("\"context-harness\""));
    Ok(())
}

/// A credential store whose every operation blocks far longer than any bound.
struct StuckStore;
struct StuckCred;

impl keyring_core::api::CredentialApi for StuckCred {
    fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        std::thread::sleep(Duration::from_secs(600));
        Err(keyring_core::Error::NoEntry)
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<keyring_core::Credential>>> {
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        None
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl keyring_core::api::CredentialStoreApi for StuckStore {
    fn vendor(&self) -> String {
        "stuck".to_owned()
    }
    fn id(&self) -> String {
        "stuck".to_owned()
    }
    fn build(
        &self,
        _: &str,
        _: &str,
        _: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(StuckCred)))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn wedged_keyring_times_out_and_falls_back_to_file() -> TestResult {
    assert_eq!(DEFAULT_KEYRING_TIMEOUT, Duration::from_secs(3));
    let dir = tempfile::tempdir()?;
    let stuck: Arc<CredentialStore> = Arc::new(StuckStore);
    let keyring =
        KeyringStore::with_credential_store(stuck).with_timeout(Duration::from_millis(200));
    let auto = AutoStore::with_keyring(dir.path().to_path_buf(), keyring.clone());
    let first = numbered(1, 0)?;
    let (saved, took) = timed(|| auto.save(&name("github"), &first));
    saved?;
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(auto.backend_for(&name("github"))?, Some(Backend::File));
    // The abandoned keyring write may still land later: the record says so, so logout clears the
    // keyring too.
    let record = fs::read_to_string(dir.path().join("github.backend"))?;
    assert_eq!(record.trim(), "file stale-keyring");
    // The keyring is now known wedged: the next provider does not wait again.
    let second = numbered(2, 0)?;
    let (saved, took) = timed(|| auto.save(&name("google"), &second));
    saved?;
    assert!(took < Duration::from_millis(150), "{took:?}");
    assert_eq!(auto.backend_for(&name("google"))?, Some(Backend::File));
    // The bare keyring store reports the timeout instead of hanging.
    let err = keyring
        .load(&name("github"))
        .err()
        .ok_or("stuck keyring answered")?;
    assert!(matches!(
        err,
        context_harness_storage::Error::Keyring {
            kind: KeyringErrorKind::TimedOut,
            ..
        }
    ));
    assert!(!keyring.may_be_available());
    Ok(())
}

#[test]
fn no_session_bus_picks_the_file_in_well_under_a_second() -> TestResult {
    let dir = tempfile::tempdir()?;
    let runtime = tempfile::tempdir()?;
    let mut cmd = child_command("no-keyring", dir.path())?;
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let done = wait_for(
        &watch_for_line(stdout, "DONE"),
        "DONE",
        Duration::from_secs(20),
    );
    if done.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    done?;
    assert!(status.success(), "{status}");
    assert!(dir.path().join("github.json").exists());
    Ok(())
}

/// Whether the real Secret Service suite may run: only inside `with-secret-service.sh`. Under
/// `CI=true` a missing sandbox is a failure, elsewhere a note.
fn real_secret_service() -> bool {
    if std::env::var("CONTEXT_HARNESS_TEST_SECRET_SERVICE").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no private Secret Service: run the storage tests under \
         crates/storage/tests/with-secret-service.sh"
    );
    let mut err = std::io::stderr().lock();
    let _ = std::io::Write::write_all(
        &mut err,
        b"note: skipping the real Secret Service test; run under crates/storage/tests/with-secret-service.sh\n",
    );
    false
}

fn secret_tool_lookup(user: &str) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", KEYRING_SERVICE, "username", user])
        .output()?;
    if !out.status.success() || out.stdout.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8(out.stdout)?))
}

#[test]
fn real_secret_service_round_trip_overwrite_delete() -> TestResult {
    if !real_secret_service() {
        return Ok(());
    }
    let keyring = KeyringStore::new();
    assert!(keyring.may_be_available());
    keyring.probe()?;
    let provider = ProviderName::new(&format!("it-{}", std::process::id()))?;

    assert!(keyring.load(&provider)?.is_none());
    let first = numbered(1, 0)?;
    keyring.save(&provider, &first)?;
    assert_eq!(
        keyring.load(&provider)?.ok_or("missing")?.to_json()?,
        first.to_json()?
    );
    // Overwrite.
    let big = numbered(2, 64 * 1024)?;
    keyring.save(&provider, &big)?;
    assert_eq!(
        keyring.load(&provider)?.ok_or("missing")?.to_json()?,
        big.to_json()?
    );
    // secret-tool sees what we wrote.
    let seen = secret_tool_lookup(provider.as_str())?.ok_or("secret-tool found nothing")?;
    assert_eq!(seen.trim_end(), big.to_json()?);
    // Delete.
    assert!(keyring.delete(&provider)?);
    assert!(keyring.load(&provider)?.is_none());
    assert!(!keyring.delete(&provider)?);
    assert_eq!(secret_tool_lookup(provider.as_str())?, None);

    // And the reverse: an entry stored by secret-tool is read by us.
    let other = ProviderName::new(&format!("it-{}-ext", std::process::id()))?;
    let mut child = std::process::Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "test",
            "service",
            KEYRING_SERVICE,
            "username",
            other.as_str(),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(
        &mut child.stdin.take().ok_or("stdin")?,
        SEED_FIXTURE.as_bytes(),
    )?;
    assert!(child.wait()?.success());
    assert_eq!(
        keyring
            .load(&other)?
            .ok_or("missing")?
            .access_token
            .secret(),
        "gho_seedAccess123"
    );
    assert!(keyring.delete(&other)?);
    Ok(())
}

#[test]
fn real_secret_service_auto_and_keyring_modes() -> TestResult {
    if !real_secret_service() {
        return Ok(());
    }
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    let provider = ProviderName::new(&format!("auto-{}", std::process::id()))?;
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(format!("{provider}.json")), SEED_FIXTURE)?;

    let auto = open_store(StorageMode::Auto, home.path())?;
    // The Python original's file is found, then migrated into the keyring on save.
    assert_eq!(
        auto.load(&provider)?.ok_or("seed")?.access_token.secret(),
        "gho_seedAccess123"
    );
    auto.save(&provider, &numbered(5, 0)?)?;
    assert!(!dir.join(format!("{provider}.json")).exists());
    assert_eq!(
        AutoStore::new(dir).backend_for(&provider)?,
        Some(Backend::Keyring)
    );
    assert!(secret_tool_lookup(provider.as_str())?.is_some_and(|s| s.contains("tok-5")));
    assert!(auto.location(&provider).contains("system keyring"));
    assert_eq!(
        auto.load(&provider)?
            .ok_or("missing")?
            .access_token
            .secret(),
        "tok-5"
    );

    // Forced keyring mode reads the same entry; file mode does not read it (nor any file copy) and
    // says where the tokens are.
    let forced = open_store(StorageMode::Keyring, home.path())?;
    assert_eq!(forced.name(), "keyring");
    assert_eq!(
        forced
            .load(&provider)?
            .ok_or("missing")?
            .access_token
            .secret(),
        "tok-5"
    );
    assert!(matches!(
        open_store(StorageMode::File, home.path())?.load(&provider),
        Err(context_harness_storage::Error::RecordedElsewhere {
            backend: Backend::Keyring,
            ..
        })
    ));

    assert!(auto.delete(&provider)?);
    assert_eq!(secret_tool_lookup(provider.as_str())?, None);
    assert!(auto.load(&provider)?.is_none());
    Ok(())
}

/// A provider recorded as "keyring" with a stale plaintext copy next to it (left by
/// an older version or a removal that failed). Neither a locked nor a timed-out keyring read, nor an
/// entry gone from the keyring, may hand out the stale copy's old refresh token.
#[test]
fn keyring_read_failures_never_fall_back_to_a_stale_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = mock_store()?;
    let github = name("github");
    let auto = AutoStore::with_keyring(
        dir.path().to_path_buf(),
        KeyringStore::with_credential_store(store.clone()),
    );
    auto.save(&github, &numbered(2, 0)?)?;
    assert_eq!(auto.backend_for(&github)?, Some(Backend::Keyring));
    let stale = dir.path().join("github.json");
    fs::write(&stale, numbered(1, 0)?.to_json()?)?;
    fs::set_permissions(&stale, fs::Permissions::from_mode(0o600))?;

    // The live copy is read from the keyring, not the stale file.
    assert_eq!(
        auto.load(&github)?.ok_or("missing")?.access_token.secret(),
        "tok-2"
    );

    // Locked: an error that says so.
    inject(&store, "github", locked())?;
    let err = auto.load(&github).err().ok_or("locked keyring fell back")?;
    assert!(err.is_keyring_unavailable(), "{err:?}");
    assert!(err.to_string().contains("refused access"), "{err}");

    // Timed out: an error that says so (a new process whose keyring is wedged).
    let stuck: Arc<CredentialStore> = Arc::new(StuckStore);
    let wedged = AutoStore::with_keyring(
        dir.path().to_path_buf(),
        KeyringStore::with_credential_store(stuck).with_timeout(Duration::from_millis(100)),
    );
    for _ in 0..2 {
        let err = wedged
            .load(&github)
            .err()
            .ok_or("timed-out read fell back")?;
        assert!(
            matches!(
                err,
                context_harness_storage::Error::Keyring {
                    kind: KeyringErrorKind::TimedOut,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("did not answer in time"), "{err}");
    }

    // Gone from the keyring: not signed in, still not the stale file.
    Entry::new_in_store(&store, KEYRING_SERVICE, "github")?.delete_credential()?;
    let auto = AutoStore::with_keyring(
        dir.path().to_path_buf(),
        KeyringStore::with_credential_store(store.clone()),
    );
    assert!(auto.load(&github)?.is_none());
    assert_eq!(fs::read(&stale)?, numbered(1, 0)?.to_json()?.into_bytes());
    Ok(())
}

/// `--storage file` on a provider recorded as "keyring": refused with a message naming the keyring,
/// never the stale file.
#[test]
fn file_mode_refuses_a_keyring_recorded_provider() -> TestResult {
    let home = tempfile::tempdir()?;
    let tokens = context_harness_storage::tokens_dir(home.path());
    let store = mock_store()?;
    let github = name("github");
    AutoStore::with_keyring(
        tokens.clone(),
        KeyringStore::with_credential_store(store.clone()),
    )
    .save(&github, &numbered(2, 0)?)?;
    fs::write(tokens.join("github.json"), numbered(1, 0)?.to_json()?)?;
    let file_mode = open_store(StorageMode::File, home.path())?;
    let err = file_mode
        .load(&github)
        .err()
        .ok_or("file mode read a stale copy")?;
    assert!(
        matches!(
            err,
            context_harness_storage::Error::RecordedElsewhere {
                backend: Backend::Keyring,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("system keyring"), "{err}");
    Ok(())
}
