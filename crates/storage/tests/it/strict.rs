//! StrictModes for the home directory (as OpenSSH's `StrictModes`). Each test replays what another local user
//! could do in a shared home — swap a file for a symbolic link, make a directory group-writable, plant
//! a file they own — and checks that it is now refused with [`Error::Untrusted`] naming the path and
//! the command that fixes it. Files that would not end (a FIFO, a device) or are too large to read are
//! refused too, without hanging and without reading past [`MAX_FILE_BYTES`].

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use context_harness_storage::{
    AutoStore, Error, FileStore, MAX_FILE_BYTES, ProviderLock, StorageMode, TokenStore,
    TrustProblem, check_home, open_store, read_trusted, tokens_dir, write_private_atomic,
};

use crate::util::{SEED_FIXTURE, TestResult, mode, name, numbered};

/// The refusal in `result`, with its path, problem and fix; fails the test for anything else.
fn refused<T: std::fmt::Debug>(
    result: Result<T, Error>,
) -> Result<(std::path::PathBuf, TrustProblem, String), String> {
    match result {
        Err(err @ Error::Untrusted { .. }) => {
            let fix = err.fix().ok_or("no fix")?;
            let shown = err.to_string();
            if !shown.contains(&fix) {
                return Err(format!("message does not name the fix: {shown}"));
            }
            match err {
                Error::Untrusted { path, problem } => {
                    if !shown.contains(&path.display().to_string()) {
                        return Err(format!("message does not name the path: {shown}"));
                    }
                    Ok((path, problem, fix))
                }
                _ => Err("unreachable".to_owned()),
            }
        }
        other => Err(format!("expected a refusal, got {other:?}")),
    }
}

fn chmod(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Changes `path`'s owner to uid 65534 (`nobody`); `false` when this process may not (not root), in
/// which case the caller cannot simulate another user.
fn give_to_nobody(path: &Path) -> Result<bool, std::io::Error> {
    if effective_uid() != 0 {
        return Ok(false);
    }
    std::os::unix::fs::lchown(path, Some(65534), None)?;
    Ok(true)
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just created is its effective uid.
    tempfile::NamedTempFile::new()
        .and_then(|f| f.as_file().metadata())
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[test]
fn token_file_replaced_by_a_symlink_is_refused_not_followed() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    let store = FileStore::new(dir.clone());
    store.save(&name("github"), &numbered(1, 0)?)?;
    // The attacker's tokens (say, an account they control), reached through a link.
    let elsewhere = home.path().join("attacker.json");
    fs::write(&elsewhere, SEED_FIXTURE)?;
    chmod(&elsewhere, 0o600)?;
    let file = dir.join("github.json");
    fs::remove_file(&file)?;
    symlink(&elsewhere, &file)?;

    let (path, problem, fix) = refused(store.load(&name("github")))?;
    assert_eq!(path, file);
    assert_eq!(problem, TrustProblem::Symlink);
    assert_eq!(fix, format!("rm {}", file.display()));
    // The same for the auto store, and for its backend record.
    let auto = open_store(StorageMode::File, home.path())?;
    refused(auto.load(&name("github")))?;
    let record = dir.join("google.backend");
    symlink(&elsewhere, &record)?;
    let (path, _, _) = refused(AutoStore::new(dir.clone()).load(&name("google")))?;
    assert_eq!(path, record);
    // And for any file read through the shared helper.
    refused(read_trusted(&file))?;
    // A link to a directory or a dangling one fares no better.
    let dangling = dir.join("gitlab.json");
    symlink(home.path().join("nothing-here"), &dangling)?;
    refused(store.load(&name("gitlab")))?;
    Ok(())
}

#[test]
fn group_or_other_writable_directories_and_files_are_refused() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    let store = FileStore::new(dir.clone());
    store.save(&name("github"), &numbered(1, 0)?)?;
    let file = dir.join("github.json");

    for loose in [0o770, 0o730, 0o707, 0o703] {
        chmod(&dir, loose)?;
        let (path, problem, fix) = refused(store.load(&name("github")))?;
        assert_eq!(path, dir);
        assert_eq!(problem, TrustProblem::Writable { mode: loose });
        assert_eq!(fix, format!("chmod go-w {}", dir.display()));
        // Writing, locking and checking the home refuse it as well, and nothing is repaired quietly.
        refused(store.save(&name("github"), &numbered(2, 0)?))?;
        refused(ProviderLock::acquire(&dir, &name("github"), Duration::ZERO))?;
        refused(check_home(home.path()))?;
        assert_eq!(mode(&dir)?, loose);
    }
    chmod(&dir, 0o700)?;
    assert_eq!(
        store
            .load(&name("github"))?
            .ok_or("missing")?
            .access_token
            .secret(),
        "tok-1"
    );

    // A group-writable token file.
    chmod(&file, 0o620)?;
    let (path, problem, _) = refused(store.load(&name("github")))?;
    assert_eq!(
        (path, problem),
        (file.clone(), TrustProblem::Writable { mode: 0o620 })
    );
    chmod(&file, 0o600)?;

    // The home itself.
    chmod(home.path(), 0o775)?;
    let (path, _, fix) = refused(check_home(home.path()))?;
    assert_eq!(path, home.path());
    assert_eq!(fix, format!("chmod go-w {}", home.path().display()));
    chmod(home.path(), 0o700)?;
    check_home(home.path())?;
    Ok(())
}

#[test]
fn every_home_directory_and_providers_toml_is_checked() -> TestResult {
    let home = tempfile::tempdir()?;
    for sub in ["tokens", "mcp", "registrations", "cache", "cache/discovery"] {
        let dir = home.path().join(sub);
        fs::create_dir_all(&dir)?;
        chmod(&dir, 0o700)?;
    }
    let config = home.path().join("providers.toml");
    fs::write(&config, "")?;
    chmod(&config, 0o644)?;
    check_home(home.path())?;
    for sub in ["tokens", "mcp", "registrations", "cache", "cache/discovery"] {
        let dir = home.path().join(sub);
        chmod(&dir, 0o777)?;
        let (path, _, _) = refused(check_home(home.path()))?;
        assert_eq!(path, dir, "{sub}");
        chmod(&dir, 0o700)?;
    }
    chmod(&config, 0o666)?;
    let (path, _, _) = refused(check_home(home.path()))?;
    assert_eq!(path, config);
    fs::remove_file(&config)?;
    symlink("/etc/hostname", &config)?;
    let (path, problem, _) = refused(check_home(home.path()))?;
    assert_eq!((path, problem), (config, TrustProblem::Symlink));
    Ok(())
}

#[test]
fn files_and_directories_owned_by_another_user_are_refused() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    let store = FileStore::new(dir.clone());
    store.save(&name("github"), &numbered(1, 0)?)?;
    let file = dir.join("github.json");
    // Another user's record, planted in place of ours (the mode alone is private).
    if !give_to_nobody(&file)? {
        // Only root can give a file away; CI runs the tests as root.
        return Ok(());
    }
    let (path, problem, fix) = refused(store.load(&name("github")))?;
    assert_eq!(path, file);
    assert_eq!(
        problem,
        TrustProblem::Owner {
            owner: 65534,
            expected: 0
        }
    );
    assert_eq!(fix, format!("chown root {}", file.display()));
    std::os::unix::fs::lchown(&file, Some(0), None)?;
    store.load(&name("github"))?.ok_or("missing")?;

    // A directory owned by another user.
    give_to_nobody(&dir)?;
    let (path, _, fix) = refused(store.save(&name("github"), &numbered(2, 0)?))?;
    assert_eq!(path, dir);
    assert!(fix.starts_with("chown root "), "{fix}");
    refused(write_private_atomic(&dir.join("x.json"), b"{}"))?;
    refused(check_home(home.path()))?;
    Ok(())
}

#[test]
fn a_fifo_or_directory_in_place_of_a_file_is_refused_without_hanging() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    let store = FileStore::new(dir.clone());
    store.save(&name("google"), &numbered(1, 0)?)?;
    let fifo = dir.join("github.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success());
    // Without O_NONBLOCK this open would wait forever for a writer.
    let (path, problem, _) = refused(store.load(&name("github")))?;
    assert_eq!((path, problem), (fifo, TrustProblem::NotFile));
    fs::create_dir(dir.join("gitlab.json"))?;
    let (_, problem, _) = refused(store.load(&name("gitlab")))?;
    assert_eq!(problem, TrustProblem::NotFile);
    Ok(())
}

#[test]
fn lock_file_replaced_by_a_symlink_is_refused() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    fs::create_dir_all(&dir)?;
    chmod(&dir, 0o700)?;
    let target = home.path().join("victim");
    fs::write(&target, b"")?;
    symlink(&target, dir.join("github.lock"))?;
    let (_, problem, _) = refused(ProviderLock::acquire(&dir, &name("github"), Duration::ZERO))?;
    assert_eq!(problem, TrustProblem::Symlink);
    Ok(())
}

#[test]
fn readable_but_not_writable_modes_are_still_tightened() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("tokens");
    fs::create_dir(&dir)?;
    chmod(&dir, 0o755)?;
    let file = dir.join("github.json");
    fs::write(&file, SEED_FIXTURE)?;
    chmod(&file, 0o644)?;
    FileStore::new(dir.clone())
        .load(&name("github"))?
        .ok_or("missing")?;
    assert_eq!(mode(&dir)?, 0o700);
    assert_eq!(mode(&file)?, 0o600);
    Ok(())
}

/// Runs `read` on its own thread and returns its result, failing the test if it has not returned
/// within a generous bound (a read of a FIFO without a writer would never return).
fn bounded<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the read did not return: it hung".to_owned())
}

#[test]
fn oversized_files_are_refused_before_they_are_read() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    // The token file written by the file store (an auto store would use the keyring where one
    // works, as in CI); the auto store then reads it through the backend record.
    FileStore::new(dir.clone()).save(&name("github"), &numbered(1, 0)?)?;
    let store = AutoStore::new(dir.clone());
    let file = dir.join("github.json");
    let record = dir.join("github.backend");
    fs::write(&record, "file\n")?;
    chmod(&record, 0o600)?;
    let big = MAX_FILE_BYTES + 1;
    for (path, read) in [(file.clone(), "token file"), (record, "backend record")] {
        // Sparse: the size is there, the disk blocks are not.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(big)?;
        let err = store
            .load(&name("github"))
            .err()
            .ok_or(format!("oversized {read} accepted"))?;
        assert!(err.is_too_large(), "{read}: {err:?}");
        match &err {
            Error::TooLarge { path: p, limit } => {
                assert_eq!((p, *limit), (&path, MAX_FILE_BYTES), "{read}");
            }
            other => return Err(format!("{read}: {other:?}").into()),
        }
        let shown = err.to_string();
        assert!(
            shown.contains(&path.display().to_string()) && shown.contains("larger than 4096 KiB"),
            "{shown}"
        );
        assert!(read_trusted(&path).is_err_and(|e| e.is_too_large()));
        // At the limit exactly, the size is fine (the zeros are then refused as not being text).
        fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(MAX_FILE_BYTES)?;
        let at_limit = read_trusted(&path)?.ok_or("missing")?;
        assert_eq!(at_limit.len(), usize::try_from(MAX_FILE_BYTES)?);
        if path == file {
            store.save(&name("github"), &numbered(2, 0)?)?;
        } else {
            fs::write(&path, "file\n")?;
        }
    }
    // A token file at the limit that is not text is corrupt, not too large, and names the NUL.
    fs::OpenOptions::new()
        .write(true)
        .open(&file)?
        .set_len(MAX_FILE_BYTES)?;
    let err = FileStore::new(dir)
        .load(&name("github"))
        .err()
        .ok_or("zeros accepted")?;
    assert!(err.is_corrupt(), "{err:?}");
    let cause = std::error::Error::source(&err)
        .ok_or("no cause")?
        .to_string();
    assert!(cause.contains("NUL character at byte "), "{cause}");
    Ok(())
}

#[test]
fn endless_files_are_refused_without_hanging_or_reading() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tokens_dir(home.path());
    FileStore::new(dir.clone()).save(&name("google"), &numbered(1, 0)?)?;

    // A link to /dev/zero: followed, it would be read until memory ran out.
    let zero = dir.join("github.json");
    symlink("/dev/zero", &zero)?;
    let (path, problem, _) = refused(bounded({
        let zero = zero.clone();
        move || read_trusted(&zero)
    })?)?;
    assert_eq!((path, problem), (zero.clone(), TrustProblem::Symlink));
    let (_, problem, _) = refused(bounded({
        let dir = dir.clone();
        move || FileStore::new(dir).load(&name("github"))
    })?)?;
    assert_eq!(problem, TrustProblem::Symlink);
    fs::remove_file(&zero)?;

    // A FIFO nobody writes to: opened blocking, or read, it would wait forever.
    let fifo = dir.join("gitlab.json");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()?
            .success()
    );
    let (path, problem, fix) = refused(bounded({
        let fifo = fifo.clone();
        move || read_trusted(&fifo)
    })?)?;
    assert_eq!((path, problem), (fifo.clone(), TrustProblem::NotFile));
    assert_eq!(fix, format!("rm {}", fifo.display()));

    // A character device like /dev/zero itself (1, 5); creating one needs CAP_MKNOD (root, as in CI).
    let device = dir.join("bitbucket.json");
    let made = std::process::Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "5"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // Without the capability (not root) the case cannot be set up; CI runs the tests as root.
    if made {
        chmod(&device, 0o600)?;
        let (path, problem, _) = refused(bounded({
            let device = device.clone();
            move || read_trusted(&device)
        })?)?;
        assert_eq!((path, problem), (device, TrustProblem::NotFile));
    }
    // The store's own tokens are untouched by all this.
    assert_eq!(
        FileStore::new(dir)
            .load(&name("google"))?
            .ok_or("missing")?
            .access_token
            .secret(),
        "tok-1"
    );
    Ok(())
}
