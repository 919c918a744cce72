//! The user's ID token for Enterprise-Managed Authorization (`id_jag`) when no ID token file is
//! given: this client signs in to the enterprise identity provider (IdP) itself, with the ordinary
//! browser sign-in (authorization code + PKCE, RFC 6749 §4.1, RFC 7636; OpenID Connect Core §3.1).
//!
//! The IdP is an issuer-only provider completed by discovery (RFC 8414, then OpenID Connect
//! Discovery; `discovered_template`), with `--idp-client-id` as its client, the IdP client secret
//! when one is set, scopes `openid offline_access` and `prompt=consent` (OpenID Connect Core §11:
//! a refresh token for `offline_access` needs consent). Its tokens — with the `id_token` of the
//! answer (OpenID Connect Core §3.1.3.3) — are stored under a name of the servers' namespace derived
//! from the IdP's issuer ([`ProviderName::for_server`]), which no configured provider can have.
//!
//! An exchange uses the stored ID token while it is valid (its `exp`, with a margin); else the IdP
//! tokens are refreshed (an OpenID Connect refresh answer usually carries a new ID token, §12.2);
//! else — no refresh token, the refresh refused, or no new ID token — the browser sign-in runs
//! again, under the IdP name's sign-in lock, so concurrent processes sign in once. No ID token,
//! refresh token or secret is logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use context_harness_protocol as protocol;
use context_harness_storage::ProviderName;

use super::grants::GrantRecord;
use super::id_jag::idp_of;
use super::{AuthenticateOptions, OAuthService};
use crate::error::{Error, ErrorCode, Grant, Result, storage_error};
use crate::provider::{OAuthConfig, OAuthProvider, check_endpoint};
use crate::tokens::{OAuthTokens, SecretString};

/// The display name of the IdP sign-in's provider in messages and `providers.<name>` hints.
const IDP_NAME: &str = "identity-provider";

/// A stored ID token is used only while it stays valid for at least this long (the exchange and
/// the JWT-bearer grant follow within seconds).
const ID_TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl OAuthService {
    /// The user's ID token from this client's own sign-in at the IdP of `grant` (see the module
    /// documentation): stored and valid, else refreshed, else a browser sign-in with `options`' opener,
    /// UI, ports and timeout (their scopes are the MCP grant's and are not used here).
    ///
    /// # Errors
    ///
    /// Discovery errors for `--idp-issuer`; the sign-in's errors ([`ErrorCode::AuthCancelled`],
    /// [`ErrorCode::Timeout`], [`ErrorCode::AuthFailed`], …); [`ErrorCode::AuthFailed`] when the
    /// IdP's answer carries no usable ID token (the client may not be allowed `openid`); network
    /// errors of the refresh; [`ErrorCode::Storage`].
    ///
    /// `key` is the storage key of the tokens the ID token is for: each account keeps its own IdP
    /// sign-in (under the IdP name with that account), and an account other than the default one
    /// signs in at the IdP with `prompt=login` added, so the IdP's session of another user is not
    /// taken for this account's (OpenID Connect Core §3.1.2.1).
    pub(super) async fn idp_signed_in_id_token(
        &self,
        grant: &GrantRecord,
        options: Option<&AuthenticateOptions>,
        key: &ProviderName,
    ) -> Result<SecretString> {
        let (issuer, client_id) = idp_of(grant)?;
        let name = super::accounts::same_account(
            &ProviderName::for_server(issuer).map_err(storage_error)?,
            key,
        );
        let stored = self.load(&name).await?;
        if let Some(token) = stored.as_ref().and_then(usable_id_token) {
            tracing::debug!("using the stored ID token from the identity provider");
            return Ok(token);
        }
        let mut config = self.idp_sign_in_config(issuer, client_id).await?;
        if name.account_part().is_some() {
            config = super::accounts::with_prompt(&config, Some("login"));
        }
        if stored.is_some_and(|t| t.refresh_token.is_some()) {
            match self.refresh_idp(&name, &config).await {
                Ok(tokens) => {
                    if let Some(token) = usable_id_token(&tokens) {
                        return Ok(token);
                    }
                    tracing::info!(
                        "the identity provider's refresh gave no new ID token; signing in again"
                    );
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::info!(code = %e.code(), "refreshing at the identity provider failed; signing in again: {e}")
                }
            }
        }
        let mut idp_options = AuthenticateOptions::new();
        if let Some(options) = options {
            idp_options.browser.clone_from(&options.browser);
            idp_options.ui.clone_from(&options.ui);
            idp_options.ports.clone_from(&options.ports);
            idp_options.timeout = options.timeout;
        }
        // One sign-in per IdP across processes: another process's fresh ID token is the answer.
        let ui = idp_options.ui_or_default();
        let (_sign_in_lock, _) = self
            .take_sign_in_lock(issuer, &name, idp_options.timeout, ui.as_ref())
            .await?;
        if let Some(token) = self.load(&name).await?.as_ref().and_then(usable_id_token) {
            tracing::info!("another process signed in to the identity provider; using its sign-in");
            return Ok(token);
        }
        let outcome = self
            .browser_sign_in(issuer, &name, &config, None, &mut idp_options, None)
            .await?;
        usable_id_token(&outcome.tokens).ok_or_else(|| {
            Error::new(
                ErrorCode::AuthFailed,
                "the identity provider's sign-in gave no valid ID token",
            )
            .with_hint("the IdP must allow --idp-client-id the `openid` scope")
        })
    }

    /// Refreshes the IdP tokens stored under `name` (RFC 6749 §6) under its refresh lock: tokens
    /// another process refreshed meanwhile are used when their ID token is still valid.
    async fn refresh_idp(&self, name: &ProviderName, config: &OAuthConfig) -> Result<OAuthTokens> {
        let lock = self.lock(name).await?;
        let Some(current) = self.load_locked(name).await? else {
            return Err(Error::new(
                ErrorCode::AuthRequired,
                "not signed in to the identity provider",
            ));
        };
        if usable_id_token(&current).is_some() {
            return Ok(current);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(crate::error::expired_without_rt());
        };
        let token_url = check_endpoint(
            &config.provider.token_url,
            "the identity provider's token_endpoint",
        )?;
        tracing::debug!("refreshing the identity provider's tokens");
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ];
        let fresh = self
            .token_request(config, &token_url, &form, Grant::Refresh)
            .await?;
        let mut merged = current.merge_refresh(fresh);
        super::namespace::unbind(&mut merged);
        super::grants::carry_grant(&current, &mut merged);
        merged.refresh_failed_at = None;
        // The server may have rotated the refresh token: the new set is kept whatever happens.
        self.save_rotation(IDP_NAME, name, merged.clone(), lock)
            .await?;
        Ok(merged)
    }

    /// The IdP as an issuer-only provider completed by discovery, for this client's sign-in there:
    /// `openid offline_access`, `prompt=consent`, `--idp-client-id` and the IdP client secret.
    async fn idp_sign_in_config(&self, issuer: &str, client_id: &str) -> Result<OAuthConfig> {
        let template = OAuthProvider::from_issuer(IDP_NAME, issuer)?;
        let mut provider = self.discovered_template(&template).await.map_err(|e| {
            e.with_hint("check --idp-issuer: the identity provider's issuer identifier")
        })?;
        provider.display_name = issuer.to_owned();
        provider.scopes = vec!["openid".to_owned(), "offline_access".to_owned()];
        provider
            .extra_auth_params
            .insert("prompt".to_owned(), "consent".to_owned());
        let secret = self.app.idp_client_secret(&self.env)?;
        Ok(provider.to_config(client_id, secret))
    }
}

/// The stored ID token when it is a JWT valid for at least [`ID_TOKEN_MARGIN`] more.
fn usable_id_token(tokens: &OAuthTokens) -> Option<SecretString> {
    let token = tokens.id_token.as_ref()?.secret();
    let exp = protocol::jwt_expiry(token)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let needed = now.checked_add(ID_TOKEN_MARGIN.as_secs())?;
    (exp > needed).then(|| SecretString::new(token.to_owned()))
}
