//! Signing out: [`OAuthService::logout`] revokes at the server (RFC 7009, or GitHub's REST call)
//! and then deletes the stored tokens; [`OAuthService::logout_local`] only deletes.

use std::sync::Arc;

use context_harness_tokens as tokens;
use tokens::OAuthTokens;
use url::Url;

use super::store::{blocking, remove_recovery};
use super::{LogoutOutcome, OAuthService, Revocation, TokenRevocation, for_provider};
use crate::error::{Error, ErrorCode, Result, SERVER_TROUBLE_HINT, storage_error};
use crate::http::{Credentials, Method, Request};
use crate::provider::{OAuthConfig, RevocationStyle, check_endpoint};
use crate::provider_ref::ProviderRef;

impl OAuthService {
    /// Deletes the stored tokens without contacting the server. Returns whether any existed.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`].
    pub fn logout_local(&self, provider: &str) -> Result<bool> {
        let target = self.target(provider)?;
        let name = target.storage_key();
        // Tokens an older version kept under a shared name go to their owner first.
        let names = self.names();
        names.settle_before_write(&target)?;
        // Under the refresh lock, like `logout`: a refresh in flight cannot bring the tokens back.
        let lock = self.lock_blocking(name)?;
        refuse_foreign(&target, names.load_name(name).ok().flatten().as_ref())?;
        let recovered = remove_recovery(&self.recovery_path(name))?;
        let deleted = self.store.delete(name).map_err(storage_error)? || recovered;
        drop(lock);
        // The account is gone: out of the provider's index (another becomes the default).
        self.index_access().forget(&target)?;
        Ok(deleted)
    }

    /// Signs out: revokes at the server when possible (RFC 7009: the refresh token and the access
    /// token, each attempted even if the other fails; or GitHub's REST call when a client secret is
    /// set), then deletes the stored tokens even if revocation failed. Failures are logged at `info`
    /// only: the caller reports them (one line per token, [`LogoutOutcome::tokens`]).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::Storage`] if deleting fails; [`ErrorCode::NotFound`] for an invalid name.
    /// Revocation failures are reported in [`LogoutOutcome::revocation`], not as errors.
    pub async fn logout(&self, provider: &str) -> Result<LogoutOutcome> {
        let work = async {
            let target = self.target(provider)?;
            let name = target.storage_key().clone();
            // Tokens an older version kept under a shared name go to their owner first.
            self.settle_target(&target).await?;
            // Under the refresh lock, so a refresh in flight elsewhere cannot store a new grant
            // after we revoked and deleted this one.
            let lock = self.lock(&name).await?;
            let loaded = self.load(&name).await;
            refuse_foreign(&target, loaded.as_ref().ok().and_then(Option::as_ref))?;
            let (revocation, tokens) = match loaded {
                Ok(Some(tokens)) => match self.revoke(&target, &tokens).await {
                    Ok(per_token) => (summarize(&per_token), per_token),
                    Err(e) => {
                        tracing::info!(provider, error = %e, "revocation failed; deleting local tokens anyway");
                        (
                            Revocation::Failed {
                                message: e.to_string(),
                            },
                            Vec::new(),
                        )
                    }
                },
                Ok(None) => (
                    Revocation::NotAttempted {
                        reason: "not signed in".to_owned(),
                    },
                    Vec::new(),
                ),
                // Unreadable (e.g. corrupt) tokens cannot be revoked, but signing out still removes them.
                Err(e) if e.code() == ErrorCode::Storage => {
                    tracing::info!(provider, error = %e, "stored tokens are unreadable; deleting them without revocation");
                    (
                        Revocation::NotAttempted {
                            reason: "the stored tokens could not be read".to_owned(),
                        },
                        Vec::new(),
                    )
                }
                Err(e) => return Err(e),
            };
            let store = Arc::clone(&self.store);
            let recovery = self.recovery_path(&name);
            let deleted = blocking(move || {
                let recovered = remove_recovery(&recovery)?;
                Ok(store.delete(&name).map_err(storage_error)? || recovered)
            })
            .await?;
            drop(lock);
            // The account is gone: out of the provider's index (another becomes the default).
            let index = self.index_access();
            let signed_out = target.clone();
            blocking(move || index.forget(&signed_out).map(drop)).await?;
            Ok::<_, Error>(LogoutOutcome {
                revocation,
                tokens,
                deleted,
            })
        };
        for_provider(provider, work).await
    }

    /// Revokes `tokens` at the server: one [`TokenRevocation`] per token tried. `Err` only when
    /// nothing could be tried (a bad endpoint); an empty list means "not attempted" (no endpoint, no
    /// configuration), carried as a single entry with [`Revocation::NotAttempted`].
    async fn revoke(
        &self,
        target: &ProviderRef,
        tokens: &OAuthTokens,
    ) -> Result<Vec<TokenRevocation>> {
        let provider = target.as_str();
        let not_attempted = |reason: String| {
            vec![TokenRevocation {
                token: "tokens",
                result: Revocation::NotAttempted { reason },
            }]
        };
        let config = match self.stored_config(target, tokens).await {
            Ok(config) => config,
            Err(e) if e.code() == ErrorCode::NotFound => {
                return Ok(not_attempted(
                    "the provider is no longer configured".to_owned(),
                ));
            }
            // No record, or one that disagrees with the tokens: never send them to its endpoint.
            Err(e) if e.code() == ErrorCode::AuthRequired => {
                return Ok(not_attempted(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let Some(revocation_url) = config.provider.revocation_url.clone() else {
            return Ok(not_attempted(format!(
                "{} has no revocation endpoint",
                config.provider.display_name
            )));
        };
        if config.provider.revocation_style == RevocationStyle::GitHub {
            let result = self
                .revoke_github(&config, &revocation_url, tokens)
                .await
                .unwrap_or_else(|e| Revocation::Failed {
                    message: e.to_string(),
                });
            return Ok(match result {
                Revocation::NotAttempted { reason } => not_attempted(reason),
                result => vec![TokenRevocation {
                    token: "access token",
                    result,
                }],
            });
        }
        let url = check_endpoint(
            &revocation_url,
            &format!("providers.{provider}.revocation_url"),
        )?;
        // Refresh token first: revoking it ends the grant at most servers (RFC 7009 §2.1), but
        // nothing promises that it revokes the access token, so that one is revoked too — and
        // tried even if the refresh token's revocation failed.
        let mut pairs = Vec::new();
        if let Some(rt) = &tokens.refresh_token {
            pairs.push((rt.secret(), "refresh_token", "refresh token"));
        }
        pairs.push((tokens.access_token.secret(), "access_token", "access token"));
        let mut outcomes = Vec::new();
        for (token, hint, label) in pairs {
            let result = match self.revoke_one(&config, &url, token, hint).await {
                Ok(true) => Revocation::Revoked,
                Ok(false) => Revocation::NotAttempted {
                    reason: "the server cannot revoke it individually (unsupported_token_type)"
                        .to_owned(),
                },
                Err(e) => {
                    tracing::info!(provider, token = label, error = %e, "revocation failed");
                    Revocation::Failed {
                        message: e.to_string(),
                    }
                }
            };
            outcomes.push(TokenRevocation {
                token: label,
                result,
            });
        }
        Ok(outcomes)
    }

    /// One RFC 7009 revocation request. `Ok(false)`: the server answered `unsupported_token_type`
    /// (RFC 7009 §2.2.1, e.g. for a JWT access token).
    async fn revoke_one(
        &self,
        config: &OAuthConfig,
        url: &Url,
        token: &str,
        hint: &str,
    ) -> Result<bool> {
        let form = [("token", token), ("token_type_hint", hint)];
        let raw = self
            .post_with_client_auth(config, url, &form, "revocation endpoint")
            .await?;
        let unsupported =
            tokens::parse_response_object(raw.status, raw.content_type.as_deref(), &raw.body)
                .err()
                .is_some_and(|e| e.oauth_error() == Some("unsupported_token_type"));
        if unsupported {
            return Ok(false);
        }
        if !(200..300).contains(&raw.status) {
            return Err(Error::new(
                ErrorCode::NetworkError,
                format!("the revocation endpoint answered HTTP {}", raw.status),
            )
            .with_hint(SERVER_TROUBLE_HINT)
            .with_status(raw.status));
        }
        Ok(true)
    }

    async fn revoke_github(
        &self,
        config: &OAuthConfig,
        template_url: &str,
        tokens: &OAuthTokens,
    ) -> Result<Revocation> {
        let settings = format!(
            "https://github.com/settings/connections/applications/{}",
            config.client_id
        );
        let Some(secret) = &config.client_secret else {
            return Ok(Revocation::NotAttempted {
                reason: format!(
                    "revoking a GitHub token needs {}; revoke it at {settings}",
                    config.provider.client_secret_env()
                ),
            });
        };
        let encoded_id: String =
            form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
        let url = check_endpoint(
            &template_url.replace("{client_id}", &encoded_id),
            "providers.github.revocation_url",
        )?;
        let body = serde_json::json!({ "access_token": tokens.access_token.secret() }).to_string();
        let request = Request {
            accept: "application/vnd.github+json",
            json: Some(body),
            credentials: Some(Credentials::Basic(&config.client_id, secret.secret())),
            ..Request::new(Method::Delete, &url)
        };
        let raw = self
            .http
            .fetch(request, "GitHub token API", config.provider.url_policy)
            .await?;
        match raw.status {
            200..=299 | 404 => Ok(Revocation::Revoked), // 404: the token is already gone
            status => Err(Error::new(
                ErrorCode::NetworkError,
                format!("GitHub token API answered HTTP {status}; revoke it at {settings}"),
            )
            .with_hint(SERVER_TROUBLE_HINT)
            .with_status(status)),
        }
    }
}

/// The overall result of per-token revocations.
fn summarize(per_token: &[TokenRevocation]) -> Revocation {
    if let Some(failed) = per_token
        .iter()
        .find(|t| matches!(t.result, Revocation::Failed { .. }))
    {
        return failed.result.clone();
    }
    if per_token.iter().any(|t| t.result == Revocation::Revoked) {
        return Revocation::Revoked;
    }
    per_token.first().map_or_else(
        || Revocation::NotAttempted {
            reason: "nothing to revoke".to_owned(),
        },
        |t| t.result.clone(),
    )
}

/// Logout deletes only what `target` owns: tokens under its name that belong to someone else (an MCP
/// server's under a provider's name that could not be moved, another server's) are refused, not
/// deleted. Unreadable tokens pass (logout removes them).
fn refuse_foreign(target: &ProviderRef, loaded: Option<&OAuthTokens>) -> Result<()> {
    match loaded {
        Some(tokens) => super::mcp::check_tokens_server(target, tokens).or_else(|e| {
            // A server's own tokens without a binding (an older version's) are still its own to delete.
            if target.is_mcp_server() && super::mcp::bound_server(tokens).is_none() {
                Ok(())
            } else {
                Err(e)
            }
        }),
        _ => Ok(()),
    }
}
