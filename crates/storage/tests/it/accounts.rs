//! Accounts in the file store: the storage keys of two accounts of one provider never touch each
//! other's files, not even a writer's temporary file, whatever the account names.

use std::fs;

use context_harness_storage::{AccountName, FileStore, TokenStore};

use crate::util::{TestResult, name, numbered};

/// The largest pid Linux hands out is 4 194 304 (`pid_max`'s ceiling): no process has this one.
const NO_SUCH_PID: u32 = 4_194_999;

/// Account `a`'s token file is `local@a.json`; account `a.json.tmp.4194999`'s is
/// `local@a.json.tmp.4194999.json`, whose temporary file while it is being written
/// (`.local@a.json.tmp.4194999.json.tmp.<pid>.<n>`) starts like one of `local@a.json`'s. Saving `a`
/// removes `a`'s own temporary files left by dead writers only: the other account's, whose writer
/// is alive, stays (else that writer's rename fails and its sign-in is lost).
#[test]
fn saving_one_account_keeps_another_accounts_temp_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = FileStore::new(dir.path().to_path_buf());
    let local = name("local");
    let a = local.with_account(&AccountName::new("a")?);
    let other = local.with_account(&AccountName::new(&format!("a.json.tmp.{NO_SUCH_PID}"))?);
    // The other account's writer, alive (this test's parent process), mid-write.
    let alive = std::os::unix::process::parent_id();
    let in_flight = dir
        .path()
        .join(format!(".{}.json.tmp.{alive}.0", other.as_str()));
    fs::write(&in_flight, b"{}")?;
    // A temporary file of `a` itself whose writer is gone: cleaned up.
    let stale = dir
        .path()
        .join(format!(".{}.json.tmp.{NO_SUCH_PID}.0", a.as_str()));
    fs::write(&stale, b"{}")?;

    store.save(&a, &numbered(1, 0)?)?;
    assert!(
        in_flight.exists(),
        "another account's temporary file was removed"
    );
    assert!(!stale.exists(), "a dead writer's temporary file was kept");
    assert_eq!(
        store.load(&a)?.ok_or("a's tokens")?.access_token.secret(),
        "tok-1"
    );
    assert!(store.load(&other)?.is_none());
    Ok(())
}
