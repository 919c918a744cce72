//! Keeping tokens valid: [`OAuthService::ensure_valid_token`] and
//! [`OAuthService::refresh_tokens`] (RFC 6749 §6), single-flight across processes under the
//! provider lock, with transient answers waited out and a rotated refresh token never lost.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use context_harness_storage as storage;
use context_harness_tokens as tokens;
use storage::{ProviderLock, ProviderName};
use tokens::{AccessToken, OAuthTokens};
use url::Url;

use super::store::remove_recovery;
use super::{
    AuthenticateOptions, CLIENT_ID_KEY, EXPIRY_BUFFER, OAuthService, for_provider, grants, mcp,
    retry,
};
use crate::device::TokioClock;
use crate::error::{
    Error, ErrorCode, Grant, Result, classify_response_error, expired_without_rt, not_signed_in,
    refresh_refused_before,
};
use crate::provider::{OAuthConfig, check_endpoint};
use crate::provider_ref::ProviderRef;

impl OAuthService {
    /// Valid tokens for `provider`, refreshed first when the access token expires within its refresh
    /// margin, `min(`[`EXPIRY_BUFFER`]`, half its lifetime)`. Refreshes are single-flight across
    /// processes whatever the lifetime: a per-provider file lock, under which the stored tokens are
    /// re-read, and tokens that changed while waiting for it (another process refreshed) are used
    /// unless they have actually expired. A token that is still valid but has no refresh token is
    /// returned as it is.
    ///
    /// Answers meaning "try again later" (HTTP 429/503, `temporarily_unavailable`) are retried within
    /// [`REFRESH_RETRY_BUDGET`](crate::REFRESH_RETRY_BUDGET). Once the server has answered, the new tokens are saved even if this
    /// future is dropped; if the store fails, they go to a 0600 recovery file beside the token files
    /// (a warning says where), which every later read prefers until a save to the store succeeds.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthRequired`] when not signed in, or when the tokens are DPoP-bound
    /// (`token_type` `DPoP`) but their key is not stored (useless: RFC 9449 §7.1); errors about
    /// the tokens name their [`account`](crate::Error::account);
    /// [`ErrorCode::TokenExpired`] when expired
    /// without a refresh token; [`ErrorCode::TokenRefreshFailed`] when the server refuses the
    /// refresh token (the stored tokens stay, marked); [`ErrorCode::NetworkError`]/
    /// [`ErrorCode::Timeout`]/[`ErrorCode::AuthFailed`] for transport and server faults (storage is
    /// untouched; [`ErrorCode::NetworkError`] naming the status when the server still asks to wait
    /// after the retry budget); [`ErrorCode::Storage`].
    pub async fn ensure_valid_token(&self, provider: &str) -> Result<OAuthTokens> {
        for_provider(provider, self.ensure_inner(provider)).await
    }

    /// `target`'s stored tokens when they may be used: signed in, issued for `target` (an MCP
    /// server's binding) and, when DPoP-bound, with their key.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthRequired`] when not signed in or the DPoP key is gone; as
    /// `check_tokens_server`; [`ErrorCode::Storage`].
    async fn usable_tokens(&self, target: &ProviderRef) -> Result<OAuthTokens> {
        let Some(tokens) = self.load_target(target).await? else {
            return Err(self.missing_tokens(target));
        };
        mcp::check_tokens_server(target, &tokens)?;
        crate::dpop::check_key_kept(target, &tokens)?;
        Ok(tokens)
    }

    async fn ensure_inner(&self, provider: &str) -> Result<OAuthTokens> {
        let target = self.target(provider)?;
        let work = async {
            let tokens = self.usable_tokens(&target).await?;
            if !tokens.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER) {
                return Ok(tokens);
            }
            self.refresh_locked(&target, &tokens, false).await
        };
        work.await.map_err(|e| e.for_account(target.account()))
    }

    /// The access token from [`ensure_valid_token`](Self::ensure_valid_token).
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token).
    pub async fn get_bearer_token(&self, provider: &str) -> Result<AccessToken> {
        Ok(self.ensure_valid_token(provider).await?.access_token)
    }

    /// A valid access token for `provider`, signing in only when needed: the stored token if it is
    /// valid beyond its refresh margin, else a refreshed one (single-flight under the provider
    /// lock), else — when the error [needs a sign-in](crate::Error::needs_sign_in): not signed in,
    /// expired without a refresh token, refresh token refused — an interactive sign-in with the
    /// default [`AuthenticateOptions`] (the system browser; `tracing` warnings for the user). See
    /// [`token_with`](Self::token_with) to choose the options and the [`SignInUi`](crate::SignInUi).
    ///
    /// The token is handed over alone, so its sign-in never binds it to a DPoP key
    /// ([`AuthenticateOptions::without_dpop`]). A DPoP-bound token stored by an earlier
    /// [`authenticate`](Self::authenticate) is refused rather than returned: alone it is useless,
    /// and a caller would send it as a Bearer token (RFC 9449 §7.1 forbids the server to accept
    /// that). Present one with [`ensure_valid_token`](Self::ensure_valid_token) and a proof from
    /// [`DpopKey::from_tokens`](crate::DpopKey::from_tokens), or log out and call `token` again.
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token) for errors that a sign-in does not
    /// cure (unknown provider, network, storage), and as [`authenticate`](Self::authenticate);
    /// [`ErrorCode::ConfigInvalid`] for a DPoP-bound token.
    pub async fn token(&self, provider: &str) -> Result<AccessToken> {
        self.token_with(provider, AuthenticateOptions::new()).await
    }

    /// [`token`](Self::token) with the sign-in's `options` (used only when a sign-in is needed).
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    pub async fn token_with(
        &self,
        provider: &str,
        options: AuthenticateOptions,
    ) -> Result<AccessToken> {
        let tokens = match self.ensure_valid_token(provider).await {
            Ok(tokens) => tokens,
            Err(e) if e.needs_sign_in() => {
                tracing::info!(provider, code = %e.code(), "signing in: {e}");
                // The token is handed over alone, so it must be a Bearer token: no DPoP binding.
                self.authenticate(provider, options.without_dpop(true))
                    .await?
                    .tokens
            }
            Err(e) => return Err(e),
        };
        bearer_only(provider, tokens)
    }

    /// Refreshes now, whether or not the access token has expired (single-flight like
    /// [`ensure_valid_token`](Self::ensure_valid_token): if another process refreshed meanwhile,
    /// its result is returned).
    ///
    /// # Errors
    ///
    /// As [`ensure_valid_token`](Self::ensure_valid_token); without a refresh token,
    /// [`ErrorCode::TokenExpired`] whose message says so and how long the access token stays valid.
    pub async fn refresh_tokens(&self, provider: &str) -> Result<OAuthTokens> {
        let work = async {
            let target = self.target(provider)?;
            let work = async {
                let tokens = self.usable_tokens(&target).await?;
                self.refresh_locked(&target, &tokens, true).await
            };
            work.await.map_err(|e| e.for_account(target.account()))
        };
        for_provider(provider, work).await
    }

    async fn refresh_locked(
        &self,
        target: &ProviderRef,
        seen: &OAuthTokens,
        force: bool,
    ) -> Result<OAuthTokens> {
        let (provider, name) = (target.as_str(), target.storage_key());
        // Tokens of a grant without a user are renewed by running it again (`grants`).
        if grants::renewable(seen).is_some() {
            return self.renew_grant(target, seen, force).await;
        }
        // Fail fast, before taking the lock, on what no refresh can fix.
        if seen.refresh_token.is_none() {
            return no_refresh_token(seen, force);
        }
        if !force && seen.refresh_failed_at.is_some() {
            return Err(refresh_refused_before());
        }
        let lock = self.lock(name).await?;
        let Some(current) = self.load_locked(name).await? else {
            return Err(not_signed_in(target));
        };
        // Tokens that changed while we waited for the lock were refreshed (or signed in) by someone
        // else: use them unless they have actually expired. Comparing with the refresh margin here
        // would refresh again a token that lives less than twice the margin (a refresh storm).
        if current != *seen && !current.is_expired_at(SystemTime::now(), Duration::ZERO) {
            tracing::debug!(provider, "another process refreshed the tokens");
            return Ok(current);
        }
        if !force && !current.needs_refresh_at(SystemTime::now(), EXPIRY_BUFFER) {
            return Ok(current);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return no_refresh_token(&current, force);
        };
        if !force && current.refresh_failed_at.is_some() {
            return Err(refresh_refused_before());
        }
        if current.is_refresh_token_expired_at(SystemTime::now()) {
            return Err(Error::new(
                ErrorCode::TokenExpired,
                "the refresh token has expired",
            ));
        }
        // The client and endpoints come from the tokens read under the lock: another process may
        // have signed in again (with another client) since `seen` was read.
        let mut config = self.stored_config(target, &current).await?;
        // A DPoP-bound token set is refreshed with proofs of its own key (RFC 9449 §5).
        config.dpop_key = crate::dpop::DpopKey::from_tokens(&current);
        let token_url = check_endpoint(
            &config.provider.token_url,
            &format!("providers.{provider}.token_url"),
        )?;

        tracing::debug!(provider, "refreshing the access token");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ];
        if let Some(resource) = &config.provider.resource {
            form.push(("resource", resource));
        }
        match self.refresh_request(&config, &token_url, &form).await {
            Ok(fresh) => {
                let mut merged = current.merge_refresh(fresh);
                mcp::carry_binding(&current, &mut merged);
                grants::carry_grant(&current, &mut merged);
                crate::dpop::carry_key(&current, &mut merged);
                merged.refresh_failed_at = None;
                merged
                    .extra
                    .insert(CLIENT_ID_KEY.to_owned(), config.client_id.clone().into());
                // The server may have rotated the refresh token: from here on the old one is dead,
                // so the new set must be kept whatever happens (see `save_rotation`).
                self.save_rotation(provider, name, merged.clone(), lock)
                    .await?;
                tracing::info!(provider, "access token refreshed");
                // Stored all the same (a rotated refresh token must be kept), but a `DPoP` answer
                // to a request without a proof is useless: said now, naming the server.
                crate::dpop::check_answer(&merged)?;
                Ok(merged)
            }
            Err(e) if mcp::is_invalid_client(&e) && target.is_mcp_server() => {
                // The dynamically registered client is gone: its refresh token is useless. Forget
                // the registration so the next sign-in registers again, and mark the tokens.
                self.forget_registration(target);
                let mut marked = current;
                marked.mark_refresh_failed(SystemTime::now());
                if let Err(save_error) = self.save(name, marked).await {
                    tracing::warn!(provider, error = %save_error, "could not record the refresh failure");
                }
                Err(Error::new(
                    ErrorCode::TokenRefreshFailed,
                    "the server no longer accepts this client (invalid_client); sign in again to register a new one",
                ))
            }
            Err(e) if e.code() == ErrorCode::TokenRefreshFailed => {
                // Terminal: keep the tokens (nothing is deleted silently) but record the refusal so
                // `get_status` reports it and no process retries with a dead refresh token.
                let mut marked = current;
                marked.mark_refresh_failed(SystemTime::now());
                if let Err(save_error) = self.save(name, marked).await {
                    tracing::warn!(provider, error = %save_error, "could not record the refresh failure");
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Saves the tokens of a refresh the server has answered, holding `lock` until done. The server
    /// may have rotated the refresh token, which makes the stored one dead (and, at a server with
    /// reuse detection, dangerous: replaying it revokes the whole grant, RFC 9700 §4.14.2). So:
    ///
    /// - the save runs on its own blocking task, which completes (and only then releases the lock)
    ///   even if the caller's future is dropped;
    /// - when the store fails, it is tried once more; then the tokens go to the 0600 recovery file
    ///   beside the token files (for a keyring store, that is the file fallback), with a warning that
    ///   says where. Every later read prefers that file, and the next refresh under the lock moves
    ///   it back into the store;
    /// - only when nothing can be written is this an error.
    pub(super) async fn save_rotation(
        &self,
        provider: &str,
        name: &ProviderName,
        tokens: OAuthTokens,
        lock: ProviderLock,
    ) -> Result<()> {
        let store = Arc::clone(&self.store);
        let recovery = self.recovery_path(name);
        let name = name.clone();
        let provider = provider.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            let first = match store.save(&name, &tokens) {
                Ok(()) => return remove_recovery(&recovery).map(drop),
                Err(e) => e,
            };
            tracing::debug!(provider, error = %first, "saving the refreshed tokens failed; retrying once");
            let second = match store.save(&name, &tokens) {
                Ok(()) => return remove_recovery(&recovery).map(drop),
                Err(e) => e,
            };
            let json = tokens.to_json().map_err(|e| {
                Error::new(ErrorCode::Storage, "cannot encode the refreshed tokens").with_source(e)
            })?;
            match storage::write_private_atomic(&recovery, json.as_bytes()) {
                Ok(()) => {
                    tracing::warn!(
                        "could not save the refreshed tokens for {provider} to the {} store ({second}); \
                         they are in {} until the store works again",
                        store.name(),
                        recovery.display()
                    );
                    Ok(())
                }
                Err(third) => Err(Error::new(
                    ErrorCode::Storage,
                    format!(
                        "the refreshed tokens could not be saved ({second}), nor to {} ({third})",
                        recovery.display()
                    ),
                )
                .with_step(crate::NextStep::FixStorageThenSignIn {
                    provider: provider.to_owned(),
                })
                .with_source(second)),
            }
        });
        task.await.unwrap_or_else(|e| {
            Err(Error::new(ErrorCode::Storage, "saving the refreshed tokens failed").with_source(e))
        })
    }

    /// A refresh request, retrying transient answers (HTTP 429/503, `temporarily_unavailable`)
    /// within the retry budget ([`REFRESH_RETRY_BUDGET`](crate::REFRESH_RETRY_BUDGET) by default), waiting as `Retry-After` says
    /// or backing off.
    async fn refresh_request(
        &self,
        config: &OAuthConfig,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<OAuthTokens> {
        let clock = TokioClock;
        let patience =
            retry::Patience::within(&clock, self.refresh_retry_budget, "refreshing the token");
        let (raw, sent_at) = retry::send_until_settled(
            &patience,
            || self.post_with_client_auth(config, url, form, "token endpoint"),
            std::convert::identity,
        )
        .await?;
        let body =
            crate::provider::nested_token_answer(&raw.body, config.provider.token_path.as_deref());
        tokens::parse_token_response(raw.status, raw.content_type.as_deref(), &body, sent_at)
            .map_err(|e| classify_response_error(&e, Grant::Refresh))
    }

    fn missing_tokens(&self, target: &ProviderRef) -> Error {
        let provider = target.as_str();
        if target.is_mcp_server() {
            return not_signed_in(target);
        }
        match self.registry() {
            Ok(registry) if !registry.contains(provider) => match registry.get(provider) {
                Err(e) => e,
                Ok(_) => not_signed_in(target),
            },
            _ => not_signed_in(target),
        }
    }
}

/// What to do with tokens that have no refresh token: a forced refresh says so (and until when the
/// access token stays valid); otherwise a still-valid token is used as it is, and an expired one
/// is [`expired_without_rt`].
fn no_refresh_token(tokens: &OAuthTokens, force: bool) -> Result<OAuthTokens> {
    let now = SystemTime::now();
    if tokens.is_expired_at(now, Duration::ZERO) {
        return Err(expired_without_rt());
    }
    if !force {
        return Ok(tokens.clone());
    }
    let validity = match tokens.expires_at() {
        None => "the access token has no known expiry".to_owned(),
        Some(at) => format!(
            "the access token stays valid for another {}",
            human_duration(at.duration_since(now).unwrap_or_default())
        ),
    };
    Err(Error::new(
        ErrorCode::TokenExpired,
        format!("cannot refresh: the server issued no refresh token; {validity}"),
    ))
}

/// `1 h 5 min`, `4 min 10 s`, `12 s`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// The access token of `tokens` for a caller that sends it as a Bearer token: refused when it is
/// DPoP-bound (RFC 9449 §7.1: the resource server must not accept it as Bearer).
///
/// # Errors
///
/// [`ErrorCode::ConfigInvalid`] for a DPoP-bound token, saying how to present it.
fn bearer_only(provider: &str, tokens: OAuthTokens) -> Result<AccessToken> {
    if crate::dpop::is_dpop_bound(&tokens) {
        return Err(Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "the access token for {} is DPoP-bound (RFC 9449): it is useless without a proof signed by its key, so it is not handed over as a Bearer token",
                crate::terminal_text(provider)
            ),
        )
        .with_hint(
            "present it with ensure_valid_token and a proof from DpopKey::from_tokens, or log out and call token() again (its sign-in gets a Bearer token)",
        ));
    }
    Ok(tokens.access_token)
}
