//! One interactive sign-in per provider or server across processes.
//!
//! A sign-in (browser or device flow) runs under the name's sign-in lock
//! ([`LockKind::SignIn`], `tokens/<name>.signin-lock`), held from before discovery and registration
//! until its tokens are stored. A process that needs a sign-in while another holds that lock waits
//! for it (bounded by the sign-in's timeout, and saying so once through
//! [`SignInUi::waiting_for_sign_in`]); once it has the lock it reads the store again, and tokens that
//! the other process's sign-in stored meanwhile are its answer: no second browser. When the other
//! process died or its sign-in failed, the OS has released the lock and the waiter signs in itself.
//!
//! Lock order: the sign-in lock is taken with no lock held, and the refresh lock only inside it (to
//! store the tokens), never the other way round, so the two cannot deadlock.

use std::time::{Duration, SystemTime};

use context_harness_storage::{LockKind, ProviderLock, ProviderName};

use super::store::blocking;
use super::{AuthOutcome, AuthenticateOptions, OAuthService, for_provider, mcp};
use crate::SignInUi;
use crate::error::{Error, ErrorCode, Result, storage_error};
use crate::provider_ref::ProviderRef;
use crate::tokens::OAuthTokens;

/// The longest pause between two attempts to take a sign-in lock another process holds.
const MAX_POLL: Duration = Duration::from_millis(100);

/// What a process about to sign in does: the sign-in itself (holding the lock until it is done), or
/// nothing, because another process's sign-in stored usable tokens while this one waited.
pub(super) enum Turn {
    /// Sign in, holding this lock until the tokens are stored.
    Ours(ProviderLock),
    /// Another process signed in; these are its tokens.
    Shared(Box<AuthOutcome>),
}

impl OAuthService {
    /// Takes `target`'s sign-in lock (waiting at most `options.timeout` for another process's
    /// sign-in), then decides whose sign-in this is: tokens stored meanwhile by another process's
    /// sign-in are used (see [`reusable`]); otherwise the caller signs in, holding the lock.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Timeout`] when another process is still signing in after `options.timeout`;
    /// [`ErrorCode::Storage`].
    pub(super) async fn sign_in_turn(
        &self,
        target: &ProviderRef,
        options: &AuthenticateOptions,
    ) -> Result<Turn> {
        let name = target.storage_key();
        let before = self.readable_tokens(target).await;
        let ui = options.ui_or_default();
        let (lock, waited) = self
            .take_sign_in_lock(target.as_str(), name, options.timeout, ui.as_ref())
            .await?;
        let after = self.readable_tokens(target).await;
        let Some(tokens) = after else {
            return Ok(Turn::Ours(lock));
        };
        if !reusable(
            before.as_ref(),
            &tokens,
            waited,
            options.scopes.as_deref(),
            SystemTime::now(),
        ) || mcp::check_tokens_server(target, &tokens).is_err()
        {
            return Ok(Turn::Ours(lock));
        }
        tracing::info!(
            provider = target.as_str(),
            "another process signed in while this one waited; using its tokens"
        );
        let mut outcome = self.outcome(name, tokens, String::new(), Vec::new());
        outcome.by_other_process = true;
        Ok(Turn::Shared(Box::new(outcome)))
    }

    /// The outcome of a sign-in that stored `tokens` under `name` (after `redirect_uri` on the
    /// loopback listener, skipping the busy `skipped_ports`; empty for the device flow).
    pub(super) fn outcome(
        &self,
        name: &ProviderName,
        tokens: OAuthTokens,
        redirect_uri: String,
        skipped_ports: Vec<u16>,
    ) -> AuthOutcome {
        AuthOutcome {
            tokens,
            redirect_uri,
            skipped_ports,
            store: self.store.name(),
            location: self.store.location(name),
            by_other_process: false,
        }
    }

    /// The stored tokens, or `None` when they cannot be read (a corrupt file, say): a sign-in is
    /// what replaces those, so reading them must not stop it.
    async fn readable_tokens(&self, target: &ProviderRef) -> Option<OAuthTokens> {
        self.load_target(target).await.unwrap_or_else(|e| {
            tracing::debug!(provider = target.as_str(), error = %e, "stored tokens unreadable before the sign-in");
            None
        })
    }

    /// Takes `name`'s sign-in lock, polling while another process holds it, for at most `wait`;
    /// tells `ui` once when it has to wait. `true` with the lock when it had to wait.
    pub(super) async fn take_sign_in_lock(
        &self,
        provider: &str,
        name: &ProviderName,
        wait: Duration,
        ui: &dyn SignInUi,
    ) -> Result<(ProviderLock, bool)> {
        let start = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut waited = false;
        loop {
            if let Some(lock) = self.try_sign_in_lock(name).await? {
                return Ok((lock, waited));
            }
            if !waited {
                waited = true;
                tracing::info!(provider, "another process is signing in; waiting for it");
                ui.waiting_for_sign_in(provider);
            }
            let elapsed = start.elapsed();
            if elapsed >= wait {
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "another process has been signing in to {} for over {} s",
                        crate::TerminalText(provider),
                        wait.as_secs()
                    ),
                )
                .with_hint(
                    "finish or cancel that sign-in, or wait longer with a larger --timeout",
                ));
            }
            tokio::time::sleep(pause.min(wait.saturating_sub(elapsed))).await;
            pause = pause.saturating_mul(2).min(MAX_POLL);
        }
    }

    /// One attempt at `name`'s sign-in lock: `None` while another holder has it.
    async fn try_sign_in_lock(&self, name: &ProviderName) -> Result<Option<ProviderLock>> {
        let dir = self.lock_dir.clone();
        let name = name.clone();
        blocking(move || {
            match ProviderLock::acquire_kind(&dir, &name, LockKind::SignIn, Duration::ZERO) {
                Ok(lock) => Ok(Some(lock)),
                Err(e) if e.is_lock_timeout() => Ok(None),
                Err(e) => Err(storage_error(e)),
            }
        })
        .await
    }

    /// Waits, at most `wait`, while another process (or another task of this one) runs an
    /// interactive sign-in to `provider`, telling `ui` once that it waits. For callers that need
    /// `provider`'s tokens but never sign in themselves (`mcp token`): after `Ok(true)` the tokens
    /// that sign-in stored, if it succeeded, are in the store
    /// ([`ensure_valid_token`](Self::ensure_valid_token) finds them).
    ///
    /// `Ok(false)` at once when no sign-in is running (creating no file); `Ok(true)` when one was
    /// and has ended, whether it stored tokens or not (its process may have died: the OS releases
    /// its lock).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::NotFound`] for a name that cannot be a provider's; [`ErrorCode::Timeout`] when
    /// the sign-in is still running after `wait`; [`ErrorCode::Storage`] when the lock file cannot
    /// be used.
    pub async fn wait_for_sign_in(
        &self,
        provider: &str,
        wait: Duration,
        ui: &dyn SignInUi,
    ) -> Result<bool> {
        let work = async {
            let target = self.target(provider)?;
            // Every sign-in creates its lock file before it holds it: without one, none is running
            // (and none is created here: a name nobody signed in to leaves no trace).
            let path = self
                .lock_dir
                .join(LockKind::SignIn.file_name(target.storage_key()));
            if std::fs::symlink_metadata(&path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                return Ok(false);
            }
            let (lock, waited) = self
                .take_sign_in_lock(provider, target.storage_key(), wait, ui)
                .await?;
            drop(lock);
            Ok(waited)
        };
        for_provider(provider, work).await
    }
}

/// Whether the tokens stored `now` (`after`, read under the sign-in lock) are another process's
/// sign-in that this one can use instead of signing in itself:
///
/// - they are not what this process saw before it waited (`before`): someone stored them since;
/// - their access token is still valid, and no refresh of theirs was refused;
/// - this process waited for the lock (another sign-in ran), or what it saw before could not be used
///   (none, expired, refresh refused): a refresh in between is no reason to skip a sign-in someone
///   asked for;
/// - they were granted every scope this sign-in asks for (`scopes`), when it asks for some.
fn reusable(
    before: Option<&OAuthTokens>,
    after: &OAuthTokens,
    waited: bool,
    scopes: Option<&[String]>,
    now: SystemTime,
) -> bool {
    let usable =
        |t: &OAuthTokens| t.refresh_failed_at.is_none() && !t.is_expired_at(now, Duration::ZERO);
    if before == Some(after) || !usable(after) {
        return false;
    }
    if !waited && before.is_some_and(usable) {
        return false;
    }
    match scopes {
        None => true,
        Some(asked) => {
            let granted = after.scopes();
            after.scope.is_some() && asked.iter().all(|s| granted.contains(&s.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::AccessToken;

    /// Tokens received a minute before the test's `now`.
    fn tokens(access: &str, scope: Option<&str>, expires_in: Option<u64>) -> OAuthTokens {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut t = OAuthTokens::new(AccessToken::new(access), "Bearer", received);
        t.scope = scope.map(str::to_owned);
        t.expires_in = expires_in;
        t
    }

    #[test]
    fn only_another_sign_ins_usable_tokens_are_taken() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060);
        let fresh = tokens("new", Some("read write"), Some(3600));
        // Nothing before, new tokens after: whether or not this process waited.
        assert!(reusable(None, &fresh, false, None, now));
        assert!(reusable(None, &fresh, true, None, now));
        // The same tokens as before: nobody signed in.
        assert!(!reusable(Some(&fresh), &fresh, true, None, now));
        // Usable tokens before and no wait: a refresh in between, not a sign-in; sign in as asked.
        let old = tokens("old", Some("read"), Some(3600));
        assert!(!reusable(Some(&old), &fresh, false, None, now));
        assert!(reusable(Some(&old), &fresh, true, None, now));
        // Expired or refused tokens before: new ones are the answer.
        let mut refused = old;
        refused.refresh_failed_at = Some(1.0);
        assert!(reusable(Some(&refused), &fresh, false, None, now));
        // Tokens that cannot be used are never taken.
        let expired = tokens("new", Some("read"), Some(0));
        assert!(!reusable(None, &expired, true, None, now));
        let mut marked = fresh.clone();
        marked.refresh_failed_at = Some(1.0);
        assert!(!reusable(None, &marked, true, None, now));
        // Scopes asked for must all have been granted, and known.
        let asked = ["read".to_owned(), "write".to_owned()];
        assert!(reusable(None, &fresh, true, Some(&asked), now));
        let more = ["admin".to_owned()];
        assert!(!reusable(None, &fresh, true, Some(&more), now));
        let unknown = tokens("new", None, Some(3600));
        assert!(!reusable(None, &unknown, true, Some(&asked), now));
        assert!(reusable(None, &unknown, true, None, now));
    }
}
