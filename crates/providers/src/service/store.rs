//! Where the service keeps tokens: loads and saves off the async threads, the per-provider refresh
//! lock, and the 0600 recovery file that holds refreshed tokens the store refused.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use context_harness_storage as storage;
use storage::{ProviderLock, ProviderName, TokenStore};

use super::OAuthService;
use crate::error::{Error, ErrorCode, Result, storage_error};
use crate::tokens::OAuthTokens;

impl OAuthService {
    /// The newest stored tokens: the recovery file's when one exists (see
    /// [`save_rotation`](Self::save_rotation)), else the store's.
    pub(super) async fn load(&self, name: &ProviderName) -> Result<Option<OAuthTokens>> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        blocking(move || load_newest(store.as_ref(), &recovery, &name)).await
    }

    /// [`load`](Self::load) under the refresh lock: a recovery file is moved back into the store
    /// when the store accepts it again (it stays, and is used, when not).
    pub(super) async fn load_locked(&self, name: &ProviderName) -> Result<Option<OAuthTokens>> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        blocking(move || {
            let Some(recovered) = read_recovery(&recovery) else {
                return store.load(&name).map_err(storage_error);
            };
            match store.save(&name, &recovered) {
                Ok(()) => {
                    remove_recovery(&recovery)?;
                    tracing::info!(
                        provider = name.as_str(),
                        "moved the recovered tokens back into the store"
                    );
                }
                Err(e) => tracing::debug!(
                    provider = name.as_str(),
                    error = %e,
                    "the store still fails; keeping the recovery file"
                ),
            }
            Ok(Some(recovered))
        })
        .await
    }

    /// Where tokens go when the store fails right after a refresh: `tokens/<name>.recovery` (0600),
    /// beside the token files.
    pub(super) fn recovery_path(&self, name: &ProviderName) -> PathBuf {
        storage::HomeLayout::new(&self.home)
            .tokens_dir()
            .join(format!("{}.recovery", name.as_str()))
    }

    /// Saves `tokens` to the store (off the async threads).
    pub(super) async fn save(&self, name: &ProviderName, tokens: OAuthTokens) -> Result<()> {
        let store = Arc::clone(&self.store);
        let name = name.clone();
        blocking(move || store.save(&name, &tokens).map_err(storage_error)).await
    }

    /// Takes `name`'s refresh lock, waiting at most the lock timeout.
    pub(super) async fn lock(&self, name: &ProviderName) -> Result<ProviderLock> {
        let dir = self.lock_dir.clone();
        let name = name.clone();
        let wait = self.lock_timeout;
        blocking(move || acquire_lock(&dir, &name, wait)).await
    }

    /// [`lock`](Self::lock) for sync callers.
    pub(super) fn lock_blocking(&self, name: &ProviderName) -> Result<ProviderLock> {
        acquire_lock(&self.lock_dir, name, self.lock_timeout)
    }
}

/// Takes the per-provider refresh lock, waiting at most `wait`.
pub(super) fn acquire_lock(
    dir: &Path,
    name: &ProviderName,
    wait: Duration,
) -> Result<ProviderLock> {
    ProviderLock::acquire(dir, name, wait).map_err(|e| {
        if e.is_lock_timeout() {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "another process held the refresh lock for over {} s",
                    wait.as_secs()
                ),
            )
            .with_source(e)
        } else {
            storage_error(e)
        }
    })
}

/// Runs blocking store/lock work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::new(ErrorCode::Storage, "a storage task failed").with_source(e))
    })
}

/// The recovery file's tokens, if there is a readable one (see `OAuthService::save_rotation`).
pub(super) fn read_recovery(path: &Path) -> Option<OAuthTokens> {
    // Read the one trusted way, like every home file: a symbolic link, FIFO, device, oversized file,
    // or one another user owns or may write is refused (never followed, never waited on), and the
    // store's own tokens are used instead. The error names the file, the problem and the fix.
    let bytes = match storage::read_trusted(path) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the token recovery file");
            return None;
        }
    };
    let parsed = storage::decode_text(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|text| OAuthTokens::from_json(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(tokens) => Some(tokens),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable token recovery file");
            None
        }
    }
}

/// Removes the recovery file; `Ok(true)` when there was one.
pub(super) fn remove_recovery(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::new(
            ErrorCode::Storage,
            format!("cannot remove the token recovery file {}", path.display()),
        )
        .with_source(e)),
    }
}

/// The recovery file's tokens when there are some (they are newer than the store's), else the store's.
pub(super) fn load_newest(
    store: &dyn TokenStore,
    recovery: &Path,
    name: &ProviderName,
) -> Result<Option<OAuthTokens>> {
    match read_recovery(recovery) {
        Some(tokens) => Ok(Some(tokens)),
        None => store.load(name).map_err(storage_error),
    }
}
