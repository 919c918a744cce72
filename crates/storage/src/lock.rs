//! Per-provider, cross-process advisory locks: the refresh lock and the sign-in lock
//! ([`LockKind`]).

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

/// Which of a provider's locks (each its own file, so holding one never blocks another).
///
/// **Ordering.** A process may take the sign-in lock and then, inside it, the refresh lock (to store
/// the tokens the sign-in obtained), never the other way round: nobody waits for the sign-in lock
/// while holding the refresh lock, so the two cannot deadlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockKind {
    /// `<provider>.lock`: held for short read-modify-write sequences of the stored tokens (a refresh,
    /// the save of a sign-in's tokens, a logout): milliseconds to one token request.
    Refresh,
    /// `<provider>.signin-lock`: held for a whole interactive sign-in (browser or device flow, up to
    /// the user's timeout), so that processes needing the same provider at once run one sign-in and
    /// share its tokens instead of opening a browser each. The suffix has a character after the last
    /// dot that no other file of the token directory has (`.json`, `.backend`, `.recovery`,
    /// `.lock`), so it cannot be another provider's file: `foo.signin-lock` is no file of a
    /// provider named `foo.signin`.
    SignIn,
    /// `<provider>.accounts-lock`: held for the read-modify-write of the provider's account index
    /// (`<provider>.accounts`, [`AccountIndex`](crate::AccountIndex)), milliseconds. It is the
    /// innermost lock: taken possibly inside the other two, and no other lock is taken while it
    /// is held. Like the sign-in lock's, its suffix has a `-` after the last dot, which no file
    /// of a provider or account has.
    Accounts,
}

impl LockKind {
    /// The lock file's name for `provider` (`<provider>.lock`, `<provider>.signin-lock` or
    /// `<provider>.accounts-lock`; `provider` is a storage key, with its account when it has one).
    pub fn file_name(self, provider: &ProviderName) -> String {
        match self {
            Self::Refresh => format!("{}.lock", provider.as_str()),
            Self::SignIn => format!("{}.signin-lock", provider.as_str()),
            Self::Accounts => format!("{}.accounts-lock", provider.as_str()),
        }
    }
}

/// An exclusive lock on one provider, held until dropped.
///
/// Backed by the operating system's advisory file lock (`flock` on Unix, `LockFileEx` on Windows) on
/// `<dir>/<provider>.lock` (or, for [`LockKind::SignIn`], `<dir>/<provider>.signin-lock`), so it
/// excludes other processes as well as other handles in this process, and the OS releases it if the
/// holder dies. The refresh lock protects read-modify-write sequences such as a token refresh: take
/// the lock, load, refresh only if still needed, save, drop. The sign-in lock is held for a whole
/// interactive sign-in (see [`LockKind`], also for the order in which the two may be taken). A lock
/// file is empty and is never deleted (deleting a lock file while someone waits on it would break
/// mutual exclusion).
#[derive(Debug)]
pub struct ProviderLock {
    file: File,
    path: PathBuf,
    kind: LockKind,
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
        Self::acquire_kind(dir, provider, LockKind::Refresh, wait)
    }

    /// Takes `provider`'s lock of `kind` in `dir`, waiting at most `wait`: as
    /// [`acquire`](Self::acquire), which is this with [`LockKind::Refresh`].
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    pub fn acquire_kind(
        dir: &Path,
        provider: &ProviderName,
        kind: LockKind,
        wait: Duration,
    ) -> Result<Self> {
        ensure_private_dir(dir)?;
        let path = dir.join(kind.file_name(provider));
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
                Ok(()) => return Ok(Self { file, path, kind }),
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

    /// Which lock this is.
    pub fn kind(&self) -> LockKind {
        self.kind
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

    #[test]
    fn the_sign_in_lock_is_independent_of_the_refresh_lock() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", ".", e))?;
        let name = ProviderName::new("github")?;
        let sign_in =
            ProviderLock::acquire_kind(dir.path(), &name, LockKind::SignIn, Duration::ZERO)?;
        assert!(sign_in.path().ends_with("github.signin-lock"));
        assert_eq!(sign_in.kind(), LockKind::SignIn);
        // The refresh lock stays free while a sign-in runs (a sign-in stores under it).
        let refresh = ProviderLock::acquire(dir.path(), &name, Duration::ZERO)?;
        assert_eq!(refresh.kind(), LockKind::Refresh);
        let second =
            ProviderLock::acquire_kind(dir.path(), &name, LockKind::SignIn, Duration::ZERO);
        assert!(second.err().is_some_and(|e| e.is_lock_timeout()));
        // A provider named like another's sign-in lock has a lock file of its own.
        let lookalike = ProviderName::new("github.signin")?;
        let other = ProviderLock::acquire(dir.path(), &lookalike, Duration::ZERO)?;
        assert_ne!(other.path(), sign_in.path());
        drop(sign_in);
        ProviderLock::acquire_kind(dir.path(), &name, LockKind::SignIn, Duration::ZERO)?;
        Ok(())
    }
}
