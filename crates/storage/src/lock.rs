//! A per-provider, cross-process advisory lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;

use crate::ProviderName;
use crate::error::{Error, Result, TrustProblem};
use crate::fs::ensure_private_dir;

/// Longest sleep between two attempts while waiting for a lock.
const MAX_BACKOFF: Duration = Duration::from_millis(25);

/// An exclusive lock on one provider, held until dropped.
///
/// Backed by the operating system's advisory file lock (`flock` on Unix, `LockFileEx` on Windows) on
/// `<dir>/<provider>.lock`, so it excludes other processes as well as other handles in this process,
/// and the OS releases it if the holder dies. It protects read-modify-write sequences such as a token
/// refresh: take the lock, load, refresh only if still needed, save, drop. The lock file is empty and
/// is never deleted (deleting a lock file while someone waits on it would break mutual exclusion).
#[derive(Debug)]
pub struct ProviderLock {
    file: File,
    path: PathBuf,
}

impl ProviderLock {
    /// Takes the lock for `provider` in `dir`, waiting at most `wait` for another holder to let go.
    ///
    /// `dir` is created with mode 0700 if missing and the lock file with mode 0600. Waiting polls
    /// `try_lock` with a short exponential back-off (1 ms doubling to 25 ms), so the bound is honoured
    /// to within a few milliseconds. `Duration::ZERO` tries exactly once.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] when the lock is still held by someone else after `wait`;
    /// [`Error::Untrusted`] when `dir` or the lock file could have been written by another user, or the
    /// lock file is a symbolic link (it is opened with `O_NOFOLLOW`);
    /// [`Error::Io`] when the directory or lock file cannot be created or locking itself fails.
    pub fn acquire(dir: &Path, provider: &ProviderName, wait: Duration) -> Result<Self> {
        ensure_private_dir(dir)?;
        let path = dir.join(format!("{}.lock", provider.as_str()));
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        opts.mode(crate::fs::FILE_MODE)
            .custom_flags(crate::trust::nofollow_flags());
        let file = match opts.open(&path) {
            Ok(file) => file,
            Err(_) if fs_is_symlink(&path) => {
                return Err(Error::untrusted(&path, TrustProblem::Symlink));
            }
            Err(e) => return Err(Error::io("open lock file", &path, e)),
        };
        crate::trust::check_open_file(&file, &path)?;

        let start = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file, path }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(Error::LockTimeout { path, waited });
            }
            std::thread::sleep(backoff.min(wait - waited));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn fs_is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

impl Drop for ProviderLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes the release explicit.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_times_out_then_succeeds_after_drop() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let name = ProviderName::new("github")?;
        let first = ProviderLock::acquire(dir.path(), &name, Duration::ZERO)?;
        let start = Instant::now();
        let second = ProviderLock::acquire(dir.path(), &name, Duration::from_millis(100));
        let elapsed = start.elapsed();
        assert!(second.as_ref().err().is_some_and(Error::is_lock_timeout));
        assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(2));
        // Another provider is independent.
        let other =
            ProviderLock::acquire(dir.path(), &ProviderName::new("google")?, Duration::ZERO)?;
        drop(first);
        let again = ProviderLock::acquire(dir.path(), &name, Duration::ZERO)?;
        assert!(again.path().ends_with("github.lock"));
        drop(other);
        Ok(())
    }
}
