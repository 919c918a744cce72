//! Configuration resolution for every provider: what a sign-in uses (a registry entry, an
//! issuer-only provider completed by RFC 8414 discovery, or an MCP server URL, whose specifics are
//! in `mcp`), and what refresh and revocation use for stored tokens.

use context_harness_tokens::OAuthTokens;

use super::mcp::{self, Prepared};
use super::{AuthenticateOptions, CLIENT_ID_KEY, OAuthService};
use crate::discovery::{self, Discoverer, METADATA_CACHE_TTL};
use crate::error::{Error, ErrorCode, Result};
use crate::provider::{OAuthConfig, OAuthProvider, check_endpoint};
use crate::provider_ref::ProviderRef;
use crate::registry::resolve_client_id;
use crate::ssrf::UrlPolicy;

impl OAuthService {
    /// Resolves the configuration for a sign-in: an MCP server URL (discovery + registration), an
    /// issuer-only provider (discovery, cached), or a plain registry entry; `options` gives the
    /// client id, ports and `no_resource` of the sign-in.
    pub(super) async fn prepare_sign_in(
        &self,
        target: &ProviderRef,
        options: &AuthenticateOptions,
    ) -> Result<Prepared> {
        let client_id = options.client_id.as_deref();
        if target.is_mcp_server() {
            return self.prepare_mcp(target, options).await;
        }
        let provider = target.as_str();
        if options.no_resource {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                "leaving out `resource` is for MCP server URLs",
            )
            .with_hint(
                "for a configured provider, remove `resource` from its providers.toml entry",
            ));
        }
        let registry = self.registry()?;
        let template = registry.get(provider)?;
        if template.needs_discovery() {
            let discovered = self.discovered_template(template).await?;
            let explicit = client_id.is_some();
            let client_id = resolve_client_id(&discovered, client_id, &self.env)?;
            let secret = self.provider_secret(&discovered, explicit)?;
            return Ok(Prepared {
                config: discovered.to_config(client_id, secret),
                dynamic_issuer: None,
                info: None,
                record: None,
                listener: None,
            });
        }
        let mut config = self.resolve_config(provider, client_id)?;
        if config.client_secret.is_none() && client_id.is_some() {
            // `{SERVICE}_CLIENT_SECRET` is unset and the client was named on this command: the
            // application-wide variables, if any (never for a client the command did not name).
            config.client_secret = self.app.client_secret(&self.env, None)?;
        }
        Ok(Prepared {
            config,
            dynamic_issuer: None,
            info: None,
            record: None,
            listener: None,
        })
    }

    /// A configured provider with its missing endpoints filled from the issuer's metadata (cached
    /// in `home/cache/discovery` for a day).
    pub(super) async fn discovered_template(
        &self,
        template: &OAuthProvider,
    ) -> Result<OAuthProvider> {
        let Some(issuer) = template.issuer.clone() else {
            return Ok(template.clone());
        };
        let home = self.home.clone();
        let cached = {
            let issuer = issuer.clone();
            tokio::task::spawn_blocking(move || {
                discovery::load_cached_metadata(&home, &issuer, METADATA_CACHE_TTL)
            })
            .await
            .ok()
            .flatten()
        };
        let url = check_endpoint(&issuer, &format!("providers.{}.issuer", template.name))?;
        // The configured issuer is the user's host: when it is about to be asked for its metadata,
        // a name that does not resolve is reported as theirs (with cached metadata it is not
        // contacted, so a failed lookup only tightens the policy, as before).
        let policy = UrlPolicy::new(if cached.is_some() {
            crate::ssrf::class_of_url(&url).await
        } else {
            let whom = format!(
                "the issuer of {} at {}",
                template.name,
                url.host_str().unwrap_or("server")
            );
            crate::ssrf::class_of_user_url(&url, &whom).await?
        });
        let metadata = match cached {
            Some(m) => m,
            None => {
                let m = Discoverer {
                    http: &self.http,
                    policy,
                }
                .authorization_server(&issuer)
                .await?;
                discovery::store_cached_metadata(&self.home, &m);
                m
            }
        };
        let mut provider = template.clone();
        discovery::apply_metadata(&mut provider, &metadata)?;
        provider.url_policy = Some(policy);
        provider.validate()?;
        Ok(provider)
    }

    /// The configuration for refreshing or revoking stored `tokens` of `provider`: for an MCP
    /// server its record and registration, for an issuer-only provider the discovered endpoints.
    pub(super) async fn stored_config(
        &self,
        target: &ProviderRef,
        tokens: &OAuthTokens,
    ) -> Result<OAuthConfig> {
        let stored_id = tokens
            .extra
            .get(CLIENT_ID_KEY)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if target.is_mcp_server() {
            return self.mcp_stored_config(target, tokens, stored_id).await;
        }
        mcp::check_not_mcp_tokens(target.as_str(), tokens)?;
        let registry = self.registry()?;
        let mut template = registry.get(target.as_str())?.clone();
        if template.needs_discovery() {
            template = self.discovered_template(&template).await?;
        }
        let default_id = resolve_client_id(&template, None, &self.env).ok();
        let client_id = match stored_id {
            Some(id) => id,
            None => resolve_client_id(&template, None, &self.env)?,
        };
        // The application-wide secret only for a client a sign-in named with `--client-id` (its id
        // differs from the provider's own), as at that sign-in.
        let explicit = default_id.as_deref() != Some(client_id.as_str());
        let secret = self.provider_secret(&template, explicit)?;
        Ok(template.to_config(client_id, secret))
    }

    /// The client secret for a registry provider: its `{SERVICE}_CLIENT_SECRET`, else — only when
    /// the client was named explicitly (`--client-id`), never for the provider's own client — the
    /// application-wide `{APP}_CLIENT_SECRET` / `{APP}_CLIENT_SECRET_FILE`. A general variable set
    /// for one server is so never sent to another provider's endpoints.
    fn provider_secret(
        &self,
        template: &OAuthProvider,
        explicit: bool,
    ) -> Result<Option<crate::provider::ClientSecret>> {
        if explicit {
            return self
                .app
                .client_secret(&self.env, Some(&template.client_secret_env()));
        }
        Ok(self
            .env
            .get(&template.client_secret_env())
            .map(crate::provider::ClientSecret::new))
    }
}
